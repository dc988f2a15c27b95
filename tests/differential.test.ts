/**
 * Differential tests: the same aarch64 program, argv, environment, stdin and cwd under qemu-aarch64-static
 * (the oracle) and under our CLI must give byte-identical stdout and stderr and the same exit status.
 *
 * Two families: every tests/guest program (its status under qemu is checked first, which validates the
 * test program itself), and Debian's static busybox running ~50 applet invocations.
 * Skipped, with the reason printed, when the fixtures or qemu are missing on this machine.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { ensureFixtures } from "../scripts/fixtures.ts";
import {
  compareRuns,
  describeStatus,
  oracleUnavailableReason,
  type RunOptions,
  type RunResult,
  runBoth,
  runUnderGuest,
  runUnderQemu,
} from "./lib/run.ts";

const fixtures = await ensureFixtures();
const oracleProblem = oracleUnavailableReason();

/** A guest run may be slow under the emulator; two runs per test. */
const TEST_TIMEOUT_MS = 120_000;

function fail(message: string): never {
  throw new Error(message);
}

/** The oracle must behave as the test expects, otherwise the test itself (or the harness) is wrong. */
function expectOracle(qemu: RunResult, status: string): void {
  if (describeStatus(qemu) !== status) {
    fail(
      `under qemu: ${describeStatus(qemu)}, expected ${status}; the test case itself is wrong\n` +
        `command: ${qemu.command.join(" ")}\nstdout:\n${qemu.stdout.toString().slice(-2000)}\n` +
        `stderr:\n${qemu.stderr.toString().slice(-2000)}`,
    );
  }
}

interface ProgramCase {
  title: string;
  fixture: string;
  options?: RunOptions;
  /** How the program is named on the command line: "absolute" (default) or "relative" to its folder. */
  path?: "absolute" | "relative";
  status?: string;
}

const programCases: ProgramCase[] = [
  { title: "hello", fixture: "hello" },
  { title: "hello (static-pie)", fixture: "hello-static-pie" },
  { title: "hello by relative path", fixture: "hello", path: "relative" },
  { title: "exit_code default 0", fixture: "exit_code" },
  { title: "exit_code 42", fixture: "exit_code", options: { args: ["42"] }, status: "exit 42" },
  { title: "exit_code 255", fixture: "exit_code", options: { args: ["255"] }, status: "exit 255" },
  // Only the low 8 bits of the status reach the parent.
  { title: "exit_code 256 wraps to 0", fixture: "exit_code", options: { args: ["256"] }, status: "exit 0" },
  {
    title: "args_env with arguments and variables",
    fixture: "args_env",
    options: {
      args: ["one", "two words", "", "--flag=x", "ünïcödé"],
      env: { GUEST_TEST_VAR: "hello guest", GUEST_TEST_EMPTY: "" },
    },
  },
  { title: "args_env with an empty environment", fixture: "args_env", options: { replaceEnv: {} } },
  { title: "auxv", fixture: "auxv" },
  { title: "auxv (static-pie)", fixture: "auxv-static-pie" },
  { title: "auxv by relative path", fixture: "auxv", path: "relative" },
  { title: "sys_fileio", fixture: "sys_fileio" },
  { title: "sys_proc", fixture: "sys_proc" },
  { title: "sys_time", fixture: "sys_time" },
  { title: "sys_mem", fixture: "sys_mem" },
  { title: "sys_poll", fixture: "sys_poll", options: { args: ["one", "two words", ""] } },
];

// Any guest program without a case above still runs once, with no arguments, and must exit 0. The mem_*
// programs are not run here: tests/memory.test.ts runs them in the modes where qemu can be the oracle.
for (const fixture of Object.keys(fixtures.aarch64).sort()) {
  if (fixture.startsWith("mem_")) continue;
  // exec_* exec aarch64 programs, which qemu-user hands to the host kernel: tests/exec.test.ts covers them.
  if (fixture.startsWith("exec_")) continue;
  // proc_* take arguments and are proven natively and against qemu in tests/process.test.ts.
  if (fixture.startsWith("proc_")) continue;
  // The fuzzers: qemu-user is no oracle for them (it crashes on sys_fuzz, ignores guard regions and prints other
  // permissions in /proc/self/maps for mm_fuzz): tests/fuzz.test.ts holds them to native Linux and to themselves.
  if (fixture.endsWith("_fuzz")) continue;
  // qemu-user numbers POSIX timers its own way: tests/timers.test.ts holds sys_timers to native Linux instead.
  if (fixture === "sys_timers") continue;
  if (!programCases.some((c) => c.fixture === fixture)) programCases.push({ title: fixture, fixture });
}

const programsSkip =
  oracleProblem ??
  (Object.keys(fixtures.aarch64).length === 0
    ? `guest programs not built: ${fixtures.problems.join("; ") || "unknown reason"}`
    : null);
if (programsSkip) console.warn(`[differential] skipping guest programs: ${programsSkip}`);

describe.skipIf(programsSkip !== null)("guest programs: qemu vs guest", () => {
  for (const c of programCases) {
    test(
      c.title,
      async () => {
        const path =
          fixtures.aarch64[c.fixture] ??
          fail(`fixture ${c.fixture} was not built: ${fixtures.problems.join("; ")}`);
        const program = c.path === "relative" ? `./${c.fixture}` : path;
        const options: RunOptions = {
          ...c.options,
          cwd: c.path === "relative" ? dirname(path) : c.options?.cwd,
        };
        const { qemu, guest } = await runBoth(program, options);
        expectOracle(qemu, c.status ?? "exit 0");
        expect(compareRuns(qemu, guest)).toEqual([]);
      },
      TEST_TIMEOUT_MS,
    );
  }
});

// ---------------------------------------------------------------------------------------------------------
// busybox

interface BusyboxCase {
  title: string;
  /** argv after "busybox" (so argv[0] is the busybox path and argv[1] the applet, as `busybox APPLET`). */
  args: string[];
  stdin?: string;
  /** Expected status under qemu (validates the case). */
  status?: string;
  /** Files (relative to the data folder) the command writes: read after each run, removed, compared. */
  writes?: string[];
  /** Compare stderr (default true); false only with a comment saying why it legitimately differs. */
  stderr?: boolean;
}

const FRUITS = "banana\napple\ncherry\napple\ndate\nbanana\napple\n";
const PASSWD =
  "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nguest:x:1000:1000::/home/guest:/bin/sh\n";
// A fixed instant for every mtime in the listing fixtures (2021-03-04 05:06:07 UTC), like `touch -d`.
const FIXED_MTIME = new Date("2021-03-04T05:06:07Z");

const busyboxCases: BusyboxCase[] = [
  { title: "echo", args: ["echo", "hello", "world"] },
  { title: "echo -n -e", args: ["echo", "-n", "-e", "tab\\there\\nnewline"] },
  { title: "true", args: ["true"] },
  { title: "false", args: ["false"], status: "exit 1" },
  { title: "cat a file", args: ["cat", "fruits.txt"] },
  { title: "cat stdin", args: ["cat"], stdin: "from stdin\nline two\n" },
  { title: "cat a missing file", args: ["cat", "missing.txt"], status: "exit 1" },
  { title: "sort", args: ["sort", "fruits.txt"] },
  { title: "sort stdin -r -u", args: ["sort", "-r", "-u"], stdin: FRUITS },
  { title: "sort -n -k", args: ["sort", "-t:", "-k3,3n", "passwd.txt"] },
  { title: "uniq -c of sorted stdin", args: ["uniq", "-c"], stdin: "a\na\nb\nc\nc\nc\n" },
  { title: "wc", args: ["wc", "fruits.txt", "passwd.txt"] },
  { title: "wc -l stdin", args: ["wc", "-l"], stdin: FRUITS },
  { title: "head -n 2", args: ["head", "-n", "2", "fruits.txt"] },
  { title: "tail -n 3", args: ["tail", "-n", "3", "fruits.txt"] },
  { title: "tail -c of a big file", args: ["tail", "-c", "100", "big.bin"] },
  { title: "seq 1 10", args: ["seq", "1", "10"] },
  { title: "seq -s, with a step", args: ["seq", "-s,", "5", "-2", "-5"] },
  // Large output: ~590 KB through many write() calls.
  { title: "seq 1 100000 (large output)", args: ["seq", "1", "100000"] },
  { title: "md5sum", args: ["md5sum", "fruits.txt", "big.bin"] },
  { title: "sha256sum", args: ["sha256sum", "fruits.txt", "big.bin"] },
  { title: "sha1sum of stdin", args: ["sha1sum"], stdin: FRUITS },
  { title: "base64", args: ["base64", "passwd.txt"] },
  { title: "base64 -d of stdin", args: ["base64", "-d"], stdin: "aGVsbG8gZ3Vlc3QK\n" },
  { title: "od -c", args: ["od", "-c", "fruits.txt"] },
  { title: "xxd", args: ["xxd", "passwd.txt"] },
  { title: "hexdump -C of binary", args: ["hexdump", "-C", "-n", "256", "big.bin"] },
  { title: "printf", args: ["printf", "%s-%05d|%x|%-4s|\\n", "abc", "42", "255", "z"] },
  { title: "expr arithmetic", args: ["expr", "6", "*", "7"] },
  { title: "expr length", args: ["expr", "length", "hello"] },
  // expr prints 0 and exits 1 when the result is null or zero.
  { title: "expr false result", args: ["expr", "1", "=", "2"], status: "exit 1" },
  { title: "basename with suffix", args: ["basename", "/usr/lib/file.txt", ".txt"] },
  { title: "dirname", args: ["dirname", "/usr/lib/file.txt"] },
  { title: "uname -m", args: ["uname", "-m"] },
  { title: "uname -s", args: ["uname", "-s"] },
  { title: "ls -la of a fixed tree", args: ["ls", "-la", "fixed/tree"] },
  { title: "ls -lR of a fixed tree", args: ["ls", "-lR", "fixed/tree"] },
  { title: "ls -1 of a missing path", args: ["ls", "-1", "fixed/nope"], status: "exit 1" },
  { title: "find", args: ["find", "fixed", "-name", "*.txt"] },
  { title: "find -type d", args: ["find", "fixed", "-type", "d"] },
  { title: "grep -n", args: ["grep", "-n", "apple", "fruits.txt"] },
  { title: "grep -c -v", args: ["grep", "-c", "-v", "apple", "fruits.txt"] },
  { title: "grep without a match", args: ["grep", "kiwi", "fruits.txt"], status: "exit 1" },
  { title: "grep -E on stdin", args: ["grep", "-E", "^(b|c)"], stdin: FRUITS },
  { title: "sed substitute", args: ["sed", "s/a/A/g", "fruits.txt"] },
  { title: "sed -n range", args: ["sed", "-n", "2,4p", "fruits.txt"] },
  { title: "awk sum", args: ["awk", "{ n += length($0) } END { print NR, n }", "fruits.txt"] },
  { title: "awk -F fields", args: ["awk", "-F:", '$3 >= 1 { printf "%s=%d\\n", $1, $3 }', "passwd.txt"] },
  { title: "cut -d -f", args: ["cut", "-d:", "-f1,3,7", "passwd.txt"] },
  { title: "cut -c", args: ["cut", "-c", "2-4", "fruits.txt"] },
  { title: "tr to upper", args: ["tr", "a-z", "A-Z"], stdin: FRUITS },
  { title: "tr -d", args: ["tr", "-d", "aeiou\\n"], stdin: FRUITS },
  { title: "stat -c", args: ["stat", "-c", "%n %s %a %F %h", "fruits.txt", "fixed/tree"] },
  { title: "stat -c mtime", args: ["stat", "-c", "%n %Y", "fixed/tree/a.txt"] },
  { title: "tee", args: ["tee", "tee-out.txt"], stdin: "tee me\n", writes: ["tee-out.txt"] },
  { title: "cp", args: ["cp", "passwd.txt", "copy.txt"], writes: ["copy.txt"] },
  {
    title: "dd status=none",
    args: ["dd", "if=big.bin", "of=dd-out.bin", "bs=1000", "count=7", "status=none"],
    writes: ["dd-out.bin"],
  },
  { title: "gzip -c of stdin (binary output)", args: ["gzip", "-c"], stdin: FRUITS.repeat(50) },
  { title: "test -f", args: ["test", "-f", "fruits.txt"] },
  { title: "[ 1 -gt 2 ]", args: ["[", "1", "-gt", "2", "]"], status: "exit 1" },
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion, not a JS template
  { title: "sh sees the environment", args: ["sh", "-c", 'echo "$HOME $LANG $PATH ${GUEST_UNSET-unset}"'] },
  { title: "realpath", args: ["realpath", "fixed/tree/../tree/a.txt"] },
  { title: "date -u -d @seconds", args: ["date", "-u", "-d", "@1700000000", "+%Y-%m-%d %H:%M:%S %a"] },
  {
    title: "sh builtins",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion, not a JS template
    args: ["sh", "-c", "x=abc; echo ${#x} $((6 * 7)); for i in 1 2 3; do printf '%s.' $i; done; echo"],
  },
  { title: "sh exit status", args: ["sh", "-c", "exit 3"], status: "exit 3" },
  // `busybox nosuchapplet` prints "nosuchapplet: applet not found" and exits 127.
  { title: "unknown applet", args: ["nosuchapplet"], status: "exit 127" },
  { title: "busybox with no arguments", args: [] },
  // Not included: `env` (qemu-aarch64 7.2 reverses the environment's order, Linux keeps it: see args_env.c),
  // `nproc`/`free`/`uptime`/`ps` (host-dependent values our runtime may legitimately report differently).
];

let dataDir = "";
function makeDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "guest-differential-"));
  writeFileSync(join(dir, "fruits.txt"), FRUITS);
  writeFileSync(join(dir, "passwd.txt"), PASSWD);
  // 64 KiB of a fixed pseudo-random pattern (xorshift), so binary output paths are exercised too.
  const big = Buffer.alloc(65536);
  let state = 0x12345678;
  for (let i = 0; i < big.length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    big[i] = state & 0xff;
  }
  writeFileSync(join(dir, "big.bin"), big);
  // fixed/tree: a small tree with fixed mtimes; nothing writes into fixed/ after this, so `ls -la` of it
  // (which shows ".." too) is stable between the two runs.
  const tree = join(dir, "fixed", "tree");
  mkdirSync(join(tree, "sub", "deeper"), { recursive: true });
  writeFileSync(join(tree, "a.txt"), "alpha\n");
  writeFileSync(join(tree, "b.dat"), "bravo bravo\n");
  writeFileSync(join(tree, "sub", "c.txt"), "charlie\n");
  writeFileSync(join(tree, "sub", "deeper", "d.txt"), "");
  for (const path of ["sub/deeper/d.txt", "sub/deeper", "sub/c.txt", "sub", "a.txt", "b.dat", "."]) {
    utimesSync(join(tree, path), FIXED_MTIME, FIXED_MTIME);
  }
  utimesSync(join(dir, "fixed"), FIXED_MTIME, FIXED_MTIME);
  return dir;
}

const NOT_WRITTEN = "(not written)";

/** Read and remove the files a command wrote, so the next run starts from the same state. */
function collectWrites(names: string[]): Record<string, string> {
  const contents: Record<string, string> = {};
  for (const name of names) {
    const path = join(dataDir, name);
    contents[name] = existsSync(path) ? readFileSync(path).toString("base64") : NOT_WRITTEN;
    rmSync(path, { force: true });
  }
  return contents;
}

const busyboxSkip =
  oracleProblem ??
  (fixtures.busybox === null ? `busybox not available: ${fixtures.problems.join("; ")}` : null);
if (busyboxSkip) console.warn(`[differential] skipping busybox: ${busyboxSkip}`);

describe.skipIf(busyboxSkip !== null)("busybox: qemu vs guest", () => {
  beforeAll(() => {
    dataDir = makeDataDir();
  });
  afterAll(() => {
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  test("at least 30 cases", () => {
    expect(busyboxCases.length).toBeGreaterThanOrEqual(30);
  });

  for (const c of busyboxCases) {
    test(
      `busybox ${c.title}`,
      async () => {
        const busybox = fixtures.busybox ?? fail("busybox missing");
        const options: RunOptions = { args: c.args, stdin: c.stdin, cwd: dataDir };
        const writes = c.writes ?? [];
        // qemu first, then ours, each followed by collecting (and removing) the files it wrote.
        const qemu = await runUnderQemu(busybox, options);
        const qemuFiles = collectWrites(writes);
        const guest = await runUnderGuest(busybox, options);
        const guestFiles = collectWrites(writes);
        expectOracle(qemu, c.status ?? "exit 0");
        for (const name of writes) {
          if (qemuFiles[name] === NOT_WRITTEN) fail(`under qemu, ${c.title} did not write ${name}`);
        }
        expect(compareRuns(qemu, guest, { stderr: c.stderr ?? true })).toEqual([]);
        expect(guestFiles).toEqual(qemuFiles);
      },
      TEST_TIMEOUT_MS,
    );
  }
});
