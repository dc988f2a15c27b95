import { describe, expect, test } from "bun:test";
import { ET_DYN, PF_R, PF_W, PF_X, PROT_EXEC, PROT_READ, PROT_WRITE, PT_TLS } from "./elf-abi.ts";
import { DEFAULT_PIE_BASE, ElfError, parseElf, pieLoadBias, planLoad, writeSegments } from "./index.ts";
import { buildElf, DATA, minimalElf, TEXT } from "./test-support/elf-builder.ts";

function planError(fn: () => unknown): ElfError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ElfError);
    return error as ElfError;
  }
  throw new Error("expected an ElfError");
}

describe("planLoad", () => {
  test("ET_EXEC: page-rounded segments at their link address", () => {
    const plan = planLoad(parseElf(minimalElf()));
    expect(plan.loadBias).toBe(0);
    expect(
      plan.segments.map((s) => [s.start, s.end, s.prot, s.vaddr, s.fileOffset, s.fileSize, s.memSize]),
    ).toEqual([
      [0x400000, 0x401000, PROT_READ | PROT_EXEC, 0x400000, 0, 0x1000, 0x1000],
      [0x411000, 0x415000, PROT_READ | PROT_WRITE, 0x411100, 0x1100, 0x200, 0x3000],
    ]);
    expect(plan.mappings).toEqual([
      { start: 0x400000, end: 0x401000, prot: PROT_READ | PROT_EXEC },
      { start: 0x411000, end: 0x415000, prot: PROT_READ | PROT_WRITE },
    ]);
    expect(plan.imageStart).toBe(0x400000);
    expect(plan.imageEnd).toBe(0x415000);
    expect(plan.entry).toBe(0x400100);
    expect(plan.phdrAddress).toBe(0x400040);
    expect(plan.phnum).toBe(3);
    expect(plan.phent).toBe(56);
  });

  test("static-PIE: placed at DEFAULT_PIE_BASE by default, or at an explicit bias", () => {
    const bytes = buildElf({
      type: ET_DYN,
      entry: 0x180,
      phdrs: [TEXT({ vaddr: 0 }), DATA({ vaddr: 0x11100 })],
    });
    const image = parseElf(bytes);
    expect(pieLoadBias(image)).toBe(DEFAULT_PIE_BASE);
    const plan = planLoad(image);
    expect(plan.loadBias).toBe(0x400000);
    expect(plan.entry).toBe(0x400180);
    expect(plan.phdrAddress).toBe(0x400040);
    expect(plan.segments[1]!.vaddr).toBe(0x411100);
    expect(planLoad(image, { loadBias: 0x10000000 }).entry).toBe(0x10000180);
  });

  test("pieLoadBias honours a p_align larger than the base's alignment", () => {
    const image = parseElf(
      buildElf({ type: ET_DYN, entry: 0x100, phdrs: [TEXT({ vaddr: 0, align: 0x1000000 })] }),
    );
    expect(pieLoadBias(image)).toBe(0x1000000);
  });

  test("no PT_LOAD holds the program headers: AT_PHDR is the bias, as in Linux", () => {
    const image = parseElf(
      buildElf({ type: ET_DYN, entry: 0x100, phoff: 0x2000, phdrs: [TEXT({ vaddr: 0 })] }),
    );
    expect(planLoad(image, { loadBias: 0x400000 }).phdrAddress).toBe(0x400000);
  });

  test("PT_TLS is biased", () => {
    const tls = {
      type: PT_TLS,
      flags: PF_R,
      offset: 0x1100,
      vaddr: 0x11100,
      filesz: 0x10,
      memsz: 0x40,
      align: 16,
    };
    const image = parseElf(
      buildElf({ type: ET_DYN, entry: 0x100, phdrs: [TEXT({ vaddr: 0 }), DATA({ vaddr: 0x11100 }), tls] }),
    );
    expect(planLoad(image).tls?.vaddr).toBe(0x411100);
  });

  test("segments sharing a page: flagged, and mapped as a union with combined prot", () => {
    // text [0x400000, 0x400900) R-X, data [0x400a00, 0x402000) RW-: page 0x400000 holds both.
    const image = parseElf(
      buildElf({
        phdrs: [
          TEXT({ filesz: 0x900, memsz: 0x900 }),
          DATA({ offset: 0xa00, vaddr: 0x400a00, filesz: 0x100, memsz: 0x1600 }),
        ],
      }),
    );
    const plan = planLoad(image);
    expect(plan.segments.map((s) => [s.start, s.end, s.sharesFirstPage, s.sharesLastPage])).toEqual([
      [0x400000, 0x401000, false, true],
      [0x400000, 0x402000, true, false],
    ]);
    expect(plan.mappings).toEqual([
      { start: 0x400000, end: 0x401000, prot: PROT_READ | PROT_WRITE | PROT_EXEC },
      { start: 0x401000, end: 0x402000, prot: PROT_READ | PROT_WRITE },
    ]);
  });

  test("three segments in one page collapse into one mapping", () => {
    const image = parseElf(
      buildElf({
        entry: 0x400010,
        phdrs: [
          TEXT({ filesz: 0x100, memsz: 0x100 }),
          TEXT({ flags: PF_R, offset: 0x200, vaddr: 0x400200, filesz: 0x100, memsz: 0x100 }),
          DATA({ offset: 0x400, vaddr: 0x400400, filesz: 0x100, memsz: 0x2000 }),
        ],
      }),
    );
    expect(planLoad(image).mappings).toEqual([
      { start: 0x400000, end: 0x401000, prot: PROT_READ | PROT_WRITE | PROT_EXEC },
      { start: 0x401000, end: 0x403000, prot: PROT_READ | PROT_WRITE },
    ]);
  });

  test("rejects bad biases and images outside the allowed window", () => {
    const exec = parseElf(minimalElf());
    expect(planError(() => planLoad(exec, { loadBias: 0x1000 })).reason).toBe("bad-load-bias");
    const pie = parseElf(buildElf({ type: ET_DYN, entry: 0x100, phdrs: [TEXT({ vaddr: 0 })] }));
    expect(planError(() => planLoad(pie, { loadBias: 0x400800 })).reason).toBe("bad-load-bias");
    expect(planError(() => planLoad(pie, { loadBias: -4096 })).reason).toBe("bad-load-bias");
    expect(planError(() => planLoad(pie, { loadBias: 0 })).reason).toBe("address-too-low");
    expect(planError(() => planLoad(exec, { maxAddress: 0x410000 })).reason).toBe("too-large");
    expect(planError(() => planLoad(pie, { loadBias: 2 ** 48 })).reason).toBe("address-overflow");
    const low = parseElf(minimalElf({ entry: 0x1100, phdrs: [TEXT({ vaddr: 0x1000, offset: 0 })] }));
    expect(planError(() => planLoad(low)).message).toMatch(/below the lowest mappable address 0x10000/);
    expect(planLoad(low, { minAddress: 0 }).imageStart).toBe(0x1000);
  });
});

/** Index of the first differing byte (or -1), so a failure points at the spot instead of dumping pages. */
function expectBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual.length).toBe(expected.length);
  expect(actual.findIndex((b, i) => b !== expected[i])).toBe(-1);
}

describe("writeSegments", () => {
  const STALE = 0xa5;

  function load(bytes: Uint8Array, memorySize = 0x500000) {
    const plan = planLoad(parseElf(bytes));
    const memory = new Uint8Array(memorySize).fill(STALE);
    writeSegments(plan, bytes, memory);
    return { plan, memory };
  }

  test("copies file pages, zeroes BSS, leaves unmapped memory alone", () => {
    const bytes = minimalElf();
    const { memory } = load(bytes);
    // Text: the whole page is file bytes 0..0x1000 (ELF header included).
    expectBytes(memory.subarray(0x400000, 0x401000), bytes.subarray(0, 0x1000));
    // Data page: file bytes from the page start (offset 0x1000) up to the end of the file part.
    expectBytes(memory.subarray(0x411000, 0x411300), bytes.subarray(0x1000, 0x1300));
    // BSS [0x411300, 0x414100) and the rest of its last page are zero.
    expect(memory.subarray(0x411300, 0x415000).every((b) => b === 0)).toBe(true);
    // Outside the image nothing was written.
    expect(memory[0x3fffff]).toBe(STALE);
    expect(memory[0x401000]).toBe(STALE);
    expect(memory[0x410fff]).toBe(STALE);
    expect(memory[0x415000]).toBe(STALE);
  });

  test("a segment without BSS shows file bytes in the rest of its last page (as a file mapping does)", () => {
    const bytes = buildElf({ phdrs: [TEXT({ filesz: 0x800, memsz: 0x800 })], fileSize: 0x1800 });
    const { memory } = load(bytes);
    expectBytes(memory.subarray(0x400000, 0x401000), bytes.subarray(0, 0x1000));
  });

  test("file ending inside the last page reads as zeroes past its end", () => {
    const bytes = buildElf({ phdrs: [TEXT({ filesz: 0x800, memsz: 0x800 })], fileSize: 0x900 });
    const { memory } = load(bytes);
    expectBytes(memory.subarray(0x400000, 0x400900), bytes);
    expect(memory.subarray(0x400900, 0x401000).every((b) => b === 0)).toBe(true);
  });

  test("a BSS-only segment is all zero pages", () => {
    const bytes = buildElf({ phdrs: [TEXT(), DATA({ filesz: 0 })] });
    const { memory } = load(bytes);
    expect(memory.subarray(0x411000, 0x415000).every((b) => b === 0)).toBe(true);
  });

  test("shared page: each segment keeps its own bytes; the BSS stays zero", () => {
    const bytes = buildElf({
      phdrs: [
        TEXT({ filesz: 0x900, memsz: 0x900 }),
        DATA({ offset: 0xa00, vaddr: 0x400a00, filesz: 0x100, memsz: 0x1600 }),
      ],
      fileSize: 0x1000,
    });
    const { memory } = load(bytes);
    expectBytes(memory.subarray(0x400000, 0x400900), bytes.subarray(0, 0x900));
    expectBytes(memory.subarray(0x400a00, 0x400b00), bytes.subarray(0xa00, 0xb00));
    expect(memory.subarray(0x400b00, 0x402000).every((b) => b === 0)).toBe(true);
    expect(memory[0x402000]).toBe(STALE);
  });

  test("refuses memory too small for the image", () => {
    const bytes = minimalElf();
    const plan = planLoad(parseElf(bytes));
    expect(planError(() => writeSegments(plan, bytes, new Uint8Array(0x414000))).reason).toBe("too-large");
  });

  test("PF flags map to PROT bits", () => {
    const bytes = buildElf({ entry: 0x400010, phdrs: [TEXT({ flags: PF_R | PF_W | PF_X })] });
    expect(planLoad(parseElf(bytes)).segments[0]!.prot).toBe(7);
  });
});
