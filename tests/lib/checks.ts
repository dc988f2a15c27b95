/**
 * Shared by the suites of self-checking guest programs (memory.test.ts, process.test.ts): each program prints
 * one line per check ("FAIL …" on failure) and a summary; the native x86_64 build is the reference.
 */
import { expect } from "bun:test";
import { constants } from "node:os";
import type { Fixtures } from "../../scripts/fixtures.ts";
import { describeStatus, firstDifference, type RunResult } from "./run.ts";

/** A run of a suite program; `leftovers`: processes of its group were still alive after it ended. */
export interface CheckedRun extends RunResult {
  leftovers?: boolean;
}

export function fail(message: string): never {
  throw new Error(message);
}

/** The status as a shell reports it: the exit code, or 128 + the signal number for a signal death. */
export function shellStatus(result: RunResult): number | string {
  if (result.timedOut) return "timed out";
  if (result.signal) {
    const number = constants.signals[result.signal as keyof typeof constants.signals];
    return number === undefined ? result.signal : 128 + number;
  }
  return result.exitCode ?? "unknown";
}

/** firstDifference() names its first side "qemu"; here the reference is the native run. */
export function againstNative(difference: string | null): string | null {
  return difference?.replace("; qemu ", "; native ").replace("    qemu:  ", "    native:") ?? null;
}

export function failLines(result: RunResult): string[] {
  return result.stdout
    .toString()
    .split("\n")
    .filter((line) => line.startsWith("FAIL"));
}

/** Why the native x86_64 builds of `names` cannot run here (another host, or a build missing), or null. */
export function nativeSkipReason(
  fixtures: Fixtures,
  names: readonly string[],
  sources: string,
): string | null {
  if (process.platform !== "linux" || process.arch !== "x64")
    return `the native builds are x86_64 Linux programs; this host is ${process.platform}-${process.arch}`;
  if (names.some((name) => !fixtures.x86_64[name]))
    return `native builds missing: ${fixtures.problems.join("; ") || `a ${sources} source lacks \`// fixture: native\``}`;
  return null;
}

/** Why the aarch64 builds of `names` cannot be run against the oracle here, or null. */
export function aarch64SkipReason(
  fixtures: Fixtures,
  names: readonly string[],
  oracleProblem: string | null,
) {
  if (oracleProblem) return oracleProblem;
  return names.some((name) => !fixtures.aarch64[name])
    ? `aarch64 builds missing: ${fixtures.problems.join("; ")}`
    : null;
}

/** The build of a tests/guest program for `machine`, or a failure naming what is missing. */
export function builtProgram(fixtures: Fixtures, machine: "x86_64" | "aarch64", name: string): string {
  return fixtures[machine][name] ?? fail(`${machine}/${name} was not built: ${fixtures.problems.join("; ")}`);
}

/** What a failure message shows of a run: command, status, the ends of stdout and stderr. */
export function transcript(result: CheckedRun): string {
  return (
    `command: ${result.command.join(" ")}\nstatus: ${describeStatus(result)} (${shellStatus(result)})` +
    `${result.leftovers ? ", left processes behind" : ""}\n` +
    `stdout (end):\n${result.stdout.toString().slice(-3000)}\nstderr (end):\n${result.stderr.toString().slice(-1500)}`
  );
}

/** Every check passed: no FAIL line, the summary line, exit 0, no process left behind, stderr as allowed. */
export function expectAllPassed(result: CheckedRun, options: { stderr: boolean } = { stderr: true }): void {
  const stdout = result.stdout.toString();
  const failures = failLines(result);
  if (
    failures.length > 0 ||
    describeStatus(result) !== "exit 0" ||
    result.leftovers ||
    !/^\d+ checks, 0 failed$/m.test(stdout)
  ) {
    fail(`${failures.join("\n")}\n${transcript(result)}`);
  }
  if (options.stderr) expect(result.stderr.toString()).toBe("");
}

/**
 * The guest run printed exactly what the native build printed, exited 0 and left nothing behind; fails with
 * every difference otherwise. stderr too: Linux prints nothing when a child dies of a signal, and neither may
 * the runtime's forked children.
 */
export function expectSameAsNative(native: CheckedRun, guest: CheckedRun): void {
  const differences = [
    describeStatus(guest) === "exit 0" ? null : `status: native exit 0, guest ${describeStatus(guest)}`,
    guest.leftovers ? "processes were left behind after the guest exited" : null,
    againstNative(firstDifference("stdout", native.stdout, guest.stdout)),
    againstNative(firstDifference("stderr", native.stderr, guest.stderr)),
    ...failLines(guest),
  ].filter((line): line is string => typeof line === "string");
  if (differences.length > 0) fail(`${differences.join("\n")}\n${transcript(guest)}`);
}
