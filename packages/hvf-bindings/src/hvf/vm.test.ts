import { afterEach, describe, expect, test } from "bun:test";
import { SYSCALL_LEAVE, SYSCALL_RESUME } from "../backend.ts";
import { ACTION, FRAME, PRIVATE, PRIVATE_SIZE, SHIM_ENTRY, shimVirtualAddress } from "../shim/layout.ts";
import {
  HV_DENIED,
  HV_EXIT_REASON_EXCEPTION,
  HV_EXIT_REASON_UNKNOWN,
  HV_EXIT_REASON_VTIMER_ACTIVATED,
  HV_MEMORY_RWX,
  HV_REG_CPSR,
  HV_REG_PC,
  HV_SYS_REG,
  hvRegX,
  PSTATE_SHIM_ENTRY,
  sctlrEl1Value,
  tcrEl1Value,
} from "./constants.ts";
import { HvfThreadError } from "./errors.ts";
import { EC } from "./syndrome-constants.ts";
import { FakeHypervisor } from "./testing/fake-hypervisor.ts";
import { HvfBackend, type HvfVm, ipaCandidates, slabSegmentSize } from "./vm.ts";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const esr = (ec: number, iss = 0) => (BigInt(ec) << 26n) | (1n << 25n) | BigInt(iss);

let open: HvfVm[] = [];
afterEach(() => {
  for (const vm of open) vm.destroy();
  open = [];
});

function setup(memorySize = 256 * MiB) {
  const fake = new FakeHypervisor();
  const vm = new HvfBackend(fake.host()).createVm({ memorySize });
  open.push(vm);
  fake.privateBytes = vm.privateBytes;
  const vcpu = vm.createVcpu();
  return { fake, vm, vcpu, hw: fake.vcpu() };
}

describe("VM creation", () => {
  test("maps the slab in segments at IPA 0 and the private region right above it, all RWX", () => {
    const { fake, vm } = setup();
    const slab = fake.maps.filter((m) => m.ipa < 256 * MiB);
    expect(slab.length).toBe((256 * MiB) / slabSegmentSize(256 * MiB));
    expect(slab.map((m) => m.ipa)).toEqual(slab.map((_, i) => i * slabSegmentSize(256 * MiB)));
    expect(slab.every((m) => m.address === vm.memory.hostAddress + m.ipa && m.flags === HV_MEMORY_RWX)).toBe(
      true,
    );
    const priv = fake.maps.find((m) => m.ipa === 256 * MiB)!;
    expect(priv).toMatchObject({ address: vm.privateAddress, size: PRIVATE_SIZE, flags: HV_MEMORY_RWX });
    expect(vm.ipaBits).toBe(40);
  });

  test("walks the IPA ladder 40 → 38 → 36 when the framework refuses a width", () => {
    const fake = new FakeHypervisor();
    fake.refuseIpa = new Set([40, 38]);
    const vm = new HvfBackend(fake.host()).createVm({ memorySize: 256 * MiB });
    open.push(vm);
    expect(fake.ipaRequested).toEqual([40, 38, 36]);
    expect(vm.ipaBits).toBe(36);
  });

  test("ipaCandidates respects the host maximum and leaves room for the private region", () => {
    expect(ipaCandidates(64 * GiB, 40)).toEqual([40, 38]);
    expect(ipaCandidates(64 * GiB, 36)).toEqual([]);
    expect(ipaCandidates(256 * MiB, 36)).toEqual([36]);
  });

  test("a guest too large for the host's IPA space is refused with the numbers", () => {
    const fake = new FakeHypervisor();
    fake.maxIpa = 36;
    expect(() => new HvfBackend(fake.host()).createVm({ memorySize: 64 * GiB })).toThrow(
      /36 bits.*this host allows 36/,
    );
  });

  test("HV_DENIED names the missing entitlement and stops the ladder", () => {
    const fake = new FakeHypervisor();
    fake.createResult = HV_DENIED;
    expect(() => new HvfBackend(fake.host()).createVm({ memorySize: 256 * MiB })).toThrow(
      /hv_vm_create\(40-bit IPA\) failed: HV_DENIED \(0xfae94007\): .*com\.apple\.security\.hypervisor/,
    );
    expect(fake.ipaRequested).toEqual([40]);
  });

  test("destroy unmaps exactly what was mapped and destroys vCPUs and the VM", () => {
    const fake = new FakeHypervisor();
    const vm = new HvfBackend(fake.host()).createVm({ memorySize: 256 * MiB });
    vm.createVcpu();
    vm.destroy();
    expect(fake.unmaps).toEqual(fake.maps.map((m) => ({ ipa: m.ipa, size: m.size })));
    expect(fake.vcpus.size).toBe(0);
    expect(fake.vmCreated).toBe(false);
  });
});

describe("vCPU initial state", () => {
  test("debug exceptions go to the shim unless a debugger asks for them (hv_vcpu_set_trap_debug_exceptions)", () => {
    const { vcpu, hw } = setup();
    expect(hw.trapDebugCalls).toEqual([]);
    (vcpu as unknown as { setTrapDebugExceptions(on: boolean): void }).setTrapDebugExceptions(true);
    (vcpu as unknown as { setTrapDebugExceptions(on: boolean): void }).setTrapDebugExceptions(false);
    expect(hw.trapDebugCalls).toEqual([true, false]);
  });

  test("programs the EL1 registers and enters through the shim's resume path with TLB+I-cache maintenance", () => {
    const { fake, vm, vcpu, hw } = setup();
    vm.setTranslationRoot(0x10_0000);
    const sys = (name: keyof typeof HV_SYS_REG) => hw.sysregs.get(HV_SYS_REG[name]);
    expect(sys("SCTLR_EL1")).toBe(sctlrEl1Value());
    expect(sys("TCR_EL1")).toBe(tcrEl1Value());
    expect(sys("MAIR_EL1")).toBe(0x00ffn);
    expect(sys("TTBR1_EL1")).toBe(BigInt(256 * MiB + PRIVATE.L0));
    expect(sys("VBAR_EL1")).toBe(shimVirtualAddress(PRIVATE.CODE + SHIM_ENTRY.VECTORS));
    expect(sys("CPACR_EL1")).toBe(3n << 20n);
    expect(hw.regs[HV_REG_PC]).toBe(shimVirtualAddress(PRIVATE.CODE + SHIM_ENTRY.RESUME));
    expect(hw.regs[HV_REG_CPSR]).toBe(BigInt(PSTATE_SHIM_ENTRY));
    expect(hw.vtimerMaskCalls).toEqual([true]);
    let seen = { action: 0n, page: 0n, count: 0n };
    fake.script.push((v, f) => {
      seen = f.shimResumes(v);
      expect(v.sysregs.get(HV_SYS_REG.TTBR0_EL1)).toBe(0x10_0000n);
      f.frameOf(v).setBigUint64(FRAME.STOP, 1n, true);
      f.shimExits(v, 3, { esr: 0n, elr: 0x400000n });
    });
    expect(vcpu.run()).toEqual({ kind: "stopped" });
    expect(seen.action).toBe(ACTION.TLBI_ALL | ACTION.IC_IALLU);
  });
});

describe("run loop", () => {
  test("syscall exit: X0..X8 in the frame, PC past the svc, X0 written back for the shim to restore", () => {
    const { fake, vcpu } = setup();
    vcpu.setRegister("pc", 0x400000n);
    vcpu.setRegister("sp", 0x7fff_0000n);
    fake.script.push((v, f) => {
      const frame = f.frameOf(v);
      expect(frame.getBigUint64(FRAME.ELR, true)).toBe(0x400000n);
      expect(frame.getBigUint64(FRAME.SP_EL0, true)).toBe(0x7fff_0000n);
      f.shimResumes(v);
      f.shimExits(v, 5, { esr: esr(EC.SVC64), elr: 0x400008n, x: { 0: 1n, 1: 0x1000n, 2: 5n, 8: 64n } });
    });
    expect(vcpu.run()).toEqual({ kind: "syscall" });
    expect(vcpu.getRegister("x8")).toBe(64n);
    expect(vcpu.syscallFrame[16]).toBe(64);
    expect(vcpu.syscallFrame[2]).toBe(0x1000);
    expect(vcpu.getRegister("pc")).toBe(0x400008n);
    vcpu.setRegister("x0", -14n);
    fake.script.push((v, f) => {
      expect(f.frameOf(v).getBigUint64(FRAME.X0, true)).toBe(BigInt.asUintN(64, -14n));
      // Next the guest stores to an unmapped page: data abort, WnR set, translation fault level 3.
      f.shimExits(v, 11, { esr: esr(EC.DABT_LOWER, (1 << 6) | 0x07), elr: 0x40000cn, far: 0xdead_b000n });
    });
    expect(vcpu.run()).toEqual({ kind: "fault", address: 0xdead_b000, access: "write", mapped: false });
    expect(vcpu.getRegister("pc")).toBe(0x40000cn);
  });

  test("permission fault on a read and an instruction abort", () => {
    const { fake, vcpu } = setup();
    fake.script.push((v, f) =>
      f.shimExits(v, 11, { esr: esr(EC.DABT_LOWER, 0x0f), elr: 0x1000n, far: 0x5000n }),
    );
    expect(vcpu.run()).toEqual({ kind: "fault", address: 0x5000, access: "read", mapped: true });
    fake.script.push((v, f) =>
      f.shimExits(v, 11, { esr: esr(EC.IABT_LOWER, 0x0e), elr: 0x6000n, far: 0x6000n }),
    );
    expect(vcpu.run()).toEqual({ kind: "fault", address: 0x6000, access: "exec", mapped: true });
  });

  test("in-line syscall handler: RESUME keeps running without leaving run(), LEAVE stops", () => {
    const { fake, vcpu } = setup();
    const seen: number[] = [];
    vcpu.setSyscallHandler((frame) => {
      seen.push(frame[16]!);
      frame[0] = 1234;
      frame[1] = 0;
      return frame[16] === 93 ? SYSCALL_LEAVE : SYSCALL_RESUME;
    });
    fake.script.push((v, f) => f.shimExits(v, 5, { esr: esr(EC.SVC64), elr: 0x400004n, x: { 8: 172n } }));
    fake.script.push((v, f) => {
      expect(f.frameOf(v).getBigUint64(FRAME.X0, true)).toBe(1234n);
      f.shimExits(v, 5, { esr: esr(EC.SVC64), elr: 0x400010n, x: { 8: 93n } });
    });
    expect(vcpu.run()).toEqual({ kind: "stopped" });
    expect(seen).toEqual([172, 93]);
    expect(fake.calls.filter((c) => c === "run").length).toBe(2);
  });

  test("brk, undefined instruction and the bad-vector diagnostic", () => {
    const { fake, vcpu } = setup();
    fake.script.push((v, f) => f.shimExits(v, 10, { esr: esr(EC.BRK64, 0x3e8), elr: 0x400100n }));
    expect(vcpu.run()).toEqual({ kind: "breakpoint", pc: 0x400100 });
    fake.script.push((v, f) => f.shimExits(v, 8, { esr: esr(EC.UNKNOWN), elr: 0x400200n }));
    expect(vcpu.run()).toEqual({ kind: "undefined-instruction", pc: 0x400200 });
    fake.script.push((v, f) => {
      v.sysregs.set(HV_SYS_REG.ESR_EL1, esr(EC.DABT_SAME, 0x07));
      f.setExit(v, HV_EXIT_REASON_EXCEPTION, esr(EC.HVC64, 0x44));
    });
    const exit = vcpu.run();
    expect(exit.kind).toBe("backend-error");
    expect((exit as { message: string }).message).toMatch(
      /unexpected exception at vector \+0x200: ESR_EL1 0x96000007/,
    );
  });

  test("cancel at EL0: stopped with live registers; a later TLB flush re-enters through the shim", () => {
    const { fake, vm, vcpu } = setup();
    vcpu.requestStop();
    expect(fake.exitsRequested).toEqual([fake.vcpu().handle]);
    fake.script.push((v, f) => {
      expect(f.frameOf(v).getBigUint64(FRAME.STOP, true)).toBe(1n);
      f.shimResumes(v);
      // the shim ERETs; the guest runs at EL0 until hv_vcpus_exit lands
      v.sysregs.set(HV_SYS_REG.SP_EL1, shimVirtualAddress(PRIVATE.SLOTS + 0x1000));
      v.regs[HV_REG_PC] = 0x401234n;
      v.regs[hvRegX(3)] = 333n;
      v.sysregs.set(HV_SYS_REG.SP_EL0, 0x7ff0n);
      f.cancelled(v, true);
    });
    expect(vcpu.run()).toEqual({ kind: "stopped" });
    expect(vcpu.getRegister("pc")).toBe(0x401234n);
    expect(vcpu.getRegister("x3")).toBe(333n);
    expect(vcpu.getRegister("sp")).toBe(0x7ff0n);
    vcpu.setRegister("x4", 444n);
    expect(fake.vcpu().regs[hvRegX(4)]).toBe(444n);

    vm.invalidateTlb([{ kind: "range", address: 0x40_0000, length: 0x3000 }]);
    fake.script.push((v, f) => {
      expect(v.regs[HV_REG_PC]).toBe(shimVirtualAddress(PRIVATE.CODE + SHIM_ENTRY.RESUME));
      expect(v.regs[HV_REG_CPSR]).toBe(BigInt(PSTATE_SHIM_ENTRY));
      const frame = f.frameOf(v);
      expect(frame.getBigUint64(FRAME.ELR, true)).toBe(0x401234n);
      expect(frame.getBigUint64(FRAME.X0 + 8 * 3, true)).toBe(333n);
      expect(frame.getBigUint64(FRAME.X0 + 8 * 4, true)).toBe(444n);
      expect(frame.getBigUint64(FRAME.SP_EL0, true)).toBe(0x7ff0n);
      expect(f.shimResumes(v)).toEqual({ action: ACTION.TLBI_PAGES, page: 0x400n, count: 3n });
      f.shimExits(v, 10, { esr: esr(EC.BRK64), elr: 0x401234n });
    });
    expect(vcpu.run()).toEqual({ kind: "breakpoint", pc: 0x401234 });
  });

  test("cancel inside the shim resumes; the shim's stop point then stops; a stale cancel is ignored", () => {
    const { fake, vcpu } = setup();
    fake.script.push((v, f) => f.cancelled(v, false)); // no stop requested: spurious, resumed
    fake.script.push((v, f) => f.shimExits(v, 5, { esr: esr(EC.SVC64), elr: 0x400004n, x: { 8: 172n } }));
    expect(vcpu.run()).toEqual({ kind: "syscall" });
    vcpu.requestStop();
    fake.script.push((v, f) => f.cancelled(v, false)); // landed while still in the shim: keep going
    fake.script.push((v, f) => {
      expect(f.frameOf(v).getBigUint64(FRAME.STOP, true)).toBe(1n);
      f.shimExits(v, 3, { esr: esr(EC.SVC64), elr: 0x400004n });
    });
    expect(vcpu.run()).toEqual({ kind: "stopped" });
    expect(fake.calls.filter((c) => c === "run").length).toBe(4);
    expect(fake.frameOf(fake.vcpu()).getBigUint64(FRAME.STOP, true)).toBe(0n);
  });

  test("vtimer exits re-mask the timer and keep running", () => {
    const { fake, vcpu, hw } = setup();
    fake.script.push((v, f) => f.setExit(v, HV_EXIT_REASON_VTIMER_ACTIVATED));
    fake.script.push((v, f) => f.shimExits(v, 5, { esr: esr(EC.SVC64), elr: 0x400004n, x: { 8: 63n } }));
    expect(vcpu.run()).toEqual({ kind: "syscall" });
    expect(hw.vtimerMaskCalls).toEqual([true, true]);
  });

  test("framework failures and unknown exits become backend-error", () => {
    const { fake, vcpu } = setup();
    fake.script.push(() => 0xfae94003 | 0);
    expect(vcpu.run()).toEqual({
      kind: "backend-error",
      message: "hv_vcpu_run failed: HV_BAD_ARGUMENT (0xfae94003)",
    });
    fake.script.push((v, f) => f.setExit(v, HV_EXIT_REASON_UNKNOWN));
    expect(vcpu.run()).toMatchObject({
      kind: "backend-error",
      message: expect.stringMatching(/HV_EXIT_REASON_UNKNOWN/),
    });
  });

  test("a WFI trapped to the hypervisor is skipped", () => {
    const { fake, vcpu } = setup();
    fake.script.push((v, f) => {
      v.regs[HV_REG_PC] = 0x400040n;
      f.setExit(v, HV_EXIT_REASON_EXCEPTION, esr(EC.WFX));
    });
    fake.script.push((v, f) => {
      expect(v.regs[HV_REG_PC]).toBe(0x400044n);
      f.shimExits(v, 10, { esr: esr(EC.BRK64), elr: 0x400048n });
    });
    expect(vcpu.run()).toEqual({ kind: "breakpoint", pc: 0x400048 });
  });
});

describe("TLB and code invalidation queue", () => {
  test("ranges merge; far-apart ranges and large ranges become a full flush; code adds IC IALLU", () => {
    const { fake, vm, vcpu } = setup();
    const runOnce = () => {
      let seen = { action: 0n, page: 0n, count: 0n };
      fake.script.push((v, f) => {
        seen = f.shimResumes(v);
        f.shimExits(v, 10, { esr: esr(EC.BRK64), elr: 0n });
      });
      vcpu.run();
      return seen;
    };
    runOnce(); // first entry
    vm.invalidateTlb([
      { kind: "range", address: 0x1000, length: 0x1000 },
      { kind: "range", address: 0x2000, length: 0x2000 },
    ]);
    expect(runOnce()).toEqual({ action: ACTION.TLBI_PAGES, page: 1n, count: 3n });
    vm.invalidateTlb([
      { kind: "range", address: 0x1000, length: 0x1000 },
      { kind: "range", address: 0x900_0000, length: 0x1000 },
    ]);
    expect(runOnce().action).toBe(ACTION.TLBI_ALL);
    vm.invalidateTlb([{ kind: "range", address: 0, length: 65 * 4096 }]);
    expect(runOnce().action).toBe(ACTION.TLBI_ALL);
    vm.invalidateCode(0x40_0000, 16);
    expect(runOnce().action).toBe(ACTION.IC_IALLU);
    vm.setTranslationRoot(0x20_0000);
    expect(runOnce().action).toBe(ACTION.TLBI_ALL);
    expect(fake.vcpu().sysregs.get(HV_SYS_REG.TTBR0_EL1)).toBe(0x20_0000n);
    vm.invalidateTlb([]);
    expect(runOnce().action).toBe(0n);
  });
});

describe("registers", () => {
  test("frame-state accessors edit the frame; nzcv only touches SPSR's flag bits", () => {
    const { fake, vcpu } = setup();
    for (let n = 0; n <= 30; n++) vcpu.setRegister(`x${n}` as "x0", BigInt(n * 3 + 1));
    vcpu.setRegister("nzcv", 0xf000_0000n);
    const frame = fake.frameOf(fake.vcpu());
    expect(frame.getBigUint64(FRAME.X0 + 8 * 29, true)).toBe(88n);
    expect(frame.getBigUint64(FRAME.SPSR, true)).toBe(0xf000_0000n);
    expect(vcpu.getRegister("nzcv")).toBe(0xf000_0000n);
    expect(vcpu.getRegister("x30")).toBe(91n);
    vcpu.setRegister("tpidr_el0", 0xabcn);
    expect(fake.vcpu().sysregs.get(HV_SYS_REG.TPIDR_EL0)).toBe(0xabcn);
  });

  test("vectors go through the framework getter and the by-pointer setter helper", () => {
    const { fake, vcpu } = setup();
    const value = Uint8Array.from({ length: 16 }, (_, i) => i * 7);
    vcpu.setVector(5, value);
    expect(fake.vcpu().simd[5]).toEqual(value);
    expect(vcpu.getVector(5)).toEqual(value);
    expect(() => vcpu.setVector(32, value)).toThrow(RangeError);
  });

  test("the thread rule: another thread may not touch the vCPU, but may stop it", () => {
    const { fake, vcpu } = setup();
    fake.thread = 7;
    expect(() => vcpu.run()).toThrow(HvfThreadError);
    expect(() => vcpu.getRegister("x0")).toThrow(/belongs to thread 0.*only hv_vcpus_exit/);
    vcpu.requestStop();
    expect(fake.exitsRequested.length).toBe(1);
    fake.thread = 0;
  });
});

test("the private region is placed above guest memory and sized in whole 16 KiB host pages", () => {
  expect(PRIVATE_SIZE % (16 * 1024)).toBe(0);
  const { vm } = setup();
  expect(vm.privateIpa).toBe(BigInt(vm.memory.size));
});
