/**
 * Test helper: real static aarch64 programs, compiled on demand with the cross compiler into a temp dir
 * (once per test process). Returns null when aarch64-linux-gnu-gcc is missing, so tests can skip loudly.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const CROSS_CC = process.env.GUEST_CROSS_CC ?? "aarch64-linux-gnu-gcc";
export const QEMU = process.env.GUEST_QEMU ?? "qemu-aarch64-static";

/** Prints what the kernel (or qemu) told it and a hash of its own text, for comparison with our plan. */
const PROBE_C = `
#include <stdio.h>
#include <stdint.h>
#include <sys/auxv.h>
extern const char __ehdr_start[];
extern const char etext[];
__thread int tls_counter = 42;
char bss_area[1 << 20];
int main(int argc, char **argv) {
  uint64_t h = 1469598103934665603ULL;
  for (const char *p = __ehdr_start; p < etext; p++) { h ^= (unsigned char)*p; h *= 1099511628211ULL; }
  printf("phdr %lx\\nphnum %lu\\nphent %lu\\nentry %lx\\ntext %lx %lx %016llx\\ntls %d\\nbss %d\\n",
         getauxval(AT_PHDR), getauxval(AT_PHNUM), getauxval(AT_PHENT), getauxval(AT_ENTRY),
         (unsigned long)__ehdr_start, (unsigned long)etext, (unsigned long long)h, tls_counter, ((volatile char *)bss_area)[argc]);
  return 0;
}
`;

export interface Fixtures {
  dir: string;
  /** ET_EXEC, -static */
  staticExe: { path: string; bytes: Uint8Array };
  /** ET_DYN without PT_INTERP, -static-pie */
  staticPie: { path: string; bytes: Uint8Array };
}

let cached: Fixtures | null | undefined;

export function crossCompilerAvailable(): boolean {
  return Bun.which(CROSS_CC) !== null;
}

export function buildFixtures(): Fixtures | null {
  if (cached !== undefined) return cached;
  if (!crossCompilerAvailable()) {
    cached = null;
    return null;
  }
  const dir = mkdtempSync(join(tmpdir(), "loader-fixtures-"));
  const source = join(dir, "probe.c");
  writeFileSync(source, PROBE_C);
  const compile = (flag: string, out: string) => {
    const path = join(dir, out);
    const result = Bun.spawnSync([CROSS_CC, flag, "-O2", source, "-o", path]);
    if (result.exitCode !== 0) throw new Error(`${CROSS_CC} ${flag} failed: ${result.stderr.toString()}`);
    return { path, bytes: new Uint8Array(readFileSync(path)) };
  };
  cached = {
    dir,
    staticExe: compile("-static", "probe-static"),
    staticPie: compile("-static-pie", "probe-pie"),
  };
  return cached;
}

/** FNV-1a 64 of a byte range (matches the probe program's own hash). */
export function fnv1a64(bytes: Uint8Array): bigint {
  let h = 1469598103934665603n;
  for (const b of bytes) h = BigInt.asUintN(64, (h ^ BigInt(b)) * 1099511628211n);
  return h;
}

/** Parse the probe program's output. */
export function parseProbeOutput(text: string) {
  const fields = new Map<string, string[]>();
  for (const line of text.trim().split("\n")) {
    const [key, ...rest] = line.split(" ");
    fields.set(key!, rest);
  }
  const hexField = (key: string, i = 0) => Number.parseInt(fields.get(key)![i]!, 16);
  return {
    phdr: hexField("phdr"),
    phnum: Number(fields.get("phnum")![0]),
    phent: Number(fields.get("phent")![0]),
    entry: hexField("entry"),
    textStart: hexField("text", 0),
    textEnd: hexField("text", 1),
    textHash: BigInt(`0x${fields.get("text")![2]}`),
    tls: Number(fields.get("tls")![0]),
    bss: Number(fields.get("bss")![0]),
  };
}
