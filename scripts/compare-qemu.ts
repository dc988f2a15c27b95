#!/usr/bin/env bun
/**
 * guest vs qemu-aarch64-static, measured in the same run on the same machine:
 *   (a) syscall round trip: a guest loop of raw getpid calls that times itself (start-up excluded);
 *   (b) start-up: wall-clock time of `busybox true`, median of 10 (first runs discarded as warm-up);
 *   (c) memory: 100,000 same-prot mprotect of a populated 64 MiB range, 100,000 × (mmap 64 KiB, touch,
 *       munmap), 262,144 first-touch page faults — each program times itself; median of 3;
 *   (d) processes: fork+exit+wait latency (200 cycles), fork+execve+wait of a small static program (50
 *       cycles), a 1 MiB round trip through a child over two pipes (50 rounds); threads: create+join (2,000),
 *       8 threads x 200,000 pthread_mutex locked increments, a hand-written futex mutex with 8 threads
 *       uncontended (one mutex each, 1,000,000 pairs each) and contended (one mutex, 500,000 each), with the
 *       futex syscalls each run made — median of 3.
 * Prints a table with ratios (guest ÷ qemu: below 1 means guest is faster) and writes
 * bench/results/compare-qemu.json. Needs qemu-aarch64-static, aarch64-linux-gnu-gcc and the busybox fixture.
 *
 * `--only futex,thread` runs just the rows whose name contains one of those words (row names: getpid,
 * busybox_true, mprotect_same, mmap_cycle, first_touch, fork_wait, fork_exec, pipe_roundtrip,
 * thread_create_join, mutex_threads, futex_uncontended, futex_contended) and writes
 * bench/results/compare-qemu-only.json instead, leaving the full results alone.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { consola } from "consola";
import { FORK_SAFE_ENGINE_OPTIONS } from "../apps/guest/src/runtime/fork-safe.ts";

const root = join(import.meta.dir, "..");
const cacheDir = join(root, ".cache", "bench");
const resultsDir = join(root, "bench", "results");
const guestCli = join(root, "apps", "guest", "src", "main.ts");
const QEMU = "qemu-aarch64-static";
const CC = "aarch64-linux-gnu-gcc";

function buildProgram(name: string): string {
  const source = join(root, "apps", "guest", "bench", "programs", `${name}.c`);
  const flags = ["-static", "-O2", `-I${join(root, "apps", "guest", "bench", "programs")}`];
  const hash = createHash("sha256")
    .update(readFileSync(source))
    .update(flags.join(" "))
    .digest("hex")
    .slice(0, 16);
  const output = join(cacheDir, `${name}-${hash}`);
  if (existsSync(output)) return output;
  mkdirSync(cacheDir, { recursive: true });
  const result = Bun.spawnSync([CC, ...flags, source, "-o", output], { stderr: "pipe" });
  if (!result.success) throw new Error(`${CC} ${name}.c failed: ${result.stderr.toString()}`);
  return output;
}

function runOnce(command: string[]): { ms: number; stdout: string; code: number } {
  const start = Bun.nanoseconds();
  const result = Bun.spawnSync(command, {
    stdout: "pipe",
    stderr: "pipe",
    // The engine options `bun run guest` starts with (package.json), so the guest side is measured as run
    // that way (no re-exec); qemu ignores them.
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...FORK_SAFE_ENGINE_OPTIONS },
  });
  const ms = (Bun.nanoseconds() - start) / 1e6;
  return { ms, stdout: result.stdout.toString(), code: result.exitCode ?? -1 };
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/** Futex syscalls a run reported making ("futex waits W wakes K"). */
interface FutexCalls {
  waits: number;
  wakes: number;
}

/** Both sides' medians, their ratio (guest ÷ qemu) and the samples. */
function medians(qemuSamples: number[], guestSamples: number[]): Record<string, unknown> {
  const qemu = median(qemuSamples);
  const guest = median(guestSamples);
  return { qemu, guest, ratio: guest / qemu, qemuSamples, guestSamples };
}

/** Programs print "<ns> ns/op" or "<ns> ns/call" first; futex_mutex also its futex syscall counts. */
function nsPerOp(command: string[]): { ns: number; futex?: FutexCalls } {
  const { stdout, code } = runOnce(command);
  const match = stdout.match(/^([\d.]+) ns\/(op|call)/);
  if (code !== 0 || !match) throw new Error(`${command.join(" ")} failed (exit ${code}): ${stdout}`);
  const futex = stdout.match(/futex waits (\d+) wakes (\d+)/);
  return futex
    ? { ns: Number(match[1]), futex: { waits: Number(futex[1]), wakes: Number(futex[2]) } }
    : { ns: Number(match[1]) };
}

function getpidNsPerCall(command: string[]): number {
  const { stdout, code } = runOnce(command);
  const match = stdout.match(/^([\d.]+) ns\/call/);
  if (code !== 0 || !match) throw new Error(`${command.join(" ")} failed (exit ${code}): ${stdout}`);
  return Number(match[1]);
}

/** Nanoseconds in the unit that reads best. */
function duration(ns: number): string {
  if (ns < 10_000) return `${ns.toFixed(1)} ns`;
  if (ns < 10_000_000) return `${(ns / 1000).toFixed(2)} µs`;
  return `${(ns / 1e6).toFixed(2)} ms`;
}

interface Comparison {
  qemu: number;
  guest: number;
  ratio: number;
  /** Per run, in run order, for programs that count their futex syscalls. */
  qemuFutex?: FutexCalls[];
  guestFutex?: FutexCalls[];
}

/** A self-timing program under qemu and under guest, alternating, three times each: the medians. */
function medianOfThree(program: string, args: readonly string[]): Comparison {
  const q: ReturnType<typeof nsPerOp>[] = [];
  const g: ReturnType<typeof nsPerOp>[] = [];
  for (let round = 0; round < 3; round++) {
    q.push(nsPerOp([QEMU, program, ...args]));
    g.push(nsPerOp(["bun", guestCli, program, ...args]));
  }
  const qemu = median(q.map((run) => run.ns));
  const guest = median(g.map((run) => run.ns));
  const comparison: Comparison = { qemu, guest, ratio: guest / qemu };
  const futexCalls = (runs: ReturnType<typeof nsPerOp>[]) =>
    runs.flatMap((run) => (run.futex ? [run.futex] : []));
  if (q.some((run) => run.futex)) {
    comparison.qemuFutex = futexCalls(q);
    comparison.guestFutex = futexCalls(g);
  }
  return comparison;
}

/** Row names containing one of `only`'s words run; no words: every row. */
const selects =
  (only: readonly string[]) =>
  (row: string): boolean =>
    only.length === 0 || only.some((word) => row.includes(word));

export async function compareWithQemu(only: readonly string[] = []): Promise<Record<string, unknown>> {
  for (const tool of [QEMU, CC])
    if (!Bun.which(tool)) throw new Error(`${tool} not found (run: bun run test, which installs it)`);
  const wanted = selects(only);
  const results: Record<string, unknown> = {
    date: new Date().toISOString(),
    host: `${process.platform}-${process.arch}`,
  };
  if (wanted("getpid")) results.getpidNsPerCall = compareGetpid();
  if (wanted("busybox_true")) results.busyboxTrueStartupMs = await compareStartup();

  const memory: Record<string, Comparison> = {};
  for (const name of ["mprotect_same", "mmap_cycle", "first_touch"].filter(wanted)) {
    consola.start(`memory: ${name}, median of 3 under each`);
    memory[name] = medianOfThree(buildProgram(name), []);
  }
  if (Object.keys(memory).length > 0) results.memoryNsPerOp = memory;

  // Row name, program, arguments.
  const processRows = (
    [
      ["fork_wait", "fork_wait", []],
      ["fork_exec", "fork_exec", ["<exit_zero>"]],
      ["pipe_roundtrip", "pipe_roundtrip", []],
      ["thread_create_join", "thread_create_join", []],
      ["mutex_threads", "mutex_threads", []],
      ["futex_uncontended", "futex_mutex", ["uncontended", "1000000"]],
      ["futex_contended", "futex_mutex", ["contended", "500000"]],
    ] as const
  ).filter(([name]) => wanted(name));
  const processes: Record<string, Comparison> = {};
  if (processRows.some(([name]) => name === "fork_exec")) {
    // qemu-user execs a foreign binary only through binfmt_misc (our runtime does the execve itself).
    const { ensureQemuBinfmt } = await import("./binfmt.ts");
    const binfmtProblem = ensureQemuBinfmt();
    if (binfmtProblem) throw new Error(`fork_exec under qemu needs binfmt_misc: ${binfmtProblem}`);
  }
  for (const [name, program, args] of processRows) {
    consola.start(`processes: ${name}, median of 3 under each`);
    const resolved = args.map((arg) => (arg === "<exit_zero>" ? buildProgram("exit_zero") : arg));
    processes[name] = medianOfThree(buildProgram(program), resolved);
  }
  if (Object.keys(processes).length > 0) results.processNsPerOp = processes;
  return results;
}

function compareGetpid(): Record<string, unknown> {
  const getpid = buildProgram("getpid_loop");
  const calls = "1000000";
  const rounds = 5;
  consola.start(`getpid round trip: ${calls} calls × ${rounds} rounds under each`);
  const qemuGetpid: number[] = [];
  const guestGetpid: number[] = [];
  for (let round = 0; round < rounds; round++) {
    qemuGetpid.push(getpidNsPerCall([QEMU, getpid, calls]));
    guestGetpid.push(getpidNsPerCall(["bun", guestCli, getpid, calls]));
  }
  return medians(qemuGetpid, guestGetpid);
}

async function compareStartup(): Promise<Record<string, unknown>> {
  const { ensureFixtures } = await import("./fixtures.ts");
  const fixtures = await ensureFixtures();
  const busybox: string | null = fixtures.busybox;
  if (!busybox) throw new Error("the busybox fixture is missing (see scripts/fixtures.ts output)");
  const samples = 10;
  consola.start(`start-up: busybox true, median of ${samples} (after 2 warm-up runs each)`);
  for (let warm = 0; warm < 2; warm++) {
    runOnce([QEMU, busybox, "true"]);
    runOnce(["bun", guestCli, busybox, "true"]);
  }
  const qemuStart: number[] = [];
  const guestStart: number[] = [];
  for (let i = 0; i < samples; i++) {
    const q = runOnce([QEMU, busybox, "true"]);
    const g = runOnce(["bun", guestCli, busybox, "true"]);
    if (q.code !== 0 || g.code !== 0)
      throw new Error(`busybox true failed (qemu ${q.code}, guest ${g.code})`);
    qemuStart.push(q.ms);
    guestStart.push(g.ms);
  }
  return medians(qemuStart, guestStart);
}

/** `--only a,b` (or `--only=a,b`): the words; absent: none (every row). */
function onlyWords(argv: readonly string[]): string[] {
  const at = argv.findIndex((arg) => arg === "--only" || arg.startsWith("--only="));
  if (at < 0) return [];
  const value = argv[at]!.startsWith("--only=") ? argv[at]!.slice("--only=".length) : argv[at + 1];
  const words = (value ?? "").split(",").filter((word) => word.length > 0);
  if (words.length === 0) throw new Error("--only needs a comma-separated list of row-name words");
  return words;
}

/** Median futex syscalls (waits + wakes) per run, for the table. */
function futexCell(runs: FutexCalls[] | undefined): string {
  return runs
    ? ` (${median(runs.map((run) => run.waits + run.wakes)).toLocaleString("en")} futex calls)`
    : "";
}

if (import.meta.main) {
  const only = onlyWords(Bun.argv.slice(2));
  const results = await compareWithQemu(only);
  mkdirSync(resultsDir, { recursive: true });
  const resultsFile = only.length > 0 ? "compare-qemu-only.json" : "compare-qemu.json";
  writeFileSync(join(resultsDir, resultsFile), `${JSON.stringify(results, null, 2)}\n`);
  console.log("\n| benchmark | qemu-aarch64-static | guest (emulator) | guest ÷ qemu |");
  console.log("|---|---|---|---|");
  const g = results.getpidNsPerCall as Comparison | undefined;
  if (g)
    console.log(
      `| getpid round trip (1,000,000 calls, median of 5) | ${g.qemu.toFixed(1)} ns | ${g.guest.toFixed(1)} ns | ${g.ratio.toFixed(2)} |`,
    );
  const s = results.busyboxTrueStartupMs as Comparison | undefined;
  if (s)
    console.log(
      `| \`busybox true\` start-up (median of 10) | ${s.qemu.toFixed(1)} ms | ${s.guest.toFixed(1)} ms | ${s.ratio.toFixed(2)} |`,
    );
  const labels: Record<string, string> = {
    mprotect_same: "same-prot mprotect, populated 64 MiB (100,000 calls)",
    mmap_cycle: "mmap 64 KiB + touch + munmap (100,000 cycles)",
    first_touch: "first-touch page fault (262,144 pages)",
    fork_wait: "fork + exit + wait (200 cycles)",
    fork_exec: "fork + execve small static program + wait (50 cycles)",
    pipe_roundtrip: "1 MiB pipe round trip through a child (50 rounds)",
    thread_create_join: "pthread_create + pthread_join (2,000 cycles)",
    mutex_threads: "8 threads x pthread_mutex locked increment (200,000 each)",
    futex_uncontended: "futex mutex, uncontended: 8 threads x own mutex lock/unlock (1,000,000 each)",
    futex_contended: "futex mutex, contended: 8 threads x one mutex locked increment (500,000 each)",
  };
  const perOp: Record<string, Comparison> = {
    ...(results.memoryNsPerOp as Record<string, Comparison> | undefined),
    ...(results.processNsPerOp as Record<string, Comparison> | undefined),
  };
  for (const [name, m] of Object.entries(perOp)) {
    console.log(
      `| ${labels[name]} | ${duration(m.qemu)}${futexCell(m.qemuFutex)} | ${duration(m.guest)}${futexCell(m.guestFutex)} | ${m.ratio.toFixed(3)} |`,
    );
  }
}
