import { describe, expect, test } from "bun:test";
import { ET_DYN, PF_R, PF_W, PF_X, PT_DYNAMIC, PT_INTERP, PT_LOAD, PT_NOTE, PT_TLS } from "./elf-abi.ts";
import { ElfError, type ElfErrorReason, parseElf } from "./index.ts";
import { buildElf, DATA, type ElfSpec, GNU_STACK, minimalElf, TEXT } from "./test-support/elf-builder.ts";

function rejects(bytes: Uint8Array, reason: ElfErrorReason, message?: string | RegExp): ElfError {
  let caught: unknown;
  try {
    parseElf(bytes);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(ElfError);
  const err = caught as ElfError;
  expect(err.reason).toBe(reason);
  if (message !== undefined) expect(err.message).toMatch(message);
  return err;
}

const spec = (over: Partial<ElfSpec>): Uint8Array => minimalElf(over);

describe("parseElf accepts", () => {
  test("a minimal two-segment static executable", () => {
    const image = parseElf(minimalElf());
    expect(image.type).toBe("exec");
    expect(image.isPie).toBe(false);
    expect(image.entry).toBe(0x400100);
    expect(image.loads.map((s) => [s.vaddr, s.filesz, s.memsz, s.flags])).toEqual([
      [0x400000, 0x1000, 0x1000, PF_R | PF_X],
      [0x411100, 0x200, 0x3000, PF_R | PF_W],
    ]);
    expect(image.phdrVaddr).toBe(0x400040);
    expect(image.hasGnuStack).toBe(true);
    expect(image.execStack).toBe(false);
    expect(image.maxVaddrEnd).toBe(0x414100);
    expect(image.tls).toBeNull();
  });

  test("does not copy the file", () => {
    const bytes = minimalElf();
    expect(parseElf(bytes).bytes).toBe(bytes);
  });

  test("a subarray view at a non-zero byte offset", () => {
    const inner = minimalElf();
    const outer = new Uint8Array(inner.length + 3);
    outer.set(inner, 3);
    expect(parseElf(outer.subarray(3)).entry).toBe(0x400100);
  });

  test("static-PIE (ET_DYN with PT_DYNAMIC, without PT_INTERP)", () => {
    const bytes = buildElf({
      type: ET_DYN,
      entry: 0x100,
      phdrs: [
        TEXT({ vaddr: 0 }),
        DATA({ vaddr: 0x11100 }),
        {
          type: PT_DYNAMIC,
          flags: PF_R | PF_W,
          offset: 0x1100,
          vaddr: 0x11100,
          filesz: 0x100,
          memsz: 0x100,
          align: 8,
        },
      ],
    });
    const image = parseElf(bytes);
    expect(image.type).toBe("dyn");
    expect(image.isPie).toBe(true);
    expect(image.hasDynamic).toBe(true);
    expect(image.phdrVaddr).toBe(0x40);
  });

  test("executable stack flag from PT_GNU_STACK", () => {
    expect(parseElf(spec({ phdrs: [TEXT(), GNU_STACK(PF_R | PF_W | PF_X)] })).execStack).toBe(true);
    const noHeader = parseElf(spec({ phdrs: [TEXT()] }));
    expect(noHeader.hasGnuStack).toBe(false);
    expect(noHeader.execStack).toBe(false);
  });

  test("PT_TLS is recorded", () => {
    const tls = {
      type: PT_TLS,
      flags: PF_R,
      offset: 0x1100,
      vaddr: 0x411100,
      filesz: 0x20,
      memsz: 0x80,
      align: 16,
    };
    expect(parseElf(spec({ phdrs: [TEXT(), DATA(), tls] })).tls).toEqual({
      offset: 0x1100,
      vaddr: 0x411100,
      filesz: 0x20,
      memsz: 0x80,
      align: 16,
    });
  });

  test("PT_LOAD with p_memsz 0 is skipped", () => {
    const empty = TEXT({ vaddr: 0x300000, filesz: 0, memsz: 0 });
    expect(parseElf(spec({ phdrs: [empty, TEXT(), DATA()] })).loads.map((s) => s.index)).toEqual([1, 2]);
  });

  test("AT_PHDR rule: headers inside a later PT_LOAD map through that segment", () => {
    // Program headers at file offset 0x1180, inside the data segment (offset 0x1100 -> vaddr 0x411100).
    const bytes = buildElf({ phoff: 0x1180, phdrs: [TEXT(), DATA({ filesz: 0x300 })] });
    expect(parseElf(bytes).phdrVaddr).toBe(0x411180);
  });

  test("AT_PHDR: null when no PT_LOAD holds the program headers", () => {
    const bytes = buildElf({ phoff: 0x2000, phdrs: [TEXT(), DATA()] });
    expect(parseElf(bytes).phdrVaddr).toBeNull();
  });

  test("alignment 0 and 1 mean no constraint beyond page congruence", () => {
    expect(parseElf(spec({ phdrs: [TEXT({ align: 0 }), DATA({ align: 1 })] })).maxAlign).toBe(4096);
  });
});

describe("parseElf rejects", () => {
  test("bad-magic", () => {
    rejects(new Uint8Array([0x7f, 0x45, 0x4c, 0x47, 2, 1, 1]), "bad-magic", /not an ELF file/);
    rejects(new TextEncoder().encode("#!/bin/sh\necho hi\n".repeat(8)), "bad-magic");
  });

  test("truncated-header", () => {
    rejects(new Uint8Array(0), "truncated-header");
    rejects(minimalElf().subarray(0, 3), "truncated-header");
    rejects(minimalElf().subarray(0, 63), "truncated-header", /file size 63 < 64/);
  });

  test("not-elf64", () => {
    rejects(spec({ ident: { class: 1 } }), "not-elf64", /32-bit/);
  });
  test("not-little-endian", () => {
    rejects(spec({ ident: { data: 2 } }), "not-little-endian");
  });
  test("bad-version (ident and e_version)", () => {
    rejects(spec({ ident: { version: 0 } }), "bad-version");
    rejects(spec({ version: 2 }), "bad-version", /e_version/);
  });
  test("bad-osabi", () => {
    rejects(spec({ ident: { osabi: 9 } }), "bad-osabi");
  });
  test("bad-type", () => {
    rejects(spec({ type: 1 }), "bad-type", /relocatable object/);
    rejects(spec({ type: 4 }), "bad-type", /core dump/);
    rejects(spec({ type: 0xfe00 }), "bad-type");
  });
  test("wrong-machine", () => {
    rejects(spec({ machine: 62 }), "wrong-machine", /x86-64, not AArch64/);
  });
  test("bad-header-size", () => {
    rejects(spec({ ehsize: 52 }), "bad-header-size");
  });
  test("bad-phentsize", () => {
    rejects(spec({ phentsize: 55 }), "bad-phentsize");
  });

  test("too-large: program header table over 64 KiB", () => {
    rejects(spec({ phnum: 1171, fileSize: 0x20000 }), "too-large", /exceeds 65536/);
  });

  test("phdr-out-of-file", () => {
    rejects(spec({ phoff: 0x1300, fileSize: 0x1300 }), "phdr-out-of-file", /extends past end of file/);
    rejects(spec({ phoff: 2n ** 63n }), "phdr-out-of-file", /0x8000000000000000 is beyond the 48-bit/);
    rejects(spec({ phoff: 2n ** 64n - 1n }), "phdr-out-of-file");
    rejects(spec({ phnum: 100 }), "phdr-out-of-file");
  });

  test("shdr-out-of-file", () => {
    rejects(spec({ shoff: 0x1000, shentsize: 64, shnum: 100 }), "shdr-out-of-file", /section header table/);
    rejects(spec({ shoff: 0x200, shentsize: 40, shnum: 1 }), "shdr-out-of-file", /entry size/);
    rejects(spec({ shoff: 0x200, shentsize: 64, shnum: 2, shstrndx: 5 }), "shdr-out-of-file");
    rejects(spec({ shoff: 2n ** 64n - 1n }), "shdr-out-of-file");
  });

  test("segment-out-of-file, with a message naming the numbers", () => {
    const err = rejects(
      buildElf({
        phdrs: [TEXT(), TEXT({ offset: 0x1000, vaddr: 0x801000, filesz: 0x9000, memsz: 0x9000 })],
        fileSize: 0x5000,
      }),
      "segment-out-of-file",
    );
    expect(err.message).toBe(
      "ELF segment 1 extends past end of file (offset 0x1000 + size 0x9000 > file size 0x5000)",
    );
    rejects(spec({ phdrs: [TEXT({ offset: 2n ** 63n })] }), "segment-out-of-file", /beyond the 48-bit/);
    rejects(
      spec({ phdrs: [TEXT({ filesz: 2n ** 64n - 1n, memsz: 2n ** 64n - 1n })] }),
      "segment-out-of-file",
    );
  });

  test("filesz-gt-memsz", () => {
    rejects(spec({ phdrs: [TEXT({ filesz: 0x1000, memsz: 0x800 })] }), "filesz-gt-memsz");
    rejects(spec({ phdrs: [TEXT(), DATA({ filesz: 0x10, memsz: 0 })] }), "filesz-gt-memsz");
  });

  test("bad-alignment", () => {
    rejects(spec({ phdrs: [TEXT({ align: 0x3000 })] }), "bad-alignment", /not a power of two/);
    rejects(
      spec({ phdrs: [TEXT(), DATA({ vaddr: 0x411200 })] }),
      "bad-alignment",
      /differ modulo the page size/,
    );
    rejects(spec({ phdrs: [TEXT({ align: 2n ** 63n })] }), "bad-alignment", /48-bit/);
  });

  test("overlapping-segments", () => {
    rejects(
      spec({ phdrs: [TEXT({ memsz: 0x11200 }), DATA()] }),
      "overlapping-segments",
      /overlaps segment 0/,
    );
  });

  test("unsorted-segments", () => {
    rejects(spec({ phdrs: [DATA(), TEXT()] }), "unsorted-segments");
  });

  test("too-many-segments", () => {
    const phdrs = Array.from({ length: 65 }, (_, i) =>
      TEXT({ vaddr: 0x400000 + i * 0x1000, filesz: 0x1000 }),
    );
    rejects(buildElf({ phdrs, fileSize: 0x1000 + 65 * 56 }), "too-many-segments", /more than 64/);
  });

  test("no-load-segments", () => {
    rejects(spec({ phnum: 0 }), "no-load-segments", /no program headers/);
    const note = {
      type: PT_NOTE,
      flags: PF_R,
      offset: 0x100,
      vaddr: 0x400100,
      filesz: 0x20,
      memsz: 0x20,
      align: 4,
    };
    rejects(spec({ phdrs: [note, GNU_STACK()] }), "no-load-segments", /no loadable/);
  });

  test("address-overflow", () => {
    const top = 2 ** 48;
    rejects(
      spec({ entry: top - 0x1000 + 0x10, phdrs: [TEXT({ vaddr: top - 0x1000, memsz: 0x2000 })] }),
      "address-overflow",
    );
    rejects(spec({ phdrs: [TEXT({ vaddr: 2n ** 64n - 0x1000n })] }), "address-overflow", /beyond the 48-bit/);
    rejects(spec({ phdrs: [TEXT({ memsz: 2n ** 63n })] }), "address-overflow");
  });

  test("entry-not-executable", () => {
    rejects(spec({ entry: 0x411200 }), "entry-not-executable", /not executable \(RW-\)/);
    rejects(spec({ entry: 0x500000 }), "entry-not-executable", /not inside any loadable segment/);
    rejects(spec({ entry: 2n ** 63n }), "entry-not-executable");
  });

  test("dynamic-unsupported names the interpreter", () => {
    const path = new TextEncoder().encode("/lib/ld-linux-aarch64.so.1\0");
    const interp = {
      type: PT_INTERP,
      flags: PF_R,
      offset: 0x200,
      vaddr: 0x400200,
      filesz: path.length,
      memsz: path.length,
      align: 1,
    };
    rejects(
      buildElf({ phdrs: [interp, TEXT(), DATA()], extra: [{ offset: 0x200, bytes: path }] }),
      "dynamic-unsupported",
      "dynamically linked executables are not supported yet; interpreter /lib/ld-linux-aarch64.so.1",
    );
    // A malformed path is still a dynamic executable.
    const bad = { ...interp, offset: 2n ** 63n };
    rejects(buildElf({ phdrs: [bad, TEXT()] }), "dynamic-unsupported", /unreadable path/);
  });

  test("bad-tls", () => {
    const tls = {
      type: PT_TLS,
      flags: PF_R,
      offset: 0x1100,
      vaddr: 0x411100,
      filesz: 0x80,
      memsz: 0x20,
      align: 16,
    };
    rejects(spec({ phdrs: [TEXT(), DATA(), tls] }), "bad-tls", /exceeds memory size/);
    rejects(spec({ phdrs: [TEXT(), DATA(), { ...tls, filesz: 0x10, align: 24 }] }), "bad-tls");
    rejects(spec({ phdrs: [TEXT(), DATA(), { ...tls, offset: 0x10000, filesz: 0x10 }] }), "bad-tls");
  });

  test("every rejection is an ElfError with a readable message", () => {
    const err = rejects(spec({ machine: 40 }), "wrong-machine");
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe("ElfError");
    expect(err.message.length).toBeGreaterThan(10);
    expect(PT_LOAD).toBe(1);
  });
});
