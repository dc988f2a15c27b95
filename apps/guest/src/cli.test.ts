import { describe, expect, test } from "bun:test";
import { guestEnvironment, parseCommandLine, UsageError } from "./cli.ts";
import { helpText } from "./help.ts";
import { autoBackendName, shouldUseSignedRunnable } from "./runtime/backends.ts";

describe("parseCommandLine", () => {
  test("options stop at the program: the guest's own flags reach it untouched", () => {
    const parsed = parseCommandLine(["--trace", "./busybox", "ls", "-la", "--trace"]);
    expect(parsed.trace).toBe(true);
    expect(parsed.program).toBe("./busybox");
    expect(parsed.programArgs).toEqual(["ls", "-la", "--trace"]);
  });

  test("-- ends the options even before a program that starts with a dash", () => {
    const parsed = parseCommandLine(["--", "-weird-name", "x"]);
    expect(parsed.program).toBe("-weird-name");
    expect(parsed.programArgs).toEqual(["x"]);
  });

  test("--backend and --env take values, inline or separate", () => {
    const parsed = parseCommandLine(["--backend=emulator", "--env", "A=1", "--env=B=2=3", "prog"]);
    expect(parsed.backend).toBe("emulator");
    expect(parsed.env).toEqual(["A=1", "B=2=3"]);
  });

  test("no program means the built-in demo", () => {
    expect(parseCommandLine([]).program).toBeNull();
  });

  test("bad usage is a UsageError with a reason", () => {
    expect(() => parseCommandLine(["--backend", "qemu", "x"])).toThrow(UsageError);
    expect(() => parseCommandLine(["--backend"])).toThrow("--backend needs a value");
    expect(() => parseCommandLine(["--env", "NOEQUALS", "x"])).toThrow("KEY=VALUE");
    expect(() => parseCommandLine(["--bogus", "x"])).toThrow("unknown option --bogus");
    expect(() => parseCommandLine(["--trace=yes", "x"])).toThrow("takes no value");
  });
});

test("guest environment: host env, optionally cleared, then --env in order", () => {
  const host = { PATH: "/bin", HOME: "/root", EMPTY: "" };
  expect(guestEnvironment(parseCommandLine(["--env", "HOME=/tmp", "p"]), host)).toEqual([
    "PATH=/bin",
    "HOME=/tmp",
    "EMPTY=",
  ]);
  expect(guestEnvironment(parseCommandLine(["--clear-env", "--env", "A=1", "p"]), host)).toEqual(["A=1"]);
});

test("auto picks hvf only on macOS/Apple Silicon", () => {
  expect(autoBackendName("darwin", "arm64")).toBe("hvf");
  expect(autoBackendName("darwin", "x64")).toBe("emulator");
  expect(autoBackendName("linux", "arm64")).toBe("emulator");
  expect(autoBackendName("linux", "x64")).toBe("emulator");
});

test("--help lists the options and examples", async () => {
  const text = await helpText();
  for (const word of ["--backend", "--trace", "--env", "Examples:", "guest ./busybox ls -la /"])
    expect(text).toContain(word);
});

test("on Apple Silicon an unentitled run hands over to the signed runnable, nowhere else", () => {
  const base = {
    platform: "darwin",
    arch: "arm64",
    choice: "auto" as const,
    entitled: false,
    signedRunnableExists: true,
    alreadySigned: false,
  };
  expect(shouldUseSignedRunnable(base)).toBe(true);
  expect(shouldUseSignedRunnable({ ...base, choice: "hvf" })).toBe(true);
  expect(shouldUseSignedRunnable({ ...base, choice: "emulator" })).toBe(false);
  expect(shouldUseSignedRunnable({ ...base, entitled: true })).toBe(false);
  expect(shouldUseSignedRunnable({ ...base, signedRunnableExists: false })).toBe(false);
  expect(shouldUseSignedRunnable({ ...base, alreadySigned: true })).toBe(false); // no loop
  expect(shouldUseSignedRunnable({ ...base, platform: "linux" })).toBe(false);
  expect(shouldUseSignedRunnable({ ...base, arch: "x64" })).toBe(false);
});
