/**
 * Test helper: hand-built ELF64 files. Every header field can be overridden (as number or bigint, so tests
 * can put 2^63 or 2^64-1 anywhere). Not exported from the package.
 */
import { EHDR, EM_AARCH64, ET_EXEC, PF_R, PF_W, PF_X, PHDR, PT_GNU_STACK, PT_LOAD } from "../elf-abi.ts";

export type U64 = number | bigint;

export interface PhdrSpec {
  type: number;
  flags: number;
  offset: U64;
  vaddr: U64;
  paddr?: U64;
  filesz: U64;
  memsz: U64;
  align: U64;
}

export interface ElfSpec {
  ident?: Partial<{ class: number; data: number; version: number; osabi: number }>;
  type?: number;
  machine?: number;
  version?: number;
  entry?: U64;
  phoff?: U64;
  shoff?: U64;
  flags?: number;
  ehsize?: number;
  phentsize?: number;
  /** defaults to phdrs.length */
  phnum?: number;
  shentsize?: number;
  shnum?: number;
  shstrndx?: number;
  phdrs: PhdrSpec[];
  /** total file size (default: large enough for the headers and every PT_LOAD's file bytes) */
  fileSize?: number;
  /** raw bytes to place at offsets (e.g. an interpreter path) */
  extra?: { offset: number; bytes: Uint8Array }[];
  /** fill byte for segment contents (default: a pattern derived from the offset) */
  fill?: "pattern" | "zero";
}

const big = (v: U64): bigint => BigInt.asUintN(64, BigInt(v));

export function buildElf(spec: ElfSpec): Uint8Array {
  const phoff = spec.phoff ?? 64;
  const phentsize = spec.phentsize ?? PHDR.size;
  let needed = big(phoff) < 1n << 32n ? Number(big(phoff)) + phentsize * spec.phdrs.length : 0;
  for (const ph of spec.phdrs) {
    const end = big(ph.offset) + big(ph.filesz);
    if (ph.type === PT_LOAD && end < 1n << 32n) needed = Math.max(needed, Number(end));
  }
  const size = spec.fileSize ?? Math.max(needed, EHDR.size);
  const bytes = new Uint8Array(size);
  if (spec.fill !== "zero") for (let i = 0; i < size; i++) bytes[i] = (i * 7 + 13) & 0xff;
  const view = new DataView(bytes.buffer);
  const u16 = (at: number, v: number) => at + 2 <= size && view.setUint16(at, v, true);
  const u32 = (at: number, v: number) => at + 4 <= size && view.setUint32(at, v, true);
  const u64 = (at: number, v: U64) => at + 8 <= size && view.setBigUint64(at, big(v), true);
  const ident = [
    0x7f,
    0x45,
    0x4c,
    0x46,
    spec.ident?.class ?? 2,
    spec.ident?.data ?? 1,
    spec.ident?.version ?? 1,
  ];
  ident.push(spec.ident?.osabi ?? 0);
  for (let i = 0; i < 16 && i < size; i++) bytes[i] = ident[i] ?? 0;
  u16(EHDR.e_type, spec.type ?? ET_EXEC);
  u16(EHDR.e_machine, spec.machine ?? EM_AARCH64);
  u32(EHDR.e_version, spec.version ?? 1);
  u64(EHDR.e_entry, spec.entry ?? 0x400100);
  u64(EHDR.e_phoff, phoff);
  u64(EHDR.e_shoff, spec.shoff ?? 0);
  u32(EHDR.e_flags, spec.flags ?? 0);
  u16(EHDR.e_ehsize, spec.ehsize ?? EHDR.size);
  u16(EHDR.e_phentsize, phentsize);
  u16(EHDR.e_phnum, spec.phnum ?? spec.phdrs.length);
  u16(EHDR.e_shentsize, spec.shentsize ?? 0);
  u16(EHDR.e_shnum, spec.shnum ?? 0);
  u16(EHDR.e_shstrndx, spec.shstrndx ?? 0);
  const base = big(phoff) < BigInt(size) ? Number(big(phoff)) : size; // a phoff past the file writes nothing
  spec.phdrs.forEach((ph, i) => {
    const at = base + i * phentsize;
    u32(at + PHDR.p_type, ph.type);
    u32(at + PHDR.p_flags, ph.flags);
    u64(at + PHDR.p_offset, ph.offset);
    u64(at + PHDR.p_vaddr, ph.vaddr);
    u64(at + PHDR.p_paddr, ph.paddr ?? ph.vaddr);
    u64(at + PHDR.p_filesz, ph.filesz);
    u64(at + PHDR.p_memsz, ph.memsz);
    u64(at + PHDR.p_align, ph.align);
  });
  for (const { offset, bytes: b } of spec.extra ?? []) bytes.set(b, offset);
  return bytes;
}

export const TEXT = (over: Partial<PhdrSpec> = {}): PhdrSpec => ({
  type: PT_LOAD,
  flags: PF_R | PF_X,
  offset: 0,
  vaddr: 0x400000,
  filesz: 0x1000,
  memsz: 0x1000,
  align: 0x10000,
  ...over,
});

export const DATA = (over: Partial<PhdrSpec> = {}): PhdrSpec => ({
  type: PT_LOAD,
  flags: PF_R | PF_W,
  offset: 0x1100,
  vaddr: 0x411100,
  filesz: 0x200,
  memsz: 0x3000,
  align: 0x10000,
  ...over,
});

export const GNU_STACK = (flags = PF_R | PF_W): PhdrSpec => ({
  type: PT_GNU_STACK,
  flags,
  offset: 0,
  vaddr: 0,
  filesz: 0,
  memsz: 0,
  align: 16,
});

/** A valid two-segment static executable: text at 0x400000 (R-X), data+bss at 0x411100 (RW-). */
export function minimalElf(over: Partial<ElfSpec> = {}): Uint8Array {
  return buildElf({ phdrs: [TEXT(), DATA(), GNU_STACK()], ...over });
}
