/**
 * AArch64 stage-1 descriptor encoding (4 KiB granule) as written by this package.
 *
 * FIXED: the emulator's C TLB-fill walker (packages/emulator/src/core/core.c) and the HVF hardware walk
 * these exact bits. Descriptors are 64-bit little-endian; the code edits them as two u32 words, so every
 * bit is given both as a bit number and as a mask within its word (`*_LO` = bits 0..31, `*_HI` = bits
 * 32..63, mask shifted down by 32).
 */

/** bits[1:0]: bit 0 = valid. */
export const DESC_VALID = 1;
/** bit 1: with bit 0, "table" at L0-L2 and "page" at L3; clear with bit 0 set = block (L1/L2). */
export const DESC_TABLE_OR_PAGE = 2;
export const DESC_TYPE_MASK = 3;
export const DESC_TYPE_TABLE = 3;
export const DESC_TYPE_PAGE = 3;
export const DESC_TYPE_BLOCK = 1;

/** AttrIndx [4:2] = 0: MAIR_EL1 index 0, normal write-back memory. */
export const DESC_ATTR_INDEX_SHIFT = 2;
export const DESC_ATTR_INDEX_NORMAL = 0;
/** AP[1] (bit 6): EL0 may access. */
export const DESC_AP_EL0 = 1 << 6;
/** AP[2] (bit 7): read-only. */
export const DESC_AP_RO = 1 << 7;
/** SH [9:8] = 0b11: inner shareable. */
export const DESC_SH_INNER = 3 << 8;
/** AF (bit 10): access flag always set, so there are no access-flag faults. */
export const DESC_AF = 1 << 10;
/** nG (bit 11): not global, set on every user page. */
export const DESC_NG = 1 << 11;

export const DESC_BIT_PXN = 53;
export const DESC_BIT_UXN = 54;
/** Software bit, meaningful only in an INVALID L3 descriptor: the page is a MADV_GUARD_INSTALL guard. */
export const DESC_BIT_SW_GUARD = 55;
/** Software bit in an INVALID L2/L3 descriptor: mapped, but PROT_NONE (not "unmapped"). */
export const DESC_BIT_SW_PROT_NONE = 56;

/** PXN (bit 53): EL1 never executes guest pages. */
export const DESC_PXN_HI = 1 << (DESC_BIT_PXN - 32);
/** UXN (bit 54): EL0 may not execute. */
export const DESC_UXN_HI = 1 << (DESC_BIT_UXN - 32);
export const DESC_SW_GUARD_HI = 1 << (DESC_BIT_SW_GUARD - 32);
export const DESC_SW_PROT_NONE_HI = 1 << (DESC_BIT_SW_PROT_NONE - 32);

/** Output address bits [47:12]: low word part and high word part. */
export const DESC_OA_MASK_LO = 0xfffff000;
export const DESC_OA_MASK_HI = 0x0000ffff;
/** Output address mask of an L2 (2 MiB) block, low word. */
export const DESC_BLOCK_L2_OA_MASK_LO = 0xffe00000;
/** Attribute bits of the low word (everything but the output address). */
export const DESC_ATTRS_MASK_LO = 0x00000fff;
/** Attribute bits of the high word (everything but output address bits [47:32]). */
export const DESC_ATTRS_MASK_HI = 0xffff0000;

/** The same masks as 64-bit values, for documentation, tests and cross-checks (never on hot paths). */
export const DESC64 = {
  valid: 1n,
  tableOrPage: 2n,
  apEl0: 1n << 6n,
  apReadOnly: 1n << 7n,
  shInner: 3n << 8n,
  af: 1n << 10n,
  nG: 1n << 11n,
  pxn: 1n << 53n,
  uxn: 1n << 54n,
  swGuard: 1n << 55n,
  swProtNone: 1n << 56n,
  oaMask: 0x0000_ffff_ffff_f000n,
} as const;

/** Translation geometry: 4 KiB granule, 48-bit VA, L0..L3. */
export const PAGE_SIZE = 4096;
export const ENTRIES_PER_TABLE = 512;
export const L3_SPAN = PAGE_SIZE;
export const L2_SPAN = 0x20_0000; // 2 MiB
export const L1_SPAN = 0x4000_0000; // 1 GiB
export const L0_SPAN = 0x80_0000_0000; // 512 GiB
export const VA_LIMIT = 2 ** 48;
