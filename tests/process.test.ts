/**
 * Processes (issue 6): fork, vfork, clone without CLONE_VM, execve from a child, wait4/waitid, pipes between
 * processes, signals between processes, process groups and sessions. One C program per area,
 * tests/guest/proc_*.c, each printing one deterministic line per check and exiting 0 only when all passed:
 *
 *   proc_wait    exit and signal statuses, ECHILD, WNOHANG, stop/continue, waitid, wait4 with rusage
 *   proc_fork    copy-on-write vs shared memory, cwd/umask, 200 fork/wait cycles, vfork + _exit, clone
 *   proc_pipe    shared open file descriptions, dup2/dup3, EOF, a 1 MiB round trip, EPIPE/SIGPIPE
 *   proc_signal  SIGCHLD, kill, setpgid/setsid, kill(-pgid), what fork passes on (dispositions, mask)
 *   proc_exec    fork/vfork + execve of proc_exec_child (argv, envp, pids, O_CLOEXEC), ENOEXEC
 *   proc_threads process- vs thread-directed signals, rt_sigtimedwait, sigaltstack per thread, robust mutexes
 *                (owner thread or process dies), sched_setaffinity, futex_waitv, and ppoll/pselect6/sigsuspend/
 *                wait4/read blocking only their own thread
 *
 * 1. Native: the x86_64 build of every program passes on this Linux host: the expectations are Linux's.
 * 2. Our runtime: the aarch64 build under our CLI exits 0 and prints exactly what the native build printed
 *    (stdout and stderr), and leaves no process behind.
 * 3. qemu: with `--qemu` the programs skip what qemu-user 7.2 cannot do (execve of an aarch64 program without
 *    binfmt_misc, MADV_WIPEONFORK/MADV_DONTFORK, SA_NOCLDSTOP) and pass under qemu; our CLI with --qemu must
 *    match qemu byte for byte.
 *
 * proc_exec takes the path of proc_exec_child: the native build gets the native child, the aarch64 build the
 * aarch64 one. Every run gets its own session (setsid), so that whatever a run leaves behind (a child stuck
 * after its parent died, say) is killed with the whole process group instead of holding the output pipe open.
 *
 * (2) and the guest half of (3) run by default; GUEST_PROCESS_TESTS=0 skips them.
 */
import { describe, expect, test } from "bun:test";
import { ensureFixtures } from "../scripts/fixtures.ts";
import {
  aarch64SkipReason,
  builtProgram,
  type CheckedRun,
  expectAllPassed,
  expectSameAsNative,
  nativeSkipReason,
} from "./lib/checks.ts";
import {
  compareRuns,
  environmentFor,
  guestCommand,
  oracleUnavailableReason,
  qemuCommand,
  REPO_ROOT,
} from "./lib/run.ts";

const PROGRAMS = ["proc_wait", "proc_fork", "proc_pipe", "proc_signal", "proc_exec", "proc_threads"] as const;
type Program = (typeof PROGRAMS)[number];

/** The program proc_exec runs; given as its argument. */
const EXEC_CHILD = "proc_exec_child";

/**
 * Programs whose children die of SIGSEGV/SIGABRT on purpose: qemu-user itself reports each such death on
 * stderr ("qemu: uncaught target signal 11 …"), which is qemu's output, not the guest's.
 */
const QEMU_WRITES_STDERR: ReadonlySet<Program> = new Set(["proc_wait"]);

/** Each program arms alarm(20) itself; this only catches a runtime that does not deliver it. */
const RUN_TIMEOUT_MS = 90_000;
const TEST_TIMEOUT_MS = 2 * RUN_TIMEOUT_MS + 10_000;

const fixtures = await ensureFixtures({ busybox: false });
const guestEnabled = process.env.GUEST_PROCESS_TESTS !== "0";

interface GroupedResult extends CheckedRun {
  /** Processes of the run's group were still alive after its first process exited (they were killed). */
  leftovers: boolean;
}

function killGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false; // ESRCH: nobody left in the group
  }
}

/**
 * Like runCommand() from lib/run.ts (same environment, same result shape), but the command runs as the leader
 * of a new session and process group, and everything still in that group when it exits (or times out) is
 * SIGKILLed, so a stray child cannot keep stdout open and hang the test.
 */
async function runGrouped(
  side: string,
  command: string[],
  timeoutMs = RUN_TIMEOUT_MS,
): Promise<GroupedResult> {
  // setsid(1) execs in place (a freshly spawned child is not a group leader): pid == pgid == sid.
  const child = Bun.spawn(["setsid", ...command], {
    cwd: REPO_ROOT,
    env: environmentFor({}),
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const pgid = child.pid;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(pgid, "SIGKILL");
  }, timeoutMs);
  const stdout = new Response(child.stdout).arrayBuffer();
  const stderr = new Response(child.stderr).arrayBuffer();
  try {
    await child.exited;
  } finally {
    clearTimeout(timer);
  }
  const leftovers = !timedOut && killGroup(pgid, 0);
  killGroup(pgid, "SIGKILL");
  return {
    side,
    command,
    stdout: Buffer.from(await stdout),
    stderr: Buffer.from(await stderr),
    exitCode: child.exitCode,
    signal: child.signalCode === null ? null : String(child.signalCode),
    timedOut,
    leftovers,
  };
}

const nativeProgram = (name: string): string => builtProgram(fixtures, "x86_64", name);
const guestProgram = (name: string): string => builtProgram(fixtures, "aarch64", name);

/** The program's arguments: proc_exec gets the child built for the same machine. */
function argsFor(name: Program, machine: "x86_64" | "aarch64", flags: string[] = []): string[] {
  if (name !== "proc_exec") return flags;
  return [...flags, machine === "x86_64" ? nativeProgram(EXEC_CHILD) : guestProgram(EXEC_CHILD)];
}

function runNative(name: Program): Promise<GroupedResult> {
  return runGrouped("native", [nativeProgram(name), ...argsFor(name, "x86_64")]);
}

function runQemu(name: Program): Promise<GroupedResult> {
  return runGrouped("qemu", qemuCommand(guestProgram(name), argsFor(name, "aarch64", ["--qemu"])));
}

function runGuest(name: Program, flags: string[] = []): Promise<GroupedResult> {
  return runGrouped("guest", guestCommand(guestProgram(name), argsFor(name, "aarch64", flags)));
}

// ---------------------------------------------------------------------------------------------------------
// 1. Native

const nativeSkip = nativeSkipReason(fixtures, [...PROGRAMS, EXEC_CHILD], "proc_*");
if (nativeSkip) console.warn(`[process] skipping native runs: ${nativeSkip}`);

describe.skipIf(nativeSkip !== null)("processes: native x86_64 builds pass on this Linux host", () => {
  for (const name of PROGRAMS) {
    test(
      name,
      async () => {
        const result = await runNative(name);
        expectAllPassed(result);
        // Natively nothing is skipped: every check is Linux's.
        expect(result.stdout.toString()).not.toContain("skipped under qemu");
      },
      TEST_TIMEOUT_MS,
    );
  }

  test("proc_exec: the child received argv and envp exactly", async () => {
    const stdout = (await runNative("proc_exec")).stdout.toString();
    expect(stdout).toContain(
      [
        "child argc 5",
        "child argv[0] [custom-argv0]",
        "child argv[1] [args]",
        "child argv[2] [two words]",
        "child argv[3] []",
        "child argv[4] [last]",
        "child env[0] [A=1]",
        "child env[1] [B=two words]",
        "child env[2] [EMPTY=]",
        "child env[3] [LANG=C]",
        "child env count 4",
        "fork + execve: argv and envp exactly as given: exit 45 ok",
        "",
      ].join("\n"),
    );
  });
});

// ---------------------------------------------------------------------------------------------------------
// 3 (oracle half). qemu with --qemu

const oracleProblem = oracleUnavailableReason();
const aarch64Skip = aarch64SkipReason(fixtures, [...PROGRAMS, EXEC_CHILD], oracleProblem);
if (aarch64Skip) console.warn(`[process] skipping qemu runs: ${aarch64Skip}`);

describe.skipIf(aarch64Skip !== null)("processes: aarch64 builds pass under qemu with --qemu", () => {
  for (const name of PROGRAMS) {
    test(
      name,
      async () => {
        expectAllPassed(await runQemu(name), { stderr: !QEMU_WRITES_STDERR.has(name) });
      },
      TEST_TIMEOUT_MS,
    );
  }
});

// ---------------------------------------------------------------------------------------------------------
// 2 and 3 (guest half). Our runtime

const guestSkip = !guestEnabled
  ? "GUEST_PROCESS_TESTS=0: runs under our CLI were switched off"
  : (nativeSkip ?? aarch64Skip);
if (guestSkip) console.warn(`[process] skipping runs under our CLI: ${guestSkip}`);

describe.skipIf(guestSkip !== null)("processes: our runtime behaves as Linux", () => {
  for (const name of PROGRAMS) {
    test(
      `${name}: same output as the native build`,
      async () => {
        const native = await runNative(name);
        expectAllPassed(native);
        expectSameAsNative(native, await runGuest(name));
      },
      TEST_TIMEOUT_MS,
    );

    test(
      `${name} --qemu: same as qemu`,
      async () => {
        const qemu = await runQemu(name);
        const stderr = !QEMU_WRITES_STDERR.has(name);
        expectAllPassed(qemu, { stderr });
        const guest = await runGuest(name, ["--qemu"]);
        const differences = compareRuns(qemu, guest, { stderr });
        if (guest.leftovers) differences.push("processes were left behind after the guest exited");
        expect(differences).toEqual([]);
      },
      TEST_TIMEOUT_MS,
    );
  }
});

test("every process program was built for aarch64", () => {
  if (Object.keys(fixtures.aarch64).length === 0) {
    console.warn(`[process] no aarch64 builds: ${fixtures.problems.join("; ")}`);
    return;
  }
  expect(Object.keys(fixtures.aarch64).filter((name) => name.startsWith("proc_"))).toEqual(
    expect.arrayContaining([...PROGRAMS, EXEC_CHILD]),
  );
});
