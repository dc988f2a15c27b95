/**
 * An independent AArch64 stage-1 translation walk for EL0 accesses, written from the Arm ARM (D8, VMSAv8-64),
 * not from @guest/pagetable or the emulator's core.c: it is what Hypervisor.framework's MMU does with the
 * bytes the runtime leaves in guest memory, so a test can compare "what the hardware would allow" with what
 * the emulator enforces and what the runtime believes.
 *
 * The translation regime assumed is the one the runtime programs: TTBR0_EL1 only (VA bits [63:48] zero,
 * T0SZ = 16), 4 KiB granule, starting at level 0, no FEAT_LPA2 (no L0 blocks), hardware access-flag update
 * off (AF = 0 faults), SCTLR_EL1.WXN = 0, no FEAT_PAN3/EPAN. Addresses are guest physical == slab offsets.
 */

/** Why a walk ended without a translation. */
export type Stage1Fault =
  /** Invalid descriptor, or a reserved encoding (L0 block, L3 with bits[1:0] = 0b01), or VA out of range. */
  | "translation"
  /** A valid leaf with AF = 0. */
  | "access-flag"
  /** A table or output address outside guest physical memory (a stage-2 / external abort on HVF). */
  | "outside-memory";

export type Stage1Walk =
  | { valid: false; fault: Stage1Fault; level: number; descriptor: bigint }
  | {
      valid: true;
      level: number;
      descriptor: bigint;
      /** Output (guest physical) address of the VA, offset included. */
      pa: number;
      /** EL0 permissions after AP[2:1], UXN and the hierarchical APTable/UXNTable controls. */
      read: boolean;
      write: boolean;
      exec: boolean;
      /** AttrIndx[2:0] (bits 4:2): the MAIR_EL1 slot selecting the memory type. */
      attrIndex: number;
    };

const BIT_VALID = 1n;
const BIT_TABLE = 2n;
/** AP[1]: EL0 access allowed. */
const BIT_AP1 = 1n << 6n;
/** AP[2]: read-only (at every EL). */
const BIT_AP2 = 1n << 7n;
const BIT_AF = 1n << 10n;
const BIT_UXN = 1n << 54n;
/** Table descriptors: UXNTable (bit 60), APTable[0] (bit 61: no EL0 access below), APTable[1] (bit 62: no writes below). */
const BIT_UXN_TABLE = 1n << 60n;
const BIT_AP_TABLE_NO_EL0 = 1n << 61n;
const BIT_AP_TABLE_READ_ONLY = 1n << 62n;
/** Next-level table address / page output address, bits [47:12]. */
const OA_MASK = 0x0000_ffff_ffff_f000n;
const GRANULE = 4096;
/** Bytes translated by one descriptor at each level (4 KiB granule). */
const SPAN = [2n ** 39n, 2n ** 30n, 2n ** 21n, 2n ** 12n] as const;
const VA_BITS = 48n;

function readDescriptor(memory: DataView, address: bigint): bigint {
  return memory.getBigUint64(Number(address), true);
}

/**
 * Translate `va` for an EL0 access the way the MMU does: `ttbr` is the guest PA of the level-0 table
 * (TTBR0_EL1.BADDR), `memory` the whole guest physical memory.
 */
export function walkStage1El0(memory: Uint8Array, ttbr: number, va: number): Stage1Walk {
  const view = new DataView(memory.buffer, memory.byteOffset, memory.byteLength);
  const size = BigInt(memory.byteLength);
  const address = BigInt(va);
  if (address < 0n || address >> VA_BITS !== 0n) {
    return { valid: false, fault: "translation", level: 0, descriptor: 0n };
  }
  let table = BigInt(ttbr);
  let noEl0 = false;
  let readOnly = false;
  let uxnTable = false;
  for (let level = 0; level <= 3; level++) {
    if (table + BigInt(GRANULE) > size) {
      return { valid: false, fault: "outside-memory", level, descriptor: 0n };
    }
    const index = (address / SPAN[level]!) % 512n;
    const descriptor = readDescriptor(view, table + index * 8n);
    if ((descriptor & BIT_VALID) === 0n) return { valid: false, fault: "translation", level, descriptor };
    const isTableOrPage = (descriptor & BIT_TABLE) !== 0n;
    if (level < 3 && isTableOrPage) {
      // Hierarchical controls only ever take permissions away.
      noEl0 ||= (descriptor & BIT_AP_TABLE_NO_EL0) !== 0n;
      readOnly ||= (descriptor & BIT_AP_TABLE_READ_ONLY) !== 0n;
      uxnTable ||= (descriptor & BIT_UXN_TABLE) !== 0n;
      table = descriptor & OA_MASK;
      continue;
    }
    // Level 0 blocks need FEAT_LPA2; 0b01 at level 3 is reserved. Both translate as invalid.
    if (level === 0 || (level === 3 && !isTableOrPage)) {
      return { valid: false, fault: "translation", level, descriptor };
    }
    if ((descriptor & BIT_AF) === 0n) return { valid: false, fault: "access-flag", level, descriptor };
    const span = SPAN[level]!;
    const base = descriptor & OA_MASK & ~(span - 1n);
    const pa = base + (address % span);
    if (pa >= size) return { valid: false, fault: "outside-memory", level, descriptor };
    const el0 = (descriptor & BIT_AP1) !== 0n && !noEl0;
    return {
      valid: true,
      level,
      descriptor,
      pa: Number(pa),
      read: el0,
      write: el0 && (descriptor & BIT_AP2) === 0n && !readOnly,
      // EL0 execution is governed by UXN alone (AP[1] = 0 with UXN = 0 is execute-only memory).
      exec: (descriptor & BIT_UXN) === 0n && !uxnTable,
      attrIndex: Number((descriptor >> 2n) & 7n),
    };
  }
  // Unreachable: level 3 always returns.
  return { valid: false, fault: "translation", level: 3, descriptor: 0n };
}
