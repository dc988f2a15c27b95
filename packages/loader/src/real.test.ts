/**
 * Real static binaries from the cross compiler, checked against qemu-aarch64-static (the oracle): the
 * AT_PHDR / AT_PHNUM / AT_PHENT / AT_ENTRY a program sees and the hash of its own text must match what
 * our plan and writeSegments produce.
 */
import { describe, expect, test } from "bun:test";
import { PF_R, PF_W, PF_X, PROT_EXEC, PROT_READ, PROT_WRITE } from "./elf-abi.ts";
import { DEFAULT_PIE_BASE, parseElf, planLoad, writeSegments } from "./index.ts";
import {
  buildFixtures,
  CROSS_CC,
  crossCompilerAvailable,
  fnv1a64,
  parseProbeOutput,
  QEMU,
} from "./test-support/fixtures.ts";

const haveCc = crossCompilerAvailable();
const haveQemu = Bun.which(QEMU) !== null;
if (!haveCc)
  console.warn(`loader real-binary tests skipped: ${CROSS_CC} not found (install gcc-aarch64-linux-gnu)`);
if (!haveQemu) console.warn(`loader qemu oracle tests skipped: ${QEMU} not found (install qemu-user-static)`);

function runUnderQemu(path: string) {
  const result = Bun.spawnSync([QEMU, path]);
  if (result.exitCode !== 0) throw new Error(`${QEMU} ${path} failed: ${result.stderr.toString()}`);
  return parseProbeOutput(result.stdout.toString());
}

describe.skipIf(!haveCc)("real static binaries", () => {
  test("-static: ET_EXEC with TLS, BSS and the headers in the text segment", () => {
    const { bytes } = buildFixtures()!.staticExe;
    const image = parseElf(bytes);
    expect(image.type).toBe("exec");
    expect(image.isPie).toBe(false);
    expect(image.tls).not.toBeNull();
    expect(image.execStack).toBe(false);
    expect(image.loads.length).toBeGreaterThanOrEqual(2);
    expect(image.loads[0]!.flags & (PF_R | PF_X)).toBe(PF_R | PF_X);
    const data = image.loads.find((s) => s.flags & PF_W)!;
    expect(data.memsz - data.filesz).toBeGreaterThanOrEqual(1 << 20);
    const plan = planLoad(image);
    expect(plan.loadBias).toBe(0);
    expect(plan.mappings[0]!.prot).toBe(PROT_READ | PROT_EXEC);
    expect(plan.mappings.some((m) => m.prot === (PROT_READ | PROT_WRITE))).toBe(true);
    expect(plan.imageEnd % 4096).toBe(0);
  });

  test("-static-pie: ET_DYN placed at DEFAULT_PIE_BASE", () => {
    const { bytes } = buildFixtures()!.staticPie;
    const image = parseElf(bytes);
    expect(image.type).toBe("dyn");
    expect(image.hasDynamic).toBe(true);
    const plan = planLoad(image);
    expect(plan.loadBias).toBe(DEFAULT_PIE_BASE);
    expect(plan.entry).toBe(image.entry + DEFAULT_PIE_BASE);
    expect(plan.imageStart).toBe(DEFAULT_PIE_BASE);
  });

  test.skipIf(!haveQemu)("-static: auxv and text bytes match qemu-aarch64", () => {
    const { path, bytes } = buildFixtures()!.staticExe;
    const seen = runUnderQemu(path);
    const plan = planLoad(parseElf(bytes));
    expect(plan.phdrAddress).toBe(seen.phdr);
    expect(plan.phnum).toBe(seen.phnum);
    expect(plan.phent).toBe(seen.phent);
    expect(plan.entry).toBe(seen.entry);
    expect(seen.tls).toBe(42);
    expect(seen.bss).toBe(0);
    const memory = new Uint8Array(plan.imageEnd).fill(0x5a);
    writeSegments(plan, bytes, memory);
    expect(fnv1a64(memory.subarray(seen.textStart, seen.textEnd))).toBe(seen.textHash);
  });

  test.skipIf(!haveQemu)("-static-pie: bias-relative auxv and text bytes match qemu-aarch64", () => {
    const { path, bytes } = buildFixtures()!.staticPie;
    const seen = runUnderQemu(path);
    const plan = planLoad(parseElf(bytes));
    const qemuBias = seen.textStart; // __ehdr_start is vaddr 0 of a static-pie
    expect(plan.phdrAddress - plan.loadBias).toBe(seen.phdr - qemuBias);
    expect(plan.entry - plan.loadBias).toBe(seen.entry - qemuBias);
    expect(plan.phnum).toBe(seen.phnum);
    const memory = new Uint8Array(plan.imageEnd);
    writeSegments(plan, bytes, memory);
    const start = seen.textStart - qemuBias + plan.loadBias;
    const end = seen.textEnd - qemuBias + plan.loadBias;
    expect(fnv1a64(memory.subarray(start, end))).toBe(seen.textHash);
  });
});
