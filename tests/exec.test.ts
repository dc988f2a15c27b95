/**
 * execve/execveat in place. qemu-aarch64-static cannot be the oracle here (without binfmt_misc it would hand
 * the aarch64 program to the host kernel), so the expectations are written out and proven on Linux itself:
 * tests/guest/exec_basic.c is built for x86_64 too, and every arch-neutral case (errno cases, what exec keeps
 * and resets, #! splitting, nesting) runs natively with the native build and must give exactly the output our
 * runtime gives with the aarch64 build. Cases that need aarch64 programs (busybox) assert exact output.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { ensureFixtures } from "../scripts/fixtures.ts";
import { describeStatus, GUEST_CLI, type RunResult, runCommand } from "./lib/run.ts";

const fixtures = await ensureFixtures();
const guestProgram = fixtures.aarch64.exec_basic;
const nativeProgram = fixtures.x86_64.exec_basic;
const busybox = fixtures.busybox;
const skip = guestProgram ? null : `exec_basic was not built: ${fixtures.problems.join("; ")}`;
const nativeSkip =
  process.platform !== "linux" || process.arch !== "x64"
    ? "the native proof needs an x86_64 Linux host"
    : nativeProgram
      ? null
      : "no native build of exec_basic";
if (skip) console.warn(`[exec] skipped: ${skip}`);
if (nativeSkip) console.warn(`[exec] native proof skipped: ${nativeSkip}`);

type Side = "native" | "guest";

function command(side: Side, program: string, args: string[], flags: string[] = []): string[] {
  return side === "native"
    ? [program, ...args]
    : ["bun", "--no-env-file", GUEST_CLI, ...flags, "--", program, ...args];
}

function run(
  side: Side,
  program: string,
  args: string[],
  cwd?: string,
  flags?: string[],
): Promise<RunResult> {
  return runCommand(side, command(side, program, args, flags), { cwd });
}

/** What exec_basic prints in EXEC_PRINT mode. */
function printed(argv: string[], comm: string, exe: string): string {
  const lines = [`argc ${argv.length}`, ...argv.map((arg, i) => `argv[${i}] [${arg}]`)];
  return `${[...lines, `comm [${comm}]`, `exe [${exe}]`].join("\n")}\n`;
}

describe.skipIf(skip !== null)("execve in place", () => {
  const sides: Side[] = nativeSkip ? ["guest"] : ["native", "guest"];
  const programOf = (side: Side): string => (side === "native" ? nativeProgram! : guestProgram!);

  for (const side of sides) {
    test(`exec_basic: errno cases, what exec keeps and resets, execveat (${side})`, async () => {
      const result = await run(side, programOf(side), []);
      const stdout = result.stdout.toString();
      expect(stdout.split("\n").filter((line) => line.startsWith("FAIL"))).toEqual([]);
      // Every stage ran: the errno cases, the image after execve, the one after execveat(AT_EMPTY_PATH).
      for (const line of [
        "six nested #! levels ELOOP ok",
        "7 MiB of arguments E2BIG ok",
        "bad argv string EFAULT ok",
        "text without #! ENOEXEC ok",
        "not executable EACCES ok",
        "/proc/self/exe ok",
        "O_CLOEXEC fd closed EBADF ok",
        "SIG_IGN survives ok",
        "handler reset to SIG_DFL ok",
        "pending signal kept ok",
        "execveat AT_EXECFN is /dev/fd/N ok",
        "temporary files removed ok",
      ]) {
        expect(stdout).toContain(`${line}\n`);
      }
      expect(stdout).toMatch(/^67 checks, 0 failed\n$/m);
      expect(describeStatus(result)).toBe("exit 0");
      expect(result.stderr.toString()).toBe("");
    });
  }

  test.skipIf(nativeSkip !== null)("exec_basic prints exactly what it prints natively", async () => {
    const native = await run("native", nativeProgram!, []);
    const guest = await run("guest", guestProgram!, []);
    expect(guest.stdout.toString()).toBe(native.stdout.toString());
  });

  describe("#! scripts", () => {
    const dirs: Partial<Record<Side, string>> = {};
    beforeAll(() => {
      for (const side of sides) {
        const dir = mkdtempSync(join(tmpdir(), `guest-exec-${side}-`));
        dirs[side] = dir;
        const prog = programOf(side);
        const script = (name: string, text: string) => {
          writeFileSync(join(dir, name), text);
          chmodSync(join(dir, name), 0o755);
        };
        script("plain", `#!${prog}\n`);
        script("witharg", `#!  ${prog}   one  two \t \nignored\n`);
        script("longarg", `#!${prog} ${"a".repeat(300)}`);
        script("n5", `#!${prog} deep\n`);
        script("n4", `#!${dir}/n5\n`);
        script("n3", `#!${dir}/n4\n`);
        script("n2", `#!${dir}/n3\n`);
        script("n1", `#!${dir}/n2 top\n`);
      }
    });
    afterAll(() => {
      for (const dir of Object.values(dirs)) rmSync(dir, { recursive: true, force: true });
    });

    for (const side of sides) {
      test(`interpreter, argument and script path spliced into argv as Linux does (${side})`, async () => {
        const dir = dirs[side]!;
        const prog = programOf(side);
        const exe = basename(prog);
        const cases: Array<[args: string[], expected: string]> = [
          // argv[0] is replaced by the interpreter; the script path follows as given.
          [["plain", "ignored-argv0", "x", "y z"], printed([prog, `${dir}/plain`, "x", "y z"], "plain", exe)],
          [["./plain", "p"], printed([prog, "./plain"], "plain", exe)],
          // One optional argument: everything after the name, inner blanks kept, trailing ones trimmed.
          [["witharg", "w", "x"], printed([prog, "one  two", `${dir}/witharg`, "x"], "witharg", exe)],
          // No newline in the first 256 bytes: the argument is cut at byte 255.
          [
            ["longarg", "l"],
            printed([prog, "a".repeat(255 - 3 - prog.length), `${dir}/longarg`], "longarg", exe),
          ],
          // Five nested #! levels are allowed (six are ELOOP: exec_basic's errno cases).
          [
            ["n1", "n", "arg"],
            printed(
              [prog, "deep", `${dir}/n5`, `${dir}/n4`, `${dir}/n3`, `${dir}/n2`, "top", `${dir}/n1`, "arg"],
              "n1",
              exe,
            ),
          ],
        ];
        for (const [[script, ...argv], expected] of cases) {
          const path = script!.startsWith("./") ? script! : join(dir, script!);
          const result = await run(side, prog, ["--exec", path, ...argv], dir);
          expect(result.stdout.toString()).toBe(expected);
          expect(describeStatus(result)).toBe("exit 0");
        }
      });
    }
  });

  describe.skipIf(!busybox)("busybox", () => {
    let dir = "";
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), "guest-exec-busybox-"));
      writeFileSync(join(dir, "bb.sh"), `#!${busybox} sh\necho "hi from $0" "$@"\n`);
      chmodSync(join(dir, "bb.sh"), 0o755);
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    test("a #! script run by busybox sh", async () => {
      const result = await run("guest", guestProgram!, ["--exec", join(dir, "bb.sh"), "bb", "a", "b c"]);
      expect(result.stdout.toString()).toBe(`hi from ${dir}/bb.sh a b c\n`);
      expect(describeStatus(result)).toBe("exit 0");
    });

    test("busybox sh -c 'exec busybox echo hi'", async () => {
      const result = await runCommand(
        "guest",
        command("guest", busybox!, ["sh", "-c", "exec busybox echo hi"]),
        { env: { PATH: `${dirname(busybox!)}:/usr/bin:/bin` } },
      );
      expect(result.stdout.toString()).toBe("hi\n");
      expect(describeStatus(result)).toBe("exit 0");
    });

    test("/proc/self/exe names the new program; the trace shows the execve", async () => {
      const result = await run(
        "guest",
        guestProgram!,
        ["--exec", busybox!, "busybox", "readlink", "/proc/self/exe"],
        undefined,
        ["--trace"],
      );
      expect(result.stdout.toString()).toBe(`${busybox}\n`);
      expect(result.stderr.toString()).toContain(`execve("${busybox}", 0x`);
      expect(result.stderr.toString()).toMatch(/^execve\(.*\) = 0$/m);
      expect(describeStatus(result)).toBe("exit 0");
    });
  });

  test("an ELF for another machine is ENOEXEC, said so under --trace", async () => {
    const result = await run("guest", guestProgram!, ["--exec", "/bin/true", "true"], undefined, ["--trace"]);
    expect(result.stdout.toString()).toBe("execve ENOEXEC\n");
    expect(result.stderr.toString()).toMatch(/^\[guest\] execve: .*true: ELF file is for .*: ENOEXEC$/m);
    expect(result.stderr.toString()).toContain('execve("/bin/true", ');
    expect(describeStatus(result)).toBe("exit 1");
  });

  test.skipIf(Bun.which("aarch64-linux-gnu-gcc") === null)(
    "a dynamically linked program (PT_INTERP) is ENOEXEC for now",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "guest-exec-dynamic-"));
      try {
        writeFileSync(join(dir, "dyn.c"), "int main(void) { return 0; }\n");
        const build = Bun.spawnSync(["aarch64-linux-gnu-gcc", "-o", join(dir, "dyn"), join(dir, "dyn.c")]);
        expect(build.success).toBe(true);
        const result = await run("guest", guestProgram!, ["--exec", join(dir, "dyn"), "dyn"], undefined, [
          "--trace",
        ]);
        expect(result.stdout.toString()).toBe("execve ENOEXEC\n");
        expect(result.stderr.toString()).toMatch(
          /^\[guest\] execve: .*dyn: dynamically linked .*: ENOEXEC$/m,
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
