/**
 * Costs of the host-side work on every HVF exit that can be measured without Apple hardware:
 * decoding the exit struct and syndrome, mapping an EL0 abort, and one scripted run-loop round
 * trip through the fake framework (syscall exit + in-line handler), i.e. the backend's own overhead.
 */
import { bench, group, run } from "mitata";
import { SYSCALL_RESUME } from "../src/backend.ts";
import { HV_EXIT_REASON_EXCEPTION } from "../src/hvf/constants.ts";
import { decodeSyndrome, el0ExceptionToVcpuExit, readExitInfo } from "../src/hvf/decode.ts";
import { EC } from "../src/hvf/syndrome-constants.ts";
import { FakeHypervisor } from "../src/hvf/testing/fake-hypervisor.ts";
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

await run(process.env.BENCH_JSON ? { format: "json" } : {});
vm.destroy();
