import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import {
  assemblerUnavailable,
  assembleShim,
  renderShimModule,
  SHIM_BYTES_FILE,
  SHIM_SOURCE,
} from "../../scripts/build-shim.ts";
import {
  ACTION,
  FRAME,
  HVC,
  PRIVATE,
  PRIVATE_SIZE,
  SHIM_CODE_MAX,
  SHIM_ENTRY,
  SHIM_VA_BASE,
  VECTOR_COUNT,
  VECTOR_LOWER_A64_SYNC,
  VECTOR_STRIDE,
} from "./layout.ts";
import { SHIM_BYTES, SHIM_SYMBOLS } from "./shim-bytes.ts";
import { buildPrivateRegion, DESC, tableIndex } from "./tables.ts";

const word = (offset: number) =>
  new DataView(SHIM_BYTES.buffer, SHIM_BYTES.byteOffset).getUint32(offset, true);
/** HVC #imm16: 0xd4000002 | imm16 << 5. */
const hvc = (imm: number) => (0xd4000002 | (imm << 5)) >>> 0;

const unavailable = assemblerUnavailable();
if (unavailable) console.warn(`skipping the re-assembly check: ${unavailable}`);

test.skipIf(unavailable !== null)("shim-bytes.ts is exactly what shim.S assembles to", () => {
  const fresh = assembleShim();
  expect(fresh.symbols).toEqual({ ...SHIM_SYMBOLS });
  expect(fresh.bytes).toEqual(SHIM_BYTES);
  expect(readFileSync(SHIM_BYTES_FILE, "utf8")).toBe(renderShimModule(fresh));
});

test("shim.S's .equ constants agree with layout.ts", () => {
  const equ = Object.fromEntries(
    [...readFileSync(SHIM_SOURCE, "utf8").matchAll(/^\s*\.equ\s+(\w+),\s*(\w+)/gm)].map((m) => [
      m[1]!,
      Number(m[2]!),
    ]),
  );
  const expected: Record<string, number> = {
    FRAME_SIZE: FRAME.SIZE,
    FRAME_SP_EL0: FRAME.SP_EL0,
    FRAME_ELR: FRAME.ELR,
    FRAME_SPSR: FRAME.SPSR,
    FRAME_ESR: FRAME.ESR,
    FRAME_FAR: FRAME.FAR,
    FRAME_ACTION: FRAME.ACTION,
    FRAME_TLBI_PAGE: FRAME.TLBI_PAGE,
    FRAME_TLBI_COUNT: FRAME.TLBI_COUNT,
    FRAME_STOP: FRAME.STOP,
    ACTION_TLBI_ALL_BIT: Math.log2(Number(ACTION.TLBI_ALL)),
    ACTION_TLBI_PAGES_BIT: Math.log2(Number(ACTION.TLBI_PAGES)),
    ACTION_IC_IALLU_BIT: Math.log2(Number(ACTION.IC_IALLU)),
    HVC_STOP: HVC.STOP,
    HVC_SYSCALL: HVC.SYSCALL,
    HVC_EL0_EXCEPTION: HVC.EL0_EXCEPTION,
    HVC_BRK: HVC.BRK,
    HVC_ABORT: HVC.ABORT,
    HVC_BAD_VECTOR: HVC.BAD_VECTOR,
  };
  for (const [name, value] of Object.entries(expected))
    expect({ name, value: equ[name] }).toEqual({ name, value });
  // The frame holds x0..x30 then the saved system registers, 16-byte aligned for SP.
  expect<number>(FRAME.SP_EL0).toBe(31 * 8);
  expect(FRAME.SIZE % 16).toBe(0);
});

test("vector table: 2 KiB aligned, 16 entries of 0x80, only lower-EL AArch64 sync does work", () => {
  expect(SHIM_SYMBOLS.shim_vectors).toBe(SHIM_ENTRY.VECTORS);
  expect(SHIM_ENTRY.VECTORS % 2048).toBe(0);
  expect(SHIM_SYMBOLS.shim_resume).toBe(SHIM_ENTRY.RESUME);
  expect<number>(SHIM_SYMBOLS.shim_lower_a64_sync).toBe(SHIM_ENTRY.VECTORS + VECTOR_LOWER_A64_SYNC);
  expect<number>(SHIM_SYMBOLS.shim_end).toBe(SHIM_ENTRY.VECTORS + VECTOR_COUNT * VECTOR_STRIDE);
  for (let i = 0; i < VECTOR_COUNT; i++) {
    const offset = SHIM_ENTRY.VECTORS + i * VECTOR_STRIDE;
    if (offset - SHIM_ENTRY.VECTORS === VECTOR_LOWER_A64_SYNC) {
      expect(word(offset)).toBe(0xd10503ff); // sub sp, sp, #0x140 (FRAME.SIZE)
      expect(word(offset + 4)).toBe(0xa90007e0); // stp x0, x1, [sp]
    } else {
      expect(word(offset)).toBe(hvc(HVC.BAD_VECTOR + i));
      expect(word(offset + 4)).toBe(0x17ffffff); // b . - 4: back to the hvc
    }
  }
});

test("size limits and HVC immediates", () => {
  expect(SHIM_BYTES.length).toBeLessThanOrEqual(SHIM_CODE_MAX);
  expect(SHIM_BYTES.length % 4).toBe(0);
  const immediates = new Set<number>();
  for (let offset = 0; offset < SHIM_BYTES.length; offset += 4) {
    const w = word(offset);
    if ((w & 0xffe0001f) >>> 0 === 0xd4000002) immediates.add((w >>> 5) & 0xffff);
  }
  const protocol = [HVC.STOP, HVC.SYSCALL, HVC.EL0_EXCEPTION, HVC.BRK, HVC.ABORT];
  for (const imm of protocol) expect(immediates.has(imm)).toBe(true);
  for (const imm of immediates)
    expect((protocol as number[]).includes(imm) || (imm >= HVC.BAD_VECTOR && imm < HVC.BAD_VECTOR + 16)).toBe(
      true,
    );
  expect(PRIVATE_SIZE % (16 * 1024)).toBe(0);
});

/** A 4-level walk over the private region's TTBR1 tables, as the MMU would do it. */
function walk(region: Uint8Array, regionIpa: bigint, va: bigint) {
  const view = new DataView(region.buffer, region.byteOffset, region.byteLength);
  let table = regionIpa + BigInt(PRIVATE.L0);
  let apTableNoEl0 = false;
  for (let level = 0; level <= 3; level++) {
    const descriptor = view.getBigUint64(Number(table - regionIpa) + tableIndex(va, level) * 8, true);
    if ((descriptor & 3n) !== 3n) return null;
    if (level < 3) {
      apTableNoEl0 ||= (descriptor & DESC.AP_TABLE_NO_EL0) !== 0n;
      table = descriptor & DESC.ADDRESS_MASK;
      continue;
    }
    return {
      pa: (descriptor & DESC.ADDRESS_MASK) | (va & 0xfffn),
      el1Writable: ((descriptor >> 7n) & 1n) === 0n,
      el0Access: ((descriptor >> 6n) & 1n) === 1n && !apTableNoEl0,
      el1Executable: (descriptor & DESC.PXN) === 0n,
      el0Executable: (descriptor & DESC.UXN) === 0n,
      attrIndex: Number((descriptor >> 2n) & 7n),
      accessFlag: (descriptor & DESC.AF) !== 0n,
    };
  }
  return null;
}

test("TTBR1 tables: code RX at EL1, slots RW at EL1, tables unmapped, nothing for EL0", () => {
  const region = new Uint8Array(PRIVATE_SIZE);
  const ipa = 0x10_0000_0000n;
  buildPrivateRegion(region, ipa);
  expect(region.subarray(PRIVATE.CODE, PRIVATE.CODE + SHIM_BYTES.length)).toEqual(SHIM_BYTES);
  const code = walk(region, ipa, SHIM_VA_BASE + BigInt(PRIVATE.CODE + 0x804))!;
  expect(code).toEqual({
    pa: ipa + BigInt(PRIVATE.CODE + 0x804),
    el1Writable: false,
    el0Access: false,
    el1Executable: true,
    el0Executable: false,
    attrIndex: 0,
    accessFlag: true,
  });
  const lastSlot = walk(region, ipa, SHIM_VA_BASE + BigInt(PRIVATE_SIZE - 8))!;
  expect(lastSlot).toMatchObject({
    pa: ipa + BigInt(PRIVATE_SIZE - 8),
    el1Writable: true,
    el1Executable: false,
    el0Access: false,
  });
  expect(walk(region, ipa, SHIM_VA_BASE + BigInt(PRIVATE.L3))).toBeNull(); // page tables are not mapped
  expect(walk(region, ipa, SHIM_VA_BASE + BigInt(PRIVATE_SIZE))).toBeNull(); // nothing past the slots
  expect(walk(region, ipa, SHIM_VA_BASE - 0x1000n)).toBeNull();
  expect(() => buildPrivateRegion(region, ipa, new Uint8Array(SHIM_CODE_MAX + 4))).toThrow(/slot holds/);
});
