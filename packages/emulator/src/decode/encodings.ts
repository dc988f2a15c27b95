/**
 * AArch64 load/store encoding classes the fault decoder recognises: an instruction word belongs to a class
 * when `(word & mask) === value`. Read off the Arm ARM (DDI 0487), C4.1.x "Loads and Stores" and the
 * system-instruction table for DC ZVA. The classes are disjoint. Kept apart from the decoding logic.
 */
export interface EncodingClass {
  readonly mask: number;
  readonly value: number;
}

export const LOAD_STORE_CLASS = {
  /** LD1-LD4/ST1-ST4 (multiple structures): 0 Q 0011000 L 000000 opcode size Rn Rt */
  simdMultiple: { mask: 0xbfbf0000, value: 0x0c000000 },
  /** … post-indexed: 0 Q 0011001 L 0 Rm opcode size Rn Rt (Rm = 31: immediate = bytes transferred) */
  simdMultiplePost: { mask: 0xbfa00000, value: 0x0c800000 },
  /** LD1-LD4/ST1-ST4 (single structure) and LD1R-LD4R: 0 Q 0011010 L R 00000 opcode S size Rn Rt */
  simdSingle: { mask: 0xbf9f0000, value: 0x0d000000 },
  /** … post-indexed: 0 Q 0011011 L R Rm opcode S size Rn Rt */
  simdSinglePost: { mask: 0xbf800000, value: 0x0d800000 },
  /** LDR (literal), LDRSW (literal), PRFM (literal): opc 011 V 00 imm19 Rt */
  literal: { mask: 0x3b000000, value: 0x18000000 },
  /** Exclusives, acquire/release, CAS, CASP: size 001000 o2 L o1 Rs o0 Rt2 Rn Rt */
  exclusiveOrdered: { mask: 0x3f000000, value: 0x08000000 },
  /** LDAPUR*, STLUR* (RCpc, unscaled immediate): size 011001 opc 0 imm9 00 Rn Rt */
  rcpcUnscaled: { mask: 0x3f200c00, value: 0x19000000 },
  /** LDP/STP/LDNP/STNP/LDPSW/STGP, all index modes: opc 101 V 0 idx(2) L imm7 Rt2 Rn Rt */
  pair: { mask: 0x3a000000, value: 0x28000000 },
  /** LDR/STR (unsigned immediate), PRFM (immediate): size 111 V 01 opc imm12 Rn Rt */
  registerUnsignedImmediate: { mask: 0x3b000000, value: 0x39000000 },
  /** LDUR/LDTR/pre/post-index (bit 21 = 0), register offset and LSE atomics (bit 21 = 1): size 111 V 00 opc … */
  register: { mask: 0x3b000000, value: 0x38000000 },
  /** DC ZVA, Xt (SYS #3, C7, C4, #1, Xt) */
  dcZva: { mask: 0xffffffe0, value: 0xd50b7420 },
} as const satisfies Record<string, EncodingClass>;

/** Sub-forms of the `register` class, selected by bits 21 and 11:10. */
export const REGISTER_FORM = {
  /** bit 21 = 0 */
  unscaled: 0b00,
  postIndex: 0b01,
  unprivileged: 0b10,
  preIndex: 0b11,
  /** bit 21 = 1 */
  atomic: 0b00,
  registerOffset: 0b10,
} as const;

/** Index modes of the pair class (bits 24:23). */
export const PAIR_INDEX = {
  noAllocate: 0b00,
  postIndex: 0b01,
  offset: 0b10,
  preIndex: 0b11,
} as const;

/** Register-offset extend options (bits 15:13); options with bit 14 clear are unallocated. */
export const EXTEND = {
  uxtw: 0b010,
  lsl: 0b011,
  sxtw: 0b110,
  sxtx: 0b111,
} as const;

/** Registers transferred by LD1-LD4/ST1-ST4 (multiple structures), by opcode (bits 15:12). */
export const SIMD_MULTIPLE_REGISTERS: Readonly<Record<number, number>> = {
  0: 4, // LD4/ST4
  2: 4, // LD1/ST1, four registers
  4: 3, // LD3/ST3
  6: 3, // LD1/ST1, three registers
  7: 1, // LD1/ST1, one register
  8: 2, // LD2/ST2
  10: 2, // LD1/ST1, two registers
};

/** LSE atomic memory operations (register class, bit 21 = 1, bits 11:10 = 00): o3 (bit 15), opc (14:12). */
export const ATOMIC_OP = {
  /** o3 = 0: LDADD, LDCLR, LDEOR, LDSET, LDSMAX, LDSMIN, LDUMAX, LDUMIN (every opc) */
  swap: 0b1000, // o3 = 1, opc = 000: SWP
  loadAcquirePc: 0b1100, // o3 = 1, opc = 100: LDAPR (RCpc)
} as const;

/** DC ZVA zeroes a block of 4 << DCZID_EL0.BS bytes; Unicorn's "max" CPU (like Linux hosts) has BS = 4. */
export const DC_ZVA_BLOCK_BYTES = 64;
