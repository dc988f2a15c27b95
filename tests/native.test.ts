/**
 * The semantic guest tests tagged `// fixture: native` (sys_fileio, sys_mem), built for x86_64 and run
 * directly on this Linux host, must pass: that proves their expectations are Linux's own behaviour, not
 * an emulator's. The same sources, built for aarch64, are what the differential tests hold our runtime to.
 */
import { describe, expect, test } from "bun:test";
import { ensureFixtures } from "../scripts/fixtures.ts";
import { describeStatus, runCommand } from "./lib/run.ts";

const fixtures = await ensureFixtures();
// proc_* take arguments (the child to exec) and are run natively by tests/process.test.ts; the fuzzers print
// histories, not checks, and tests/fuzz.test.ts compares their native runs with ours.
const names = Object.keys(fixtures.x86_64)
  .filter((name) => !name.startsWith("proc_") && !name.endsWith("_fuzz"))
  .sort();

const skip =
  process.platform !== "linux" || process.arch !== "x64"
    ? `native builds are x86_64 Linux programs; this host is ${process.platform}-${process.arch}`
    : names.length === 0
      ? `no native builds: ${fixtures.problems.join("; ") || "no tests/guest source is tagged `// fixture: native`"}`
      : null;
if (skip) console.warn(`[native] skipping: ${skip}`);

describe.skipIf(skip !== null)("semantic tests pass natively on Linux x86_64", () => {
  for (const name of names) {
    test(name, async () => {
      const result = await runCommand("native", [fixtures.x86_64[name]]);
      const stdout = result.stdout.toString();
      const failures = stdout.split("\n").filter((line) => line.startsWith("FAIL"));
      expect(failures).toEqual([]);
      expect(stdout).toMatch(/^\d+ checks, 0 failed$/m);
      expect(describeStatus(result)).toBe("exit 0");
      expect(result.stderr.toString()).toBe("");
    });
  }

  test("the tagged tests were all built natively", () => {
    expect(names).toEqual(expect.arrayContaining(["sys_fileio", "sys_mem"]));
  });
});
