/**
 * Hypervisor.framework vCPUs for a multi-threaded guest: one Worker per vCPU (the thread rule), all of
 * one VM, sharing one doorbell so the main thread can sleep until *any* of them exits. `HvfVm.vcpuThreads()`
 * hands out the group; `spawn()` is synchronous (it is called from inside a guest's clone).
 * This module does not import vm.ts (vm.ts imports it): the VM passes its descriptor and its stop function.
 */
import type { VcpuThreads } from "../backend.ts";
import { BUNFS_ROOT, VCPU_WORKER_ENTRY } from "./signing.ts";
import { VcpuDoorbell, VcpuWorkerHost } from "./vcpu-channel.ts";
import type { HvfWorkerInit } from "./vcpu-worker.ts";
import type { HvfVmDescriptor } from "./vm.ts";

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

/** What a VM's vCPU group is configured with (tests: a fake framework per worker, by spawn order). */
export interface HvfVcpuThreadOptions {
  hostModule?: string;
  /** The `hostOptions` of the n-th vCPU this group spawns (0 first). */
  hostOptions?: (ordinal: number) => unknown;
  spin?: number;
}

export class HvfVcpuWorkerGroup implements VcpuThreads {
  readonly doorbell = new VcpuDoorbell();
  private spawned = 0;

  constructor(
    private readonly describe: () => HvfVmDescriptor,
    private readonly stop: (token: unknown) => void,
    private readonly options: HvfVcpuThreadOptions = {},
  ) {}

  /** A new vCPU of the VM in a Worker of its own, ready to `start()`; blocks until the worker has created it. */
  spawn(): VcpuWorkerHost {
    const ordinal = this.spawned++;
    const init: HvfWorkerInit = {
      descriptor: this.describe(),
      hostModule: this.options.hostModule,
      hostOptions: this.options.hostOptions?.(ordinal),
    };
    return VcpuWorkerHost.spawnSync({
      workerUrl: hvfVcpuWorkerUrl(),
      init,
      stop: this.stop,
      spin: this.options.spin,
      doorbell: this.doorbell,
    });
  }

  get ring(): number {
    return this.doorbell.count;
  }

  waitForRing(seen: number, timeoutMs: number): void {
    this.doorbell.wait(seen, timeoutMs);
  }
}
