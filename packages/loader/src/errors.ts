/** Short machine-readable reasons an ELF file is refused (stable: tests and the CLI match on them). */
export type ElfErrorReason =
  | "bad-magic"
  | "truncated-header"
  | "not-elf64"
  | "not-little-endian"
  | "bad-version"
  | "bad-osabi"
  | "bad-type"
  | "wrong-machine"
  | "bad-header-size"
  | "bad-phentsize"
  | "too-large"
  | "phdr-out-of-file"
  | "shdr-out-of-file"
  | "segment-out-of-file"
  | "filesz-gt-memsz"
  | "bad-alignment"
  | "overlapping-segments"
  | "unsorted-segments"
  | "too-many-segments"
  | "no-load-segments"
  | "address-overflow"
  | "address-too-low"
  | "entry-not-executable"
  | "dynamic-unsupported"
  | "bad-tls"
  | "bad-load-bias";

/** The only exception parseElf / planLoad / writeSegments throw for bad input. */
export class ElfError extends Error {
  override readonly name = "ElfError";
  constructor(
    readonly reason: ElfErrorReason,
    message: string,
  ) {
    super(message);
  }
}

/** Initial-stack construction failures, named like the errno execve(2) would return. */
export class StackError extends Error {
  override readonly name = "StackError";
  constructor(
    readonly code: "E2BIG" | "EFAULT" | "EINVAL",
    /** positive errno value (7, 14, 22) */
    readonly errno: number,
    message: string,
  ) {
    super(message);
  }
}

/** Lower-case hex with 0x prefix, for numbers and bigints alike. */
export function hex(value: number | bigint): string {
  return `0x${value.toString(16)}`;
}
