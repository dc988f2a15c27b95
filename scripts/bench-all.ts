#!/usr/bin/env bun
/**
 * `bun run bench`: every package's bench/index.ts (mitata) with JSON output, collected into
 * bench/results/<package>.json, plus the guest-vs-qemu comparison (scripts/compare-qemu.ts) when its tools
 * exist. `bun run bench loader pagetable` runs just those packages. Progress goes to stderr.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { consola } from "consola";

const root = join(import.meta.dir, "..");
const resultsDir = join(root, "bench", "results");
mkdirSync(resultsDir, { recursive: true });
const only = new Set(process.argv.slice(2));

const targets: Array<{ name: string; script: string }> = [];
for (const group of ["packages", "apps"]) {
  for (const name of readdirSync(join(root, group))) {
    const script = join(root, group, name, "bench", "index.ts");
    if (existsSync(script) && (only.size === 0 || only.has(name))) targets.push({ name, script });
  }
}

let failures = 0;
for (const [index, { name, script }] of targets.entries()) {
  consola.start(`[${index + 1}/${targets.length}] ${name}`);
  const result = Bun.spawnSync(["bun", script], {
    cwd: root,
    env: { ...process.env, BENCH_JSON: "1" },
    stdout: "pipe",
    stderr: "pipe",
  });
  const output = result.stdout.toString();
  if (!result.success) {
    failures++;
    consola.error(`${name} benchmark failed:\n${result.stderr.toString().slice(-2000)}`);
    continue;
  }
  const jsonStart = output.indexOf("{");
  try {
    const parsed = JSON.parse(output.slice(jsonStart));
    writeFileSync(join(resultsDir, `${name}.json`), `${JSON.stringify(parsed, null, 2)}\n`);
    for (const benchmark of parsed.benchmarks ?? []) {
      const run = benchmark.runs?.[0];
      const avg = run?.stats?.avg;
      if (typeof avg === "number") consola.log(`  ${benchmark.alias}: ${formatNs(avg)}`);
    }
  } catch {
    failures++;
    consola.error(`${name}: benchmark output was not mitata JSON`);
  }
}

function formatNs(ns: number): string {
  if (ns < 1e3) return `${ns.toFixed(1)} ns`;
  if (ns < 1e6) return `${(ns / 1e3).toFixed(2)} µs`;
  return `${(ns / 1e6).toFixed(2)} ms`;
}

consola.success(`Results in ${resultsDir}`);
process.exit(failures > 0 ? 1 : 0);
