/**
 * ELF64 ABI constants (System V gABI + AArch64 psABI) and the byte layout of the structures the loader reads.
 * Only numbers live here; the validation logic is in elf.ts.
 */

/** "\x7fELF" as a little-endian u32 of e_ident[0..4). */
export const ELF_MAGIC_LE32 = 0x464c457f;
export const ELF_MAGIC_BYTES = [0x7f, 0x45, 0x4c, 0x46] as const;

/** e_ident indices. */
export const EI_CLASS = 4;
export const EI_DATA = 5;
export const EI_VERSION = 6;
export const EI_OSABI = 7;

export const ELFCLASS32 = 1;
export const ELFCLASS64 = 2;
export const ELFDATA2LSB = 1;
export const ELFDATA2MSB = 2;
export const EV_CURRENT = 1;
export const ELFOSABI_SYSV = 0;
export const ELFOSABI_GNU = 3;

/** e_type */
export const ET_REL = 1;
export const ET_EXEC = 2;
export const ET_DYN = 3;
export const ET_CORE = 4;

/** e_machine values we accept or name in messages. */
export const EM_AARCH64 = 183;
export const MACHINE_NAMES: Readonly<Record<number, string>> = {
  3: "i386",
  8: "MIPS",
  20: "PowerPC",
  21: "PowerPC64",
  22: "s390",
  40: "ARM (32-bit)",
  62: "x86-64",
  183: "AArch64",
  243: "RISC-V",
  258: "LoongArch",
};

/** p_type */
export const PT_NULL = 0;
export const PT_LOAD = 1;
export const PT_DYNAMIC = 2;
export const PT_INTERP = 3;
export const PT_NOTE = 4;
export const PT_SHLIB = 5;
export const PT_PHDR = 6;
export const PT_TLS = 7;
export const PT_GNU_EH_FRAME = 0x6474e550;
export const PT_GNU_STACK = 0x6474e551;
export const PT_GNU_RELRO = 0x6474e552;
export const PT_GNU_PROPERTY = 0x6474e553;

/** p_flags */
export const PF_X = 1;
export const PF_W = 2;
export const PF_R = 4;

/** mmap protection bits (Linux uapi asm-generic/mman-common.h). */
export const PROT_NONE = 0;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const PROT_EXEC = 4;

/** Elf64_Ehdr layout: offsets of each field, total size 64. */
export const EHDR = {
  size: 64,
  e_type: 16, // u16
  e_machine: 18, // u16
  e_version: 20, // u32
  e_entry: 24, // u64
  e_phoff: 32, // u64
  e_shoff: 40, // u64
  e_flags: 48, // u32
  e_ehsize: 52, // u16
  e_phentsize: 54, // u16
  e_phnum: 56, // u16
  e_shentsize: 58, // u16
  e_shnum: 60, // u16
  e_shstrndx: 62, // u16
} as const;

/** Elf64_Phdr layout, size 56. */
export const PHDR = {
  size: 56,
  p_type: 0, // u32
  p_flags: 4, // u32
  p_offset: 8, // u64
  p_vaddr: 16, // u64
  p_paddr: 24, // u64
  p_filesz: 32, // u64
  p_memsz: 40, // u64
  p_align: 48, // u64
} as const;

/** Elf64_Shdr size. */
export const SHDR_SIZE = 64;
/** e_phnum escape for more than 0xfffe entries (the real count lives in section 0); never valid for us. */
export const PN_XNUM = 0xffff;
/** e_shstrndx escape: the real index lives in section 0's sh_link. */
export const SHN_XINDEX = 0xffff;
export const SHN_LORESERVE = 0xff00;

/** Linux PATH_MAX: the kernel rejects longer PT_INTERP strings. */
export const PATH_MAX = 4096;
