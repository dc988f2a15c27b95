/**
 * Layout and protocol of the EL1 shim (shim.S) and of the backend-private memory it lives in.
 * The `.equ` constants at the top of shim.S must equal these; shim.test.ts parses and compares.
 *
 * Where things live (our design, not elfuse's): the backend owns one private region of guest
 * physical memory placed just ABOVE the guest's memory (IPA = memorySize), so the guest's
 * identity-mapped address space [0, memorySize) can never reach it. The shim runs behind TTBR1_EL1
 * at the top of the 64-bit address space, through four tiny tables the backend builds itself; the
 * runtime's tables (TTBR0_EL1, `Vm.setTranslationRoot`) never need to map anything of ours.
 *
 * Private region (offsets from its base; VA = SHIM_VA_BASE + offset for the mapped parts):
 *   0x0000  TTBR1 level-0 table   (not mapped: page-table pages are invisible to everyone)
 *   0x1000  level-1 table
 *   0x2000  level-2 table
 *   0x3000  level-3 table
 *   0x4000  shim code, EL1 read-only + executable (SHIM_CODE_MAX bytes); VBAR = code + 0x800
 *   0x8000  one 4 KiB slot per vCPU, EL1 read/write, never executable; the frame sits at its top
 */

export const PAGE_SIZE = 0x1000;

/** Top 2 MiB of the TTBR1 half: L0/L1/L2 index 511 each. */
export const SHIM_VA_BASE = 0xffff_ffff_ffe0_0000n;

export const PRIVATE = {
  L0: 0x0000,
  L1: 0x1000,
  L2: 0x2000,
  L3: 0x3000,
  CODE: 0x4000,
  SLOTS: 0x8000,
} as const;
export const SHIM_CODE_MAX = PRIVATE.SLOTS - PRIVATE.CODE;
export const VCPU_SLOT_SIZE = PAGE_SIZE;
/** elfuse's MAX_THREADS; one EL1 slot each. */
export const MAX_VCPUS = 64;
/** 0x48000 bytes: a whole number of 16 KiB host pages, as hv_vm_map requires. */
export const PRIVATE_SIZE = PRIVATE.SLOTS + MAX_VCPUS * VCPU_SLOT_SIZE;

/** Code offsets inside the shim blob. */
export const SHIM_ENTRY = {
  /** Host-entered resume path: perform queued actions, honour a stop request, restore the frame, ERET. */
  RESUME: 0x000,
  /** VBAR_EL1 (2 KiB aligned): 16 entries of 0x80 bytes. */
  VECTORS: 0x800,
} as const;
export const VECTOR_STRIDE = 0x80;
export const VECTOR_COUNT = 16;
/** Vector entries that do real work (offsets from VBAR). Every other entry is a fatal HVC. */
export const VECTOR_LOWER_A64_SYNC = 0x400;

/**
 * The per-vCPU frame at the top of the vCPU's slot (SP_EL1 points at it while the shim runs).
 * While the vCPU is parked in the shim it IS the guest's register state: the shim saved it on
 * exception entry and reloads it before ERET, so the host reads and edits guest registers here with
 * plain memory accesses (no FFI call per register) and X0..X8 double as the syscall frame.
 */
export const FRAME = {
  X0: 0x000, // x0..x30 at X0 + 8 * n
  SP_EL0: 0x0f8,
  ELR: 0x100,
  SPSR: 0x108,
  ESR: 0x110,
  FAR: 0x118,
  /** Host → shim: ACTION_* bits, performed (then cleared) before returning to EL0. */
  ACTION: 0x120,
  /** TLBI VAAE1IS operand of the first page (VA >> 12) and the number of pages. */
  TLBI_PAGE: 0x128,
  TLBI_COUNT: 0x130,
  /** Any thread → shim: non-zero makes the shim stop (HVC_STOP) before its next ERET. */
  STOP: 0x138,
  SIZE: 0x140,
} as const;

export const ACTION = {
  TLBI_ALL: 1n << 0n,
  TLBI_PAGES: 1n << 1n,
  IC_IALLU: 1n << 2n,
} as const;
/** Larger page ranges are cheaper as one TLBI VMALLE1IS. */
export const TLBI_PAGES_MAX = 64;

/** HVC immediates, shim → host (numbers follow elfuse where the meaning matches). */
export const HVC = {
  /** A stop was requested (FRAME.STOP) and the guest state is consistent in the frame. */
  STOP: 3,
  /** `svc` from EL0: X8 = number, X0..X5 = arguments, all in the frame; result goes to frame X0. */
  SYSCALL: 5,
  /** Any other synchronous exception from EL0 (undefined instruction, alignment, MSR trap …): ESR in the frame. */
  EL0_EXCEPTION: 8,
  /** `brk` from EL0: ELR on the brk. */
  BRK: 10,
  /** Instruction or data abort from EL0: ESR and FAR in the frame, ELR on the faulting instruction. */
  ABORT: 11,
  /** Fatal: an exception arrived at a vector that should never fire; immediate = BAD_VECTOR + index. */
  BAD_VECTOR: 0x40,
} as const;

export function slotOffset(vcpuIndex: number): number {
  if (!Number.isInteger(vcpuIndex) || vcpuIndex < 0 || vcpuIndex >= MAX_VCPUS) {
    throw new RangeError(`vCPU slot ${vcpuIndex} out of range (0..${MAX_VCPUS - 1})`);
  }
  return PRIVATE.SLOTS + vcpuIndex * VCPU_SLOT_SIZE;
}

/** Offset (in the private region) of a vCPU's frame. */
export function frameOffset(vcpuIndex: number): number {
  return slotOffset(vcpuIndex) + VCPU_SLOT_SIZE - FRAME.SIZE;
}

export function shimVirtualAddress(privateOffset: number): bigint {
  return SHIM_VA_BASE + BigInt(privateOffset);
}
