/**
 * Main-thread side of Hypervisor.framework vCPUs in Workers: `spawnHvfVcpuWorker(vm)` starts a Worker
 * (entry: vcpu-worker.ts) that creates and runs one vCPU of `vm`, and returns its `VcpuWorkerHost`.
 * The stop function is the only cross-thread framework call: requestRemoteStop → hv_vcpus_exit.
 * For many vCPUs at once (a multi-threaded guest) see `HvfVm.vcpuThreads()` (vcpu-worker-group.ts).
 */
import { VcpuWorkerHost } from "./vcpu-channel.ts";
import type { HvfWorkerInit } from "./vcpu-worker.ts";
import { type HvfVcpuWorkerOptions, hvfVcpuWorkerUrl } from "./vcpu-worker-group.ts";
import { type HvfVm, type RemoteStopToken, requestRemoteStop } from "./vm.ts";

export { type HvfVcpuWorkerOptions, hvfVcpuWorkerUrl };

export function spawnHvfVcpuWorker(vm: HvfVm, options: HvfVcpuWorkerOptions = {}): Promise<VcpuWorkerHost> {
  const init: HvfWorkerInit = {
    descriptor: vm.descriptor(),
    hostModule: options.hostModule,
    hostOptions: options.hostOptions,
  };
  return VcpuWorkerHost.spawn({
    workerUrl: hvfVcpuWorkerUrl(),
    init,
    stop: (token) => requestRemoteStop(token as RemoteStopToken, vm.host.hv),
    spin: options.spin,
  });
}
