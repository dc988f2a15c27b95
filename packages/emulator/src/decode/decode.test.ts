import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type MemoryAccess, memoryAccessOf } from "./decode.ts";
import { exactFaultAddress } from "./fault-address.ts";

// Register file every case runs against. Register 31 is never read through `reg` (it is SP or XZR).
const X: Record<number, bigint> = {
  1: 0x500000n,
  2: 0x10n,
  3: 0xfffffffffffffff8n, // -8
  4: 0x1_0000_0010n, // UXTW/SXTW keep 0x10
  5: 0x80000000n, // SXTW gives -2^31
  8: 0x500123n,
  29: 0x7fe000n,
  30: 0x401000n,
};
const SP = 0x7ff000n;
const PC = 0x400000n;

function reg(n: number): bigint {
  if (!Number.isInteger(n) || n < 0 || n > 30) throw new Error(`decoder read register ${n}`);
  return X[n] ?? 0xdead0000n + BigInt(n);
}

/** [word from aarch64-linux-gnu-as, source, address, size, "r"/"w"/"rw", pair element size] or [word, source, null]. */
type Case =
  | readonly [number, string, bigint, number, "r" | "w" | "rw", number?]
  | readonly [number, string, null];

// Words assembled with `aarch64-linux-gnu-as -march=armv8.5-a+memtag+pauth` (binutils 2.40); the assembler
// test below re-assembles every source line and checks these words, so the table cannot drift.
const CASES: readonly Case[] = [
  // LDR/STR, unsigned immediate offset (scaled)
  [0xf9400020, "ldr x0, [x1]", 0x500000n, 8, "r"],
  [0xb9400820, "ldr w0, [x1, #8]", 0x500008n, 4, "r"],
  [0xf97ffc20, "ldr x0, [x1, #32760]", 0x507ff8n, 8, "r"],
  [0xf9000820, "str x0, [x1, #16]", 0x500010n, 8, "w"],
  [0x393ffc20, "strb w0, [x1, #4095]", 0x500fffn, 1, "w"],
  [0x79400420, "ldrh w0, [x1, #2]", 0x500002n, 2, "r"],
  [0x39800420, "ldrsb x0, [x1, #1]", 0x500001n, 1, "r"],
  [0x79c00c20, "ldrsh w0, [x1, #6]", 0x500006n, 2, "r"],
  [0xb9800420, "ldrsw x0, [x1, #4]", 0x500004n, 4, "r"],
  // pre/post-index, unscaled, unprivileged
  [0xf8410c20, "ldr x0, [x1, #16]!", 0x500010n, 8, "r"],
  [0xf8410420, "ldr x0, [x1], #16", 0x500000n, 8, "r"],
  [0xb81fcc20, "str w0, [x1, #-4]!", 0x4ffffcn, 4, "w"],
  [0x781fe420, "strh w0, [x1], #-2", 0x500000n, 2, "w"],
  [0xf85f8020, "ldur x0, [x1, #-8]", 0x4ffff8n, 8, "r"],
  [0xb8003020, "stur w0, [x1, #3]", 0x500003n, 4, "w"],
  [0x385ff020, "ldurb w0, [x1, #-1]", 0x4fffffn, 1, "r"],
  [0xf8408820, "ldtr x0, [x1, #8]", 0x500008n, 8, "r"],
  [0x381fd820, "sttrb w0, [x1, #-3]", 0x4ffffdn, 1, "w"],
  // register offset
  [0xf8626820, "ldr x0, [x1, x2]", 0x500010n, 8, "r"],
  [0xf8627820, "ldr x0, [x1, x2, lsl #3]", 0x500080n, 8, "r"],
  [0xb8644820, "ldr w0, [x1, w4, uxtw]", 0x500010n, 4, "r"],
  [0xb8645820, "ldr w0, [x1, w4, uxtw #2]", 0x500040n, 4, "r"],
  [0xf865c820, "ldr x0, [x1, w5, sxtw]", 0xffffffff80500000n, 8, "r"],
  [0xf863f820, "ldr x0, [x1, x3, sxtx #3]", 0x4fffc0n, 8, "r"],
  [0x38236820, "strb w0, [x1, x3]", 0x4ffff8n, 1, "w"],
  [0x78627820, "ldrh w0, [x1, x2, lsl #1]", 0x500020n, 2, "r"],
  [0xb8a25820, "ldrsw x0, [x1, w2, uxtw #2]", 0x500040n, 4, "r"],
  [0xf87f6820, "ldr x0, [x1, xzr]", 0x500000n, 8, "r"],
  // SP as base, and wrap-around mod 2^64
  [0xf94007e0, "ldr x0, [sp, #8]", 0x7ff008n, 8, "r"],
  [0xf81f0ffe, "str x30, [sp, #-16]!", 0x7feff0n, 8, "w"],
  [0xf9400860, "ldr x0, [x3, #16]", 0x8n, 8, "r"],
  // literal (PC-relative)
  [0x58000080, "ldr x0, .+16", 0x400010n, 8, "r"],
  [0x18ffffc0, "ldr w0, .-8", 0x3ffff8n, 4, "r"],
  [0x98002000, "ldrsw x0, .+1024", 0x400400n, 4, "r"],
  [0x9c000100, "ldr q0, .+32", 0x400020n, 16, "r"],
  [0x5c000040, "ldr d0, .+8", 0x400008n, 8, "r"],
  [0x1c000020, "ldr s0, .+4", 0x400004n, 4, "r"],
  // prefetches never fault
  [0xd8000200, "prfm pldl1keep, .+64", null],
  [0xf9800020, "prfm pldl1keep, [x1]", null],
  [0xf8a26830, "prfm pstl1keep, [x1, x2]", null],
  [0xf89ff020, "prfum pldl1keep, [x1, #-1]", null],
  // SIMD&FP LDR/STR
  [0x3d400420, "ldr b0, [x1, #1]", 0x500001n, 1, "r"],
  [0x7d400420, "ldr h0, [x1, #2]", 0x500002n, 2, "r"],
  [0xbd400420, "ldr s0, [x1, #4]", 0x500004n, 4, "r"],
  [0xfd400420, "ldr d0, [x1, #8]", 0x500008n, 8, "r"],
  [0x3dc00420, "ldr q0, [x1, #16]", 0x500010n, 16, "r"],
  [0x3c9e0fe0, "str q0, [sp, #-32]!", 0x7fefe0n, 16, "w"],
  [0x3cdff020, "ldur q0, [x1, #-1]", 0x4fffffn, 16, "r"],
  [0x3ce27821, "ldr q1, [x1, x2, lsl #4]", 0x500100n, 16, "r"],
  [0xfc008420, "str d0, [x1], #8", 0x500000n, 8, "w"],
  // pairs
  [0xa9411820, "ldp x0, x6, [x1, #16]", 0x500010n, 16, "r", 8],
  [0xa9bf7bfd, "stp x29, x30, [sp, #-16]!", 0x7feff0n, 16, "w", 8],
  [0xa8c17bfd, "ldp x29, x30, [sp], #16", 0x7ff000n, 16, "r", 8],
  [0x297f1820, "ldp w0, w6, [x1, #-8]", 0x4ffff8n, 8, "r", 4],
  [0x28811820, "stp w0, w6, [x1], #8", 0x500000n, 8, "w", 4],
  [0xa85f9820, "ldnp x0, x6, [x1, #504]", 0x5001f8n, 16, "r", 8],
  [0xac200420, "stnp q0, q1, [x1, #-1024]", 0x4ffc00n, 32, "w", 16],
  [0xad4107e0, "ldp q0, q1, [sp, #32]", 0x7ff020n, 32, "r", 16],
  [0x6d600420, "ldp d0, d1, [x1, #-512]", 0x4ffe00n, 16, "r", 8],
  [0x2d808420, "stp s0, s1, [x1, #4]!", 0x500004n, 8, "w", 4],
  [0x69411820, "ldpsw x0, x6, [x1, #8]", 0x500008n, 8, "r", 4],
  [0x68ff1820, "ldpsw x0, x6, [x1], #-8", 0x500000n, 8, "r", 4],
  [0x2c400420, "ldnp s0, s1, [x1]", 0x500000n, 8, "r", 4],
  [0x69011820, "stgp x0, x6, [x1, #32]", 0x500020n, 16, "w", 8],
  // LD1-LD4/ST1-ST4, multiple structures
  [0x4c407020, "ld1 {v0.16b}, [x1]", 0x500000n, 16, "r"],
  [0x0c407020, "ld1 {v0.8b}, [x1]", 0x500000n, 8, "r"],
  [0x4c40a020, "ld1 {v0.16b, v1.16b}, [x1]", 0x500000n, 32, "r"],
  [0x4c406820, "ld1 {v0.4s-v2.4s}, [x1]", 0x500000n, 48, "r"],
  [0x4cdf2c20, "ld1 {v0.2d-v3.2d}, [x1], #64", 0x500000n, 64, "r"],
  [0x4c827020, "st1 {v0.16b}, [x1], x2", 0x500000n, 16, "w"],
  [0x4c408420, "ld2 {v0.8h, v1.8h}, [x1]", 0x500000n, 32, "r"],
  [0x0c004020, "st3 {v0.8b-v2.8b}, [x1]", 0x500000n, 24, "w"],
  [0x4c400be0, "ld4 {v0.4s-v3.4s}, [sp]", 0x7ff000n, 64, "r"],
  [0x0c9fa820, "st1 {v0.2s, v1.2s}, [x1], #16", 0x500000n, 16, "w"],
  // single structure (lanes) and load-and-replicate
  [0x0d400c20, "ld1 {v0.b}[3], [x1]", 0x500000n, 1, "r"],
  [0x0d404820, "ld1 {v0.h}[1], [x1]", 0x500000n, 2, "r"],
  [0x4ddf8020, "ld1 {v0.s}[2], [x1], #4", 0x500000n, 4, "r"],
  [0x4d008420, "st1 {v0.d}[1], [x1]", 0x500000n, 8, "w"],
  [0x4d40c820, "ld1r {v0.4s}, [x1]", 0x500000n, 4, "r"],
  [0x4dc2cc20, "ld1r {v0.2d}, [x1], x2", 0x500000n, 8, "r"],
  [0x0d609020, "ld2 {v0.s, v1.s}[1], [x1]", 0x500000n, 8, "r"],
  [0x4d60e020, "ld4r {v0.16b-v3.16b}, [x1]", 0x500000n, 4, "r"],
  [0x0d20a420, "st4 {v0.d, v1.d, v2.d, v3.d}[0], [x1]", 0x500000n, 32, "w"],
  [0x4ddf7820, "ld3 {v0.h-v2.h}[7], [x1], #6", 0x500000n, 6, "r"],
  // exclusives
  [0xc85f7c20, "ldxr x0, [x1]", 0x500000n, 8, "r"],
  [0x085f7c20, "ldxrb w0, [x1]", 0x500000n, 1, "r"],
  [0x485ffc20, "ldaxrh w0, [x1]", 0x500000n, 2, "r"],
  [0xc8077c20, "stxr w7, x0, [x1]", 0x500000n, 8, "w"],
  [0x8807ffe0, "stlxr w7, w0, [sp]", 0x7ff000n, 4, "w"],
  [0x08077c20, "stxrb w7, w0, [x1]", 0x500000n, 1, "w"],
  [0xc87f1820, "ldxp x0, x6, [x1]", 0x500000n, 16, "r", 8],
  [0x88279820, "stlxp w7, w0, w6, [x1]", 0x500000n, 8, "w", 4],
  [0xc87f9be0, "ldaxp x0, x6, [sp]", 0x7ff000n, 16, "r", 8],
  // acquire/release, LORegions, RCpc
  [0xc8dffc20, "ldar x0, [x1]", 0x500000n, 8, "r"],
  [0x08dffc20, "ldarb w0, [x1]", 0x500000n, 1, "r"],
  [0x889ffc20, "stlr w0, [x1]", 0x500000n, 4, "w"],
  [0x489ffc20, "stlrh w0, [x1]", 0x500000n, 2, "w"],
  [0xc8df7c20, "ldlar x0, [x1]", 0x500000n, 8, "r"],
  [0x889f7c20, "stllr w0, [x1]", 0x500000n, 4, "w"],
  [0xf8bfc020, "ldapr x0, [x1]", 0x500000n, 8, "r"],
  [0x38bfc020, "ldaprb w0, [x1]", 0x500000n, 1, "r"],
  [0xd95f8020, "ldapur x0, [x1, #-8]", 0x4ffff8n, 8, "r"],
  [0x990ff020, "stlur w0, [x1, #255]", 0x5000ffn, 4, "w"],
  [0x99804020, "ldapursw x0, [x1, #4]", 0x500004n, 4, "r"],
  [0x19d00020, "ldapursb w0, [x1, #-256]", 0x4fff00n, 1, "r"],
  // LSE atomics: read and write
  [0xf8200026, "ldadd x0, x6, [x1]", 0x500000n, 8, "rw"],
  [0xb8e003e6, "ldaddal w0, w6, [sp]", 0x7ff000n, 4, "rw"],
  [0x38200026, "ldaddb w0, w6, [x1]", 0x500000n, 1, "rw"],
  [0x78201026, "ldclrh w0, w6, [x1]", 0x500000n, 2, "rw"],
  [0xf8a02026, "ldeora x0, x6, [x1]", 0x500000n, 8, "rw"],
  [0xb8603026, "ldsetl w0, w6, [x1]", 0x500000n, 4, "rw"],
  [0xf8204026, "ldsmax x0, x6, [x1]", 0x500000n, 8, "rw"],
  [0xf8205026, "ldsmin x0, x6, [x1]", 0x500000n, 8, "rw"],
  [0xb8206026, "ldumax w0, w6, [x1]", 0x500000n, 4, "rw"],
  [0x38e07026, "lduminalb w0, w6, [x1]", 0x500000n, 1, "rw"],
  [0xf820003f, "stadd x0, [x1]", 0x500000n, 8, "rw"],
  [0xf8208026, "swp x0, x6, [x1]", 0x500000n, 8, "rw"],
  [0x78e08026, "swpalh w0, w6, [x1]", 0x500000n, 2, "rw"],
  [0xc8a07c26, "cas x0, x6, [x1]", 0x500000n, 8, "rw"],
  [0x88e0fc26, "casal w0, w6, [x1]", 0x500000n, 4, "rw"],
  [0x08a07c26, "casb w0, w6, [x1]", 0x500000n, 1, "rw"],
  [0x48e07c26, "casah w0, w6, [x1]", 0x500000n, 2, "rw"],
  [0x48227c26, "casp x2, x3, x6, x7, [x1]", 0x500000n, 16, "rw", 8],
  [0x0862ffe6, "caspal w2, w3, w6, w7, [sp]", 0x7ff000n, 8, "rw", 4],
  // DC ZVA: the whole 64-byte block
  [0xd50b7421, "dc zva, x1", 0x500000n, 64, "w"],
  [0xd50b7428, "dc zva, x8", 0x500100n, 64, "w"],
  // not memory accesses this decoder reports
  [0x8b020020, "add x0, x1, x2", null],
  [0x14000002, "b .+8", null],
  [0xd503201f, "nop", null],
  [0xd50b7e21, "dc civac, x1", null],
  [0xd4000001, "svc #0", null],
  [0xf8200420, "ldraa x0, [x1]", null],
];

// Checked only where the assembler exists: more variants of the same classes, assembled at test time.
const ASSEMBLER_ONLY: readonly (readonly [string, bigint, number, "r" | "w" | "rw", number?])[] = [
  ["ldrb w0, [x1, w5, sxtw]", 0xffffffff80500000n, 1, "r"],
  ["ldrsh x0, [x1, x2, lsl #1]", 0x500020n, 2, "r"],
  ["str q0, [x1, x3, sxtx #4]", 0x4fff80n, 16, "w"],
  ["ldr h0, [x1, w4, uxtw #1]", 0x500020n, 2, "r"],
  ["sturh w0, [sp, #-255]", 0x7fef01n, 2, "w"],
  ["ldursw x0, [x29, #-4]", 0x7fdffcn, 4, "r"],
  ["ldr x30, [sp], #32", 0x7ff000n, 8, "r"],
  ["stp q0, q1, [x1, #-1024]!", 0x4ffc00n, 32, "w", 16],
  ["ldp x0, x6, [x1, #-512]", 0x4ffe00n, 16, "r", 8],
  ["stp w0, w6, [sp, #252]", 0x7ff0fcn, 8, "w", 4],
  ["ld1 {v0.1d}, [x1]", 0x500000n, 8, "r"],
  ["st2 {v0.4s, v1.4s}, [x1], #32", 0x500000n, 32, "w"],
  ["ld3 {v0.16b-v2.16b}, [x1], x2", 0x500000n, 48, "r"],
  ["st1 {v0.16b-v3.16b}, [sp]", 0x7ff000n, 64, "w"],
  ["ld2r {v0.8h, v1.8h}, [x1]", 0x500000n, 4, "r"],
  ["ld3r {v0.1d-v2.1d}, [x1], #24", 0x500000n, 24, "r"],
  ["st2 {v0.b, v1.b}[15], [x1], #2", 0x500000n, 2, "w"],
  ["ld4 {v0.s-v3.s}[3], [x1]", 0x500000n, 16, "r"],
  ["stlxrh w7, w0, [x1]", 0x500000n, 2, "w"],
  ["ldaxr w0, [sp]", 0x7ff000n, 4, "r"],
  ["ldxp w0, w6, [x1]", 0x500000n, 8, "r", 4],
  ["stlrb w0, [sp]", 0x7ff000n, 1, "w"],
  ["ldaprh w0, [x1]", 0x500000n, 2, "r"],
  ["stlurh w0, [x1, #-2]", 0x4ffffen, 2, "w"],
  ["ldapurh w0, [x1, #2]", 0x500002n, 2, "r"],
  ["ldapursh x0, [x1, #-6]", 0x4ffffan, 2, "r"],
  ["ldsminab w0, w6, [x1]", 0x500000n, 1, "rw"],
  ["ldclral x0, x6, [sp]", 0x7ff000n, 8, "rw"],
  ["ldumaxlh w0, w6, [x1]", 0x500000n, 2, "rw"],
  ["swpa w0, w6, [x1]", 0x500000n, 4, "rw"],
  ["casl x0, x6, [sp]", 0x7ff000n, 8, "rw"],
  ["caspa x2, x3, x6, x7, [x1]", 0x500000n, 16, "rw", 8],
  ["steor w0, [x1]", 0x500000n, 4, "rw"],
];

function expected(address: bigint, size: number, rw: string, pair?: number): MemoryAccess {
  const access: MemoryAccess = { address, size, read: rw.includes("r"), write: rw.includes("w") };
  if (pair !== undefined) access.pair = { elementSize: pair };
  return access;
}

function expectedOf(entry: Case): MemoryAccess | null {
  if (entry[2] === null) return null;
  const [, , address, size, rw, pair] = entry;
  return expected(address, size, rw, pair);
}

const decode = (word: number) => memoryAccessOf(word, reg, SP, PC);

describe("memoryAccessOf (embedded encodings)", () => {
  for (const entry of CASES) {
    test(entry[1], () => {
      expect(decode(entry[0])).toEqual(expectedOf(entry));
    });
  }

  test("random words never throw, never read register 31, and stay within 64 bytes", () => {
    // Deterministic xorshift32, biased to the load/store space (bit 27 = 1, bit 25 = 0) half the time.
    let state = 0x9e3779b9;
    let decoded = 0;
    for (let i = 0; i < 50_000; i++) {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      const word = i & 1 ? (state & ~0x02000000) | 0x08000000 : state;
      const access = decode(word);
      if (!access) continue;
      decoded++;
      expect(access.size).toBeGreaterThanOrEqual(1);
      expect(access.size).toBeLessThanOrEqual(64);
      expect(access.address).toBeGreaterThanOrEqual(0n);
      expect(access.address < 1n << 64n).toBe(true);
      expect(access.read || access.write).toBe(true);
    }
    expect(decoded).toBeGreaterThan(1000);
  });
});

/** Assemble `lines` with the cross assembler; null (with a message) when it is not installed. */
function assemble(lines: readonly string[]): number[] | null {
  if (!Bun.which("aarch64-linux-gnu-as") || !Bun.which("aarch64-linux-gnu-objcopy")) return null;
  const dir = mkdtempSync(join(tmpdir(), "decode-test-"));
  try {
    writeFileSync(join(dir, "t.s"), `${lines.join("\n")}\n`);
    const as = Bun.spawnSync(
      ["aarch64-linux-gnu-as", "-march=armv8.5-a+memtag+pauth", "-o", join(dir, "t.o"), join(dir, "t.s")],
      { stderr: "pipe" },
    );
    if (as.exitCode !== 0) throw new Error(`assembler failed: ${as.stderr.toString()}`);
    const copy = Bun.spawnSync([
      "aarch64-linux-gnu-objcopy",
      "-O",
      "binary",
      "-j",
      ".text",
      join(dir, "t.o"),
      join(dir, "t.bin"),
    ]);
    if (copy.exitCode !== 0) throw new Error("objcopy failed");
    const bytes = readFileSync(join(dir, "t.bin"));
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return lines.map((_, i) => view.getUint32(i * 4, true));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const assembled = assemble([...CASES.map((c) => c[1]), ...ASSEMBLER_ONLY.map((c) => c[0])]);
if (!assembled) console.warn("decode.test.ts: aarch64-linux-gnu-as not found; assembler cases skipped");

describe.skipIf(!assembled)("memoryAccessOf (assembled at test time)", () => {
  test("every embedded word is what the assembler produces for its source", () => {
    const mismatches = CASES.filter((entry, i) => assembled![i] !== entry[0]).map(
      (entry) => `${entry[1]}: table 0x${entry[0].toString(16)}`,
    );
    expect(mismatches).toEqual([]);
  });

  test("assembler-only cases", () => {
    const words = assembled!.slice(CASES.length);
    const results = ASSEMBLER_ONLY.map(([source], i) => [source, decode(words[i]!)]);
    expect(results).toEqual(
      ASSEMBLER_ONLY.map(([source, address, size, rw, pair]) => [source, expected(address, size, rw, pair)]),
    );
  });
});

describe("exactFaultAddress", () => {
  const page = 0x600000n;
  const access = (address: bigint, size: number) => ({ address, size, read: true, write: false });

  test("an access inside the faulting page reports its own first byte", () => {
    expect(exactFaultAddress(access(0x600123n, 4), page, 1024, 4096)).toBe(0x600123n);
  });

  test("an access starting below the faulting page reports the page's first byte", () => {
    expect(exactFaultAddress(access(0x5ffffcn, 8), page, 1024, 4096)).toBe(page);
    expect(exactFaultAddress(access(0x5fffe0n, 64), page, 4096, 4096)).toBe(page);
  });

  test("a fault on the second 1 KiB Unicorn page of one guest page reports the access start", () => {
    // A store at page+0x3fc crossing Unicorn's 1 KiB boundary, denied on the 0x400 part: the guest page
    // is the unit of protection, so the whole access faults from its first byte.
    expect(exactFaultAddress(access(0x6003fcn, 8), 0x600400n, 1024, 4096)).toBe(0x6003fcn);
  });

  test("no intersection with the Unicorn page, or nothing decoded, falls back (null)", () => {
    expect(exactFaultAddress(access(0x600400n, 8), page, 1024, 4096)).toBeNull();
    expect(exactFaultAddress(access(0x5ffff8n, 8), page, 1024, 4096)).toBeNull();
    expect(exactFaultAddress(null, page, 1024, 4096)).toBeNull();
  });
});
