import { afterEach, expect, test } from "bun:test";
import { threadId } from "node:worker_threads";
import type { ConcurrentVcpu, VcpuExit } from "../backend.ts";
import { EXIT_LINE_SIZE, FakeHypervisor } from "./testing/fake-hypervisor.ts";
import type { FakeWorkerOptions, FakeWorkerStep } from "./testing/fake-worker-host.ts";
import type { VcpuWorkerHost } from "./vcpu-channel.ts";
import { HvfBackend, type HvfVm } from "./vm.ts";

const FAKE_WORKER_HOST = new URL("./testing/fake-worker-host.ts", import.meta.url).href;
const MiB = 1024 * 1024;

let cleanup: (() => void)[] = [];
afterEach(() => {
  const steps = cleanup.reverse();
  cleanup = [];
  for (const step of steps) step();
});

/** A VM over the fake framework whose n-th Worker vCPU plays `scripts[n]`; all fakes share one exit line. */
function setup(
  scripts: FakeWorkerStep[][],
  hostModule = FAKE_WORKER_HOST,
): { fake: FakeHypervisor; vm: HvfVm } {
  const exitLine = new SharedArrayBuffer(EXIT_LINE_SIZE);
  const fake = new FakeHypervisor({ exitLine });
  const vm = new HvfBackend(fake.host(), {
    hostModule,
    hostOptions: (n): FakeWorkerOptions => ({ exitLine, script: scripts[n] ?? [], firstHandle: n }),
  }).createVm({ memorySize: 256 * MiB });
  fake.privateBytes = vm.privateBytes;
  cleanup.push(() => vm.destroy());
  return { fake, vm };
}

/** Wait on the group's doorbell until one of `vcpus` has exited; poll order is the array's. */
function nextExit(vm: HvfVm, vcpus: ConcurrentVcpu[]): { index: number; exit: VcpuExit; rings: number } {
  const group = vm.vcpuThreads();
  let rings = 0;
  for (;;) {
    const seen = group.ring;
    for (const [index, vcpu] of vcpus.entries()) {
      if (!vcpu.running) continue;
      const exit = vcpu.poll();
      if (exit) return { index, exit, rings };
    }
    group.waitForRing(seen, 1000);
    if (group.ring !== seen) rings++;
  }
}

const x = (vcpu: ConcurrentVcpu, n: number) => vcpu.getRegister(`x${n}` as "x0");

test("several vCPUs in Workers run at once; the main thread takes whichever exits, through one doorbell", () => {
  const { fake, vm } = setup([
    // vCPU 0: one syscall, then it spins in guest code until stopped.
    [
      { step: "syscall", number: 172, pc: 0x40_0004 },
      { step: "spin-until-kicked", pc: 0x40_0100 },
      { step: "syscall", number: 93, args: [7], pc: 0x40_0108 },
    ],
    // vCPU 1: two syscalls; the second reports (X9) the X0 the main thread gave the first.
    [
      { step: "syscall", number: 178, pc: 0x50_0004 },
      { step: "syscall", number: 98, args: [0x1000, 0], pc: 0x50_0008 },
    ],
  ]);
  const group = vm.vcpuThreads();
  expect(vm.vcpuThreads()).toBe(group); // one group per VM
  const [a, b] = [group.spawn(), group.spawn()] as [VcpuWorkerHost, VcpuWorkerHost];
  cleanup.push(
    () => a.destroy(),
    () => b.destroy(),
  );
  // Each vCPU belongs to its own Worker thread; both slots are claimed in the VM's table.
  expect(new Set([a.vcpuThread, b.vcpuThread, threadId]).size).toBe(3);
  expect(vm.shared.slotOwners().map((o) => o.thread)).toEqual([a.vcpuThread, b.vcpuThread]);

  a.start();
  b.start();
  expect(a.running && b.running).toBe(true);
  const exits: string[] = [];
  // Both exit with a syscall, in whatever order their threads get there.
  for (let i = 0; i < 2; i++) {
    const { index, exit } = nextExit(vm, [a, b]);
    const vcpu = index === 0 ? a : b;
    expect(exit).toEqual({ kind: "syscall" });
    exits.push(`${index}:${x(vcpu, 8)}`);
    vcpu.setRegister("x0", index === 0 ? 4242n : 5151n); // the syscall's result
  }
  expect(exits.sort()).toEqual(["0:172", "1:178"]);

  // vCPU 0 now spins in guest code; vCPU 1's next exit reaches the main thread while 0 still runs.
  a.start();
  b.start();
  const second = nextExit(vm, [a, b]);
  expect(second.index).toBe(1);
  expect(a.running).toBe(true);
  expect(a.poll()).toBeNull();
  expect(x(b, 8)).toBe(98n);
  expect(x(b, 9)).toBe(5151n); // the result written between runs is what the guest saw
  expect(x(b, 0)).toBe(0x1000n);

  // A cross-thread stop ends the spinning guest; its registers are live at the interrupted PC.
  a.requestStop();
  const stopped = nextExit(vm, [a, b]);
  expect(stopped).toMatchObject({ index: 0, exit: { kind: "stopped" } });
  expect(a.getRegister("pc")).toBe(0x40_0100n);
  expect(fake.exitsRequested).toEqual([0n]); // vCPU 0's handle (first handle of worker 0)

  a.start();
  expect(nextExit(vm, [a])).toMatchObject({ index: 0, exit: { kind: "syscall" } });
  expect(x(a, 9)).toBe(4242n); // X0 survived the stop and the restart
  expect(x(a, 0)).toBe(7n);
});

test("start() only without an in-line handler; poll() only after start(); destroy() stops a running vCPU first", () => {
  const { vm } = setup([[{ step: "spin-until-kicked", pc: 0x40_0200 }]]);
  const vcpu = vm.vcpuThreads().spawn() as VcpuWorkerHost;
  expect(() => vcpu.poll()).toThrow(/poll\(\) without start\(\)/);
  vcpu.setSyscallHandler(() => 0);
  expect(() => vcpu.start()).toThrow(/in-line handler/);
  vcpu.setSyscallHandler(null);
  vcpu.start();
  cleanup.push(() => vcpu.destroy());
  expect(() => vcpu.getVector(0)).toThrow(/while run\(\) is in progress/);
  expect(() => vcpu.getRegister("x0")).toThrow(/while run\(\) is in progress/);
  expect(() => vcpu.start()).toThrow(/already running/);
  vcpu.destroy(); // kicks the spinning guest, takes its exit, destroys the vCPU on its thread
  expect(vcpu.running).toBe(false);
  expect(vm.shared.slotOwners()).toEqual([]);
});

test("a synchronous spawn whose worker cannot create its vCPU throws the reason and leaves no slot", () => {
  const { vm } = setup([], new URL("./no-such-host.ts", import.meta.url).href);
  expect(() => vm.vcpuThreads().spawn()).toThrow(/vCPU worker failed to start: .*no-such-host/);
  expect(vm.shared.slotOwners()).toEqual([]);
});
