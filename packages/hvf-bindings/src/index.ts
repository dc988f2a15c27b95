/**
 * @guest/hvf-bindings: the backend interface, and the native backend over Apple's Hypervisor.framework.
 *
 * THREAD RULES (Hypervisor.framework's, enforced at run time):
 * 1. A vCPU is used only by the thread that created it: hv_vcpu_run, register access and
 *    hv_vcpu_destroy from any other thread throw HvfThreadError.
 * 2. The VM is process-wide: any thread may create vCPUs in it (a Worker attaches with
 *    `attachHvfVm(vm.descriptor())`); there is one VM per process.
 * 3. The only cross-thread call is hv_vcpus_exit (`requestStop`, `requestRemoteStop`).
 * So each vCPU of a multi-threaded guest lives in its own Worker (`HvfVm.vcpuThreads().spawn()`,
 * `spawnHvfVcpuWorker`), which runs hv_vcpu_run; the main thread handles every exit through a
 * SharedArrayBuffer handshake (`VcpuWorkerHost`, vcpu-channel.ts), waits for any of them on one shared
 * doorbell (`VcpuDoorbell`), and stops a running vCPU with hv_vcpus_exit.
 */
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
export { SharedVmState } from "./hvf/shared-vm-state.ts";
export {
  type CodesignOutput,
  ENTITLEMENTS_PLIST,
  type HvfSigningStatus,
  HYPERVISOR_ENTITLEMENT,
  hvfSigningStatus,
  parseCodesignEntitlements,
  SIGNED_EXECUTABLE,
  signingStatusFromCodesign,
  signingUnavailableReason,
  UNSIGNED_REASON,
} from "./hvf/signing.ts";
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
export { loadNativeHelper, nativeCacheDir, prebuiltPathFor } from "./native.ts";
export * as shimLayout from "./shim/layout.ts";
