import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import type { GeneralRegister, Vcpu } from "@guest/hvf-bindings";
import { EmulatorBackend, type EmulatorVm, emulatorAvailability } from "./index.ts";
import { PAGE, TinyTables } from "./testing/tiny-tables.ts";

// One faulting instruction per test, followed by brk (reached only if the access did not fault).
// Words from aarch64-linux-gnu-as -march=armv8.5-a+pauth.
const INSN = {
  strbW0X1: 0x39000020, // strb w0, [x1]
  ldrX0X1: 0xf9400020, // ldr x0, [x1]
  strX0X1: 0xf9000020, // str x0, [x1]
  ldpPost: 0xa8c11820, // ldp x0, x6, [x1], #16
  ldrSp: 0xf9400fe0, // ldr x0, [sp, #24]
  stpPreSp: 0xa9bf7bfd, // stp x29, x30, [sp, #-16]!
  ldadd: 0xf8200026, // ldadd x0, x6, [x1]
  swpal: 0xb8e08026, // swpal w0, w6, [x1]
  cas: 0xc8a07c26, // cas x0, x6, [x1]
  dcZva: 0xd50b7421, // dc zva, x1
  st1x4: 0x4c002020, // st1 {v0.16b-v3.16b}, [x1]
  ldrLiteral: 0x18008000, // ldr w0, .+0x1000
  ldraa: 0xf8200420, // ldraa x0, [x1] (pointer authentication: not decoded)
  brk: 0xd4200000, // brk #0
};

const CODE = 0x400000;
const DATA = 0x500000; // read/write; DATA + PAGE is unmapped
const UNMAPPED = DATA + PAGE;
const BELOW_RO = 0x5ff000; // read/write, directly below RO
const RO = 0x600000; // read-only
const STACK = 0x700000; // unmapped
const POOL = 0x1000000;
const available = emulatorAvailability().available;

describe.skipIf(!available)("exact fault addresses (si_addr)", () => {
  let vm: EmulatorVm;
  let vcpu: Vcpu;

  beforeEach(() => {
    vm = new EmulatorBackend().createVm({ memorySize: 64 * 1024 * 1024 });
    const tables = new TinyTables(vm.memory.bytes, POOL);
    tables.map(CODE, PAGE, true, false, true);
    tables.map(DATA, PAGE, true, true, false);
    tables.map(BELOW_RO, PAGE, true, true, false);
    tables.map(RO, PAGE, true, false, false);
    vm.setTranslationRoot(tables.root);
    vcpu = vm.createVcpu();
  });
  afterEach(() => vm.destroy());

  function run(word: number, registers: Partial<Record<GeneralRegister, number>>) {
    const view = new DataView(vm.memory.bytes.buffer);
    view.setUint32(CODE, word, true);
    view.setUint32(CODE + 4, INSN.brk, true);
    for (const [name, value] of Object.entries(registers))
      vcpu.setRegister(name as GeneralRegister, BigInt(value));
    vcpu.setRegister("pc", BigInt(CODE));
    const exit = vcpu.run();
    expect(vcpu.getRegister("pc")).toBe(BigInt(CODE)); // PC stays on the faulting instruction
    return exit;
  }

  test("a byte store at page+0x123 of a read-only page faults exactly there, as a write", () => {
    expect(run(INSN.strbW0X1, { x1: RO + 0x123 })).toEqual({
      kind: "fault",
      address: RO + 0x123,
      access: "write",
      mapped: true,
    });
  });

  test("an 8-byte load at page-4 crossing into an unmapped page reports the unmapped page's first byte", () => {
    expect(run(INSN.ldrX0X1, { x1: UNMAPPED - 4 })).toEqual({
      kind: "fault",
      address: UNMAPPED,
      access: "read",
      mapped: false,
    });
  });

  test("a store crossing from a writable page into a read-only one reports the read-only page's start", () => {
    expect(run(INSN.strX0X1, { x1: RO - 4 })).toEqual({
      kind: "fault",
      address: RO,
      access: "write",
      mapped: true,
    });
  });

  test("a store crossing Unicorn's 1 KiB boundary inside one read-only page reports its first byte", () => {
    expect(run(INSN.strX0X1, { x1: RO + 0x3fc })).toEqual({
      kind: "fault",
      address: RO + 0x3fc,
      access: "write",
      mapped: true,
    });
  });

  test("LDP post-index faults at the base (no writeback happened)", () => {
    expect(run(INSN.ldpPost, { x1: UNMAPPED + 0x40 })).toEqual({
      kind: "fault",
      address: UNMAPPED + 0x40,
      access: "read",
      mapped: false,
    });
    expect(vcpu.getRegister("x1")).toBe(BigInt(UNMAPPED + 0x40));
  });

  test("LDP whose second register crosses into an unmapped page reports that page's first byte", () => {
    expect(run(INSN.ldpPost, { x1: UNMAPPED - 8 })).toEqual({
      kind: "fault",
      address: UNMAPPED,
      access: "read",
      mapped: false,
    });
  });

  test("a load through SP reports SP + offset", () => {
    expect(run(INSN.ldrSp, { sp: STACK + 0x200 })).toEqual({
      kind: "fault",
      address: STACK + 0x218,
      access: "read",
      mapped: false,
    });
  });

  test("STP pre-index through SP (a stack overflow into a guard page) reports SP - 16", () => {
    expect(run(INSN.stpPreSp, { sp: STACK + 0x100 })).toEqual({
      kind: "fault",
      address: STACK + 0xf0,
      access: "write",
      mapped: false,
    });
    expect(vcpu.getRegister("sp")).toBe(BigInt(STACK + 0x100));
  });

  test("LDADD on a read-only page is a write fault at the exact address; memory is unchanged", () => {
    new DataView(vm.memory.bytes.buffer).setBigUint64(RO + 0x88, 5n, true);
    expect(run(INSN.ldadd, { x0: 1, x1: RO + 0x88 })).toEqual({
      kind: "fault",
      address: RO + 0x88,
      access: "write",
      mapped: true,
    });
    expect(new DataView(vm.memory.bytes.buffer).getBigUint64(RO + 0x88, true)).toBe(5n);
  });

  test("atomics on an unmapped page are write faults too (LDADD, SWPAL, CAS)", () => {
    for (const word of [INSN.ldadd, INSN.swpal, INSN.cas]) {
      expect(run(word, { x1: UNMAPPED + 0x10 })).toEqual({
        kind: "fault",
        address: UNMAPPED + 0x10,
        access: "write",
        mapped: false,
      });
    }
  });

  test("CAS on a read-only page is a write fault at the exact address", () => {
    expect(run(INSN.cas, { x1: RO + 0xa10 })).toEqual({
      kind: "fault",
      address: RO + 0xa10,
      access: "write",
      mapped: true,
    });
  });

  test("DC ZVA faults at the start of its 64-byte block", () => {
    expect(run(INSN.dcZva, { x1: RO + 0xd23 })).toEqual({
      kind: "fault",
      address: RO + 0xd00,
      access: "write",
      mapped: true,
    });
  });

  test("a 64-byte ST1 starting 32 bytes below a read-only page reports the page's start", () => {
    expect(run(INSN.st1x4, { x1: RO - 32 })).toEqual({
      kind: "fault",
      address: RO,
      access: "write",
      mapped: true,
    });
  });

  test("a PC-relative literal load reports PC + offset", () => {
    expect(run(INSN.ldrLiteral, {})).toEqual({
      kind: "fault",
      address: CODE + 0x1000,
      access: "read",
      mapped: false,
    });
  });

  test("fallback: an access the decoder does not know (LDRAA) keeps Unicorn's page address", () => {
    // Unicorn's page is 1 KiB on arm64 (2.1.1): the fallback is that granule, not the 4 KiB guest page.
    const exit = run(INSN.ldraa, { x1: UNMAPPED + 0x810 });
    const unicornPage = UNMAPPED + 0x810 - ((UNMAPPED + 0x810) % vm.unicornPageSize);
    expect(vm.unicornPageSize).toBeLessThanOrEqual(PAGE);
    expect(exit).toEqual({ kind: "fault", address: unicornPage, access: "read", mapped: false });
  });
});
