/**
 * @guest/hvf-bindings: the backend interface, and the native backend over Apple's Hypervisor.framework.
 *
 * What every start needs is exported directly: the backend interface (backend.ts), the native-helper loader,
 * and the signing facts the CLI consults before choosing a backend. The Hypervisor.framework implementation
 * itself (`HvfBackend`, `hvfAvailability`, the vCPU Worker channel, the shim, the constants and the test
 * doubles) is loaded on demand: `const hvf = await loadHvf()`, then `new hvf.HvfBackend()`; its types are
 * exported here as types. So a start on Linux, where only the emulator backend runs, never loads it.
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
export { loadNativeHelper, nativeCacheDir, prebuiltPathFor } from "./native.ts";

/** The Hypervisor.framework implementation's exports (hvf.ts), as `loadHvf()` resolves them. */
export type HvfModule = typeof import("./hvf.ts");
export type * from "./hvf.ts";

/** Load the Hypervisor.framework implementation (once; later calls resolve to the same module). */
export function loadHvf(): Promise<HvfModule> {
  return import("./hvf.ts");
}
