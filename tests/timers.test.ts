/**
 * POSIX per-process timers (tests/guest/sys_timers.c): our runtime must print exactly what the same program
 * prints built for x86_64 and run natively on this Linux host (which proves every expectation is Linux's).
 * qemu-aarch64-static is an oracle only where it is right: it numbers timers its own way (0x0caf0000 | n), so
 * the lines that check Linux's ids (from 0, si_timerid, the NULL sigevent's si_value) are left out there.
 */
import { describe, expect, test } from "bun:test";
import { ensureFixtures } from "../scripts/fixtures.ts";
import {
  describeStatus,
  oracleUnavailableReason,
  runCommand,
  runUnderGuest,
  runUnderQemu,
} from "./lib/run.ts";

const fixtures = await ensureFixtures();
const TIMEOUT_MS = 120_000;

/** Checks qemu-user gets wrong: its timer ids are not the kernel's. */
const QEMU_WRONG = [
  "the first timer of a process is id 0",
  "the next one is id 1",
  "si_timerid is the timer's id",
  "sigwaitinfo siginfo: SI_TIMER, si_value, si_timerid",
  "NULL sigevent: si_value is the timer id",
  "fork: the child has none of the parent's timers",
];
const withoutQemuWrong = (stdout: string): string[] =>
  stdout
    .split("\n")
    .filter((line) => !QEMU_WRONG.some((what) => line.startsWith(what) || line.startsWith(`FAIL ${what}`)))
    .filter((line) => !/^\d+ checks, \d+ failed$/.test(line));

const aarch64 = fixtures.aarch64.sys_timers;
const native = fixtures.x86_64.sys_timers;
const skip =
  aarch64 === undefined
    ? `sys_timers not built: ${fixtures.problems.join("; ")}`
    : process.platform !== "linux" || process.arch !== "x64"
      ? "the native reference is an x86_64 Linux build"
      : native === undefined
        ? "no native build of sys_timers"
        : null;
if (skip) console.warn(`[timers] skipping: ${skip}`);

describe.skipIf(skip !== null)("POSIX timers: guest vs native Linux", () => {
  test(
    "sys_timers prints what it prints natively",
    async () => {
      const [reference, guest] = await Promise.all([
        runCommand("native", [native!]),
        runUnderGuest(aarch64!),
      ]);
      expect(describeStatus(reference)).toBe("exit 0");
      expect(reference.stdout.toString()).toMatch(/^\d+ checks, 0 failed$/m);
      expect(guest.stderr.toString()).toBe("");
      expect(guest.stdout.toString()).toBe(reference.stdout.toString());
      expect(describeStatus(guest)).toBe("exit 0");
    },
    TIMEOUT_MS,
  );

  test.skipIf(oracleUnavailableReason() !== null)(
    "and what qemu-user prints, where qemu is right",
    async () => {
      const [qemu, guest] = await Promise.all([runUnderQemu(aarch64!), runUnderGuest(aarch64!)]);
      expect(withoutQemuWrong(guest.stdout.toString())).toEqual(withoutQemuWrong(qemu.stdout.toString()));
    },
    TIMEOUT_MS,
  );
});
