/**
 * Fuzzing parseElf + planLoad (+ writeSegments on a sample) with files derived from real static binaries:
 * every input must either load or be refused with an ElfError. Seeded, so a failure names a reproducible
 * case. Mutations are applied in place to one working copy and undone, so no file is copied per case.
 */
import { describe, expect, test } from "bun:test";
import { EHDR, PHDR } from "./elf-abi.ts";
import { ElfError, parseElf, planLoad, writeSegments } from "./index.ts";
import { minimalElf } from "./test-support/elf-builder.ts";
import { buildFixtures, CROSS_CC } from "./test-support/fixtures.ts";

/** per corpus file (a real ET_EXEC and a real static-PIE): 20,000 mutated files in all */
const CASES = 10_000;
const SEED = 0x5eed_e1f;

/** xorshift32: tiny, seeded, good enough to pick mutations. */
function makeRng(seed: number) {
  let state = seed >>> 0 || 1;
  const next = () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state;
  };
  return { next, below: (n: number) => next() % n, chance: (p: number) => next() / 0x1_0000_0000 < p };
}

const INTERESTING: readonly bigint[] = [
  0n,
  1n,
  2n,
  3n,
  0xfffn,
  0x1000n,
  0xffffn,
  0x10000n,
  0x7fffffffn,
  0x80000000n,
  0xffffffffn,
  0x1_0000_0000n,
  2n ** 47n,
  2n ** 48n - 1n,
  2n ** 48n,
  2n ** 52n,
  2n ** 53n + 1n,
  2n ** 63n,
  2n ** 63n - 1n,
  2n ** 64n - 1n,
  2n ** 64n - 0x1000n,
];

interface Field {
  offset: number;
  width: 2 | 4 | 8;
}

function fieldsOf(bytes: Uint8Array): { fields: Field[]; hotEnd: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const fields: Field[] = [
    { offset: EHDR.e_type, width: 2 },
    { offset: EHDR.e_machine, width: 2 },
    { offset: EHDR.e_version, width: 4 },
    { offset: EHDR.e_entry, width: 8 },
    { offset: EHDR.e_phoff, width: 8 },
    { offset: EHDR.e_shoff, width: 8 },
    { offset: EHDR.e_ehsize, width: 2 },
    { offset: EHDR.e_phentsize, width: 2 },
    { offset: EHDR.e_phnum, width: 2 },
    { offset: EHDR.e_shentsize, width: 2 },
    { offset: EHDR.e_shnum, width: 2 },
    { offset: EHDR.e_shstrndx, width: 2 },
  ];
  const phoff = Number(view.getBigUint64(EHDR.e_phoff, true));
  const phnum = view.getUint16(EHDR.e_phnum, true);
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * PHDR.size;
    fields.push({ offset: at + PHDR.p_type, width: 4 }, { offset: at + PHDR.p_flags, width: 4 });
    for (const f of [PHDR.p_offset, PHDR.p_vaddr, PHDR.p_filesz, PHDR.p_memsz, PHDR.p_align]) {
      fields.push({ offset: at + f, width: 8 });
    }
  }
  return { fields, hotEnd: phoff + phnum * PHDR.size };
}

interface FuzzStats {
  loaded: number;
  written: number;
  reasons: Map<string, number>;
  unexpected: string[];
}

function fuzz(original: Uint8Array, cases: number, seed: number): FuzzStats {
  const rng = makeRng(seed);
  const { fields, hotEnd } = fieldsOf(original);
  const work = new Uint8Array(original.length + 1);
  work.set(original);
  const view = new DataView(work.buffer);
  const memory = new Uint8Array(16 << 20);
  const undo: number[] = [];
  const setByte = (at: number, value: number) => {
    if (at >= work.length) return;
    undo.push(at, work[at]!);
    work[at] = value;
  };
  const writeField = (field: Field, value: bigint) => {
    for (let b = 0; b < field.width; b++) setByte(field.offset + b, Number((value >> BigInt(8 * b)) & 0xffn));
  };
  const hotByte = () => (rng.chance(0.9) ? rng.below(hotEnd) : rng.below(Math.min(original.length, 8192)));
  const stats: FuzzStats = { loaded: 0, written: 0, reasons: new Map(), unexpected: [] };

  for (let n = 0; n < cases; n++) {
    let length = original.length;
    const kind = rng.below(8);
    switch (kind) {
      case 0: // truncation at a random length, mostly inside the headers or the first pages
        length = rng.chance(0.5) ? rng.below(hotEnd + 64) : rng.below(original.length);
        break;
      case 1: {
        const at = hotByte();
        setByte(at, work[at]! ^ (1 << rng.below(8)));
        break;
      }
      case 2: {
        const flips = 2 + rng.below(15);
        for (let i = 0; i < flips; i++) {
          const at = hotByte();
          setByte(at, work[at]! ^ (1 << rng.below(8)));
        }
        break;
      }
      case 3: {
        const field = fields[rng.below(fields.length)]!;
        const mask = (1n << BigInt(field.width * 8)) - 1n;
        writeField(field, INTERESTING[rng.below(INTERESTING.length)]! & mask);
        break;
      }
      case 4: {
        const field = fields[rng.below(fields.length)]!;
        const around = [original.length, original.length - 1, original.length + 1, hotEnd, 0x400000];
        writeField(field, BigInt(around[rng.below(around.length)]!));
        break;
      }
      case 5: {
        const at = hotByte();
        const count = 1 + rng.below(16);
        for (let i = 0; i < count; i++) setByte(at + i, rng.below(256));
        break;
      }
      case 6: // file size +- 1 (the extra byte is whatever the working copy holds: zero)
        length = rng.chance(0.5) ? original.length - 1 : original.length + 1;
        if (rng.chance(0.5)) writeField(fields[rng.below(fields.length)]!, BigInt(rng.next()));
        break;
      default: {
        // several field mutations together
        const count = 2 + rng.below(4);
        for (let i = 0; i < count; i++) {
          const field = fields[rng.below(fields.length)]!;
          const mask = (1n << BigInt(field.width * 8)) - 1n;
          const value = rng.chance(0.5)
            ? INTERESTING[rng.below(INTERESTING.length)]!
            : (BigInt(rng.next()) << 32n) | BigInt(rng.next());
          writeField(field, value & mask);
        }
      }
    }

    const input = work.subarray(0, length);
    try {
      const plan = planLoad(parseElf(input));
      if (n % 37 === 0) {
        writeSegments(plan, input, memory); // may refuse (too-large) an image beyond the 16 MiB sample memory
        stats.written++;
      }
      stats.loaded++;
    } catch (error) {
      if (error instanceof ElfError) {
        stats.reasons.set(error.reason, (stats.reasons.get(error.reason) ?? 0) + 1);
        if (error.message.length < 10) stats.unexpected.push(`case ${n} (kind ${kind}): empty message`);
      } else if (stats.unexpected.length < 10) {
        stats.unexpected.push(`case ${n} (kind ${kind}, seed ${seed}): ${(error as Error)?.stack ?? error}`);
      }
    }
    for (let i = undo.length - 2; i >= 0; i -= 2) work[undo[i]!] = undo[i + 1]!;
    undo.length = 0;
    if (view.getUint32(0, true) !== new DataView(original.buffer, original.byteOffset).getUint32(0, true)) {
      throw new Error("working copy not restored");
    }
  }
  return stats;
}

function systematic(original: Uint8Array): string[] {
  const { fields } = fieldsOf(original);
  const work = original.slice();
  const unexpected: string[] = [];
  for (const field of fields) {
    const saved = work.slice(field.offset, field.offset + field.width);
    for (const value of INTERESTING) {
      for (let b = 0; b < field.width; b++) work[field.offset + b] = Number((value >> BigInt(8 * b)) & 0xffn);
      try {
        planLoad(parseElf(work));
      } catch (error) {
        if (!(error instanceof ElfError)) unexpected.push(`field @${field.offset} = ${value}: ${error}`);
      }
    }
    work.set(saved, field.offset);
  }
  return unexpected;
}

const fixtures = buildFixtures();
if (fixtures === null)
  console.warn(`loader fuzz: ${CROSS_CC} not found; fuzzing a synthetic ELF instead of a real one`);
const corpus: [string, Uint8Array][] =
  fixtures === null
    ? [["synthetic", minimalElf()]]
    : [
        ["static", fixtures.staticExe.bytes],
        ["static-pie", fixtures.staticPie.bytes],
      ];

describe("fuzz", () => {
  for (const [name, bytes] of corpus) {
    test(`${name}: the unmutated file loads`, () => {
      expect(planLoad(parseElf(bytes)).imageEnd).toBeGreaterThan(0);
    });

    test(`${name}: every u64/u32/u16 header field set to boundary values`, () => {
      expect(systematic(bytes)).toEqual([]);
    });

    test(`${name}: ${CASES} seeded mutations load or throw ElfError`, () => {
      const stats = fuzz(bytes, CASES, SEED + name.length);
      if (process.env.LOADER_FUZZ_VERBOSE)
        console.log(name, stats.loaded, stats.written, Object.fromEntries(stats.reasons));
      expect(stats.unexpected).toEqual([]);
      const rejected = [...stats.reasons.values()].reduce((a, b) => a + b, 0);
      expect(stats.loaded + rejected).toBe(CASES);
      // The mutations must reach deep checks, not just the magic number.
      expect(stats.loaded).toBeGreaterThan(100);
      expect(stats.written).toBeGreaterThan(3);
      expect(stats.reasons.size).toBeGreaterThanOrEqual(10);
    });
  }
});
