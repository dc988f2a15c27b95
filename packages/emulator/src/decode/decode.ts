/**
 * Which bytes an AArch64 load/store touches: a pure decoder used only on fault exits, to turn the
 * page-rounded address Unicorn's TLB-fill hook sees into the exact faulting address Linux reports in
 * si_addr (FAR_EL1). Not a full disassembler: it answers "what address, how many bytes, read or write"
 * for the load/store classes compilers and libcs emit, and null for everything else (including PRFM,
 * which never faults).
 */
import {
  ATOMIC_OP,
  LOAD_STORE_CLASS as C,
  DC_ZVA_BLOCK_BYTES,
  type EncodingClass,
  EXTEND,
  PAIR_INDEX,
  REGISTER_FORM,
  SIMD_MULTIPLE_REGISTERS,
} from "./encodings.ts";

export interface MemoryAccess {
  /** Effective address of the access's first byte, mod 2^64 (before any writeback). */
  address: bigint;
  /** Bytes covered, contiguous from `address`. */
  size: number;
  /** The access reads memory (loads, and the read half of atomics and CAS). */
  read: boolean;
  /**
   * The access writes memory. Atomic read-modify-writes (LDADD…, SWP, CAS, CASP) are reads *and* writes;
   * Linux reports any fault of theirs as a write fault (arm64 sets ESR.WnR for atomics).
   */
  write: boolean;
  /** Two-register transfers (LDP/STP/LDNP/STNP/LDPSW/STGP, LDXP/STXP, CASP): each half's size. */
  pair?: { elementSize: number };
}

/** General register n (0..30) as an unsigned 64-bit value. Register 31 is never asked for. */
export type RegisterReader = (n: number) => bigint;

const MASK64 = (1n << 64n) - 1n;
const NONE = null;

function is(word: number, cls: EncodingClass): boolean {
  return (word & cls.mask) >>> 0 === cls.value;
}

function field(word: number, low: number, width: number): number {
  return (word >>> low) & ((1 << width) - 1);
}

/** Sign-extended bits [low, low+width) of `word`. */
function signedField(word: number, low: number, width: number): number {
  const shift = 32 - width - low;
  return (word << shift) >> (32 - width);
}

function access(address: bigint, size: number, read: boolean, write: boolean, pair?: number): MemoryAccess {
  const result: MemoryAccess = { address: address & MASK64, size, read, write };
  if (pair !== undefined) result.pair = { elementSize: pair };
  return result;
}

/**
 * Decode `instruction` (the 32-bit word at PC) into the memory it accesses, or null when it is not a
 * load/store this decoder knows (or is a prefetch, or unallocated). `reg(n)` reads Xn; `sp` is the stack
 * pointer (base register 31 of an address means SP), `pc` the instruction's address (literal loads).
 */
export function memoryAccessOf(
  instruction: number,
  reg: RegisterReader,
  sp: bigint,
  pc: bigint,
): MemoryAccess | null {
  const word = instruction >>> 0;
  // Load/store instructions have bit 27 = 1 and bit 25 = 0; DC ZVA is the one system instruction handled.
  if ((word & 0x0a000000) !== 0x08000000) {
    if (is(word, C.dcZva)) {
      const rt = field(word, 0, 5);
      const value = rt === 31 ? 0n : reg(rt);
      return access(value & ~BigInt(DC_ZVA_BLOCK_BYTES - 1), DC_ZVA_BLOCK_BYTES, false, true);
    }
    return NONE;
  }
  if (is(word, C.literal)) return literalClass(word, pc);
  // Every other class addresses memory from Rn (bits 9:5), where 31 means SP.
  const rn = field(word, 5, 5);
  const base = rn === 31 ? sp : reg(rn);
  if (is(word, C.registerUnsignedImmediate) || is(word, C.register)) return registerClass(word, base, reg);
  if (is(word, C.pair)) return pairClass(word, base);
  if (is(word, C.exclusiveOrdered)) return exclusiveOrderedClass(word, base);
  if (is(word, C.rcpcUnscaled)) return rcpcUnscaledClass(word, base);
  if (is(word, C.simdMultiple) || is(word, C.simdMultiplePost)) return simdMultipleClass(word, base);
  if (is(word, C.simdSingle) || is(word, C.simdSinglePost)) return simdSingleClass(word, base);
  return NONE;
}

/** Element size and direction of the single-register forms (size, V, opc), or null (prefetch/unallocated). */
function registerElement(word: number): { size: number; write: boolean } | null {
  const size = field(word, 30, 2);
  const simd = field(word, 26, 1) === 1;
  const opc = field(word, 22, 2);
  if (simd) {
    if (opc & 2) return size === 0 ? { size: 16, write: opc === 2 } : NONE; // STR/LDR Qt
    return { size: 1 << size, write: opc === 0 };
  }
  if (opc === 0) return { size: 1 << size, write: true };
  if (opc === 1) return { size: 1 << size, write: false };
  // opc 1x: sign-extending loads; size 3 with opc 2 is PRFM/PRFUM, size 2 with opc 3 is unallocated.
  if (size === 3 || (size === 2 && opc === 3)) return NONE;
  return { size: 1 << size, write: false };
}

function registerClass(word: number, base: bigint, reg: RegisterReader): MemoryAccess | null {
  if (field(word, 24, 1) === 1) {
    const element = registerElement(word);
    if (!element) return NONE;
    const offset = BigInt(field(word, 10, 12) * element.size);
    return access(base + offset, element.size, !element.write, element.write);
  }
  const form = field(word, 10, 2);
  if (field(word, 21, 1) === 0) {
    const element = registerElement(word);
    if (!element) return NONE;
    if (form === REGISTER_FORM.unprivileged && field(word, 26, 1) === 1) return NONE;
    const offset = form === REGISTER_FORM.postIndex ? 0n : BigInt(signedField(word, 12, 9));
    return access(base + offset, element.size, !element.write, element.write);
  }
  if (form === REGISTER_FORM.registerOffset) {
    const element = registerElement(word);
    if (!element) return NONE;
    const option = field(word, 13, 3);
    if ((option & 2) === 0) return NONE;
    const rm = field(word, 16, 5); // 31 is XZR here
    let offset = rm === 31 ? 0n : reg(rm);
    if (option === EXTEND.uxtw) offset &= 0xffffffffn;
    else if (option === EXTEND.sxtw) offset = BigInt.asIntN(32, offset);
    const shift = field(word, 12, 1) === 1 ? BigInt(Math.log2(element.size)) : 0n;
    return access(base + (offset << shift), element.size, !element.write, element.write);
  }
  if (form === REGISTER_FORM.atomic && field(word, 26, 1) === 0) return atomicClass(word, base);
  return NONE; // LDRAA/LDRAB (pointer authentication) and unallocated encodings
}

function atomicClass(word: number, base: bigint): MemoryAccess | null {
  const size = 1 << field(word, 30, 2);
  const op = field(word, 12, 4); // o3:opc
  if (op < 0b1000 || op === ATOMIC_OP.swap) return access(base, size, true, true);
  if (op === ATOMIC_OP.loadAcquirePc) return access(base, size, true, false);
  return NONE; // LD64B/ST64B* and unallocated
}

function pairClass(word: number, base: bigint): MemoryAccess | null {
  const opc = field(word, 30, 2);
  const simd = field(word, 26, 1) === 1;
  const mode = field(word, 23, 2);
  const load = field(word, 22, 1) === 1;
  let element: number;
  let scale: number;
  if (simd) {
    if (opc === 3) return NONE;
    element = 4 << opc; // S, D, Q
    scale = element;
  } else if (opc === 0 || opc === 2) {
    element = opc === 0 ? 4 : 8;
    scale = element;
  } else if (opc === 1 && mode !== PAIR_INDEX.noAllocate) {
    // LDPSW (two words, sign-extended) or STGP (two doublewords plus a tag; offset scaled by the 16-byte granule).
    element = load ? 4 : 8;
    scale = load ? 4 : 16;
  } else {
    return NONE;
  }
  const offset = mode === PAIR_INDEX.postIndex ? 0n : BigInt(signedField(word, 15, 7) * scale);
  return access(base + offset, 2 * element, load, !load, element);
}

function literalClass(word: number, pc: bigint): MemoryAccess | null {
  const opc = field(word, 30, 2);
  if (opc === 3) return NONE; // PRFM (literal), or unallocated for SIMD&FP
  const size = field(word, 26, 1) === 1 ? 4 << opc : opc === 1 ? 8 : 4;
  return access(pc + BigInt(signedField(word, 5, 19) * 4), size, true, false);
}

function exclusiveOrderedClass(word: number, base: bigint): MemoryAccess | null {
  const size = field(word, 30, 2);
  const ordered = field(word, 23, 1) === 1; // o2
  const load = field(word, 22, 1) === 1;
  const pairOrCas = field(word, 21, 1) === 1; // o1
  if (!pairOrCas) return access(base, 1 << size, load, !load); // LD(A)XR/ST(L)XR, LDAR/STLR, LDLAR/STLLR
  if (ordered) return access(base, 1 << size, true, true); // CAS{A,L,AL}{B,H}
  if (size >= 2) {
    const element = size === 2 ? 4 : 8; // LD(A)XP/ST(L)XP
    return access(base, 2 * element, load, !load, element);
  }
  const element = size === 0 ? 4 : 8; // CASP{A,L,AL}
  return access(base, 2 * element, true, true, element);
}

function rcpcUnscaledClass(word: number, base: bigint): MemoryAccess | null {
  const size = field(word, 30, 2);
  const opc = field(word, 22, 2);
  // opc 00 STLUR, 01 LDAPUR, 10 LDAPURS (to 64 bits), 11 LDAPURS (to 32 bits).
  if ((opc === 2 && size === 3) || (opc === 3 && size >= 2)) return NONE;
  const write = opc === 0;
  return access(base + BigInt(signedField(word, 12, 9)), 1 << size, !write, write);
}

function simdMultipleClass(word: number, base: bigint): MemoryAccess | null {
  const registers = SIMD_MULTIPLE_REGISTERS[field(word, 12, 4)];
  if (registers === undefined) return NONE;
  const size = registers * (field(word, 30, 1) === 1 ? 16 : 8);
  const write = field(word, 22, 1) === 0;
  return access(base, size, !write, write);
}

function simdSingleClass(word: number, base: bigint): MemoryAccess | null {
  const load = field(word, 22, 1) === 1;
  const opcode = field(word, 13, 3);
  const s = field(word, 12, 1);
  const size = field(word, 10, 2);
  const elements = (((opcode & 1) << 1) | field(word, 21, 1)) + 1;
  let element: number;
  switch (opcode >> 1) {
    case 0: // B lanes
      element = 1;
      break;
    case 1: // H lanes
      if (size & 1) return NONE;
      element = 2;
      break;
    case 2: // S or D lanes
      if (size & 2 || (size === 1 && s === 1)) return NONE;
      element = size === 1 ? 8 : 4;
      break;
    default: // LD1R-LD4R: load and replicate one structure
      if (!load || s === 1) return NONE;
      element = 1 << size;
  }
  return access(base, elements * element, load, !load);
}
