// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the strings are shell scripts, whose ${…} is the shell's
/**
 * Real shells as guests (issue 6): Debian's static arm64 busybox `sh` and bash (bash-static) run small scripts
 * that fork, exec, pipe, wait, trap and kill; qemu-aarch64-static is the oracle and our CLI must give the same
 * stdout, stderr and exit status, byte for byte.
 *
 * Under qemu every fork is a fork of qemu, and every execve of an aarch64 program goes to the host kernel,
 * which needs binfmt_misc to hand it back to qemu: `ensureQemuBinfmt()` registers that (root) in beforeAll.
 * When it cannot, every case fails with the reason; GUEST_SHELL_TESTS=0 skips the file explicitly.
 *
 * Rules the scripts follow so that the oracle is deterministic (each case was run twice under qemu, also
 * under CPU load, with identical results — `GUEST_TEST_RUNNER=qemu-aarch64-static bun test tests/shells.test.ts`
 * repeats that check):
 * - external commands are `$BB applet` (BB = the busybox binary) and PATH holds only busybox's folder, so no
 *   host (x86_64) program is ever run by mistake: a bare `cat` is "not found" on both sides;
 * - nothing prints pids, times or host limits; background jobs write to files or are waited for before
 *   anything else prints; messages that carry a pid (bash's "line 1: 1234 Killed …") go to /dev/null;
 * - each case runs in the same fresh, empty folder on both sides (so `pwd` agrees) and must leave qemu with
 *   the expected status and, unless the case says it writes there, an empty stderr.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { ensureQemuBinfmt } from "../scripts/binfmt.ts";
import { ensureFixtures } from "../scripts/fixtures.ts";
import {
  compareRuns,
  describeStatus,
  guestCommand,
  oracleUnavailableReason,
  qemuCommand,
  type RunOptions,
  type RunResult,
  runCommand,
} from "./lib/run.ts";

type Shell = "busybox" | "bash";

interface ShellCase {
  name: string;
  shell: Shell;
  /** Run as `busybox sh -c SCRIPT` / `bash-static -c SCRIPT`, or from a file (see `file`). */
  script: string;
  stdin?: string;
  /** Run the script from ./script.sh in the case's folder, with these arguments, instead of with -c. */
  file?: string[];
  /** What the oracle must end with, as describeStatus says it (default "exit 0"). */
  status?: string;
  /** The script writes to stderr on purpose (otherwise qemu's stderr must be empty). */
  stderr?: true;
}

const RUN_TIMEOUT_MS = 60_000;
const TEST_TIMEOUT_MS = 150_000;

const lines = (...text: string[]): string => `${text.join("\n")}\n`;

/** The same script for both shells. */
function both(name: string, script: string, extra: Partial<ShellCase> = {}): ShellCase[] {
  return (["busybox", "bash"] as const).map((shell) => ({ name, shell, script, ...extra }));
}

const bashOnly = (name: string, script: string, extra: Partial<ShellCase> = {}): ShellCase => ({
  name,
  shell: "bash",
  script,
  ...extra,
});

const CASES: ShellCase[] = [
  // Pipelines: every stage a fork + exec of busybox.
  ...both("pipeline of three", "$BB seq 1 100 | $BB grep 7 | $BB wc -l"),
  ...both(
    "pipeline of five, then its status",
    lines("$BB seq 1 30 | $BB grep 2 | $BB sort -r | $BB head -n 4 | $BB tr 0-9 a-j", 'echo "status $?"'),
  ),
  ...both(
    "pipeline status is the last stage's; ! negates; pipefail",
    lines(
      "$BB true | $BB false; echo $?",
      "$BB false | $BB true; echo $?",
      "! $BB true | $BB true; echo $?",
      "set -o pipefail",
      "$BB false | $BB true; echo $?",
      "( exit 3 ) | ( exit 4 ) | $BB true; echo $?",
    ),
  ),
  // Subshells.
  ...both(
    "subshell exit codes and isolation",
    lines(
      "( exit 3 ); echo $?",
      "( ( exit 4 ); echo inner $?; exit 5 ); echo outer $?",
      "x=1; ( x=2; echo in $x ); echo out $x",
      '( cd /; pwd ); [ "$(pwd)" != / ] && echo cwd kept',
    ),
  ),
  // Background jobs, $!, wait.
  ...both(
    "background jobs: wait $! and wait with no operand",
    lines(
      "$BB sh -c 'exit 7' & p=$!",
      'wait $p; echo "status $?"',
      "( exit 3 ) & wait $!; echo $?",
      "$BB true & $BB false & wait; echo all $?",
      '[ "$p" -gt 0 ] && [ "$p" != "$$" ] && echo "pid ok"',
    ),
  ),
  ...both(
    "five background jobs, each status by its pid",
    lines(
      'pids=""',
      'for i in 1 2 3 4 5; do ( echo "job $i" > out.$i; exit $i ) & pids="$pids $!"; done',
      'for p in $pids; do wait $p; echo "status $?"; done',
      "$BB cat out.1 out.2 out.3 out.4 out.5",
    ),
  ),
  // Command substitution.
  ...both(
    "nested command substitution",
    lines(
      'echo "a$(echo b$(echo c$($BB echo d)))"',
      'x=$($BB seq 1 4 | $BB tr "\\n" ,); echo "$x"',
      "y=$(exit 3); echo $?",
      'echo "$($BB echo "$($BB echo in)" out)"',
    ),
  ),
  ...both(
    "recursive function through command substitution",
    lines(
      "fact() { if [ $1 -le 1 ]; then echo 1; else echo $(( $1 * $(fact $(( $1 - 1 ))) )); fi; }",
      "fact 7",
    ),
  ),
  // Here-documents.
  ...both(
    "here-documents: expanded, quoted, tab-stripped",
    lines(
      "v=world",
      "$BB cat <<EOF",
      "hello $v $((1 + 2))",
      "$($BB echo substituted)",
      "EOF",
      "$BB cat <<'EOF'",
      "$v stays $(literal)",
      "EOF",
      "$BB wc -l <<-EOF",
      "\tone",
      "\ttwo",
      "\tEOF",
      'while read a b; do echo "$b-$a"; done <<EOF',
      "1 x",
      "2 y",
      "EOF",
    ),
  ),
  // Traps and signals.
  ...both("trap TERM, kill -TERM $$", lines("trap 'echo got TERM' TERM", "kill -TERM $$", "echo after")),
  ...both("trap EXIT sees the exit status", lines("trap 'echo exiting $?' EXIT", "echo body", "exit 3"), {
    status: "exit 3",
  }),
  ...both(
    "trap INT in a subshell, sent by a child",
    lines(
      "( trap 'echo INT in subshell' INT; $BB sh -c 'kill -INT $PPID'; echo subshell goes on; exit 4 )",
      "echo $?",
    ),
  ),
  ...both(
    "ignored signal, kill -0, kill -l",
    lines("trap '' USR1", "kill -USR1 $$", "echo survived USR1", "kill -0 $$ && echo alive", "kill -l 15"),
  ),
  ...both(
    "kill -9 of a background job: wait reports 137",
    // When (and whether) the shells report the death on stderr races with the kill; bash adds the pid.
    lines("exec 2>/dev/null", "$BB sleep 30 & p=$!", "kill -9 $p", "wait $p; echo $?"),
  ),
  ...both(
    "kill -TERM of a background job: wait reports 143",
    lines("exec 2>/dev/null", "$BB sleep 30 & p=$!", "kill -TERM $p", "wait $p; echo $?"),
  ),
  ...both(
    "children killed by signals give 128+N",
    lines(
      "{",
      "  $BB sh -c 'kill -TERM $$'; echo $?",
      "  $BB sh -c 'kill -HUP $$'; echo $?",
      "  $BB sh -c 'kill -INT $$'; echo $?",
      "  $BB sh -c 'kill -USR1 $$'; echo $?",
      "  $BB sh -c 'kill -KILL $$'; echo $?",
      "} 2>/dev/null",
    ),
  ),
  ...both("the shell itself killed by SIGTERM", lines("echo before", "kill -TERM $$", "echo never"), {
    status: "killed by SIGTERM",
  }),
  ...both("SIGPIPE in a pipeline", lines("$BB yes | $BB head -n 2", "echo $?")),
  // exec.
  ...both(
    "exec replaces the shell; exec redirections",
    lines(
      "exec 3>three.txt",
      "echo to three >&3",
      "exec 3>&-",
      "$BB cat three.txt",
      "echo before",
      "exec $BB sh -c 'echo replaced as $0; exit 6' newname",
      "echo never",
    ),
    { status: "exit 6" },
  ),
  // Redirections in the case's folder.
  ...both(
    "redirections to files",
    lines(
      "echo one > f",
      "echo two >> f",
      "$BB cat < f",
      "$BB ls nosuch 2> err; echo status $?",
      "$BB cat err",
      "{ echo a; echo b >&2; } > both 2>&1",
      "$BB cat both",
      "echo hidden 2>/dev/null >&2",
      "$BB wc -c < f > count; $BB cat count",
      "$BB ls",
    ),
  ),
  // set -e.
  ...both(
    "set -e stops at the first failing simple command",
    lines(
      "set -e",
      "$BB true; echo ok",
      "if $BB false; then echo no; fi",
      "$BB false || echo ored",
      "! $BB true",
      "echo negation does not stop",
      "$BB false",
      "echo never",
    ),
    { status: "exit 1" },
  ),
  // Many forks.
  ...both(
    "for loop forking 50 times",
    lines(
      "n=0",
      "for i in $($BB seq 1 50); do n=$(( n + $($BB echo 1) )); done",
      "echo $n",
      "s=0; for i in $($BB seq 1 50); do ( exit $(( i % 3 )) ); s=$(( s + $? )); done; echo $s",
    ),
  ),
  // Reading files.
  ...both(
    "while read over a file and a pipe",
    lines(
      "printf 'a 1\\nb 2\\nc 3\\n' > kv",
      'while read k v; do echo "$v=$k"; done < kv',
      "$BB cat kv | while read k v; do echo piped $k; done",
      "n=0; while read line; do n=$((n + 1)); done < kv; echo lines $n",
    ),
  ),
  ...both(
    "$( $BB cat file )",
    lines(
      "$BB seq 1 5 > nums",
      'x=$( $BB cat nums ); echo "$x" | $BB wc -l',
      'echo $(( $( $BB cat nums | $BB tr "\\n" + ) 0 ))',
      "echo $($BB cat nums)",
    ),
  ),
  ...both("stdin is passed through", lines('read a; read b; echo "$b $a"', "$BB tr a-z A-Z", "echo end"), {
    stdin: "one\ntwo\nthree\nfour\n",
  }),
  // Exit codes.
  ...both(
    "exit codes 0, 1, 2, 126, 127",
    lines(
      "$BB true; echo $?",
      "$BB false; echo $?",
      "$BB sh -c 'exit 2'; echo $?",
      "echo text > plain; ./plain 2>/dev/null; echo $?",
      "no_such_command_xyz 2>/dev/null; echo $?",
      "exit 2",
    ),
    { status: "exit 2" },
  ),
  ...both("command not found message", lines("no_such_command_xyz", "echo $?"), { stderr: true }),
  // Builtins.
  ...both(
    "ulimit and umask",
    lines(
      "umask 027; umask",
      "echo x > f; $BB stat -c %a f",
      "( umask 077; echo y > g ); $BB stat -c %a g; umask",
      "ulimit -n 64; ulimit -n",
      "( ulimit -n 32; ulimit -n; $BB sh -c 'ulimit -n' ); ulimit -n",
      "ulimit -c 0; ulimit -c",
    ),
  ),
  ...both(
    "cd and pwd",
    lines(
      'start=$(pwd); [ "$start" = "$($BB pwd)" ] && echo same',
      "$BB mkdir -p a/b/c",
      'cd a/b; echo "${PWD#"$start"}"',
      'cd ..; echo "${PWD#"$start"}"',
      'cd - > /dev/null; echo "${PWD#"$start"}"',
      'cd c; $BB pwd | $BB sed "s|^$start||"',
      "cd /; pwd",
      "cd /no/such/dir 2>/dev/null; echo $?",
    ),
  ),
  // A script from a file, running another script through #! (a host execve of a #! script).
  ...both(
    "script file with arguments runs a #! script",
    lines(
      'echo "args $# [$1] [$2]"',
      'printf "#!%s sh\\necho inner \\$0 \\$1\\nexit 9\\n" "$BB" > inner.sh',
      "$BB chmod +x inner.sh",
      "./inner.sh arg; echo $?",
      'shift; echo "after shift [$1]"',
    ),
    { file: ["first", "second arg"] },
  ),

  // bash only.
  bashOnly(
    "bash arrays",
    lines(
      "a=(one two three); a+=(four)",
      'echo ${#a[@]} ${a[2]} "${a[@]:1:2}"',
      "declare -A m=([x]=1 [y]=2); echo ${m[y]} ${#m[@]}",
      'for k in "${!a[@]}"; do echo "$k=${a[$k]}"; done',
      "mapfile -t got < <($BB seq 3 5); echo ${got[*]}",
    ),
  ),
  bashOnly(
    "bash [[ ]]",
    lines(
      "[[ abc == a* ]] && echo glob",
      "[[ 10 -gt 9 ]] && echo numeric",
      "[[ foo =~ ^f(o+)$ ]] && echo ${BASH_REMATCH[1]}",
      '[[ -z "" && -n x ]] && echo both',
      "[[ b > a ]] && echo ordered",
      "[[ -d / && ! -e /no/such ]] && echo files",
    ),
  ),
  bashOnly(
    "bash process substitution",
    lines(
      "$BB cat <($BB seq 1 3)",
      "$BB paste -d: <($BB seq 1 3) <($BB seq 4 6)",
      "while read x; do echo r$x; done < <($BB seq 1 2)",
      "echo hi > >($BB tr a-z A-Z > up.txt); wait $!",
      "$BB cat up.txt",
    ),
  ),
  bashOnly(
    "bash PIPESTATUS and pipefail",
    lines(
      '$BB true | ( exit 2 ) | $BB false; echo "${PIPESTATUS[@]}"',
      "set -o pipefail",
      "( exit 3 ) | ( exit 5 ) | $BB true; echo $?",
    ),
  ),
  bashOnly(
    "bash coproc",
    lines(
      "coproc $BB tr a-z A-Z",
      "echo hello >&${COPROC[1]}",
      "exec {COPROC[1]}>&-",
      "read -r line <&${COPROC[0]}",
      "echo $line",
      "wait $COPROC_PID; echo $?",
    ),
  ),
  bashOnly(
    "bash $BASHPID differs in a subshell (not printed)",
    lines(
      '[ "$BASHPID" = "$$" ] && echo top same',
      '( [ "$BASHPID" != "$$" ] && echo subshell differs )',
      'echo "$(echo $BASHPID)" | { read p; [ "$p" != "$$" ] && echo substitution differs; }',
    ),
  ),
  bashOnly(
    "bash wait -n and ERR trap",
    lines(
      // The job must still run when wait -n starts: one already reaped makes bash answer 127 (a race under qemu).
      "( $BB sleep 0.2; exit 5 ) & wait -n; echo $?",
      "set -E; trap 'echo ERR status $?' ERR",
      "$BB false",
      "f() { $BB sh -c 'exit 4'; }; f",
      "echo end",
    ),
  ),
  bashOnly(
    "bash string, arithmetic and brace expansion builtins",
    lines(
      "echo {1..5} {a..c}",
      "s=hello; echo ${s^^} ${s:1:3} ${s/l/L} ${#s}",
      "printf -v v '%05d' 42; echo $v",
      "(( x = 7 * 6 )); echo $x; echo $(( 2 ** 10 ))",
      "printf '%s|' one two; echo",
    ),
  ),
];

const disabled = process.env.GUEST_SHELL_TESTS === "0";
if (disabled) console.warn("[shells] skipped: GUEST_SHELL_TESTS=0");

const fixtures = disabled ? null : await ensureFixtures();

/** Set in beforeAll: why the oracle cannot run these scripts here, or null. */
let setupProblem: string | null = null;
let workRoot = "";

function programFor(shell: Shell): string | null {
  return shell === "busybox" ? (fixtures?.busybox ?? null) : (fixtures?.bash ?? null);
}

/** argv[1..] for the case: `sh -c SCRIPT` for busybox, `-c SCRIPT` for bash, or the script file. */
function argsFor(shellCase: ShellCase): string[] {
  const prefix = shellCase.shell === "busybox" ? ["sh"] : [];
  if (shellCase.file) return [...prefix, "script.sh", ...shellCase.file];
  return [...prefix, "-c", shellCase.script];
}

/**
 * runUnderQemu / runUnderGuest, with the runner itself (qemu, bun) found on this process's PATH: Bun.spawn
 * looks a bare command name up in the child's PATH, which here holds only busybox's folder.
 */
function withResolvedRunner(side: string, build: (program: string, args?: string[]) => string[]) {
  return (program: string, options: RunOptions): Promise<RunResult> => {
    const [runner = "", ...rest] = build(program, options.args);
    return runCommand(side, [Bun.which(runner) ?? runner, ...rest], options);
  };
}
const runUnderQemu = withResolvedRunner("qemu", qemuCommand);
const runUnderGuest = withResolvedRunner("guest", guestCommand);

/** Give the case its folder empty (same path on both sides, so `pwd` agrees), then run it. */
function runIn(
  folder: string,
  shellCase: ShellCase,
  run: (program: string, options: RunOptions) => Promise<RunResult>,
): Promise<RunResult> {
  rmSync(folder, { recursive: true, force: true });
  mkdirSync(folder, { recursive: true });
  if (shellCase.file) {
    writeFileSync(join(folder, "script.sh"), shellCase.script);
    chmodSync(join(folder, "script.sh"), 0o755);
  }
  const busybox = fixtures!.busybox!;
  return run(programFor(shellCase.shell)!, {
    args: argsFor(shellCase),
    // Only busybox's folder on PATH: a bare host command name must never reach an x86_64 program.
    env: { BB: busybox, PATH: dirname(busybox) },
    stdin: shellCase.stdin,
    cwd: folder,
    timeoutMs: RUN_TIMEOUT_MS,
  });
}

describe.skipIf(disabled)("shells as guests", () => {
  beforeAll(() => {
    const missing = [
      oracleUnavailableReason(),
      fixtures?.busybox ? null : "the busybox fixture is missing",
      fixtures?.bash ? null : "the bash-static fixture is missing",
    ].filter((problem): problem is string => problem !== null);
    if (missing.length > 0) {
      setupProblem = `${missing.join("; ")}; ${fixtures?.problems.join("; ") ?? ""}`;
      return;
    }
    const binfmt = ensureQemuBinfmt();
    if (binfmt) {
      setupProblem = `qemu cannot run shells that exec aarch64 programs: ${binfmt} (GUEST_SHELL_TESTS=0 skips these tests)`;
      return;
    }
    workRoot = mkdtempSync(join(tmpdir(), "guest-shells-"));
  });

  afterAll(() => {
    if (workRoot) rmSync(workRoot, { recursive: true, force: true });
  });

  const seen = new Set<string>();
  CASES.forEach((shellCase, index) => {
    const title = `${shellCase.shell}: ${shellCase.name}`;
    if (seen.has(title)) throw new Error(`duplicate shell case: ${title}`);
    seen.add(title);
    test(
      title,
      async () => {
        if (setupProblem) throw new Error(setupProblem);
        const folder = join(workRoot, `case-${index}`);
        const qemu = await runIn(folder, shellCase, runUnderQemu);
        const oracle = `qemu: ${describeStatus(qemu)}, stdout ${JSON.stringify(qemu.stdout.toString())}, stderr ${JSON.stringify(qemu.stderr.toString())}`;
        // The oracle first: if it does not end as the case says, the case is wrong, not the runtime.
        expect(describeStatus(qemu), oracle).toBe(shellCase.status ?? "exit 0");
        if (!shellCase.stderr) expect(qemu.stderr.toString(), oracle).toBe("");
        const guest = await runIn(folder, shellCase, runUnderGuest);
        expect(compareRuns(qemu, guest)).toEqual([]);
      },
      TEST_TIMEOUT_MS,
    );
  });
});
