export * from "./backend.ts";
export * from "./hvf/constants.ts";
export * from "./hvf/decode.ts";
export * from "./hvf/errors.ts";
export {
  DEFAULT_HVF_FRAMEWORK,
  type HypervisorSymbols,
  hvfAvailability,
  hypervisorSymbols,
  hypervisorUnavailable,
} from "./hvf/ffi.ts";
export * from "./hvf/syndrome-constants.ts";
export {
  HvfBackend,
  type HvfHost,
  type HvfVcpu,
  HvfVm,
  ipaCandidates,
  type RemoteStopToken,
  requestRemoteStop,
  slabSegmentSize,
} from "./hvf/vm.ts";
export * as shimLayout from "./shim/layout.ts";
