/**
 * The differential harness itself: environment, stdin, timeouts, signal reporting and difference reports,
 * checked with ordinary host programs (no qemu needed), plus the fixture cache's bookkeeping.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { ensureFixtures, listGuestSources } from "../scripts/fixtures.ts";
import {
  compareRuns,
  describeStatus,
  FIXED_ENV,
  firstDifference,
  guestCommand,
  runCommand,
} from "./lib/run.ts";

describe("runCommand", () => {
  test("passes exactly the fixed environment plus additions", async () => {
    const result = await runCommand("host", ["/usr/bin/env"], { env: { EXTRA: "1" } });
    const lines = result.stdout.toString().trim().split("\n").sort();
    const expected = Object.entries({ ...FIXED_ENV, EXTRA: "1" })
      .map(([key, value]) => `${key}=${value}`)
      .sort();
    expect(lines).toEqual(expected);
  });

  test("replaceEnv gives an empty environment", async () => {
    const result = await runCommand("host", ["/usr/bin/env"], { replaceEnv: {} });
    expect(result.stdout.toString()).toBe("");
    expect(describeStatus(result)).toBe("exit 0");
  });

  test("feeds stdin and captures stdout, stderr and status", async () => {
    const result = await runCommand("host", ["/bin/sh", "-c", "cat; echo err >&2; exit 7"], {
      stdin: "abc\n",
    });
    expect(result.stdout.toString()).toBe("abc\n");
    expect(result.stderr.toString()).toBe("err\n");
    expect(describeStatus(result)).toBe("exit 7");
  });

  test("stdin is /dev/null when not given", async () => {
    const result = await runCommand("host", ["/bin/sh", "-c", "wc -c"]);
    expect(result.stdout.toString().trim()).toBe("0");
  });

  test("kills a run that exceeds its timeout", async () => {
    const result = await runCommand("host", ["/bin/sleep", "30"], { timeoutMs: 200 });
    expect(result.timedOut).toBe(true);
    expect(describeStatus(result)).toBe("timed out (killed)");
  });

  test("reports a signal death", async () => {
    const result = await runCommand("host", ["/bin/sh", "-c", "kill -SEGV $$"]);
    expect(describeStatus(result)).toBe("killed by SIGSEGV");
  });

  test("our CLI is run through bun with -- before the program", () => {
    if (process.env.GUEST_TEST_RUNNER) return; // overridden on purpose
    const command = guestCommand("/prog", ["a", "b"]);
    expect(command[0]).toBe("bun");
    expect(command.slice(-4)).toEqual(["--", "/prog", "a", "b"]);
  });
});

describe("difference reports", () => {
  test("identical streams have no difference", () => {
    expect(firstDifference("stdout", Buffer.from("same"), Buffer.from("same"))).toBeNull();
  });

  test("names the first differing byte and line", () => {
    const report = firstDifference(
      "stdout",
      Buffer.from("one\ntwo\nthree\n"),
      Buffer.from("one\ntwo\nthr33\n"),
    );
    expect(report).toContain("stdout differs at byte 11 (line 3;");
  });

  test("compareRuns lists status and stream differences", () => {
    const base = {
      side: "qemu",
      command: ["x"],
      stdout: Buffer.from("a"),
      stderr: Buffer.from(""),
      exitCode: 0,
      signal: null,
      timedOut: false,
    };
    expect(compareRuns(base, { ...base, side: "guest" })).toEqual([]);
    const differences = compareRuns(base, {
      ...base,
      side: "guest",
      exitCode: 1,
      stderr: Buffer.from("boom"),
    });
    expect(differences[0]).toBe("status differs: qemu exit 0, guest exit 1");
    expect(differences.some((line) => line.startsWith("stderr differs"))).toBe(true);
    expect(compareRuns(base, { ...base, stderr: Buffer.from("boom") }, { stderr: false })).toEqual([]);
  });
});

describe("fixtures", () => {
  test("every guest source is listed with its tags", () => {
    const sources = listGuestSources();
    const byName = new Map(sources.map((source) => [source.name, source.tags]));
    expect(byName.get("hello")?.has("static-pie")).toBe(true);
    expect(byName.get("sys_mem")?.has("native")).toBe(true);
    expect(byName.get("sys_proc")?.has("native")).toBe(false);
  });

  test("built programs carry the key they were built with", async () => {
    const fixtures = await ensureFixtures();
    for (const path of Object.values(fixtures.aarch64)) {
      expect(existsSync(path)).toBe(true);
      expect(readFileSync(`${path}.sha256`, "utf8").trim()).toMatch(/^[0-9a-f]{64}$/);
    }
  });
});
