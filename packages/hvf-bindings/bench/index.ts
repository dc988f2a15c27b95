/**
 * Costs of the host-side work on every HVF exit that can be measured without Apple hardware:
 * decoding the exit struct and syndrome, mapping an EL0 abort, one scripted run-loop round
 * trip through the fake framework (syscall exit + in-line handler), i.e. the backend's own overhead,
 * the cross-thread cost of a vCPU living in its own Worker (the SharedArrayBuffer handshake), and the
 * fork hooks' own work (register snapshot, VM and vCPU rebuild) over the fake.
 */
import { bench, group, run } from "mitata";
import { SYSCALL_RESUME } from "../src/backend.ts";
import { HV_EXIT_REASON_EXCEPTION } from "../src/hvf/constants.ts";
import { decodeSyndrome, el0ExceptionToVcpuExit, readExitInfo } from "../src/hvf/decode.ts";
import { EC } from "../src/hvf/syndrome-constants.ts";
import { EXIT_LINE_SIZE, FakeHypervisor } from "../src/hvf/testing/fake-hypervisor.ts";
import type { FakeWorkerOptions } from "../src/hvf/testing/fake-worker-host.ts";
import { DEFAULT_SPIN } from "../src/hvf/vcpu-channel.ts";
import { spawnHvfVcpuWorker } from "../src/hvf/vcpu-worker-host.ts";
import { HvfBackend } from "../src/hvf/vm.ts";

const exitView = new DataView(new ArrayBuffer(32));
exitView.setUint32(0, HV_EXIT_REASON_EXCEPTION, true);
exitView.setBigUint64(8, 0x5a00_0005n, true);
const dabt = (BigInt(EC.DABT_LOWER) << 26n) | (1n << 25n) | 0x47n;

group("decode", () => {
  bench("readExitInfo", () => readExitInfo(exitView));
  bench("decodeSyndrome (HVC)", () => decodeSyndrome(0x5a00_0005n));
  bench("el0ExceptionToVcpuExit (data abort)", () => el0ExceptionToVcpuExit(dabt, 0x1234_5000n, 0x40_0000n));
});

const fake = new FakeHypervisor();
const vm = new HvfBackend(fake.host()).createVm({ memorySize: 256 * 1024 * 1024 });
fake.privateBytes = vm.privateBytes;
const vcpu = vm.createVcpu();
const svc = (BigInt(EC.SVC64) << 26n) | (1n << 25n);
let calls = 0;
vcpu.setSyscallHandler((frame) => {
  frame[0] = ++calls;
  return calls % 2 === 0 ? 1 : SYSCALL_RESUME;
});
const syscallStep = (v: Parameters<Parameters<typeof fake.script.push>[0]>[0], f: FakeHypervisor) =>
  f.shimExits(v, 5, { esr: svc, elr: 0x400004n, x: { 8: 172n } });

group("run loop (fake framework)", () => {
  bench("two in-line syscalls per run()", () => {
    fake.script.push(syscallStep, syscallStep);
    vcpu.run();
  });
});

// fork hooks over the fake framework: the backend's own work around a host fork() (the fork itself excluded).
const forkFake = new FakeHypervisor();
const forkVm = new HvfBackend(forkFake.host()).createVm({ memorySize: 256 * 1024 * 1024 });
forkVm.createVcpu();

group("fork hooks (fake framework)", () => {
  bench("parent: prepareFork + afterForkInParent (one vCPU)", () => {
    forkVm.prepareFork();
    forkVm.afterForkInParent();
  });
  bench("child: prepareFork + afterForkInChild (VM, 129 maps, vCPU rebuilt)", () => {
    forkVm.prepareFork();
    forkFake.forkChild();
    forkVm.afterForkInChild();
  });
});

// vCPUs in real Workers over the fake framework: every iteration crosses threads.
const exitLine = new SharedArrayBuffer(EXIT_LINE_SIZE);
const workerFake = new FakeHypervisor({ exitLine });
const workerVm = new HvfBackend(workerFake.host()).createVm({ memorySize: 256 * 1024 * 1024 });
const hostModule = new URL("../src/hvf/testing/fake-worker-host.ts", import.meta.url).href;
const forever: FakeWorkerOptions = {
  exitLine,
  script: [{ step: "syscall", number: 172, pc: 0x40_0004 }],
  repeatLast: true,
};
// Default waiting (DEFAULT_SPIN: no spin on ≤ 2 cores), and forced spinning for comparison.
const plain = await spawnHvfVcpuWorker(workerVm, { hostModule, hostOptions: forever });
const spinning = await spawnHvfVcpuWorker(workerVm, { hostModule, hostOptions: forever, spin: 2000 });
const inline = await spawnHvfVcpuWorker(workerVm, { hostModule, hostOptions: forever });
const INLINE_PER_RUN = 100;
let inlineCalls = 0;
inline.setSyscallHandler((frame) => {
  frame[0] = 39;
  return ++inlineCalls % INLINE_PER_RUN === 0 ? 1 : SYSCALL_RESUME;
});

// A group of Worker vCPUs (HvfVm.vcpuThreads): started, polled, and waited for through the shared doorbell,
// as the runtime's threaded loop does; a second vCPU keeps running (spinning in guest code) meanwhile.
const groupExitLine = new SharedArrayBuffer(EXIT_LINE_SIZE);
const groupFake = new FakeHypervisor({ exitLine: groupExitLine });
const groupScripts: FakeWorkerOptions[] = [
  { exitLine: groupExitLine, script: [{ step: "syscall", number: 172, pc: 0x40_0004 }], repeatLast: true },
  { exitLine: groupExitLine, script: [{ step: "spin-until-kicked", pc: 0x40_0100 }], firstHandle: 1 },
];
const groupVm = new HvfBackend(groupFake.host(), {
  hostModule,
  hostOptions: (n) => groupScripts[n],
}).createVm({
  memorySize: 256 * 1024 * 1024,
});
const threads = groupVm.vcpuThreads();
const [syscalling, busy] = [threads.spawn(), threads.spawn()];
busy.start();
/** start() one vCPU, then sleep on the doorbell until poll() has its exit. */
function doorbellRoundTrip(): void {
  syscalling.start();
  for (;;) {
    const seen = threads.ring;
    if (syscalling.poll()) return;
    threads.waitForRing(seen, 1000);
  }
}

group("vCPU in a Worker (SharedArrayBuffer handshake, fake framework)", () => {
  bench(`bare handshake (ping), spin ${DEFAULT_SPIN}`, () => plain.ping());
  bench("bare handshake (ping), spin 2000", () => spinning.ping());
  bench("syscall exit: run() returns {syscall}", () => plain.run());
  bench(`${INLINE_PER_RUN} in-line syscalls per run()`, () => inline.run());
  bench("syscall exit: start() + doorbell wait + poll(), another vCPU running", doorbellRoundTrip);
});

await run(process.env.BENCH_JSON ? { format: "json" } : {});
vm.destroy();
forkVm.destroy();
for (const host of [plain, spinning, inline]) host.destroy();
workerVm.destroy();
for (const vcpu of [syscalling, busy]) vcpu.destroy();
groupVm.destroy();
