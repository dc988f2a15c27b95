/**
 * The backend's own stage-1 tables behind TTBR1_EL1: they map the shim code (EL1 read-only,
 * executable) and the vCPU slots (EL1 read/write, never executable) at SHIM_VA_BASE + offset, and
 * nothing else. EL0 can reach none of it (AP, APTable and UXN all say so). Pure: writes into a view
 * of the private region, given the region's guest physical address.
 */
import { DESC_ATTR_INDEX_SHIFT, DESC64 } from "@guest/pagetable";
import { MAIR_ATTR_INDEX_NORMAL } from "../hvf/constants.ts";
import { MAX_VCPUS, PAGE_SIZE, PRIVATE, SHIM_CODE_MAX, SHIM_VA_BASE, VCPU_SLOT_SIZE } from "./layout.ts";
import { SHIM_BYTES } from "./shim-bytes.ts";

/**
 * Stage-1 descriptor bits (4 KiB granule). The architectural bits shared with the guest's tables come from
 * @guest/pagetable's one table; only the EL1-only encodings (EL1 AP values, table-level APTable/UXNTable)
 * are defined here.
 */
export const DESC = {
  VALID: DESC64.valid,
  /** Table descriptor at L0..L2, page descriptor at L3. */
  TABLE_OR_PAGE: DESC64.valid | DESC64.tableOrPage,
  ATTR_INDEX_SHIFT: BigInt(DESC_ATTR_INDEX_SHIFT),
  /** AP[2:1] at bits 7:6: 00 = EL1 RW / EL0 none, 10 = EL1 RO / EL0 none. */
  AP_EL1_RW: 0n << 6n,
  AP_EL1_RO: DESC64.apReadOnly,
  SH_INNER: DESC64.shInner,
  AF: DESC64.af,
  PXN: DESC64.pxn,
  UXN: DESC64.uxn,
  /** Table descriptors: no EL0 execute / no EL0 access below this entry. */
  UXN_TABLE: 1n << 60n,
  AP_TABLE_NO_EL0: 1n << 61n,
  ADDRESS_MASK: DESC64.oaMask,
} as const;

const NORMAL = BigInt(MAIR_ATTR_INDEX_NORMAL) << DESC.ATTR_INDEX_SHIFT;

/** Index of `va` in the table at `level` (0..3), 4 KiB granule. */
export function tableIndex(va: bigint, level: number): number {
  return Number((va >> BigInt(39 - 9 * level)) & 511n);
}

export function codePageDescriptor(pa: bigint): bigint {
  return (
    (pa & DESC.ADDRESS_MASK) |
    DESC.TABLE_OR_PAGE |
    NORMAL |
    DESC.AP_EL1_RO |
    DESC.SH_INNER |
    DESC.AF |
    DESC.UXN
  );
}

export function dataPageDescriptor(pa: bigint): bigint {
  return (
    (pa & DESC.ADDRESS_MASK) |
    DESC.TABLE_OR_PAGE |
    NORMAL |
    DESC.AP_EL1_RW |
    DESC.SH_INNER |
    DESC.AF |
    DESC.PXN |
    DESC.UXN
  );
}

export function tableDescriptor(pa: bigint): bigint {
  return (pa & DESC.ADDRESS_MASK) | DESC.TABLE_OR_PAGE | DESC.UXN_TABLE | DESC.AP_TABLE_NO_EL0;
}

/**
 * Fill the private region: zero it, copy the shim, build the TTBR1 tables. `region` is the host view
 * of the whole private region (PRIVATE_SIZE bytes), `regionIpa` its guest physical address.
 */
export function buildPrivateRegion(
  region: Uint8Array,
  regionIpa: bigint,
  shim: Uint8Array = SHIM_BYTES,
): void {
  if (shim.length > SHIM_CODE_MAX)
    throw new Error(`shim is ${shim.length} bytes; its slot holds ${SHIM_CODE_MAX}`);
  region.fill(0);
  region.set(shim, PRIVATE.CODE);
  const view = new DataView(region.buffer, region.byteOffset, region.byteLength);
  const put = (tableOffset: number, index: number, descriptor: bigint) =>
    view.setBigUint64(tableOffset + index * 8, descriptor, true);
  // The shim window is the last 2 MiB of the address space: index 511 at L0, L1 and L2.
  put(PRIVATE.L0, tableIndex(SHIM_VA_BASE, 0), tableDescriptor(regionIpa + BigInt(PRIVATE.L1)));
  put(PRIVATE.L1, tableIndex(SHIM_VA_BASE, 1), tableDescriptor(regionIpa + BigInt(PRIVATE.L2)));
  put(PRIVATE.L2, tableIndex(SHIM_VA_BASE, 2), tableDescriptor(regionIpa + BigInt(PRIVATE.L3)));
  for (let offset = PRIVATE.CODE; offset < PRIVATE.SLOTS; offset += PAGE_SIZE) {
    put(PRIVATE.L3, offset / PAGE_SIZE, codePageDescriptor(regionIpa + BigInt(offset)));
  }
  const slotsEnd = PRIVATE.SLOTS + MAX_VCPUS * VCPU_SLOT_SIZE;
  for (let offset = PRIVATE.SLOTS; offset < slotsEnd; offset += PAGE_SIZE) {
    put(PRIVATE.L3, offset / PAGE_SIZE, dataPageDescriptor(regionIpa + BigInt(offset)));
  }
}
