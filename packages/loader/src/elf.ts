/**
 * ELF64 validation for static aarch64 Linux programs.
 *
 * Every offset and size is read from the file as two u32 halves and refused if it reaches 2^48 (the
 * arm64 user address space and far beyond any file we can hold), so all later arithmetic is exact in
 * doubles: sums of two such values stay below 2^49 < 2^53. Work is bounded by the program-header table
 * (at most 64 KiB), never by sizes the file claims.
 */
import {
  EHDR,
  EI_CLASS,
  EI_DATA,
  EI_OSABI,
  EI_VERSION,
  ELF_MAGIC_BYTES,
  ELFCLASS64,
  ELFDATA2LSB,
  ELFOSABI_GNU,
  ELFOSABI_SYSV,
  EM_AARCH64,
  ET_DYN,
  ET_EXEC,
  EV_CURRENT,
  MACHINE_NAMES,
  PATH_MAX,
  PF_R,
  PF_W,
  PF_X,
  PHDR,
  PT_DYNAMIC,
  PT_GNU_STACK,
  PT_INTERP,
  PT_LOAD,
  PT_TLS,
  SHDR_SIZE,
  SHN_XINDEX,
} from "./elf-abi.ts";
import { ElfError, type ElfErrorReason, hex } from "./errors.ts";

/** The page size Linux arm64 uses for our guests; segment congruence is checked against it. */
export const PAGE_SIZE = 4096;
/** Highest address + 1 of the arm64 48-bit user address space; every 64-bit field must stay below it. */
export const ADDRESS_LIMIT = 2 ** 48;
/** Largest program-header table Linux accepts (load_elf_phdrs: 64 KiB). */
export const MAX_PHDR_TABLE_BYTES = 65536;
/** Most PT_LOAD segments we accept (real programs have 2–5). */
export const MAX_LOAD_SEGMENTS = 64;

/** One PT_LOAD entry as found in the file (addresses unbiased). */
export interface LoadSegment {
  /** index in the program-header table */
  readonly index: number;
  readonly offset: number;
  readonly vaddr: number;
  readonly filesz: number;
  readonly memsz: number;
  readonly align: number;
  /** raw p_flags (PF_R=4, PF_W=2, PF_X=1) */
  readonly flags: number;
}

export interface TlsTemplate {
  readonly offset: number;
  readonly vaddr: number;
  readonly filesz: number;
  readonly memsz: number;
  readonly align: number;
}

export interface ElfImage {
  /** the file itself (not copied; do not mutate it while the image is in use) */
  readonly bytes: Uint8Array;
  readonly type: "exec" | "dyn";
  /** true for ET_DYN without PT_INTERP: the caller picks the load bias */
  readonly isPie: boolean;
  /** e_entry (unbiased) */
  readonly entry: number;
  readonly phoff: number;
  readonly phentsize: number;
  readonly phnum: number;
  /** PT_LOAD segments with p_memsz > 0, sorted by vaddr, at most MAX_LOAD_SEGMENTS */
  readonly loads: readonly LoadSegment[];
  /**
   * Unbiased vaddr of the program headers inside the PT_LOAD that contains e_phoff (Linux >= 5.19 rule),
   * or null when no PT_LOAD maps them (Linux then reports AT_PHDR = load bias).
   */
  readonly phdrVaddr: number | null;
  /** PT_TLS, if any */
  readonly tls: TlsTemplate | null;
  /** PT_GNU_STACK present */
  readonly hasGnuStack: boolean;
  /** the stack must be executable: PT_GNU_STACK with PF_X (arm64 default without the header: not executable) */
  readonly execStack: boolean;
  readonly hasDynamic: boolean;
  /** largest p_align among PT_LOADs (at least PAGE_SIZE) */
  readonly maxAlign: number;
  /** lowest p_vaddr and highest p_vaddr + p_memsz among PT_LOADs */
  readonly minVaddr: number;
  readonly maxVaddrEnd: number;
  readonly osabi: number;
  readonly flags: number;
}

function fail(reason: ElfErrorReason, message: string): never {
  throw new ElfError(reason, message);
}

/** Read a u64 field as a number; values >= 2^48 are refused with `reason` (message names `what`). */
function readU48(view: DataView, at: number, reason: ElfErrorReason, what: string): number {
  const lo = view.getUint32(at, true);
  const hi = view.getUint32(at + 4, true);
  if (hi >= 0x10000) {
    const full = (BigInt(hi) << 32n) | BigInt(lo);
    fail(reason, `${what} ${hex(full)} is beyond the 48-bit address space`);
  }
  return hi * 0x1_0000_0000 + lo;
}

const isPowerOfTwo = (n: number): boolean => n > 0 && 2 ** Math.round(Math.log2(n)) === n;

function flagString(flags: number): string {
  return `${flags & PF_R ? "R" : "-"}${flags & PF_W ? "W" : "-"}${flags & PF_X ? "X" : "-"}`;
}

/** Validate an aarch64 static ELF64 executable (ET_EXEC or static-PIE ET_DYN) without copying it. */
export function parseElf(bytes: Uint8Array): ElfImage {
  const fileSize = bytes.length;
  for (let i = 0; i < ELF_MAGIC_BYTES.length && i < fileSize; i++) {
    if (bytes[i] !== ELF_MAGIC_BYTES[i]) fail("bad-magic", "not an ELF file (bad magic number)");
  }
  if (fileSize < EHDR.size) {
    fail("truncated-header", `ELF header truncated (file size ${fileSize} < ${EHDR.size} bytes)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, fileSize);

  const elfClass = bytes[EI_CLASS];
  if (elfClass !== ELFCLASS64) {
    fail("not-elf64", `not a 64-bit ELF file (EI_CLASS ${elfClass}${elfClass === 1 ? ": 32-bit" : ""})`);
  }
  if (bytes[EI_DATA] !== ELFDATA2LSB) {
    fail("not-little-endian", `ELF file is not little-endian (EI_DATA ${bytes[EI_DATA]})`);
  }
  if (bytes[EI_VERSION] !== EV_CURRENT) {
    fail("bad-version", `unknown ELF identification version ${bytes[EI_VERSION]}`);
  }
  const osabi = bytes[EI_OSABI];
  if (osabi !== ELFOSABI_SYSV && osabi !== ELFOSABI_GNU) {
    fail("bad-osabi", `ELF OS/ABI ${osabi} is not System V or GNU/Linux`);
  }

  const eType = view.getUint16(EHDR.e_type, true);
  if (eType !== ET_EXEC && eType !== ET_DYN) {
    const what = eType === 1 ? "a relocatable object" : eType === 4 ? "a core dump" : `type ${eType}`;
    fail("bad-type", `ELF file is ${what}, not an executable (ET_EXEC or ET_DYN)`);
  }
  const machine = view.getUint16(EHDR.e_machine, true);
  if (machine !== EM_AARCH64) {
    const name = MACHINE_NAMES[machine] ?? `machine ${machine}`;
    fail("wrong-machine", `ELF file is for ${name}, not AArch64 (e_machine ${machine})`);
  }
  const version = view.getUint32(EHDR.e_version, true);
  if (version !== EV_CURRENT) fail("bad-version", `unknown ELF version ${version} (e_version)`);
  const ehsize = view.getUint16(EHDR.e_ehsize, true);
  if (ehsize < EHDR.size) fail("bad-header-size", `ELF header size ${ehsize} is smaller than ${EHDR.size}`);

  const entry = readU48(view, EHDR.e_entry, "entry-not-executable", "entry point");
  const phoff = readU48(view, EHDR.e_phoff, "phdr-out-of-file", "program header offset");
  const phentsize = view.getUint16(EHDR.e_phentsize, true);
  const phnum = view.getUint16(EHDR.e_phnum, true);
  const flags = view.getUint32(EHDR.e_flags, true);

  if (phentsize < PHDR.size) {
    fail("bad-phentsize", `program header entry size ${phentsize} is smaller than ${PHDR.size}`);
  }
  if (phnum === 0) fail("no-load-segments", "ELF file has no program headers");
  const phTableSize = phentsize * phnum;
  if (phTableSize > MAX_PHDR_TABLE_BYTES) {
    fail("too-large", `program header table of ${phTableSize} bytes exceeds ${MAX_PHDR_TABLE_BYTES} bytes`);
  }
  if (phoff + phTableSize > fileSize) {
    fail(
      "phdr-out-of-file",
      `program header table extends past end of file (offset ${hex(phoff)} + size ${hex(phTableSize)} > file size ${hex(fileSize)})`,
    );
  }
  validateSectionHeaderFields(view, fileSize);

  const loads: LoadSegment[] = [];
  let tls: TlsTemplate | null = null;
  let hasGnuStack = false;
  let execStack = false;
  let hasDynamic = false;
  let interpIndex = -1;

  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    const type = view.getUint32(at + PHDR.p_type, true);
    if (type === PT_LOAD) {
      const segment = readLoad(view, at, i, fileSize);
      if (segment === null) continue;
      if (loads.length === MAX_LOAD_SEGMENTS) {
        fail("too-many-segments", `more than ${MAX_LOAD_SEGMENTS} PT_LOAD segments`);
      }
      const prev = loads[loads.length - 1];
      if (prev !== undefined) {
        if (segment.vaddr < prev.vaddr) {
          fail(
            "unsorted-segments",
            `ELF segment ${i} (vaddr ${hex(segment.vaddr)}) comes after segment ${prev.index} (vaddr ${hex(prev.vaddr)}): PT_LOAD entries must be sorted by address`,
          );
        }
        if (segment.vaddr < prev.vaddr + prev.memsz) {
          fail(
            "overlapping-segments",
            `ELF segment ${i} [${hex(segment.vaddr)}, ${hex(segment.vaddr + segment.memsz)}) overlaps segment ${prev.index} [${hex(prev.vaddr)}, ${hex(prev.vaddr + prev.memsz)})`,
          );
        }
      }
      loads.push(segment);
    } else if (type === PT_INTERP) {
      if (interpIndex < 0) interpIndex = i;
    } else if (type === PT_TLS) {
      if (tls === null) tls = readTls(view, at, i, fileSize);
    } else if (type === PT_GNU_STACK) {
      if (!hasGnuStack) {
        hasGnuStack = true;
        execStack = (view.getUint32(at + PHDR.p_flags, true) & PF_X) !== 0;
      }
    } else if (type === PT_DYNAMIC) {
      hasDynamic = true;
    }
  }

  if (interpIndex >= 0) {
    const path = readInterpreterPath(view, bytes, phoff + interpIndex * phentsize);
    fail(
      "dynamic-unsupported",
      `dynamically linked executables are not supported yet; interpreter ${path ?? "(unreadable path)"}`,
    );
  }
  if (loads.length === 0) fail("no-load-segments", "ELF file has no loadable (PT_LOAD) segments");

  const entryLoad = loads.find((s) => entry >= s.vaddr && entry < s.vaddr + s.memsz);
  if (entryLoad === undefined) {
    fail("entry-not-executable", `entry point ${hex(entry)} is not inside any loadable segment`);
  }
  if ((entryLoad.flags & PF_X) === 0) {
    fail(
      "entry-not-executable",
      `entry point ${hex(entry)} lies in segment ${entryLoad.index}, which is not executable (${flagString(entryLoad.flags)})`,
    );
  }

  let phdrVaddr: number | null = null;
  for (const s of loads) {
    // Linux >= 5.19 (load_elf_binary): the PT_LOAD whose file range holds e_phoff maps the headers.
    if (s.offset <= phoff && phoff < s.offset + s.filesz) {
      phdrVaddr = phoff - s.offset + s.vaddr;
      break;
    }
  }

  let maxAlign = PAGE_SIZE;
  for (const s of loads) if (s.align > maxAlign) maxAlign = s.align;
  const last = loads[loads.length - 1]!;

  return {
    bytes,
    type: eType === ET_EXEC ? "exec" : "dyn",
    isPie: eType === ET_DYN,
    entry,
    phoff,
    phentsize,
    phnum,
    loads,
    phdrVaddr,
    tls,
    hasGnuStack,
    execStack,
    hasDynamic,
    maxAlign,
    minVaddr: loads[0]!.vaddr,
    maxVaddrEnd: last.vaddr + last.memsz,
    osabi,
    flags,
  };
}

/** Validate one PT_LOAD; returns null for empty (p_memsz == 0) entries, which Linux maps as nothing. */
function readLoad(view: DataView, at: number, index: number, fileSize: number): LoadSegment | null {
  const seg = `ELF segment ${index}`;
  const flags = view.getUint32(at + PHDR.p_flags, true);
  const offset = readU48(view, at + PHDR.p_offset, "segment-out-of-file", `${seg} file offset`);
  const vaddr = readU48(view, at + PHDR.p_vaddr, "address-overflow", `${seg} virtual address`);
  const filesz = readU48(view, at + PHDR.p_filesz, "segment-out-of-file", `${seg} file size`);
  const memsz = readU48(view, at + PHDR.p_memsz, "address-overflow", `${seg} memory size`);
  const align = readU48(view, at + PHDR.p_align, "bad-alignment", `${seg} alignment`);
  if (memsz === 0) {
    if (filesz !== 0) fail("filesz-gt-memsz", `${seg} has file size ${hex(filesz)} but memory size 0`);
    return null;
  }
  if (filesz > memsz) {
    fail("filesz-gt-memsz", `${seg} file size ${hex(filesz)} exceeds its memory size ${hex(memsz)}`);
  }
  if (offset + filesz > fileSize) {
    fail(
      "segment-out-of-file",
      `${seg} extends past end of file (offset ${hex(offset)} + size ${hex(filesz)} > file size ${hex(fileSize)})`,
    );
  }
  if (vaddr + memsz > ADDRESS_LIMIT) {
    fail(
      "address-overflow",
      `${seg} [${hex(vaddr)}, ${hex(vaddr + memsz)}) ends beyond the 48-bit address space`,
    );
  }
  if (align > 1 && !isPowerOfTwo(align)) {
    fail("bad-alignment", `${seg} alignment ${hex(align)} is not a power of two`);
  }
  if (vaddr % PAGE_SIZE !== offset % PAGE_SIZE) {
    fail(
      "bad-alignment",
      `${seg} virtual address ${hex(vaddr)} and file offset ${hex(offset)} differ modulo the page size ${PAGE_SIZE}`,
    );
  }
  return { index, offset, vaddr, filesz, memsz, align, flags };
}

function readTls(view: DataView, at: number, index: number, fileSize: number): TlsTemplate {
  const seg = `TLS segment ${index}`;
  const offset = readU48(view, at + PHDR.p_offset, "bad-tls", `${seg} file offset`);
  const vaddr = readU48(view, at + PHDR.p_vaddr, "bad-tls", `${seg} virtual address`);
  const filesz = readU48(view, at + PHDR.p_filesz, "bad-tls", `${seg} file size`);
  const memsz = readU48(view, at + PHDR.p_memsz, "bad-tls", `${seg} memory size`);
  const align = readU48(view, at + PHDR.p_align, "bad-tls", `${seg} alignment`);
  if (filesz > memsz) fail("bad-tls", `${seg} file size ${hex(filesz)} exceeds memory size ${hex(memsz)}`);
  if (offset + filesz > fileSize) {
    fail(
      "bad-tls",
      `${seg} extends past end of file (offset ${hex(offset)} + size ${hex(filesz)} > file size ${hex(fileSize)})`,
    );
  }
  if (vaddr + memsz > ADDRESS_LIMIT) fail("bad-tls", `${seg} ends beyond the 48-bit address space`);
  if (align > 1 && !isPowerOfTwo(align))
    fail("bad-tls", `${seg} alignment ${hex(align)} is not a power of two`);
  return { offset, vaddr, filesz, memsz, align };
}

/** The PT_INTERP string if it is well-formed (Linux: 2..PATH_MAX bytes, NUL-terminated), else null. */
function readInterpreterPath(view: DataView, bytes: Uint8Array, at: number): string | null {
  const hiOffset = view.getUint32(at + PHDR.p_offset + 4, true);
  const hiSize = view.getUint32(at + PHDR.p_filesz + 4, true);
  if (hiOffset !== 0 || hiSize !== 0) return null;
  const offset = view.getUint32(at + PHDR.p_offset, true);
  const size = view.getUint32(at + PHDR.p_filesz, true);
  if (size < 2 || size > PATH_MAX || offset + size > bytes.length) return null;
  if (bytes[offset + size - 1] !== 0) return null;
  const end = bytes.indexOf(0, offset);
  return new TextDecoder().decode(bytes.subarray(offset, end));
}

/** Section headers are not used for loading, but a file that claims a table must hold it. */
function validateSectionHeaderFields(view: DataView, fileSize: number): void {
  const shoff = readU48(view, EHDR.e_shoff, "shdr-out-of-file", "section header offset");
  const shentsize = view.getUint16(EHDR.e_shentsize, true);
  const shnum = view.getUint16(EHDR.e_shnum, true);
  const shstrndx = view.getUint16(EHDR.e_shstrndx, true);
  if (shoff === 0) return;
  // e_shnum == 0 with a table means "count in section 0"; at least that entry must exist.
  const count = shnum === 0 ? 1 : shnum;
  if (shentsize < SHDR_SIZE) {
    fail("shdr-out-of-file", `section header entry size ${shentsize} is smaller than ${SHDR_SIZE}`);
  }
  if (shoff + count * shentsize > fileSize) {
    fail(
      "shdr-out-of-file",
      `section header table extends past end of file (offset ${hex(shoff)} + size ${hex(count * shentsize)} > file size ${hex(fileSize)})`,
    );
  }
  if (shnum !== 0 && shstrndx !== SHN_XINDEX && shstrndx >= shnum) {
    fail("shdr-out-of-file", `section name table index ${shstrndx} is not below the section count ${shnum}`);
  }
}
