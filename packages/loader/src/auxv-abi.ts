/**
 * Auxiliary vector ABI: AT_* numbers (Linux uapi linux/auxvec.h + arm64 asm/auxvec.h) and the arm64
 * AT_HWCAP / AT_HWCAP2 / AT_HWCAP3 bit tables (arm64 uapi asm/hwcap.h, Linux 6.18).
 */

export const AT = {
  NULL: 0,
  IGNORE: 1,
  EXECFD: 2,
  PHDR: 3,
  PHENT: 4,
  PHNUM: 5,
  PAGESZ: 6,
  BASE: 7,
  FLAGS: 8,
  ENTRY: 9,
  NOTELF: 10,
  UID: 11,
  EUID: 12,
  GID: 13,
  EGID: 14,
  PLATFORM: 15,
  HWCAP: 16,
  CLKTCK: 17,
  SECURE: 23,
  BASE_PLATFORM: 24,
  RANDOM: 25,
  HWCAP2: 26,
  RSEQ_FEATURE_SIZE: 27,
  RSEQ_ALIGN: 28,
  HWCAP3: 29,
  HWCAP4: 30,
  EXECFN: 31,
  MINSIGSTKSZ: 51,
  /** arm64 asm/auxvec.h */
  SYSINFO_EHDR: 33,
} as const;

export type AuxvType = (typeof AT)[keyof typeof AT];

/** Reverse map for diagnostics (/proc/self/auxv dumps, test messages). */
export const AT_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(AT).map(([name, value]) => [value, `AT_${name}`]),
);

/** Values Linux arm64 reports that are not CPU-model dependent. */
export const LINUX_ARM64_PAGE_SIZE = 4096;
/** CLOCKS_PER_SEC as exported to user space (USER_HZ). */
export const LINUX_CLOCKS_PER_SEC = 100;
export const LINUX_ARM64_PLATFORM = "aarch64";
/** signal_minsigstksz for a CPU without SVE/SME: sizeof(rt_sigframe) + fpsimd + esr + extra, rounded (elfuse uses 5120). */
export const DEFAULT_MINSIGSTKSZ = 5120;
/** Linux: MAX_ARG_STRLEN = 32 pages; each argv/envp string (with its NUL) must fit. */
export const MAX_ARG_STRLEN = 32 * 4096;
/** Linux ARG_MAX (32 pages): the floor of the argument-area limit even with a tiny stack rlimit. */
export const ARG_MAX = 32 * 4096;
/** Linux MAX_ARG_STRINGS. */
export const MAX_ARG_STRINGS = 0x7fffffff;
/** Linux _STK_LIM (8 MiB): default RLIMIT_STACK and the base of the 3/4 cap in bprm_stack_limits(). */
export const STK_LIM = 8 * 1024 * 1024;

/** errno values the stack builder reports (asm-generic/errno-base.h). */
export const E2BIG = 7;
export const EFAULT = 14;
export const EINVAL = 22;

const bit = (n: number): bigint => 1n << BigInt(n);

/** AT_HWCAP bits (arm64 uapi hwcap.h). Bits 62 and 63 are reserved for libc. */
export const HWCAP = {
  FP: bit(0),
  ASIMD: bit(1),
  EVTSTRM: bit(2),
  AES: bit(3),
  PMULL: bit(4),
  SHA1: bit(5),
  SHA2: bit(6),
  CRC32: bit(7),
  ATOMICS: bit(8),
  FPHP: bit(9),
  ASIMDHP: bit(10),
  CPUID: bit(11),
  ASIMDRDM: bit(12),
  JSCVT: bit(13),
  FCMA: bit(14),
  LRCPC: bit(15),
  DCPOP: bit(16),
  SHA3: bit(17),
  SM3: bit(18),
  SM4: bit(19),
  ASIMDDP: bit(20),
  SHA512: bit(21),
  SVE: bit(22),
  ASIMDFHM: bit(23),
  DIT: bit(24),
  USCAT: bit(25),
  ILRCPC: bit(26),
  FLAGM: bit(27),
  SSBS: bit(28),
  SB: bit(29),
  PACA: bit(30),
  PACG: bit(31),
  GCS: bit(32),
  CMPBR: bit(33),
  FPRCVT: bit(34),
  F8MM8: bit(35),
  F8MM4: bit(36),
  SVE_F16MM: bit(37),
  SVE_ELTPERM: bit(38),
  SVE_AES2: bit(39),
  SVE_BFSCALE: bit(40),
  SVE2P2: bit(41),
  SME2P2: bit(42),
  SME_SBITPERM: bit(43),
  SME_AES: bit(44),
  SME_SFEXPA: bit(45),
  SME_STMOP: bit(46),
  SME_SMOP4: bit(47),
} as const;

/** AT_HWCAP2 bits (arm64 uapi hwcap.h). */
export const HWCAP2 = {
  DCPODP: bit(0),
  SVE2: bit(1),
  SVEAES: bit(2),
  SVEPMULL: bit(3),
  SVEBITPERM: bit(4),
  SVESHA3: bit(5),
  SVESM4: bit(6),
  FLAGM2: bit(7),
  FRINT: bit(8),
  SVEI8MM: bit(9),
  SVEF32MM: bit(10),
  SVEF64MM: bit(11),
  SVEBF16: bit(12),
  I8MM: bit(13),
  BF16: bit(14),
  DGH: bit(15),
  RNG: bit(16),
  BTI: bit(17),
  MTE: bit(18),
  ECV: bit(19),
  AFP: bit(20),
  RPRES: bit(21),
  MTE3: bit(22),
  SME: bit(23),
  SME_I16I64: bit(24),
  SME_F64F64: bit(25),
  SME_I8I32: bit(26),
  SME_F16F32: bit(27),
  SME_B16F32: bit(28),
  SME_F32F32: bit(29),
  SME_FA64: bit(30),
  WFXT: bit(31),
  EBF16: bit(32),
  SVE_EBF16: bit(33),
  CSSC: bit(34),
  RPRFM: bit(35),
  SVE2P1: bit(36),
  SME2: bit(37),
  SME2P1: bit(38),
  SME_I16I32: bit(39),
  SME_BI32I32: bit(40),
  SME_B16B16: bit(41),
  SME_F16F16: bit(42),
  MOPS: bit(43),
  HBC: bit(44),
  SVE_B16B16: bit(45),
  LRCPC3: bit(46),
  LSE128: bit(47),
  FPMR: bit(48),
  LUT: bit(49),
  FAMINMAX: bit(50),
  F8CVT: bit(51),
  F8FMA: bit(52),
  F8DP4: bit(53),
  F8DP2: bit(54),
  F8E4M3: bit(55),
  F8E5M2: bit(56),
  SME_LUTV2: bit(57),
  SME_F8F16: bit(58),
  SME_F8F32: bit(59),
  SME_SF8FMA: bit(60),
  SME_SF8DP4: bit(61),
  SME_SF8DP2: bit(62),
  POE: bit(63),
} as const;

/** AT_HWCAP3 bits (arm64 uapi hwcap.h, as of Linux 6.18). */
export const HWCAP3 = {
  MTE_FAR: bit(0),
  MTE_STORE_ONLY: bit(1),
  LSFE: bit(2),
} as const;

const orAll = (bits: readonly bigint[]): bigint => bits.reduce((acc, b) => acc | b, 0n);

/**
 * AT_HWCAP for the Unicorn 2.1 "max" CPU model (UC_CPU_ARM64_MAX): only features whose instructions were
 * executed successfully under that model by a probe (see README "HWCAP verification"), minus features the
 * runtime cannot honour or the probe cannot prove: pointer authentication (PACIA runs, PACGA does not; keys
 * are not managed), CPUID (MRS returns Unicorn's raw ID registers, which claim SVE and more), DC CVAP/CVADP
 * (DCPOP/DCPODP: run at EL1 but trap at EL0 while SCTLR_EL1.UCI is 0), hint-space features (DGH, BTI) and
 * the event stream. SVE, DIT, SSBS, USCAT (unaligned LSE atomics fault), I8MM, BF16, MTE, ECV, CSSC, MOPS,
 * HBC, SME and PACG fail to execute.
 */
export const UNICORN_MAX_CPU_HWCAP: bigint = orAll([
  HWCAP.FP,
  HWCAP.ASIMD,
  HWCAP.AES,
  HWCAP.PMULL,
  HWCAP.SHA1,
  HWCAP.SHA2,
  HWCAP.CRC32,
  HWCAP.ATOMICS,
  HWCAP.FPHP,
  HWCAP.ASIMDHP,
  HWCAP.ASIMDRDM,
  HWCAP.JSCVT,
  HWCAP.FCMA,
  HWCAP.LRCPC,
  HWCAP.SHA3,
  HWCAP.SM3,
  HWCAP.SM4,
  HWCAP.ASIMDDP,
  HWCAP.SHA512,
  HWCAP.ASIMDFHM,
  HWCAP.ILRCPC,
  HWCAP.FLAGM,
  HWCAP.SB,
]);

/** AT_HWCAP2 for the Unicorn 2.1 "max" CPU model (probe-verified, same exclusions as above). */
export const UNICORN_MAX_CPU_HWCAP2: bigint = orAll([HWCAP2.FLAGM2, HWCAP2.FRINT, HWCAP2.RNG]);

/** Names of the bits set in `value` for a given table (for logs and /proc/cpuinfo-like output). */
export function hwcapNames(table: Readonly<Record<string, bigint>>, value: bigint): string[] {
  const names: string[] = [];
  for (const [name, mask] of Object.entries(table)) if ((value & mask) !== 0n) names.push(name);
  return names;
}

/** What the runtime advertises by default (the Unicorn max model; an HVF backend should pass its own host's bits). */
export const DEFAULT_HWCAP: bigint = UNICORN_MAX_CPU_HWCAP;
export const DEFAULT_HWCAP2: bigint = UNICORN_MAX_CPU_HWCAP2;
