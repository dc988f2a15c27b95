/**
 * Main-thread side of Hypervisor.framework vCPUs in Workers: `spawnHvfVcpuWorker(vm)` starts a Worker
 * (entry: vcpu-worker.ts) that creates and runs one vCPU of `vm`, and returns its `VcpuWorkerHost`.
 * The stop function is the only cross-thread framework call: requestRemoteStop → hv_vcpus_exit.
 */
import { BUNFS_ROOT, VCPU_WORKER_ENTRY } from "./signing.ts";
import { VcpuWorkerHost } from "./vcpu-channel.ts";
import type { HvfWorkerInit } from "./vcpu-worker.ts";
import { type HvfVm, type RemoteStopToken, requestRemoteStop } from "./vm.ts";

/**
 * Where the worker entry is. From source: next to this module. In a `bun build --compile` binary
 * every module is bundled into the main chunk, so `import.meta.url` no longer locates it; the entry
 * must be an extra entry point of the build and sits in the binary's file system at its path
 * relative to `--root` (scripts/sign.ts builds with `--root <repo>`).
 */
export function hvfVcpuWorkerUrl(moduleUrl: string = import.meta.url): string {
  if (moduleUrl.startsWith(`file://${BUNFS_ROOT}`) || moduleUrl.startsWith(BUNFS_ROOT)) {
    return `${BUNFS_ROOT}${VCPU_WORKER_ENTRY}`;
  }
  return new URL("./vcpu-worker.ts", moduleUrl).href;
}

export interface HvfVcpuWorkerOptions {
  /** Tests: a module whose `createHvfHost(descriptor, hostOptions)` replaces the framework in the worker. */
  hostModule?: string;
  hostOptions?: unknown;
  /** Handshake spin count before sleeping (see vcpu-channel.ts). */
  spin?: number;
}

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
