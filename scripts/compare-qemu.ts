#!/usr/bin/env bun
/**
 * guest vs qemu-aarch64-static, measured in the same run on the same machine:
 *   (a) syscall round trip: a guest loop of raw getpid calls that times itself (start-up excluded);
 *   (b) start-up: wall-clock time of `busybox true`, median of 10 (first runs discarded as warm-up);
 *   (c) memory: 100,000 same-prot mprotect of a populated 64 MiB range, 100,000 × (mmap 64 KiB, touch,
 *       munmap), 262,144 first-touch page faults — each program times itself; median of 3;
 *   (d) processes: fork+exit+wait latency (200 cycles), fork+execve+wait of a small static program (50
 *       cycles), a 1 MiB round trip through a child over two pipes (50 rounds); threads: create+join (2,000),
 *       8 threads x 200,000 pthread_mutex locked increments — median of 3.
 * Prints a table with ratios (guest ÷ qemu: below 1 means guest is faster) and writes
 * bench/results/compare-qemu.json. Needs qemu-aarch64-static, aarch64-linux-gnu-gcc and the busybox fixture.
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

/** Programs print "<ns> ns/op" or "<ns> ns/call" first. */
function nsPerOp(command: string[]): number {
  const { stdout, code } = runOnce(command);
  const match = stdout.match(/^([\d.]+) ns\/(op|call)/);
  if (code !== 0 || !match) throw new Error(`${command.join(" ")} failed (exit ${code}): ${stdout}`);
  return Number(match[1]);
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

/** A self-timing program under qemu and under guest, alternating, three times each: the medians. */
function medianOfThree(
  program: string,
  args: readonly string[],
): { qemu: number; guest: number; ratio: number } {
  const q: number[] = [];
  const g: number[] = [];
  for (let round = 0; round < 3; round++) {
    q.push(nsPerOp([QEMU, program, ...args]));
    g.push(nsPerOp(["bun", guestCli, program, ...args]));
  }
  return { qemu: median(q), guest: median(g), ratio: median(g) / median(q) };
}

export async function compareWithQemu(): Promise<Record<string, unknown>> {
  for (const tool of [QEMU, CC])
    if (!Bun.which(tool)) throw new Error(`${tool} not found (run: bun run test, which installs it)`);
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
  const memory: Record<string, { qemu: number; guest: number; ratio: number }> = {};
  for (const name of ["mprotect_same", "mmap_cycle", "first_touch"]) {
    consola.start(`memory: ${name}, median of 3 under each`);
    memory[name] = medianOfThree(buildProgram(name), []);
  }

  // qemu-user execs a foreign binary only through binfmt_misc (our runtime does the execve itself).
  const { ensureQemuBinfmt } = await import("./binfmt.ts");
  const binfmtProblem = ensureQemuBinfmt();
  if (binfmtProblem) throw new Error(`fork_exec under qemu needs binfmt_misc: ${binfmtProblem}`);
  const exitZero = buildProgram("exit_zero");
  const processes: Record<string, { qemu: number; guest: number; ratio: number }> = {};
  for (const [name, args] of [
    ["fork_wait", []],
    ["fork_exec", [exitZero]],
    ["pipe_roundtrip", []],
    ["thread_create_join", []],
    ["mutex_threads", []],
  ] as const) {
    consola.start(`processes: ${name}, median of 3 under each`);
    processes[name] = medianOfThree(buildProgram(name), args);
  }

  const results = {
    memoryNsPerOp: memory,
    processNsPerOp: processes,
    date: new Date().toISOString(),
    host: `${process.platform}-${process.arch}`,
    getpidNsPerCall: {
      qemu: median(qemuGetpid),
      guest: median(guestGetpid),
      ratio: median(guestGetpid) / median(qemuGetpid),
      qemuSamples: qemuGetpid,
      guestSamples: guestGetpid,
    },
    busyboxTrueStartupMs: {
      qemu: median(qemuStart),
      guest: median(guestStart),
      ratio: median(guestStart) / median(qemuStart),
      qemuSamples: qemuStart,
      guestSamples: guestStart,
    },
  };
  return results;
}

if (import.meta.main) {
  const results = await compareWithQemu();
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(join(resultsDir, "compare-qemu.json"), `${JSON.stringify(results, null, 2)}\n`);
  const g = results.getpidNsPerCall as { qemu: number; guest: number; ratio: number };
  const s = results.busyboxTrueStartupMs as { qemu: number; guest: number; ratio: number };
  console.log("\n| benchmark | qemu-aarch64-static | guest (emulator) | guest ÷ qemu |");
  console.log("|---|---|---|---|");
  console.log(
    `| getpid round trip (1,000,000 calls, median of 5) | ${g.qemu.toFixed(1)} ns | ${g.guest.toFixed(1)} ns | ${g.ratio.toFixed(2)} |`,
  );
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
  };
  const perOp = {
    ...(results.memoryNsPerOp as Record<string, { qemu: number; guest: number; ratio: number }>),
    ...(results.processNsPerOp as Record<string, { qemu: number; guest: number; ratio: number }>),
  };
  for (const [name, m] of Object.entries(perOp)) {
    console.log(`| ${labels[name]} | ${duration(m.qemu)} | ${duration(m.guest)} | ${m.ratio.toFixed(3)} |`);
  }
}
