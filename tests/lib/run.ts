/**
 * Run an aarch64 program under the oracle (qemu-aarch64-static) and under our CLI with the same argv, env,
 * stdin and cwd; capture stdout, stderr and the exit status; compare them byte for byte.
 *
 * Both sides get exactly the same environment (FIXED_ENV plus what a test adds) and nothing else: qemu-user
 * hands its own environment to the guest, and so does our CLI, so any difference in the processes'
 * environments would show up in the guest.
 *
 * Which runtime is "ours" can be overridden, e.g. to check the harness itself against qemu on both sides:
 *   GUEST_TEST_RUNNER="qemu-aarch64-static" bun test tests/differential.test.ts
 * GUEST_TEST_CLI_FLAGS adds flags to our CLI (before `--`), e.g. "--backend emulator" or "--trace".
 */
import { createHash } from "node:crypto";
import { join } from "node:path";

export const REPO_ROOT = join(import.meta.dir, "..", "..");
export const QEMU = "qemu-aarch64-static";
export const GUEST_CLI = join(REPO_ROOT, "apps", "guest", "src", "main.ts");

/** The environment both sides run with, so that outputs do not depend on whoever runs the tests. */
export const FIXED_ENV: Readonly<Record<string, string>> = Object.freeze({
  PATH: "/usr/bin:/bin",
  HOME: "/tmp",
  LANG: "C",
});

/** Long enough for a slow emulator run, short enough that a hung guest fails the test instead of CI. */
export const DEFAULT_TIMEOUT_MS = 30_000;

export interface RunOptions {
  /** argv[1..]; argv[0] is the program path exactly as given. */
  args?: string[];
  /** Added to FIXED_ENV (a test that wants an empty environment passes `replaceEnv`). */
  env?: Record<string, string>;
  /** Use exactly this environment instead of FIXED_ENV + env. */
  replaceEnv?: Record<string, string>;
  /** Bytes or text for standard input; without it, stdin is /dev/null. */
  stdin?: string | Uint8Array;
  cwd?: string;
  timeoutMs?: number;
}

export interface RunResult {
  /** Who ran it ("qemu" or "guest") and the full command line, for failure messages. */
  side: string;
  command: string[];
  stdout: Buffer;
  stderr: Buffer;
  /** Exit status, or null when killed by a signal. */
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
}

export function environmentFor(options: RunOptions): Record<string, string> {
  return options.replaceEnv ? { ...options.replaceEnv } : { ...FIXED_ENV, ...options.env };
}

export function qemuCommand(program: string, args: string[] = []): string[] {
  return [QEMU, program, ...args];
}

function splitWords(value: string | undefined): string[] {
  return (value ?? "").split(/\s+/).filter((word) => word.length > 0);
}

/** Our CLI: `bun apps/guest/src/main.ts [flags] -- program args…`, or GUEST_TEST_RUNNER's command instead. */
export function guestCommand(program: string, args: string[] = []): string[] {
  const runner = splitWords(process.env.GUEST_TEST_RUNNER);
  if (runner.length > 0) return [...runner, program, ...args];
  // --no-env-file: a stray .env in the cwd must not change the environment the guest inherits.
  return [
    "bun",
    "--no-env-file",
    GUEST_CLI,
    ...splitWords(process.env.GUEST_TEST_CLI_FLAGS),
    "--",
    program,
    ...args,
  ];
}

/** Spawn one command; never throws for a failing program, kills it and its process group (SIGKILL) on timeout. */
export async function runCommand(
  side: string,
  command: string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const stdin = options.stdin === undefined ? "ignore" : Buffer.from(options.stdin);
  const child = Bun.spawn(command, {
    cwd: options.cwd ?? REPO_ROOT,
    env: environmentFor(options),
    stdin,
    stdout: "pipe",
    stderr: "pipe",
    // Its own process group, so a timeout kills the children a hung guest forked too (they would otherwise
    // hold the output pipes open and outlive the test).
    detached: true,
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      child.kill("SIGKILL");
    }
  }, timeoutMs);
  try {
    const [stdout, stderr] = await Promise.all([
      new Response(child.stdout).arrayBuffer(),
      new Response(child.stderr).arrayBuffer(),
      child.exited,
    ]);
    return {
      side,
      command,
      stdout: Buffer.from(stdout),
      stderr: Buffer.from(stderr),
      exitCode: child.exitCode,
      signal: child.signalCode === null ? null : String(child.signalCode),
      timedOut,
    };
  } finally {
    clearTimeout(timer);
  }
}

export function runUnderQemu(program: string, options: RunOptions = {}): Promise<RunResult> {
  return runCommand("qemu", qemuCommand(program, options.args), options);
}

export function runUnderGuest(program: string, options: RunOptions = {}): Promise<RunResult> {
  return runCommand("guest", guestCommand(program, options.args), options);
}

/** qemu first, then ours: one after the other, so they never race on files or CPU. */
export async function runBoth(
  program: string,
  options: RunOptions = {},
): Promise<{ qemu: RunResult; guest: RunResult }> {
  const qemu = await runUnderQemu(program, options);
  const guest = await runUnderGuest(program, options);
  return { qemu, guest };
}

export function describeStatus(result: RunResult): string {
  if (result.timedOut) return "timed out (killed)";
  if (result.signal) return `killed by ${result.signal}`;
  return `exit ${result.exitCode}`;
}

function showBytes(bytes: Buffer, at: number, length = 60): string {
  return JSON.stringify(bytes.subarray(Math.max(0, at - 20), at + length).toString("latin1"));
}

/** A readable account of where two byte streams first differ, or null when they are identical. */
export function firstDifference(name: string, expected: Buffer, actual: Buffer): string | null {
  if (expected.equals(actual)) return null;
  const limit = Math.min(expected.length, actual.length);
  let at = 0;
  while (at < limit && expected[at] === actual[at]) at++;
  const line = expected.subarray(0, at).toString("latin1").split("\n").length;
  return (
    `${name} differs at byte ${at} (line ${line}; qemu ${expected.length} bytes, guest ${actual.length} bytes):\n` +
    `    qemu:  ${showBytes(expected, at)}\n` +
    `    guest: ${showBytes(actual, at)}`
  );
}

export interface CompareOptions {
  /** Compare stderr too (default true). Turn off only with a comment saying why it legitimately differs. */
  stderr?: boolean;
}

/** Every difference between the two runs, as readable lines; empty when they behaved identically. */
export function compareRuns(qemu: RunResult, guest: RunResult, options: CompareOptions = {}): string[] {
  const differences: string[] = [];
  if (describeStatus(qemu) !== describeStatus(guest)) {
    differences.push(`status differs: qemu ${describeStatus(qemu)}, guest ${describeStatus(guest)}`);
  }
  const stdout = firstDifference("stdout", qemu.stdout, guest.stdout);
  if (stdout) differences.push(stdout);
  if (options.stderr ?? true) {
    const stderr = firstDifference("stderr", qemu.stderr, guest.stderr);
    if (stderr) differences.push(stderr);
  }
  if (differences.length > 0) {
    // Our side's stderr usually says why (an unimplemented syscall, a CLI error): show its end.
    const tail = guest.stderr.toString("utf8").slice(-1500);
    differences.push(`guest command: ${guest.command.join(" ")}`);
    if (tail.length > 0) differences.push(`guest stderr (end):\n${tail}`);
  }
  return differences;
}

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Why differential runs cannot happen on this machine, or null when they can. */
export function oracleUnavailableReason(): string | null {
  // A missing CLI is deliberately not a reason: it is part of this project, so its absence must fail.
  if (Bun.which(QEMU) === null)
    return `${QEMU} not found: install it with \`apt-get install qemu-user-static\``;
  return null;
}
