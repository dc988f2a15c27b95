/**
 * Unicorn 2.1 ABI values we use, read off unicorn/unicorn.h and unicorn/arm64.h of 2.1.1 (printed by a C
 * program compiled against the headers, not counted by hand). Kept apart from logic.
 */

export const UC_ARCH_ARM64 = 2;
export const UC_MODE_ARM = 0;
/** UC_CPU_ARM64_MAX: the richest CPU model (ARMv8.x with LSE, SHA3, …) — matches the HWCAPs we advertise. */
export const UC_CPU_ARM64_MAX = 3;

/** uc_err */
export const UC_ERR = {
  OK: 0,
  NOMEM: 1,
  ARCH: 2,
  HANDLE: 3,
  MODE: 4,
  VERSION: 5,
  READ_UNMAPPED: 6,
  WRITE_UNMAPPED: 7,
  FETCH_UNMAPPED: 8,
  HOOK: 9,
  INSN_INVALID: 10,
  MAP: 11,
  WRITE_PROT: 12,
  READ_PROT: 13,
  FETCH_PROT: 14,
  ARG: 15,
  READ_UNALIGNED: 16,
  WRITE_UNALIGNED: 17,
  FETCH_UNALIGNED: 18,
  HOOK_EXIST: 19,
  RESOURCE: 20,
  EXCEPTION: 21,
  OVERFLOW: 22,
} as const;

export const UC_ERR_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(UC_ERR).map(([name, value]) => [value, `UC_ERR_${name}`]),
);

export const UC_HOOK_INTR = 1 << 0;
export const UC_HOOK_TLB_FILL = 1 << 17;

/** uc_mem_type values the TLB-fill hook receives. */
export const UC_MEM_READ = 16;
export const UC_MEM_WRITE = 17;
export const UC_MEM_FETCH = 18;

/** uc_query_type: UC_QUERY_PAGE_SIZE answers Unicorn's softmmu page size (1 KiB on arm64 unless raised). */
export const UC_QUERY_PAGE_SIZE = 2;

export const UC_PROT_READ = 1;
export const UC_PROT_WRITE = 2;
export const UC_PROT_EXEC = 4;
export const UC_PROT_ALL = 7;

/** uc_ctl request codes: UC_CTL_WRITE(type, nargs) = (io << 30) | (nargs << 26) | type. */
export const UC_CTL_WRITE_CPU_MODEL = 1140850695;
export const UC_CTL_WRITE_TLB_TYPE = 1140850700;
export const UC_CTL_WRITE_TLB_FLUSH = 1073741835;
export const UC_CTL_WRITE_TB_FLUSH = 1073741834;
export const UC_CTL_WRITE_TB_REMOVE_CACHE = 1207959561;
export const UC_TLB_VIRTUAL = 1;

/** QEMU's arm exception numbers as the interrupt hook reports them (target/arm/cpu.h). */
export const EXCP = {
  UDEF: 1,
  SWI: 2,
  PREFETCH_ABORT: 3,
  DATA_ABORT: 4,
  BKPT: 7,
} as const;

/** uc_arm64_reg ids. */
export const UC_ARM64_REG = {
  X29: 1,
  X30: 2,
  NZCV: 3,
  SP: 4,
  /** Q0 + i for i in 0..31 */
  Q0: 104,
  /** X0 + i for i in 0..28 */
  X0: 199,
  PC: 260,
  CPACR_EL1: 261,
  TPIDR_EL0: 262,
  TPIDRRO_EL0: 263,
  PSTATE: 265,
  FPCR: 291,
  FPSR: 292,
} as const;
