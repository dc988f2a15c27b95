/**
 * Random inputs, two properties:
 *
 * 1. tests/guest/sys_fuzz.c: random arguments to harmless syscalls. Whatever the guest passes, the runtime
 *    answers (a result or -errno) and never fails itself: the program ends normally and prints "done", and
 *    stderr carries no "guest: internal error". (qemu-user 7.2 itself dies of SIGSEGV on these seeds.)
 * 2. The native-differential fuzzers: each prints every call's result and, regularly, the state it changes;
 *    our runtime must print exactly what the x86_64 build prints on this Linux host (and end the same way),
 *    seed after seed.
 *    - mm_fuzz.c: mmap/munmap/mprotect/madvise/mremap/mlock/msync/mincore histories in a 1 MiB sandbox, with
 *      the sandbox's /proc/self/maps and per-page accessibility and contents every 4th step;
 *    - sig_fuzz.c: signal-state histories of one thread (sigprocmask, sigaction with random flags, kill /
 *      tgkill / rt_sigqueueinfo to itself, sigpending, sigtimedwait, sigaltstack), every delivery printed with
 *      its siginfo and the mask inside the handler (a few seeds end killed by a queued real-time signal whose
 *      SA_RESETHAND handler was reset, on both kernels alike);
 *    - fd_fuzz.c: fd-table histories in a scratch directory (open/openat/pipe2, dup/dup2/dup3, fcntl, close,
 *      close_range, read/write/pread/pwrite/preadv/pwritev/preadv2/pwritev2, lseek, ftruncate, fstat, unlink);
 *    - futex_fuzz.c: futex calls of one thread (every implemented command, private and shared,
 *      FUTEX_CLOCK_REALTIME, aligned / unaligned / unmapped words, random counts and FUTEX_WAKE_OP encodings;
 *      the PI commands are ENOSYS here).
 *
 * Known divergence (listed by seed, each still checked to be the known one, so a fix shows up here): where
 * Linux keeps two areas apart that look alike from the outside (because both had pages written before they
 * became neighbours, or one was moved by mremap and keeps its old page offset), a later mremap that needs one
 * area across that boundary (growing, or a move keeping that much) is EFAULT on Linux; the runtime merges
 * such areas and answers as for one area.
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureFixtures } from "../scripts/fixtures.ts";
import { describeStatus, runCommand, runUnderGuest } from "./lib/run.ts";

const fixtures = await ensureFixtures({ busybox: false });
const TIMEOUT_MS = 60_000;
const seeds = (count: number): number[] => Array.from({ length: count }, (_, i) => i + 1);

const sysFuzz = fixtures.aarch64.sys_fuzz;
const sysSkip = sysFuzz === undefined ? `sys_fuzz not built: ${fixtures.problems.join("; ")}` : null;
if (sysSkip) console.warn(`[fuzz] ${sysSkip}`);

describe.skipIf(sysSkip !== null)("sys_fuzz: random syscall arguments never break the runtime", () => {
  for (const seed of seeds(8)) {
    test(
      `seed ${seed}: 20000 calls answered`,
      async () => {
        const run = await runUnderGuest(sysFuzz!, { args: [String(seed), "20000"], timeoutMs: TIMEOUT_MS });
        expect(run.stderr.toString()).not.toContain("internal error");
        expect(run.stdout.toString()).toBe("done\n");
        expect(describeStatus(run)).toBe("exit 0");
      },
      TIMEOUT_MS,
    );
  }
});

/** The first line where two outputs differ, or null. */
function firstDifference(
  expected: string,
  actual: string,
): { line: number; expected: string; actual: string } | null {
  const a = expected.split("\n");
  const b = actual.split("\n");
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) return { line: i + 1, expected: a[i] ?? "(end)", actual: b[i] ?? "(end)" };
  }
  return null;
}

interface DifferentialFuzzer {
  /** The fixture: tests/guest/<name>.c, built for aarch64 and natively. */
  name: string;
  title: string;
  /** Arguments after the seed. */
  args: string[];
  seeds: number[];
  /** Each run in an empty scratch directory of its own (the program creates files). */
  scratch?: boolean;
  /** Seeds that reach a known divergence: the native line where it shows (everything before is the same). */
  known?: Record<number, RegExp>;
}

function describeDifferential(fuzzer: DifferentialFuzzer): void {
  const guest = fixtures.aarch64[fuzzer.name];
  const native = fixtures.x86_64[fuzzer.name];
  const skip =
    guest === undefined
      ? `${fuzzer.name} not built: ${fixtures.problems.join("; ")}`
      : process.platform !== "linux" || process.arch !== "x64"
        ? "the reference is the x86_64 build run on this Linux host"
        : native === undefined
          ? `no native build of ${fuzzer.name}`
          : null;
  if (skip) console.warn(`[fuzz] skipping ${fuzzer.name}: ${skip}`);
  describe.skipIf(skip !== null)(`${fuzzer.name}: ${fuzzer.title}`, () => {
    for (const seed of fuzzer.seeds) {
      const known = fuzzer.known?.[seed];
      test(
        known ? `seed ${seed}: the known divergence, and only it` : `seed ${seed}: same as native`,
        async () => {
          const args = [String(seed), ...fuzzer.args];
          const nativeDir = fuzzer.scratch
            ? mkdtempSync(join(tmpdir(), `${fuzzer.name}-native-`))
            : undefined;
          const guestDir = fuzzer.scratch ? mkdtempSync(join(tmpdir(), `${fuzzer.name}-guest-`)) : undefined;
          try {
            const options = { timeoutMs: TIMEOUT_MS };
            const reference = await runCommand("native", [native!, ...args], { ...options, cwd: nativeDir });
            const run = await runUnderGuest(guest!, { ...options, args, cwd: guestDir });
            expect(run.stderr.toString()).not.toContain("internal error");
            const difference = firstDifference(reference.stdout.toString(), run.stdout.toString());
            if (known) {
              // Everything before it is the same, and it is the mremap Linux refuses with EFAULT.
              expect(difference?.expected).toMatch(known);
              expect(difference?.expected).toEndWith("= -1 Bad address");
            } else {
              expect(difference).toBeNull();
              expect(describeStatus(run)).toBe(describeStatus(reference));
            }
          } finally {
            if (nativeDir) rmSync(nativeDir, { recursive: true, force: true });
            if (guestDir) rmSync(guestDir, { recursive: true, force: true });
          }
        },
        TIMEOUT_MS,
      );
    }
  });
}

describeDifferential({
  name: "mm_fuzz",
  title: "random memory histories end exactly as on Linux",
  args: ["600", "4"],
  seeds: seeds(60),
  known: {
    48: /^mremap\(\+0x6f000, 0xc000, 0x5000, MAYMOVE\|FIXED, \+0xc3000\) = /,
    50: /^mremap\(\+0xae000, 0x695e, 0x5000, MAYMOVE\|FIXED, \+0xda000\) = /,
  },
});
describeDifferential({
  name: "sig_fuzz",
  title: "random signal histories end exactly as on Linux",
  args: ["300"],
  seeds: seeds(40),
});
describeDifferential({
  name: "fd_fuzz",
  title: "random fd-table histories end exactly as on Linux",
  args: ["300"],
  seeds: seeds(40),
  scratch: true,
});
describeDifferential({
  name: "futex_fuzz",
  title: "random futex calls answer exactly as on Linux",
  args: ["400"],
  seeds: seeds(40),
});
