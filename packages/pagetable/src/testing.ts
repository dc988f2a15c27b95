/**
 * Test helpers: an independent table walker (decodes descriptors the way the hardware and the emulator's
 * C walker do, with BigInt and no shared code) and a seeded PRNG.
 */

export interface WalkResult {
  level: number;
  descriptor: bigint;
  pa: number;
  read: boolean;
  write: boolean;
  exec: boolean;
}

const OA_MASK = 0x0000_ffff_ffff_f000n;

/** EL0 view of va through the tables at `root`; null when the walk ends in an invalid descriptor. */
export function walk(memory: Uint8Array, root: number, va: number): WalkResult | null {
  const view = new DataView(memory.buffer, memory.byteOffset, memory.byteLength);
  const v = BigInt(va);
  let table = BigInt(root);
  for (let level = 0; level <= 3; level++) {
    const shift = BigInt(39 - 9 * level);
    const index = (v >> shift) & 511n;
    const slot = Number(table + index * 8n);
    if (slot + 8 > memory.byteLength) return null;
    const desc = view.getBigUint64(slot, true);
    if ((desc & 1n) === 0n) return null;
    const isTableOrPage = (desc & 2n) !== 0n;
    if (level < 3 && isTableOrPage) {
      table = desc & OA_MASK;
      continue;
    }
    if (level === 0 || (level === 3 && !isTableOrPage)) return null; // reserved encodings
    const blockBits = shift; // 12 (page), 21 (2 MiB), 30 (1 GiB)
    const blockMask = (1n << blockBits) - 1n;
    const pa = (desc & OA_MASK & ~blockMask) | (v & blockMask & ~0xfffn);
    const el0 = (desc & (1n << 6n)) !== 0n;
    const readOnly = (desc & (1n << 7n)) !== 0n;
    const uxn = (desc & (1n << 54n)) !== 0n;
    return {
      level,
      descriptor: desc,
      pa: Number(pa),
      read: el0,
      write: el0 && !readOnly,
      exec: !uxn,
    };
  }
  return null;
}

/** mulberry32: small, fast, deterministic. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
