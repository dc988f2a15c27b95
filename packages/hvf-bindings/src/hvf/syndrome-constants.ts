/**
 * ESR_ELx (exception syndrome) layout and exception-class table (Arm ARM D19.2 "ESR_EL1"/"ESR_EL2").
 * hv_vcpu_exit_t.exception.syndrome is ESR_EL2; the shim stores ESR_EL1 for EL0 exceptions; both
 * share this layout.
 */

export const ESR = {
  EC_SHIFT: 26,
  EC_MASK: 0x3f,
  IL_BIT: 25,
  ISS_MASK: 0x1ff_ffff,
  /** HVC/SVC/SMC/BRK immediate: ISS[15:0]. */
  IMM16_MASK: 0xffff,
  // Instruction/data abort ISS fields
  /** Fault status code, ISS[5:0] (DFSC for data aborts, IFSC for instruction aborts). */
  FSC_MASK: 0x3f,
  /** Write not Read (data aborts). */
  WNR_BIT: 6,
  /** Fault on the stage-2 walk of a stage-1 table (HVF only). */
  S1PTW_BIT: 7,
  /** Cache maintenance instruction (data aborts): WnR is then 1 but the access is not a write. */
  CM_BIT: 8,
  /** External abort type. */
  EA_BIT: 9,
  /** FAR not valid. */
  FNV_BIT: 10,
  /** Instruction syndrome valid (data aborts). */
  ISV_BIT: 24,
} as const;

/** Exception classes (ESR.EC). */
export const EC = {
  UNKNOWN: 0x00,
  WFX: 0x01,
  SIMD_FP_ACCESS: 0x07,
  ILLEGAL_STATE: 0x0e,
  SVC64: 0x15,
  HVC64: 0x16,
  SMC64: 0x17,
  SYS64: 0x18,
  SVE_ACCESS: 0x19,
  IABT_LOWER: 0x20,
  IABT_SAME: 0x21,
  PC_ALIGN: 0x22,
  DABT_LOWER: 0x24,
  DABT_SAME: 0x25,
  SP_ALIGN: 0x26,
  FP_EXC64: 0x2c,
  SERROR: 0x2f,
  BREAKPOINT_LOWER: 0x30,
  BREAKPOINT_SAME: 0x31,
  SOFTSTEP_LOWER: 0x32,
  SOFTSTEP_SAME: 0x33,
  WATCHPOINT_LOWER: 0x34,
  WATCHPOINT_SAME: 0x35,
  BRK64: 0x3c,
} as const;

export const EC_NAMES: Readonly<Record<number, string>> = {
  [EC.UNKNOWN]: "UNKNOWN",
  [EC.WFX]: "WFI/WFE",
  [EC.SIMD_FP_ACCESS]: "SIMD/FP access",
  [EC.ILLEGAL_STATE]: "illegal execution state",
  [EC.SVC64]: "SVC64",
  [EC.HVC64]: "HVC64",
  [EC.SMC64]: "SMC64",
  [EC.SYS64]: "MSR/MRS/SYS trap",
  [EC.SVE_ACCESS]: "SVE access",
  [EC.IABT_LOWER]: "instruction abort (lower EL)",
  [EC.IABT_SAME]: "instruction abort (same EL)",
  [EC.PC_ALIGN]: "PC alignment fault",
  [EC.DABT_LOWER]: "data abort (lower EL)",
  [EC.DABT_SAME]: "data abort (same EL)",
  [EC.SP_ALIGN]: "SP alignment fault",
  [EC.FP_EXC64]: "FP exception",
  [EC.SERROR]: "SError",
  [EC.BREAKPOINT_LOWER]: "hardware breakpoint (lower EL)",
  [EC.BREAKPOINT_SAME]: "hardware breakpoint (same EL)",
  [EC.SOFTSTEP_LOWER]: "software step (lower EL)",
  [EC.SOFTSTEP_SAME]: "software step (same EL)",
  [EC.WATCHPOINT_LOWER]: "watchpoint (lower EL)",
  [EC.WATCHPOINT_SAME]: "watchpoint (same EL)",
  [EC.BRK64]: "BRK64",
};

/** Fault status code groups (DFSC/IFSC, ISS[5:0]); the low two bits are the level for 0x00..0x0f. */
export const FSC = {
  ADDRESS_SIZE_BASE: 0x00, // 0x00..0x03: address size fault, level 0..3
  TRANSLATION_BASE: 0x04, // 0x04..0x07: translation fault, level 0..3
  ACCESS_FLAG_BASE: 0x08, // 0x08..0x0b: access flag fault, level 0..3
  PERMISSION_BASE: 0x0c, // 0x0c..0x0f: permission fault, level 0..3
  SYNC_EXTERNAL: 0x10,
  ALIGNMENT: 0x21,
  TLB_CONFLICT: 0x30,
} as const;
