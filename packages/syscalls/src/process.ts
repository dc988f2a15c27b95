/**
 * Per-process state the handlers keep for the guest: the fd table, cwd, umask, credentials, rlimits and
 * signal state. Everything a guest can observe about "its process" that is not in its memory lives here.
 *
 * fd model: every guest fd owns exactly one host fd (dup on the host for dup/dup3/F_DUPFD), so closing a
 * guest fd closes exactly its host fd and nothing is reference-counted. Host fds are always close-on-exec
 * on the host; the guest's FD_CLOEXEC is tracked here. The guest's 0/1/2 start as host dups of the host's
 * 0/1/2 (same open file descriptions: same offsets, flags and tty), so a guest closing its stdout never
 * closes the runtime's.
 *
 * cwd model: the guest's cwd is a host directory fd (opened O_PATH) plus its path. The host process never
 * chdirs; relative paths go to the host *at() calls with that fd, so the runtime's own cwd is untouched.
 */
import { EBADF, EINVAL, EMFILE } from "./abi/errno.ts";
import { AT_FDCWD } from "./abi/fcntl.ts";
import { DEFAULT_TIMER_SLACK_NS, SUID_DUMP_USER, TASK_COMM_LEN } from "./abi/process.ts";
import {
  RLIM_INFINITY,
  RLIM_NLIMITS,
  RLIMIT_AS,
  RLIMIT_CORE,
  RLIMIT_DATA,
  RLIMIT_FSIZE,
  RLIMIT_LOCKS,
  RLIMIT_MEMLOCK,
  RLIMIT_MSGQUEUE,
  RLIMIT_NOFILE,
  RLIMIT_NPROC,
  RLIMIT_RSS,
  RLIMIT_SIGPENDING,
  RLIMIT_STACK,
} from "./abi/resource.ts";
import { NSIG, SIGACTION } from "./abi/signal.ts";
import { type Host, SCRATCH_GENERAL, sharedHost } from "./host/host.ts";
import { SS_DISABLE } from "./signals/abi.ts";

export interface FdEntry {
  hostFd: number;
  /** The guest's FD_CLOEXEC. */
  cloexec: boolean;
  /** What the guest opened (for /proc/self/fd and traces); the host path of the host fd is authoritative. */
  path: string;
}

/** Guest fd → host fd, with Linux's lowest-free-number allocation. */
export class FdTable {
  private readonly entries: Array<FdEntry | undefined> = [];
  /** No free slot below this (a hint that keeps allocation O(1) in the common case). */
  private lowestFree = 0;
  /** RLIMIT_NOFILE soft limit: fds must stay below it. */
  limit: number;

  constructor(limit = 1024) {
    this.limit = limit;
  }

  get(fd: number): FdEntry | undefined {
    return fd >= 0 && fd < this.entries.length ? this.entries[fd] : undefined;
  }

  /** Lowest free fd >= min, or -EMFILE (-EINVAL when min itself is past the limit, as F_DUPFD says). */
  allocate(entry: FdEntry, min = 0): number {
    if (min >= this.limit) return -EINVAL;
    let fd = Math.max(min, this.lowestFree);
    while (fd < this.entries.length && this.entries[fd] !== undefined) fd++;
    if (fd >= this.limit) return -EMFILE;
    this.entries[fd] = entry;
    if (min <= this.lowestFree) this.lowestFree = fd + 1;
    return fd;
  }

  /** Put `entry` at exactly `fd` (dup2/dup3); returns the entry it replaced, which the caller must close. */
  install(fd: number, entry: FdEntry): FdEntry | undefined {
    const previous = this.entries[fd];
    while (this.entries.length < fd) this.entries.push(undefined);
    this.entries[fd] = entry;
    if (fd === this.lowestFree) this.advanceLowestFree();
    return previous;
  }

  remove(fd: number): FdEntry | undefined {
    const entry = this.get(fd);
    if (entry === undefined) return undefined;
    this.entries[fd] = undefined;
    if (fd < this.lowestFree) this.lowestFree = fd;
    while (this.entries.length > 0 && this.entries[this.entries.length - 1] === undefined) this.entries.pop();
    return entry;
  }

  /** The fd allocate(entry, min) would return, without taking it (Linux checks for a free fd first). */
  peek(min = 0): number {
    if (min >= this.limit) return -EINVAL;
    let fd = Math.max(min, this.lowestFree);
    while (fd < this.entries.length && this.entries[fd] !== undefined) fd++;
    return fd >= this.limit ? -EMFILE : fd;
  }

  /** How many fds are open. */
  get count(): number {
    let n = 0;
    for (const entry of this.entries) if (entry !== undefined) n++;
    return n;
  }

  /** Open guest fds in increasing order. */
  *open(): IterableIterator<[number, FdEntry]> {
    for (let fd = 0; fd < this.entries.length; fd++) {
      const entry = this.entries[fd];
      if (entry !== undefined) yield [fd, entry];
    }
  }

  private advanceLowestFree(): void {
    while (this.lowestFree < this.entries.length && this.entries[this.lowestFree] !== undefined)
      this.lowestFree++;
  }
}

/** A thread's sigaltstack: ss_sp, ss_size and SS_DISABLE / SS_AUTODISARM. */
export interface AltStack {
  sp: bigint;
  size: bigint;
  flags: number;
}

/** Per-thread state. */
export class ThreadState {
  /** sigaltstack(2): per thread; a new thread (clone with CLONE_VM) starts without one, fork keeps it. */
  altStack: AltStack = { sp: 0n, size: 0n, flags: SS_DISABLE };
  /** Blocked signals: bit (n-1) for signal n. */
  blocked = 0n;
  /**
   * Linux's saved_sigmask (TIF_RESTORE_SIGMASK): sigsuspend, ppoll and pselect6 run with a temporary mask and
   * leave the old one here. The next signal frame saves this one (so the handler's return restores it); if
   * no handler runs, it comes straight back.
   */
  savedMask: bigint | null = null;
  /** set_tid_address: cleared (and futex-woken) by the kernel when the thread exits. */
  clearChildTid = 0;
  robustListHead = 0;
  robustListLength = 0;
  /** Signals raised for this thread and not yet delivered (bit n-1 for signal n); delivery is the runtime's. */
  pending = 0n;
  /**
   * Scheduling, when several guest threads share one vCPU (the emulator): runnable, or blocked on a futex word
   * (`waitKey`, `waitBitset`) and/or until `deadline` (performance.now() ms; 0: none). `wakeResult` becomes
   * X0 when it runs again; `context` holds its registers meanwhile (the backend's VcpuContext).
   */
  run: "runnable" | "blocked" = "runnable";
  waitKey = -1;
  waitBitset = 0xffff_ffff;
  deadline = 0;
  wakeResult = 0;
  context: { free(): void } | null = null;
  /** Its parked call is one Linux restarts after an SA_RESTART handler (read, write, wait4), not EINTR. */
  restartable = false;
  /** wait4/waitid: blocked until ProcessState.childEvents moves past this count (-1: not waiting for a child). */
  waitChildEvents = -1;
  /** futex_waitv: blocked on any of these futex words (woken with the index of the one woken); null: not. */
  waitKeys: number[] | null = null;
  /** Bytes of a parked pipe write already written (it goes on from there; a signal ends it with this count). */
  writeDone = 0;
  /** When its interrupted relative wait ends (performance.now() ms; 0: none): a transparent restart resumes it. */
  waitEnd = 0;
  /** sched_setaffinity's mask (cpumask bytes), or null: every CPU the runtime may use. Threads inherit it. */
  affinity: Uint8Array | null = null;
  /** rt_sigtimedwait: blocked until one of these signals is pending for it (0n: not waiting for signals). */
  waitSignals = 0n;
  /** Blocked until one of these host fds is ready for its events (host pollfd terms); null: not on fds. */
  waitPoll: Array<{ fd: number; events: number }> | null = null;
  /**
   * A parked ppoll/pselect6: at its deadline it is issued again rather than answered here (the call then
   * finds nothing ready with no time left and fills in its results itself), and before any re-issue the time
   * left is written into its timespec at `rewriteTimeout` (0: none), as Linux keeps it current.
   */
  restartAtDeadline = false;
  rewriteTimeout = 0;
  restartDeadline = 0;
  /** When it runs again, re-issue the syscall it blocked in (PC back on the svc, X0 = this). */
  restartX0: bigint | null = null;
  /** It was stopped by its time slice in user code: its saved registers are exactly where it resumes. */
  preempted = false;
  /** A new thread's first registers: X0 = 0, its stack, its TLS (applied when it first runs). */
  start: { sp: bigint; tls: bigint | null } | null = null;
  /**
   * End a blocked thread's wait: it becomes runnable. `result` is the X0 it returns with; null means the call
   * it was parked in is issued again (an fd became ready: `restartX0` stays).
   */
  wake(result: number | null): void {
    this.run = "runnable";
    this.waitKey = -1;
    this.waitPoll = null;
    this.waitSignals = 0n;
    this.waitKeys = null;
    this.waitChildEvents = -1;
    this.restartable = false;
    this.deadline = 0;
    if (result !== null) {
      this.wakeResult = result;
      this.restartX0 = null;
      this.restartAtDeadline = false;
      this.rewriteTimeout = 0;
    }
  }

  /** task->comm (PR_SET_NAME/PR_GET_NAME): NUL-padded, at most 15 bytes of name. */
  readonly comm = new Uint8Array(TASK_COMM_LEN);
  /** PR_SET_PDEATHSIG: the signal to get when the parent dies (0: none). Stored only. */
  parentDeathSignal = 0;
  /** PR_SET_NO_NEW_PRIVS: once set, never cleared. */
  noNewPrivs = false;
  /** PR_SET_KEEPCAPS (a credential flag: per thread). */
  keepCaps = false;
  /** PR_MCE_KILL policy (PR_MCE_KILL_DEFAULT = 2 until set). */
  machineCheckPolicy = 2;
  /** PR_SET_TIMERSLACK (ns). Stored only. */
  timerSlackNs = DEFAULT_TIMER_SLACK_NS;
  constructor(public tid: number) {}

  /** Sets comm, truncated to 15 bytes (and at a NUL) as the kernel does. */
  setComm(name: string | Uint8Array): void {
    const bytes = typeof name === "string" ? new TextEncoder().encode(name) : name;
    const nul = bytes.indexOf(0);
    const length = Math.min(nul < 0 ? bytes.length : nul, TASK_COMM_LEN - 1);
    this.comm.fill(0);
    this.comm.set(bytes.subarray(0, length));
  }

  /** comm as text. */
  get commText(): string {
    const nul = this.comm.indexOf(0);
    return new TextDecoder().decode(this.comm.subarray(0, nul < 0 ? this.comm.length : nul));
  }
}

/** One rt_sigaction slot per signal 1..64: handler, flags, restorer, mask (all u64). */
export class SignalActions {
  /** [signal * 4 + field], fields in SIGACTION order; index 0..3 (signal 0) unused. */
  readonly table = new BigUint64Array((NSIG + 1) * 4);
  handler(signal: number): bigint {
    return this.table[signal * 4]!;
  }
  flags(signal: number): bigint {
    return this.table[signal * 4 + 1]!;
  }
  /** The guest struct sigaction (32 bytes, SIGACTION layout) of `signal`. */
  read(signal: number, out: DataView): void {
    const base = signal * 4;
    out.setBigUint64(SIGACTION.handler, this.table[base]!, true);
    out.setBigUint64(SIGACTION.flags, this.table[base + 1]!, true);
    out.setBigUint64(SIGACTION.restorer, this.table[base + 2]!, true);
    out.setBigUint64(SIGACTION.mask, this.table[base + 3]!, true);
  }
  /** Bumped by every write (lets the host-signal bridge notice a changed action cheaply). */
  version = 0;
  write(signal: number, handler: bigint, flags: bigint, restorer: bigint, mask: bigint): void {
    this.version++;
    const base = signal * 4;
    this.table[base] = handler;
    this.table[base + 1] = flags;
    this.table[base + 2] = restorer;
    this.table[base + 3] = mask;
  }
}

export interface ProcessOptions {
  /** Absolute host path of the guest program (what /proc/self/exe reads back as). */
  exePath: string;
  /** Guest cwd; defaults to the host process's cwd. */
  cwd?: string;
  /** Give the guest 0/1/2 as dups of the host's (default true). false: the guest starts with no fds. */
  inheritStdio?: boolean;
  /** Override the pid/ppid the guest sees (default: the host's real ones, so output matches qemu). */
  pid?: number;
  ppid?: number;
  /** The name the program was executed as (execve's filename); comm is its basename. Default: exePath. */
  execName?: string;
}

/** Default rlimits, as a Linux 6.18 login shell typically has them ([cur, max]). */
function defaultRlimits(): Array<[bigint, bigint]> {
  const limits: Array<[bigint, bigint]> = Array.from({ length: RLIM_NLIMITS }, () => [
    RLIM_INFINITY,
    RLIM_INFINITY,
  ]);
  limits[RLIMIT_FSIZE] = [RLIM_INFINITY, RLIM_INFINITY];
  limits[RLIMIT_DATA] = [RLIM_INFINITY, RLIM_INFINITY];
  limits[RLIMIT_STACK] = [8n << 20n, RLIM_INFINITY];
  limits[RLIMIT_CORE] = [0n, RLIM_INFINITY];
  limits[RLIMIT_RSS] = [RLIM_INFINITY, RLIM_INFINITY];
  limits[RLIMIT_NPROC] = [63_704n, 63_704n];
  limits[RLIMIT_NOFILE] = [1024n, 1_048_576n];
  limits[RLIMIT_MEMLOCK] = [8n << 20n, 8n << 20n];
  limits[RLIMIT_AS] = [RLIM_INFINITY, RLIM_INFINITY];
  limits[RLIMIT_LOCKS] = [RLIM_INFINITY, RLIM_INFINITY];
  limits[RLIMIT_SIGPENDING] = [63_704n, 63_704n];
  limits[RLIMIT_MSGQUEUE] = [819_200n, 819_200n];
  return limits;
}

/**
 * The limits the guest inherits: the host process's own (as a child inherits its parent's on Linux, and as
 * qemu-user shows them), each falling back to the login-shell default the host cannot report.
 */
function inheritedRlimits(host: Host): Array<[bigint, bigint]> {
  const limits = defaultRlimits();
  const at = host.scratchAddress + SCRATCH_GENERAL;
  for (let resource = 0; resource < RLIM_NLIMITS; resource++) {
    if (host.sym.host_getrlimit(resource, at) !== 0) continue;
    const view = host.scratchView;
    limits[resource] = [
      view.getBigUint64(SCRATCH_GENERAL, true),
      view.getBigUint64(SCRATCH_GENERAL + 8, true),
    ];
  }
  return limits;
}

/** Guest addresses of the argv/envp strings and the initial stack pointer (see ProcessState.argsArea). */
export interface ArgsArea {
  argStart: number;
  argEnd: number;
  envStart: number;
  envEnd: number;
  startStack: number;
}

export class ProcessState {
  readonly fds: FdTable;
  /** Host path of the running program (/proc/self/exe); execve changes it. */
  exePath: string;
  /** The host's pid (a guest process is a host process); fork changes it in the child. */
  pid: number;
  ppid: number;
  readonly uid: number;
  readonly euid: number;
  readonly gid: number;
  readonly egid: number;
  /** Saved set-user/group-ID (getresuid/getresgid): the host's. */
  readonly suid: number;
  readonly sgid: number;
  /**
   * Process group and session: the host's, until the guest's own setpgid(0, 0)/setsid, which change only
   * what the guest sees (the host process keeps its group, so job control of the runtime is untouched).
   */
  pgid: number;
  sid: number;
  /** PR_SET_DUMPABLE (per mm in Linux). */
  dumpable = SUID_DUMP_USER;
  /** PR_SET_CHILD_SUBREAPER. Stored only. */
  childSubreaper = false;
  /** PR_SET_THP_DISABLE and PR_SET_MEMORY_MERGE (mm flags: per process; no effect on the emulator). */
  thpDisabled = false;
  memoryMerge = false;
  /** personality(2) persona. Stored only (its flags matter at execve). */
  personality = 0;
  /** The runtime is issuing an interrupted syscall again because no handler had to run (resolveInterrupted). */
  restarting = false;
  /** SIGCHLDs the process has received (even ignored ones): a thread parked in wait4 looks again when it moves. */
  childEvents = 0;
  /** Process-wide pending signals (kill to the process); rt_sigpending reports them with the thread's. */
  sharedPending = 0n;
  /**
   * Where the loader put argv and envp strings (mm->arg_start/arg_end/env_start/env_end) and the initial stack
   * pointer (mm->start_stack): /proc/self/{cmdline,environ,stat} read them. Set by the app after each load.
   */
  argsArea: ArgsArea = { argStart: 0, argEnd: 0, envStart: 0, envEnd: 0, startStack: 0 };
  /** The guest's umask; mirrored into the host process's umask so host creat/mkdir apply it. */
  umask: number;
  /** Host fd of the guest's cwd (O_PATH directory) and its absolute path. */
  cwdFd: number;
  cwdPath: string;
  readonly rlimits: Array<[cur: bigint, max: bigint]>;
  readonly signalActions = new SignalActions();
  readonly threads = new Map<number, ThreadState>();
  /** The thread whose syscall is being handled (the runtime switches it). */
  currentThread: ThreadState;
  private readonly host: Host;

  constructor(options: ProcessOptions, hostLayer: Host = sharedHost()) {
    this.host = hostLayer;
    const host = hostLayer.sym;
    this.exePath = options.exePath;
    this.pid = options.pid ?? host.host_getpid();
    this.ppid = options.ppid ?? host.host_getppid();
    this.uid = host.host_getuid();
    this.euid = host.host_geteuid();
    this.gid = host.host_getgid();
    this.egid = host.host_getegid();
    const ids = hostLayer.scratchAddress + SCRATCH_GENERAL;
    const view = hostLayer.scratchView;
    this.suid = host.host_getresuid(ids) === 0 ? view.getUint32(SCRATCH_GENERAL + 8, true) : this.euid;
    this.sgid = host.host_getresgid(ids) === 0 ? view.getUint32(SCRATCH_GENERAL + 8, true) : this.egid;
    this.pgid = Math.max(host.host_getpgid(0), 0);
    this.sid = Math.max(host.host_getsid(0), 0);
    const umask = host.host_umask(0o022);
    host.host_umask(umask);
    this.umask = umask;
    this.rlimits = inheritedRlimits(hostLayer);
    this.fds = new FdTable(Number(this.rlimits[RLIMIT_NOFILE]![0]));
    this.currentThread = new ThreadState(this.pid);
    const execName = options.execName ?? options.exePath;
    this.currentThread.setComm(execName.slice(execName.lastIndexOf("/") + 1));
    this.threads.set(this.pid, this.currentThread);

    const cwd = options.cwd ?? process.cwd();
    const cwdFd = this.openHostPath(cwd, O_PATH_DIRECTORY_HOST);
    if (cwdFd < 0) throw new Error(`@guest/syscalls: cannot open cwd ${cwd}: errno ${-cwdFd}`);
    this.cwdFd = cwdFd;
    this.cwdPath = hostLayer.fdPath(cwdFd) ?? cwd;

    if (options.inheritStdio !== false) {
      for (const fd of [0, 1, 2]) {
        const hostFd = host.host_dup_min(fd, 3);
        if (hostFd >= 0)
          this.fds.install(fd, { hostFd, cloexec: false, path: hostLayer.fdPath(hostFd) ?? "" });
      }
    }
  }

  /**
   * vfork's parent sleeps until the child execs or exits: the child holds the write end of a host pipe the
   * parent reads to EOF (-1: not a vfork child, or already released).
   */
  vforkReleaseFd = -1;

  /** In the child of fork, on the host side of the fork: its own pid, one thread, nothing pending. */
  afterFork(parentPid: number): void {
    const pid = this.host.sym.host_getpid();
    this.pid = pid;
    this.ppid = parentPid;
    this.keepOnlyCurrentThread();
    const thread = this.currentThread;
    thread.pending = 0n;
    thread.savedMask = null;
    this.sharedPending = 0n;
  }

  /**
   * The calling thread is the process's only one, with tid = pid (fork's child; execve's de_thread): the other
   * threads' saved registers are freed.
   */
  keepOnlyCurrentThread(): void {
    const thread = this.currentThread;
    for (const other of this.threads.values()) if (other !== thread) other.context?.free();
    this.threads.clear();
    thread.tid = this.pid;
    this.threads.set(this.pid, thread);
  }

  /** Called after the guest's SIGCHLD action may have changed (rt_sigaction, execve): the runtime mirrors it. */
  childSignalChanged: () => void = () => {};

  /** Drop every pending instance of a signal whose action now ignores it (the runtime's SignalDelivery). */
  discardPendingSignal: (signal: number) => void = () => {};

  /** The vfork child execs or exits: its parent may run again. */
  releaseVforkParent(): void {
    if (this.vforkReleaseFd < 0) return;
    this.host.sym.host_close(this.vforkReleaseFd);
    this.vforkReleaseFd = -1;
  }

  /** Records the argv/envp area of the program just loaded (start-up and every execve). */
  setArgsArea(area: ArgsArea): void {
    this.argsArea = { ...area };
  }

  get tid(): number {
    return this.currentThread.tid;
  }

  /** The host fd behind a dirfd argument: AT_FDCWD → the cwd, else the guest fd's host fd, else -EBADF. */
  hostDirFd(dirfd: number): number {
    if (dirfd === AT_FDCWD) return this.cwdFd;
    const entry = this.fds.get(dirfd);
    return entry === undefined ? -EBADF : entry.hostFd;
  }

  /** Adopt a host fd as a new guest fd (lowest free); closes it and returns -errno when the table is full. */
  adopt(hostFd: number, cloexec: boolean, path: string, min = 0): number {
    const fd = this.fds.allocate({ hostFd, cloexec, path }, min);
    if (fd < 0) this.host.sym.host_close(hostFd);
    return fd;
  }

  /** Close every fd and the cwd (process exit / tests). */
  closeAll(): void {
    for (const [fd, entry] of [...this.fds.open()]) {
      this.fds.remove(fd);
      this.host.sym.host_close(entry.hostFd);
    }
    this.host.sym.host_close(this.cwdFd);
  }

  /** Opens a host path relative to the host process cwd (only used before the guest runs). */
  private openHostPath(path: string, flags: number): number {
    const address = this.host.cString(path);
    return address < 0 ? address : this.host.sym.host_openat(AT_FDCWD, address, flags, 0);
  }
}

/** Host O_PATH|O_DIRECTORY (Linux: identical on x86_64 and arm64 hosts for O_PATH; O_DIRECTORY differs). */
const O_PATH_DIRECTORY_HOST = 0o10000000 | (process.arch === "x64" ? 0x10000 : 0x4000);
