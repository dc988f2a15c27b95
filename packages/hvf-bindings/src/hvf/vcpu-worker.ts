/**
 * Worker entry of a Hypervisor.framework vCPU (spawned by `spawnHvfVcpuWorker`). It attaches to the
 * process-wide VM the main thread created, creates its vCPU *here* (hv_vcpu_create binds the vCPU to
 * this thread), hands the main thread a stop token for hv_vcpus_exit, and serves the vCPU channel:
 * hv_vcpu_run runs on this thread, every exit is handled on the main thread.
 *
 * `hostModule` (tests only) replaces the framework: a module exporting
 * `createHvfHost(descriptor, hostOptions): HvfHost`.
 */
import { startVcpuWorker } from "./vcpu-channel.ts";
import { attachHvfVm, type HvfHost, type HvfVmDescriptor } from "./vm.ts";

export interface HvfWorkerInit {
  descriptor: HvfVmDescriptor;
  hostModule?: string;
  hostOptions?: unknown;
}

startVcpuWorker(async (init) => {
  const { descriptor, hostModule, hostOptions } = init as HvfWorkerInit;
  let host: HvfHost | undefined;
  if (hostModule) {
    const module = (await import(hostModule)) as {
      createHvfHost(descriptor: HvfVmDescriptor, options: unknown): HvfHost;
    };
    host = module.createHvfHost(descriptor, hostOptions);
  }
  const vcpu = attachHvfVm(descriptor, host).createVcpu();
  return { vcpu, stopToken: vcpu.remoteStopToken() };
});
