import { afterEach, expect, test } from "bun:test";
import { threadId } from "node:worker_threads";
import { SYSCALL_LEAVE, SYSCALL_RESUME } from "../backend.ts";
import { EXIT_LINE_SIZE, FakeHypervisor } from "./testing/fake-hypervisor.ts";
import type { FakeWorkerOptions, FakeWorkerStep } from "./testing/fake-worker-host.ts";
import type { VcpuWorkerHost } from "./vcpu-channel.ts";
import { hvfVcpuWorkerUrl, spawnHvfVcpuWorker } from "./vcpu-worker-host.ts";
import { HvfBackend, type HvfVm } from "./vm.ts";

const FAKE_WORKER_HOST = new URL("./testing/fake-worker-host.ts", import.meta.url).href;
const MiB = 1024 * 1024;

let cleanup: (() => void)[] = [];
afterEach(() => {
  for (const step of cleanup.reverse()) step();
  cleanup = [];
});

/** A VM on this thread over a fake framework, and one vCPU in a real Worker playing `script`. */
async function setup(
  script: FakeWorkerStep[],
): Promise<{ fake: FakeHypervisor; vm: HvfVm; host: VcpuWorkerHost }> {
  const exitLine = new SharedArrayBuffer(EXIT_LINE_SIZE);
  const fake = new FakeHypervisor({ exitLine });
  const vm = new HvfBackend(fake.host()).createVm({ memorySize: 256 * MiB });
  fake.privateBytes = vm.privateBytes;
  cleanup.push(() => vm.destroy());
  const hostOptions: FakeWorkerOptions = { exitLine, script };
  const host = await spawnHvfVcpuWorker(vm, { hostModule: FAKE_WORKER_HOST, hostOptions });
  cleanup.push(() => host.destroy());
  return { fake, vm, host };
}

const u64 = (frame: Uint32Array, n: number) => (BigInt(frame[2 * n + 1]!) << 32n) | BigInt(frame[2 * n]!);

test("a vCPU in a real Worker: syscall exits handled on the main thread, registers across threads, a cancel", async () => {
  const { fake, vm, host } = await setup([
    { step: "syscall", number: 64, args: [1, 0x1000, 5], pc: 0x40_0004 },
    { step: "syscall", number: 63, args: [0], pc: 0x40_0010 },
    { step: "store-fault", address: 0x1234_5000, pc: 0x40_0020 },
    { step: "syscall", number: 172, pc: 0x40_0028 },
    { step: "syscall", number: 93, pc: 0x40_0030 },
    { step: "spin-until-kicked", pc: 0x40_0100 },
  ]);
  // The vCPU belongs to the worker's thread, and its slot is claimed in the VM's shared table.
  expect(host.vcpuThread).not.toBe(threadId);
  expect(host.vcpuThread).toBeGreaterThan(0);
  expect(vm.shared.slotOwners()).toEqual([{ slot: host.id, thread: host.vcpuThread }]);
  // Shared VM state reaches the worker: its vCPU applies this root before entering (X10 echoes TTBR0).
  vm.setTranslationRoot(0x10_0000);

  const seen: { nr: bigint; args: bigint[]; thread: number }[] = [];
  host.setSyscallHandler((frame) => {
    const nr = u64(frame, 8);
    seen.push({ nr, args: [u64(frame, 0), u64(frame, 1), u64(frame, 2)], thread: threadId });
    frame[0] = nr === 64n ? 5 : 0;
    frame[1] = 0;
    return nr === 63n ? SYSCALL_LEAVE : SYSCALL_RESUME;
  });
  // write resumes inside the worker's run loop; exit asks to leave it.
  expect(host.run()).toEqual({ kind: "stopped" });
  expect(seen).toEqual([
    { nr: 64n, args: [1n, 0x1000n, 5n], thread: threadId },
    { nr: 63n, args: [0n, 0x1000n, 5n], thread: threadId },
  ]);
  expect(host.getRegister("x9")).toBe(5n); // the guest saw write's result when it re-entered
  expect(host.getRegister("x10")).toBe(0x10_0000n);
  expect(host.getRegister("pc")).toBe(0x40_0010n);
  expect(host.getRegister("x8")).toBe(63n); // published with the exit, read from shared memory

  expect(host.run()).toEqual({ kind: "fault", address: 0x1234_5000, access: "write", mapped: false });

  // Without an in-line handler a syscall ends run(); X0 written here reaches the guest on the next run.
  host.setSyscallHandler(null);
  expect(host.run()).toEqual({ kind: "syscall" });
  expect(host.getRegister("x8")).toBe(172n);
  host.setRegister("x0", 4242n);
  expect(host.run()).toEqual({ kind: "syscall" });
  expect(host.getRegister("x9")).toBe(4242n);

  // Registers beyond the frame and vectors go through the parked worker's vCPU.
  host.setRegister("tpidr_el0", 0xdead_beefn);
  expect(host.getRegister("tpidr_el0")).toBe(0xdead_beefn);
  const q = Uint8Array.from({ length: 16 }, (_, i) => i * 3);
  host.setVector(7, q);
  expect(host.getVector(7)).toEqual(q);
  expect(() => host.getVector(40)).toThrow(/worker thread \d+\): no register q40/);

  // Cancel: the guest spins in the worker until this thread's hv_vcpus_exit kicks it.
  const pending = host.runAsync();
  expect(() => host.ping()).toThrow(/while run\(\) is in progress/);
  host.requestStop();
  expect(await pending).toEqual({ kind: "stopped" });
  expect(fake.exitsRequested).toEqual([0n]); // the main thread's framework made the only cross-thread call
  expect(host.getRegister("pc")).toBe(0x40_0100n); // live registers after an EL0 interruption

  host.destroy();
  expect(vm.shared.slotOwners()).toEqual([]);
  expect(() => host.run()).toThrow(/used after destroy/);
});

test("a throwing main-thread handler leaves the guest's run loop, then rethrows; the vCPU stays usable", async () => {
  const { host } = await setup([
    { step: "syscall", number: 1, pc: 0x40_0004 },
    { step: "syscall", number: 2, pc: 0x40_0008 },
  ]);
  host.setSyscallHandler((frame) => {
    if (frame[16] === 1) throw new Error("handler failed");
    return SYSCALL_LEAVE;
  });
  expect(() => host.run()).toThrow("handler failed");
  expect(host.run()).toEqual({ kind: "stopped" });
  expect(host.getRegister("x8")).toBe(2n);
});

test("the VM refuses to go while a Worker still holds one of its vCPUs", async () => {
  const { vm, host } = await setup([]);
  expect(() => vm.destroy()).toThrow(/still live in other threads: destroy their VcpuWorkerHost first/);
  host.destroy();
});

test("a worker that cannot create its vCPU rejects spawn with the reason", async () => {
  const fake = new FakeHypervisor();
  const vm = new HvfBackend(fake.host()).createVm({ memorySize: 256 * MiB });
  cleanup.push(() => vm.destroy());
  await expect(
    spawnHvfVcpuWorker(vm, { hostModule: new URL("./no-such-host.ts", import.meta.url).href }),
  ).rejects.toThrow(/vCPU worker failed to start: .*no-such-host/);
  expect(vm.shared.slotOwners()).toEqual([]);
});

test("the worker entry is found next to its module from source, and at its --root path inside a compiled binary", () => {
  expect(hvfVcpuWorkerUrl()).toBe(new URL("./vcpu-worker.ts", import.meta.url).href);
  expect(hvfVcpuWorkerUrl("file:///$bunfs/root/guest-hvf")).toBe(
    "/$bunfs/root/packages/hvf-bindings/src/hvf/vcpu-worker.ts",
  );
  expect(hvfVcpuWorkerUrl("file:///Users/me/guest/packages/hvf-bindings/src/hvf/vcpu-worker-host.ts")).toBe(
    "file:///Users/me/guest/packages/hvf-bindings/src/hvf/vcpu-worker.ts",
  );
});
