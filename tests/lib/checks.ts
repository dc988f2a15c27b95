/**
 * Shared by the suites of self-checking guest programs (memory.test.ts, process.test.ts): each program prints
 * one line per check ("FAIL …" on failure) and a summary; the native x86_64 build is the reference.
 */
import { constants } from "node:os";
import type { Fixtures } from "../../scripts/fixtures.ts";
import type { RunResult } from "./run.ts";

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
