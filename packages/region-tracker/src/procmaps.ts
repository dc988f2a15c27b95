import { PROT_EXEC, PROT_READ, PROT_WRITE } from "./abi.ts";
import type { Region } from "./region.ts";

/**
 * Column where the prefix is padded to (fs/proc/task_mmu.c show_vma_header_prefix:
 * seq_setwidth(m, 25 + sizeof(void *) * 6 - 1) with 8-byte pointers); the name follows one more space.
 */
const PAD_WIDTH = 25 + 8 * 6 - 1;

/** Major number of a userspace dev_t (glibc gnu_dev_major). */
export function devMajor(dev: number): number {
  const big = BigInt(dev);
  return Number(((big >> 8n) & 0xfffn) | ((big >> 32n) & ~0xfffn));
}

/** Minor number of a userspace dev_t (glibc gnu_dev_minor). */
export function devMinor(dev: number): number {
  const big = BigInt(dev);
  return Number((big & 0xffn) | ((big >> 12n) & ~0xffn));
}

function hex(value: number, width: number): string {
  return value.toString(16).padStart(width, "0");
}

/** One /proc/self/maps line (without the newline), byte-for-byte as Linux prints it. */
export function formatProcMapsLine(r: Region): string {
  const file = r.file;
  const perms =
    (r.prot & PROT_READ ? "r" : "-") +
    (r.prot & PROT_WRITE ? "w" : "-") +
    (r.prot & PROT_EXEC ? "x" : "-") +
    (r.flags.shared ? "s" : "p");
  const dev = file ? file.dev : 0;
  const prefix =
    `${hex(r.start, 8)}-${hex(r.end, 8)} ${perms} ${hex(file ? file.offset : 0, 8)} ` +
    `${hex(devMajor(dev), 2)}:${hex(devMinor(dev), 2)} ${file ? file.inode : 0} `;
  const name = r.name ?? file?.path;
  if (name === undefined || name === "") return prefix;
  // seq_file_path escapes a newline in a path as \012.
  return `${prefix.padEnd(PAD_WIDTH, " ")} ${name.replaceAll("\n", "\\012")}`;
}

/** The whole /proc/self/maps text for regions in address order. */
export function formatProcMaps(regions: Iterable<Region>): string {
  let out = "";
  for (const r of regions) out += `${formatProcMapsLine(r)}\n`;
  return out;
}
