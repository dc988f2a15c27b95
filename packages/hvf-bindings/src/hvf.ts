/**
 * The Hypervisor.framework implementation: everything of this package that only the hvf backend needs. It is
 * not imported by index.ts, so a start on Linux (the emulator backend) never loads it (vm.ts, the vCPU
 * Worker channel with node:worker_threads, the shim bytes and tables: ~8 ms of module loading); it is reached
 * through `loadHvf()` from index.ts, and index.ts re-exports its types.
 */
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
export { SharedVmState } from "./hvf/shared-vm-state.ts";
export * from "./hvf/syndrome-constants.ts";
/**
 * Test doubles for code above this package (apps/guest): the scripted framework, and the module a vCPU Worker
 * loads to play one (`HvfBackend`'s `hostModule`). Never used outside tests.
 */
export { EXIT_LINE_SIZE, FakeHypervisor } from "./hvf/testing/fake-hypervisor.ts";
export {
  FAKE_WORKER_HOST_MODULE,
  type FakeWorkerOptions,
  type FakeWorkerStep,
  fakeStep,
} from "./hvf/testing/fake-worker-host.ts";
export {
  DEFAULT_SPIN,
  serveVcpu,
  startVcpuWorker,
  VcpuDoorbell,
  VcpuWorkerError,
  VcpuWorkerHost,
  type VcpuWorkerOptions,
  type WorkerVcpu,
} from "./hvf/vcpu-channel.ts";
export {
  type HvfVcpuThreadOptions,
  HvfVcpuWorkerGroup,
  type HvfVcpuWorkerOptions,
  hvfVcpuWorkerUrl,
} from "./hvf/vcpu-worker-group.ts";
export { spawnHvfVcpuWorker } from "./hvf/vcpu-worker-host.ts";
export {
  attachHvfVm,
  HvfBackend,
  type HvfHost,
  type HvfVcpu,
  HvfVm,
  HvfVmAttachment,
  type HvfVmDescriptor,
  ipaCandidates,
  type RemoteStopToken,
  requestRemoteStop,
  slabSegmentSize,
} from "./hvf/vm.ts";
export * as shimLayout from "./shim/layout.ts";
