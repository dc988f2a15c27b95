/**
 * Malformed executables through the whole runtime: 10,000 seeded mutations of a real static binary (truncations,
 * bit flips in the ELF and program headers, fields set to huge values). Each one must either be rejected with an
 * ElfError that names the problem, or load into a fresh guest. A random sample of the loadable ones is then run
 * through the CLI as separate processes: each must end on its own within the time limit with a normal exit
 * status (its own, 126/127, or death by the guest's signal) and never crash the host runtime. A mutant may legitimately loop
 * forever (a flipped branch); when one outlives the limit, qemu-aarch64-static must not finish it within the same
 * limit either — otherwise the hang is ours.
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EmulatorBackend, emulatorAvailability } from "@guest/emulator";
import { ElfError } from "@guest/loader";
import { GuestProcess } from "../apps/guest/src/runtime/guest-process.ts";
import { ensureFixtures } from "../scripts/fixtures.ts";

const QEMU = "qemu-aarch64-static";
const MUTANTS = 10_000;
const RUN_SAMPLE = 120;
const RUN_TIMEOUT_MS = 4_000;
const fixtures = await ensureFixtures();
const seedProgram = fixtures.aarch64.hello;
const skip = !emulatorAvailability().available
  ? "libunicorn 2.1 not available"
  : !seedProgram
    ? "hello fixture not built"
    : null;
if (skip) console.warn(`[elf-fuzz] skipped: ${skip}`);

/** xorshift32: reproducible mutations. */
function random(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 0x1_0000_0000;
  };
}

function mutate(original: Uint8Array, next: () => number): Uint8Array {
  const kind = Math.floor(next() * 4);
  const headerEnd = Math.min(original.length, 64 + 56 * 8);
  const bytes = original.slice();
  switch (kind) {
    case 0: // truncation
      return bytes.subarray(0, Math.floor(next() * original.length));
    case 1: {
      // 1-8 bit flips in the ELF header and program headers
      const flips = 1 + Math.floor(next() * 8);
      for (let i = 0; i < flips; i++) bytes[Math.floor(next() * headerEnd)]! ^= 1 << Math.floor(next() * 8);
      return bytes;
    }
    case 2: {
      // a 64-bit header or program-header field set to an extreme value
      const view = new DataView(bytes.buffer);
      const offset = Math.floor((next() * (headerEnd - 8)) / 8) * 8;
      const extremes = [
        0n,
        1n,
        0xffff_ffff_ffff_ffffn,
        1n << 63n,
        0x7fff_ffff_ffff_ffffn,
        BigInt(original.length),
        BigInt(original.length + 1),
      ];
      view.setBigUint64(offset, extremes[Math.floor(next() * extremes.length)]!, true);
      return bytes;
    }
    default: {
      // random bytes anywhere
      for (let i = 0; i < 16; i++) bytes[Math.floor(next() * bytes.length)] = Math.floor(next() * 256);
      return bytes;
    }
  }
}

/** The signal qemu-aarch64-static's run of `path` ends with (SIGKILL when it outlives the limit), or null. */
async function qemuSignal(path: string): Promise<string | null> {
  const oracle = Bun.spawn([QEMU, path], {
    stdin: "ignore",
    stdout: "ignore",
    stderr: "ignore",
    timeout: RUN_TIMEOUT_MS,
    killSignal: "SIGKILL",
  });
  await oracle.exited;
  return oracle.signalCode === null ? null : String(oracle.signalCode);
}

describe.skipIf(skip !== null)("malformed executables", () => {
  const original = skip ? new Uint8Array() : new Uint8Array(readFileSync(seedProgram!));
  const loadable: Uint8Array[] = [];

  test(`${MUTANTS} mutants: each is rejected with a named reason or loads`, () => {
    const next = random(0x5eed);
    const backend = new EmulatorBackend();
    let rejected = 0;
    for (let i = 0; i < MUTANTS; i++) {
      const bytes = mutate(original, next);
      try {
        const guest = new GuestProcess({
          backend,
          executablePath: "/fuzz",
          executable: bytes,
          argv: ["fuzz"],
          envp: [],
          execfn: "/fuzz",
        });
        guest.destroy();
        loadable.push(bytes);
      } catch (error) {
        if (!(error instanceof ElfError))
          throw new Error(`mutant ${i}: not an ElfError: ${(error as Error).stack}`);
        expect(error.message.length).toBeGreaterThan(10);
        rejected++;
      }
    }
    expect(rejected + loadable.length).toBe(MUTANTS);
    expect(rejected).toBeGreaterThan(0);
    expect(loadable.length).toBeGreaterThan(0);
  }, 300_000);

  test(`a sample of ${RUN_SAMPLE} loadable mutants runs to an end: no host crash, no hang`, async () => {
    const next = random(0xc0ffee);
    const directory = mkdtempSync(join(tmpdir(), "guest-fuzz-"));
    const cli = join(import.meta.dir, "..", "apps", "guest", "src", "main.ts");
    try {
      const sample = Array.from(
        { length: Math.min(RUN_SAMPLE, loadable.length) },
        () => loadable[Math.floor(next() * loadable.length)]!,
      );
      for (let start = 0; start < sample.length; start += 4) {
        const batch = sample.slice(start, start + 4).map(async (bytes, j) => {
          const path = join(directory, `mutant-${start + j}`);
          writeFileSync(path, bytes, { mode: 0o755 });
          const child = Bun.spawn(["bun", cli, path], {
            stdin: "ignore",
            stdout: "ignore",
            stderr: "pipe",
            timeout: RUN_TIMEOUT_MS,
            killSignal: "SIGKILL",
          });
          const [code, stderr] = await Promise.all([child.exited, new Response(child.stderr).text()]);
          let signal = child.signalCode;
          // Timed out (SIGKILL): acceptable only if the program never ends under qemu either. Another signal: the
          // runtime dies of the signal its guest died of (as qemu-user does), fine when qemu's run dies of the
          // same one; a crash of the runtime itself would not (and says "panic").
          if (signal !== null && Bun.which(QEMU) && (await qemuSignal(path)) === signal) signal = null;
          return { path, code: signal === null && code === null ? 0 : code, signal, stderr };
        });
        for (const { path, code, signal, stderr } of await Promise.all(batch)) {
          // The runtime itself must never die of a signal of its own (a crash) or be killed by the timeout (a hang).
          expect({ path, signal }).toEqual({ path, signal: null });
          expect(stderr).not.toMatch(/panic|Segmentation fault|Bun has crashed/);
          expect(code).toBeGreaterThanOrEqual(0);
          expect(code).toBeLessThanOrEqual(255);
        }
      }
    } finally {
      if (!process.env.GUEST_FUZZ_KEEP) rmSync(directory, { recursive: true, force: true });
      else console.warn(`[elf-fuzz] kept ${directory}`);
    }
  }, 600_000);
});
