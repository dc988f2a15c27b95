/**
 * fork on Hypervisor.framework: the Vm fork hooks against the scripted fake. A real fork() cannot be
 * exercised here (the fake framework lives in this process), so the child is played in-process:
 * `fake.forkChild()` makes the framework forget the parent's VM and vCPUs, as a forked process's would.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { SYSCALL_LEAVE, SYSCALL_RESUME, type Vm } from "../backend.ts";
import { ACTION, FRAME, PRIVATE, PRIVATE_SIZE, SHIM_ENTRY, shimVirtualAddress } from "../shim/layout.ts";
import {
  HV_DENIED,
  HV_MEMORY_RWX,
  HV_REG_CPSR,
  HV_REG_PC,
  HV_SYS_REG,
  hvRegX,
  PSTATE_SHIM_ENTRY,
} from "./constants.ts";
import { FORK_REGISTERS, FORK_SYSTEM_REGISTERS } from "./fork-registers.ts";
import { EC } from "./syndrome-constants.ts";
import { EXIT_LINE_SIZE, FakeHypervisor, type FakeVcpu } from "./testing/fake-hypervisor.ts";
import { spawnHvfVcpuWorker } from "./vcpu-worker-host.ts";
import { attachHvfVm, HvfBackend } from "./vm.ts";

const MiB = 1024 * 1024;
const esr = (ec: number, iss = 0) => (BigInt(ec) << 26n) | (1n << 25n) | BigInt(iss);
const FAKE_WORKER_HOST = new URL("./testing/fake-worker-host.ts", import.meta.url).href;

let cleanup: (() => void)[] = [];
afterEach(() => {
  const steps = cleanup.reverse();
  cleanup = [];
  for (const step of steps) step();
});

function setup(options: { refuseIpa?: number[]; exitLine?: SharedArrayBuffer } = {}) {
  const fake = new FakeHypervisor({ exitLine: options.exitLine });
  fake.refuseIpa = new Set(options.refuseIpa ?? []);
  const vm = new HvfBackend(fake.host()).createVm({ memorySize: 256 * MiB });
  cleanup.push(() => vm.destroy());
  fake.privateBytes = vm.privateBytes;
  const vcpu = vm.createVcpu();
  return { fake, vm, vcpu };
}

/** Give every register a fork carries a distinct value in the parent's (fake) hardware. */
function scribble(hw: FakeVcpu): void {
  FORK_REGISTERS.forEach(({ reg }, i) => {
    hw.regs[reg] = 0x1111_0000_0000_0000n + BigInt(i) * 0x0101n;
  });
  FORK_SYSTEM_REGISTERS.forEach((name, i) => {
    hw.sysregs.set(HV_SYS_REG[name], 0x2222_0000_0000_0000n + BigInt(i) * 0x0303n);
  });
  hw.simd = Array.from({ length: 32 }, (_, q) =>
    Uint8Array.from({ length: 16 }, (_, b) => (q * 16 + b * 7) & 0xff),
  );
  hw.vtimerOffset = 0x3333_4444_5555n;
}

/** The registers a fork carries, as the (fake) hardware holds them. */
function carried(hw: FakeVcpu) {
  return {
    registers: FORK_REGISTERS.map(({ reg }) => hw.regs[reg]),
    system: FORK_SYSTEM_REGISTERS.map((name) => hw.sysregs.get(HV_SYS_REG[name])),
    vectors: hw.simd.map((q) => [...q]),
    vtimerOffset: hw.vtimerOffset,
  };
}

describe("the Vm fork hooks", () => {
  test("HvfVm is forkable through hooks (the emulator's VM, without any: packages/emulator's tests)", () => {
    const { vm } = setup();
    const asVm: Vm = vm;
    expect(asVm.forkable).toBe(true);
    expect(typeof asVm.prepareFork).toBe("function");
    expect(typeof asVm.afterForkInChild).toBe("function");
    expect(typeof asVm.afterForkInParent).toBe("function");
  });

  test("every register the EL1 setup and the initial state write is in the snapshot", () => {
    const { fake } = setup();
    const hw = fake.vcpu();
    const snapshotted = new Set(FORK_SYSTEM_REGISTERS.map((name) => HV_SYS_REG[name]));
    const written = [...hw.sysregs.keys()];
    expect(written.length).toBeGreaterThan(10);
    expect(written.filter((reg) => !snapshotted.has(reg))).toEqual([]);
    const general = new Set(FORK_REGISTERS.map((r) => r.reg));
    expect([HV_REG_PC, HV_REG_CPSR].every((reg) => general.has(reg))).toBe(true);
    expect(FORK_REGISTERS.length).toBe(35); // X0..X30, PC, CPSR, FPCR, FPSR
  });
});

describe("the child rebuilds the VM", () => {
  test("hv_vm_create at the parent's IPA width, then the same hv_vm_map calls (address, IPA, size, flags)", () => {
    const { fake, vm } = setup({ refuseIpa: [40] });
    expect(vm.ipaBits).toBe(38);
    const parentMaps = fake.maps.map((m) => ({ ...m }));
    expect(parentMaps.find((m) => m.ipa === 256 * MiB)).toMatchObject({
      address: vm.privateAddress,
      size: PRIVATE_SIZE,
      flags: HV_MEMORY_RWX,
    });

    expect(vm.prepareFork()).toBeNull();
    fake.forkChild();
    vm.afterForkInChild();
    expect(fake.ipaRequested).toEqual([38]); // no ladder: exactly the width the parent got
    expect(fake.vmCreated).toBe(true);
    expect(fake.maps).toEqual(parentMaps);
    expect(fake.vcpus.size).toBe(1);
  });

  test("every GP, system and SIMD register and the vtimer offset round-trip into a new vCPU", () => {
    const { fake, vm, vcpu } = setup();
    const parent = fake.vcpu();
    scribble(parent);
    const before = carried(parent);
    expect(vm.prepareFork()).toBeNull();
    expect(carried(parent)).toEqual(before); // snapshotting only reads

    fake.forkChild();
    vm.afterForkInChild();
    const child = fake.vcpu();
    expect(child.handle).not.toBe(parent.handle);
    expect(vcpu.handle).toBe(child.handle); // the same HvfVcpu object, rebound
    // The snapshot wins over the EL1 setup (SCTLR, TCR, TPIDR_EL1 … were scribbled in the parent).
    expect(carried(child)).toEqual(before);
    expect(child.vtimerMaskCalls).toEqual([true]);
    expect(child.trapDebugCalls).toEqual([]);
  });

  test("the same HvfVcpu keeps working: fork from inside the in-line handler, a syscall exit through the rebuilt vCPU", () => {
    const { fake, vm, vcpu } = setup();
    const parentHandle = fake.vcpu().handle;
    vcpu.setRegister("tpidr_el0", 0x7f00_1234n);
    vcpu.setVector(
      3,
      Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i),
    );
    const numbers: number[] = [];
    vcpu.setSyscallHandler((frame) => {
      numbers.push(frame[16]!);
      if (frame[16] === 220) {
        // clone(SIGCHLD): what GuestProcess.forkHost does, with the child played in-process.
        expect(vm.prepareFork()).toBeNull();
        fake.forkChild();
        vm.afterForkInChild();
        frame[0] = 0; // fork returns 0 in the child
        frame[1] = 0;
        return SYSCALL_RESUME;
      }
      return SYSCALL_LEAVE;
    });
    fake.script.push((v, f) => {
      f.shimResumes(v);
      f.shimExits(v, 5, { esr: esr(EC.SVC64), elr: 0x40_0010n, x: { 0: 0x11n, 8: 220n } });
    });
    fake.script.push((v, f) => {
      // Runs on the child's vCPU: new handle, restored registers, full maintenance queued for the shim.
      expect(v.handle).not.toBe(parentHandle);
      expect(v.sysregs.get(HV_SYS_REG.TPIDR_EL0)).toBe(0x7f00_1234n);
      expect(f.shimResumes(v).action).toBe(ACTION.TLBI_ALL | ACTION.IC_IALLU);
      const frame = f.frameOf(v);
      expect(frame.getBigUint64(FRAME.X0, true)).toBe(0n);
      expect(frame.getBigUint64(FRAME.ELR, true)).toBe(0x40_0010n);
      f.shimExits(v, 5, { esr: esr(EC.SVC64), elr: 0x40_0020n, x: { 0: 1n, 8: 64n } });
    });
    expect(vcpu.run()).toEqual({ kind: "stopped" });
    expect(numbers).toEqual([220, 64]);
    expect(fake.calls.filter((c) => c === "run").length).toBe(1); // the child's run; forkChild reset the log

    // Register access and run() without a handler go to the child's vCPU.
    expect(vcpu.getRegister("x8")).toBe(64n);
    expect(vcpu.getRegister("tpidr_el0")).toBe(0x7f00_1234n);
    expect([...vcpu.getVector(3)]).toEqual(Array.from({ length: 16 }, (_, i) => 0xa0 + i));
    vcpu.setRegister("fpcr", 0x0300_0000n);
    expect(fake.vcpu().regs[32]).toBe(0x0300_0000n);
    vcpu.setSyscallHandler(null);
    vcpu.setRegister("x0", 3n);
    fake.script.push((v, f) => {
      expect(f.frameOf(v).getBigUint64(FRAME.X0, true)).toBe(3n);
      f.shimExits(v, 5, { esr: esr(EC.SVC64), elr: 0x40_0030n, x: { 8: 93n } });
    });
    expect(vcpu.run()).toEqual({ kind: "syscall" });
    expect(vcpu.getRegister("pc")).toBe(0x40_0030n);
    vcpu.requestStop();
    expect(fake.exitsRequested).toEqual([fake.vcpu().handle]);
  });

  test("a vCPU stopped at EL0 (live registers) re-enters through the shim in the child with those registers", () => {
    const { fake, vm, vcpu } = setup();
    vcpu.requestStop();
    fake.script.push((v, f) => {
      f.shimResumes(v);
      v.regs[HV_REG_PC] = 0x40_1234n;
      v.regs[hvRegX(3)] = 333n;
      v.sysregs.set(HV_SYS_REG.SP_EL0, 0x7ff0n);
      f.cancelled(v, true);
    });
    expect(vcpu.run()).toEqual({ kind: "stopped" });

    expect(vm.prepareFork()).toBeNull();
    fake.forkChild();
    vm.afterForkInChild();
    expect(vcpu.getRegister("x3")).toBe(333n); // read live from the child's vCPU
    fake.script.push((v, f) => {
      expect(v.regs[HV_REG_PC]).toBe(shimVirtualAddress(PRIVATE.CODE + SHIM_ENTRY.RESUME));
      expect(v.regs[HV_REG_CPSR]).toBe(BigInt(PSTATE_SHIM_ENTRY));
      const frame = f.frameOf(v);
      expect(frame.getBigUint64(FRAME.ELR, true)).toBe(0x40_1234n);
      expect(frame.getBigUint64(FRAME.X0 + 8 * 3, true)).toBe(333n);
      expect(frame.getBigUint64(FRAME.SP_EL0, true)).toBe(0x7ff0n);
      expect(f.shimResumes(v).action).toBe(ACTION.TLBI_ALL | ACTION.IC_IALLU);
      f.shimExits(v, 10, { esr: esr(EC.BRK64), elr: 0x40_1234n });
    });
    expect(vcpu.run()).toEqual({ kind: "breakpoint", pc: 0x40_1234 });
  });

  test("debug-exception trapping is re-applied to the child's vCPU", () => {
    const { fake, vm, vcpu } = setup();
    (vcpu as unknown as { setTrapDebugExceptions(on: boolean): void }).setTrapDebugExceptions(true);
    expect(vm.prepareFork()).toBeNull();
    fake.forkChild();
    vm.afterForkInChild();
    expect(fake.vcpu().trapDebugCalls).toEqual([true]);
  });

  test("a child whose framework refuses the VM fails with a clear error", () => {
    const { fake, vm } = setup();
    cleanup.pop(); // a child that failed here dies; its VM is never destroyed
    expect(vm.prepareFork()).toBeNull();
    fake.forkChild();
    fake.createResult = HV_DENIED;
    expect(() => vm.afterForkInChild()).toThrow(
      /fork: the child cannot create its VM \(hv_vm_create\(40-bit IPA\) failed: HV_DENIED.*forked process/,
    );
  });
});

describe("the parent side and refusals", () => {
  test("afterForkInParent drops the snapshot: the parent keeps its VM and vCPU, nothing is re-created", () => {
    const { fake, vm, vcpu } = setup();
    const handle = fake.vcpu().handle;
    expect(vm.prepareFork()).toBeNull();
    vm.afterForkInParent();
    expect(fake.ipaRequested).toEqual([40]);
    expect(vcpu.handle).toBe(handle);
    expect(() => vm.afterForkInChild()).toThrow(/without a successful prepareFork/);
    fake.script.push((v, f) => f.shimExits(v, 5, { esr: esr(EC.SVC64), elr: 0x40_0004n, x: { 8: 172n } }));
    expect(vcpu.run()).toEqual({ kind: "syscall" });
  });

  test("refused while another thread holds a vCPU of the VM (an attachment, as in a Worker)", () => {
    const { vm } = setup();
    const worker = new FakeHypervisor();
    worker.thread = 3;
    const remote = attachHvfVm(vm.descriptor(), worker.host()).createVcpu();
    const reason = vm.prepareFork();
    expect(reason).toMatch(/vCPU slot\(s\) 1 \(thread 3\) run in other threads.*only the calling thread/);
    expect(() => vm.afterForkInChild()).toThrow(/without a successful prepareFork/);
    remote.destroy();
    expect(vm.prepareFork()).toBeNull();
    vm.afterForkInParent();
  });

  test("refused while a real vCPU Worker is alive; allowed again once it is destroyed", async () => {
    const exitLine = new SharedArrayBuffer(EXIT_LINE_SIZE);
    const { vm } = setup({ exitLine });
    const host = await spawnHvfVcpuWorker(vm, {
      hostModule: FAKE_WORKER_HOST,
      hostOptions: { exitLine, script: [] },
    });
    try {
      expect(vm.prepareFork()).toMatch(
        new RegExp(`vCPU slot\\(s\\) ${host.id} \\(thread ${host.vcpuThread}\\)`),
      );
    } finally {
      host.destroy();
    }
    expect(vm.prepareFork()).toBeNull();
    vm.afterForkInParent();
  });

  test("a destroyed VM refuses", () => {
    const fake = new FakeHypervisor();
    const vm = new HvfBackend(fake.host()).createVm({ memorySize: 256 * MiB });
    vm.destroy();
    expect(vm.prepareFork()).toBe("the VM is destroyed");
  });
});
