import { expect, test } from "bun:test";
import {
  HV_RETURN_NAMES,
  HV_SYS_REG,
  hvRegX,
  SCTLR,
  SYS_REG_FIELDS,
  sctlrEl1Value,
  sysRegEncoding,
  TCR,
  tcrEl1Value,
} from "./constants.ts";
import { check, HvfError } from "./errors.ts";

/** hv_sys_reg_t values as listed in /work/shared/reference/peer-elfuse.md §2.4 (checked against the SDK there). */
const REFERENCE_SYS_REGS: Record<string, number> = {
  MIDR_EL1: 0xc000,
  MPIDR_EL1: 0xc005,
  ID_AA64PFR0_EL1: 0xc020,
  ID_AA64PFR1_EL1: 0xc021,
  ID_AA64ISAR0_EL1: 0xc030,
  ID_AA64ISAR1_EL1: 0xc031,
  ID_AA64MMFR0_EL1: 0xc038,
  ID_AA64MMFR1_EL1: 0xc039,
  ID_AA64MMFR2_EL1: 0xc03a,
  SCTLR_EL1: 0xc080,
  ACTLR_EL1: 0xc081,
  CPACR_EL1: 0xc082,
  TTBR0_EL1: 0xc100,
  TTBR1_EL1: 0xc101,
  TCR_EL1: 0xc102,
  SPSR_EL1: 0xc200,
  ELR_EL1: 0xc201,
  SP_EL0: 0xc208,
  ESR_EL1: 0xc290,
  FAR_EL1: 0xc300,
  PAR_EL1: 0xc3a0,
  MAIR_EL1: 0xc510,
  VBAR_EL1: 0xc600,
  CONTEXTIDR_EL1: 0xc681,
  TPIDR_EL1: 0xc684,
  CNTKCTL_EL1: 0xc708,
  TPIDR_EL0: 0xde82,
  TPIDRRO_EL0: 0xde83,
  CNTV_CTL_EL0: 0xdf19,
  CNTV_CVAL_EL0: 0xdf1a,
  SP_EL1: 0xe208,
};

test("every system register encoding computed from (op0, op1, CRn, CRm, op2) matches the reference", () => {
  for (const [name, value] of Object.entries(REFERENCE_SYS_REGS)) {
    expect({ name, value: HV_SYS_REG[name as keyof typeof HV_SYS_REG] }).toEqual({ name, value });
  }
  // MDSCR_EL1 is an op0 = 2 (debug) register: (2, 0, 0, 2, 2).
  expect(HV_SYS_REG.MDSCR_EL1).toBe(0x8012);
  expect(Object.keys(SYS_REG_FIELDS).length).toBe(Object.keys(REFERENCE_SYS_REGS).length + 1);
});

test("sysRegEncoding rejects out-of-range fields", () => {
  expect(() => sysRegEncoding(4, 0, 0, 0, 0)).toThrow(RangeError);
  expect(() => sysRegEncoding(3, 0, 16, 0, 0)).toThrow(RangeError);
  expect(sysRegEncoding(3, 7, 15, 15, 7)).toBe(0xffff);
});

test("hv_reg_t numbering", () => {
  expect(hvRegX(0)).toBe(0);
  expect(hvRegX(30)).toBe(30);
  expect(() => hvRegX(31)).toThrow(RangeError);
});

test("hv_return_t names and HvfError messages", () => {
  expect(HV_RETURN_NAMES[0xfae94004]).toBe("HV_ILLEGAL_GUEST_STATE");
  expect(new HvfError("hv_vcpu_run", 0xfae94003 | 0).message).toBe(
    "hv_vcpu_run failed: HV_BAD_ARGUMENT (0xfae94003)",
  );
  expect(new HvfError("hv_vm_map", 0xfae94099).message).toBe(
    "hv_vm_map failed: unknown hv_return_t (0xfae94099)",
  );
  expect(() => check("hv_vm_unmap", 0xfae9400f | 0)).toThrow(
    "hv_vm_unmap failed: HV_UNSUPPORTED (0xfae9400f)",
  );
  expect(() => check("hv_vm_unmap", 0)).not.toThrow();
});

test("TCR_EL1: elfuse's native value with EPD1 cleared (our shim lives behind TTBR1)", () => {
  const value = tcrEl1Value();
  expect(value).toBe(0x25b5903510n & ~(1n << TCR.EPD1_BIT));
  expect(value).toBe(0x25b5103510n);
  expect(value & 0x3fn).toBe(16n); // T0SZ
  expect((value >> 16n) & 0x3fn).toBe(16n); // T1SZ
  expect((value >> 30n) & 3n).toBe(2n); // TG1 = 4 KiB
  expect((value >> 37n) & 1n).toBe(1n); // TBI0
});

test("SCTLR_EL1 keeps the RES1 bits and turns the MMU and caches on", () => {
  const value = sctlrEl1Value();
  expect(value & SCTLR.RES1).toBe(SCTLR.RES1);
  for (const bit of [SCTLR.M, SCTLR.C, SCTLR.I, SCTLR.SA0, SCTLR.UCT, SCTLR.DZE, SCTLR.UCI])
    expect(value & bit).toBe(bit);
  expect(value & (1n << 19n)).toBe(0n); // WXN off: W^X is the runtime's policy, not the CPU's
});

test("MAIR's normal-memory slot is the AttrIndx @guest/pagetable writes into every descriptor", async () => {
  const { DESC_ATTR_INDEX_NORMAL } = await import("@guest/pagetable");
  const { MAIR_ATTR_INDEX_NORMAL, MAIR_EL1_VALUE } = await import("./constants.ts");
  expect(MAIR_ATTR_INDEX_NORMAL).toBe(DESC_ATTR_INDEX_NORMAL);
  // That slot must hold Normal write-back memory (0xff); guest memory must never be Device memory.
  expect((MAIR_EL1_VALUE >> BigInt(8 * MAIR_ATTR_INDEX_NORMAL)) & 0xffn).toBe(0xffn);
});
