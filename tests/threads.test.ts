/**
 * Threads (issue 5): a real Go program — Debian's arm64 shfmt, whose runtime starts several threads, parks
 * them on futexes, sleeps in nanosleep and waits in epoll — formats shell scripts under our CLI exactly as
 * under qemu-aarch64-static (stdout, stderr, status). The pthreads semantics themselves are
 * tests/guest/thread_basic.c (native-proven, run by native.test.ts and differential.test.ts).
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureFixtures } from "../scripts/fixtures.ts";
import { compareRuns, oracleUnavailableReason, REPO_ROOT, runUnderGuest, runUnderQemu } from "./lib/run.ts";

const fixtures = await ensureFixtures({ busybox: false, shfmt: true });
const skip = oracleUnavailableReason() ?? (fixtures.shfmt ? null : `shfmt: ${fixtures.problems.join("; ")}`);
const RUN_TIMEOUT_MS = 60_000;

const MESSY = [
  'if [ "$a" = b ];then',
  "echo   hi;fi",
  "foo(){ echo x;}",
  "for i in 1 2 3; do   case $i in 1) echo one;; *) echo other;; esac; done",
  "x=$( echo  a |tr a b )",
  "",
].join("\n");

describe.skipIf(skip !== null)("a Go program's threads: shfmt under our CLI vs qemu", () => {
  const folder = mkdtempSync(join(tmpdir(), "guest-shfmt-"));
  const script = join(folder, "messy.sh");
  writeFileSync(script, MESSY);
  const cases: Array<{ name: string; args: string[]; stdin?: string }> = [
    { name: "formats a file", args: [script] },
    { name: "formats with -i 2 -ci", args: ["-i", "2", "-ci", script] },
    { name: "formats stdin", args: [], stdin: MESSY },
    { name: "lists files that need formatting (-l)", args: ["-l", script] },
    { name: "reports a syntax error with status 1", args: [], stdin: "if then fi (\n" },
    { name: "formats this repository's CI script", args: ["-i", "2", join(REPO_ROOT, ".ci", "run")] },
  ];
  for (const { name, args, stdin } of cases) {
    test(
      name,
      async () => {
        const options = { args, stdin, cwd: folder, timeoutMs: RUN_TIMEOUT_MS };
        const qemu = await runUnderQemu(fixtures.shfmt!, options);
        const guest = await runUnderGuest(fixtures.shfmt!, options);
        expect(compareRuns(qemu, guest)).toEqual([]);
      },
      2 * RUN_TIMEOUT_MS + 5000,
    );
  }
  test("clean up", () => rmSync(folder, { recursive: true, force: true }));
});
