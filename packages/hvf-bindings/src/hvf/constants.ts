/**
 * Hypervisor.framework (Apple Silicon) ABI constants, as our own tables. Values are the SDK's
 * (Hypervisor/hv_error.h, hv_vcpu_types.h, hv_vm_types.h) as recorded in
 * /work/shared/reference/peer-elfuse.md §2; system-register encodings are computed from the
 * architectural (op0, op1, CRn, CRm, op2) tuple and checked against the reference in tests, so an
 * SDK that lacks a name (ACTLR_EL1 on SDK 14.4, elfuse issue #11) cannot break us.
 */

// ---------------------------------------------------------------------------------------------
// hv_return_t (mach_error_t: err_system(0x3e) | err_sub(0xba5) | code)

export const HV_SUCCESS = 0;
export const HV_ERROR = 0xfae94001;
export const HV_BUSY = 0xfae94002;
export const HV_BAD_ARGUMENT = 0xfae94003;
export const HV_ILLEGAL_GUEST_STATE = 0xfae94004;
export const HV_NO_RESOURCES = 0xfae94005;
export const HV_NO_DEVICE = 0xfae94006;
export const HV_DENIED = 0xfae94007;
export const HV_UNSUPPORTED = 0xfae9400f;

export const HV_RETURN_NAMES: Readonly<Record<number, string>> = {
  [HV_SUCCESS]: "HV_SUCCESS",
  [HV_ERROR]: "HV_ERROR",
  [HV_BUSY]: "HV_BUSY",
  [HV_BAD_ARGUMENT]: "HV_BAD_ARGUMENT",
  [HV_ILLEGAL_GUEST_STATE]: "HV_ILLEGAL_GUEST_STATE",
  [HV_NO_RESOURCES]: "HV_NO_RESOURCES",
  [HV_NO_DEVICE]: "HV_NO_DEVICE",
  [HV_DENIED]: "HV_DENIED",
  [HV_UNSUPPORTED]: "HV_UNSUPPORTED",
};

// ---------------------------------------------------------------------------------------------
// hv_memory_flags_t

export const HV_MEMORY_READ = 1;
export const HV_MEMORY_WRITE = 2;
export const HV_MEMORY_EXEC = 4;
/** Stage 2 is always RWX; protection is stage 1 (architecture.md). */
export const HV_MEMORY_RWX = HV_MEMORY_READ | HV_MEMORY_WRITE | HV_MEMORY_EXEC;

// ---------------------------------------------------------------------------------------------
// hv_exit_reason_t

export const HV_EXIT_REASON_CANCELED = 0;
export const HV_EXIT_REASON_EXCEPTION = 1;
export const HV_EXIT_REASON_VTIMER_ACTIVATED = 2;
export const HV_EXIT_REASON_UNKNOWN = 3;

export const HV_EXIT_REASON_NAMES: Readonly<Record<number, string>> = {
  [HV_EXIT_REASON_CANCELED]: "HV_EXIT_REASON_CANCELED",
  [HV_EXIT_REASON_EXCEPTION]: "HV_EXIT_REASON_EXCEPTION",
  [HV_EXIT_REASON_VTIMER_ACTIVATED]: "HV_EXIT_REASON_VTIMER_ACTIVATED",
  [HV_EXIT_REASON_UNKNOWN]: "HV_EXIT_REASON_UNKNOWN",
};

/** hv_vcpu_exit_t: 32 bytes, owned by the framework, one per vCPU (pointer from hv_vcpu_create). */
export const HV_VCPU_EXIT = {
  reason: 0, // u32 (4 bytes padding follow)
  syndrome: 8, // u64 exception.syndrome (ESR_EL2 layout)
  virtualAddress: 16, // u64 exception.virtual_address (FAR_EL2)
  physicalAddress: 24, // u64 exception.physical_address (HPFAR-derived IPA)
  size: 32,
} as const;

// ---------------------------------------------------------------------------------------------
// hv_reg_t (u32)

export const HV_REG_X0 = 0;
/** HV_REG_X0 + n for n in 0..30 (X29 = FP, X30 = LR). */
export const hvRegX = (n: number): number => {
  if (!Number.isInteger(n) || n < 0 || n > 30) throw new RangeError(`no general register x${n}`);
  return HV_REG_X0 + n;
};
export const HV_REG_FP = 29;
export const HV_REG_LR = 30;
export const HV_REG_PC = 31;
export const HV_REG_FPCR = 32;
export const HV_REG_FPSR = 33;
export const HV_REG_CPSR = 34;

/** hv_simd_fp_reg_t: HV_SIMD_FP_REG_Q0..Q31 are 0..31. */
export const HV_SIMD_FP_REG_Q0 = 0;
export const HV_SIMD_FP_REG_COUNT = 32;

// ---------------------------------------------------------------------------------------------
// hv_sys_reg_t (u16): (op0 << 14) | (op1 << 11) | (CRn << 7) | (CRm << 3) | op2

/** The hv_sys_reg_t value of the system register with this MRS/MSR encoding. */
export function sysRegEncoding(op0: number, op1: number, crn: number, crm: number, op2: number): number {
  const fields: [number, number][] = [
    [op0, 3],
    [op1, 7],
    [crn, 15],
    [crm, 15],
    [op2, 7],
  ];
  for (const [value, max] of fields) {
    if (!Number.isInteger(value) || value < 0 || value > max) {
      throw new RangeError(`bad system register encoding (${op0}, ${op1}, ${crn}, ${crm}, ${op2})`);
    }
  }
  return (op0 << 14) | (op1 << 11) | (crn << 7) | (crm << 3) | op2;
}

/** Architectural (op0, op1, CRn, CRm, op2) of every system register we read or program. */
export const SYS_REG_FIELDS = {
  MIDR_EL1: [3, 0, 0, 0, 0],
  MPIDR_EL1: [3, 0, 0, 0, 5],
  ID_AA64PFR0_EL1: [3, 0, 0, 4, 0],
  ID_AA64PFR1_EL1: [3, 0, 0, 4, 1],
  ID_AA64ISAR0_EL1: [3, 0, 0, 6, 0],
  ID_AA64ISAR1_EL1: [3, 0, 0, 6, 1],
  ID_AA64MMFR0_EL1: [3, 0, 0, 7, 0],
  ID_AA64MMFR1_EL1: [3, 0, 0, 7, 1],
  ID_AA64MMFR2_EL1: [3, 0, 0, 7, 2],
  SCTLR_EL1: [3, 0, 1, 0, 0],
  ACTLR_EL1: [3, 0, 1, 0, 1],
  CPACR_EL1: [3, 0, 1, 0, 2],
  TTBR0_EL1: [3, 0, 2, 0, 0],
  TTBR1_EL1: [3, 0, 2, 0, 1],
  TCR_EL1: [3, 0, 2, 0, 2],
  SPSR_EL1: [3, 0, 4, 0, 0],
  ELR_EL1: [3, 0, 4, 0, 1],
  SP_EL0: [3, 0, 4, 1, 0],
  ESR_EL1: [3, 0, 5, 2, 0],
  FAR_EL1: [3, 0, 6, 0, 0],
  PAR_EL1: [3, 0, 7, 4, 0],
  MAIR_EL1: [3, 0, 10, 2, 0],
  VBAR_EL1: [3, 0, 12, 0, 0],
  CONTEXTIDR_EL1: [3, 0, 13, 0, 1],
  TPIDR_EL1: [3, 0, 13, 0, 4],
  CNTKCTL_EL1: [3, 0, 14, 1, 0],
  TPIDR_EL0: [3, 3, 13, 0, 2],
  TPIDRRO_EL0: [3, 3, 13, 0, 3],
  CNTV_CTL_EL0: [3, 3, 14, 3, 1],
  CNTV_CVAL_EL0: [3, 3, 14, 3, 2],
  SP_EL1: [3, 4, 4, 1, 0],
  MDSCR_EL1: [2, 0, 0, 2, 2],
} as const satisfies Record<string, readonly [number, number, number, number, number]>;

export type SysRegName = keyof typeof SYS_REG_FIELDS;

export const HV_SYS_REG: Readonly<Record<SysRegName, number>> = Object.fromEntries(
  Object.entries(SYS_REG_FIELDS).map(([name, f]) => [name, sysRegEncoding(f[0], f[1], f[2], f[3], f[4])]),
) as Record<SysRegName, number>;

// ---------------------------------------------------------------------------------------------
// PSTATE / SPSR

export const PSTATE_MODE_MASK = 0xf;
export const PSTATE_EL0T = 0x0;
export const PSTATE_EL1H = 0x5;
/** D, A, I, F masked. */
export const PSTATE_DAIF = 0xf << 6;
/** EL1h with every interrupt masked: how the host enters the shim (elfuse: CPSR 0x3c5). */
export const PSTATE_SHIM_ENTRY = PSTATE_EL1H | PSTATE_DAIF;
export const PSTATE_NZCV_MASK = 0xf000_0000;

// ---------------------------------------------------------------------------------------------
// EL1 translation regime programming (Arm ARM D19: TCR_EL1, SCTLR_EL1, MAIR_EL1)

/**
 * MAIR_EL1: Attr0 = Normal, inner/outer write-back RW-allocate (0xff), Attr1 = Device-nGnRnE (0x00).
 * Every descriptor — the shim's and @guest/pagetable's (DESC_ATTR_INDEX_NORMAL = 0) — uses AttrIndx 0.
 */
export const MAIR_EL1_VALUE = 0x00ffn;
export const MAIR_ATTR_INDEX_NORMAL = 0;

/** The fields of TCR_EL1 we set (4 KiB granules, 48-bit VAs both halves). */
export const TCR = {
  T0SZ_SHIFT: 0n,
  IRGN0_SHIFT: 8n,
  ORGN0_SHIFT: 10n,
  SH0_SHIFT: 12n,
  TG0_SHIFT: 14n,
  T1SZ_SHIFT: 16n,
  EPD1_BIT: 23n,
  IRGN1_SHIFT: 24n,
  ORGN1_SHIFT: 26n,
  SH1_SHIFT: 28n,
  TG1_SHIFT: 30n,
  IPS_SHIFT: 32n,
  TBI0_BIT: 37n,
  TBI1_BIT: 38n,
  /** Inner/outer write-back read/write-allocate cacheable walks. */
  RGN_WBWA: 1n,
  SH_INNER: 3n,
  TG0_4K: 0n,
  TG1_4K: 2n,
  IPS_48BIT: 5n,
  /** 64 - 16 = 48-bit virtual addresses, four levels from L0. */
  TSZ_48BIT: 16n,
} as const;

/**
 * TCR_EL1 for the guest: TTBR0 (the runtime's tables, guest VAs) and TTBR1 (the backend's own
 * tables, mapping the shim at the top of the address space) both 48-bit, 4 KiB granule, WBWA,
 * inner shareable; IPS 48-bit; TBI0 set (Linux enables top-byte-ignore for EL0). Unlike elfuse's
 * native value (0x25B5903510) EPD1 is clear because our shim lives behind TTBR1, not in guest VA.
 */
export function tcrEl1Value(): bigint {
  return (
    (TCR.TSZ_48BIT << TCR.T0SZ_SHIFT) |
    (TCR.RGN_WBWA << TCR.IRGN0_SHIFT) |
    (TCR.RGN_WBWA << TCR.ORGN0_SHIFT) |
    (TCR.SH_INNER << TCR.SH0_SHIFT) |
    (TCR.TG0_4K << TCR.TG0_SHIFT) |
    (TCR.TSZ_48BIT << TCR.T1SZ_SHIFT) |
    (TCR.RGN_WBWA << TCR.IRGN1_SHIFT) |
    (TCR.RGN_WBWA << TCR.ORGN1_SHIFT) |
    (TCR.SH_INNER << TCR.SH1_SHIFT) |
    (TCR.TG1_4K << TCR.TG1_SHIFT) |
    (TCR.IPS_48BIT << TCR.IPS_SHIFT) |
    (1n << TCR.TBI0_BIT)
  );
}

export const SCTLR = {
  M: 1n << 0n, // stage-1 MMU on
  C: 1n << 2n, // data cacheable
  SA: 1n << 3n, // EL1 SP alignment check
  SA0: 1n << 4n, // EL0 SP alignment check (Linux sets it: misaligned SP at EL0 is SIGBUS)
  I: 1n << 12n, // instruction cacheable
  DZE: 1n << 14n, // DC ZVA at EL0
  UCT: 1n << 15n, // CTR_EL0 at EL0
  NTWI: 1n << 16n, // WFI at EL0 does not trap to EL1 (Linux treats EL0 WFI as a no-op)
  NTWE: 1n << 18n, // WFE at EL0 does not trap to EL1
  UCI: 1n << 26n, // cache maintenance by VA at EL0
  /** RES1 bits 29, 28, 23 (SPAN), 22, 20, 11, 8, 7 (same mask as elfuse). */
  RES1: 0x30d0_0980n,
} as const;

/** SCTLR_EL1 with the MMU on, as the host programs it before the first entry. */
export function sctlrEl1Value(): bigint {
  return (
    SCTLR.RES1 |
    SCTLR.M |
    SCTLR.C |
    SCTLR.SA |
    SCTLR.SA0 |
    SCTLR.I |
    SCTLR.DZE |
    SCTLR.UCT |
    SCTLR.NTWI |
    SCTLR.NTWE |
    SCTLR.UCI
  );
}

/** CPACR_EL1.FPEN = 0b11: no FP/SIMD traps at EL0 or EL1. */
export const CPACR_EL1_FPEN = 3n << 20n;
/** CNTKCTL_EL1.EL0VCTEN: EL0 may read the virtual counter (Linux's default); no EL0 timer access. */
export const CNTKCTL_EL1_EL0VCTEN = 1n << 1n;

// ---------------------------------------------------------------------------------------------
// IPA sizes

/** IPA widths tried, widest first (elfuse: 1 TiB, 256 GiB, 64 GiB). */
export const IPA_SIZE_LADDER = [40, 38, 36] as const;
/** hv_vm_map works on host pages (16 KiB on Apple Silicon); the slab is mapped in segments of this size. */
export const HOST_PAGE_SIZE = 16 * 1024;
/** The slab is mapped in at most this many segments (hv_vm_unmap must match a whole hv_vm_map). */
export const SLAB_SEGMENT_COUNT_MAX = 256;
/** Smallest segment: 2 MiB, the unit a future MAP_SHARED overlay would swap (elfuse's hvf_segment_t). */
export const SLAB_SEGMENT_MIN = 2 * 1024 * 1024;
