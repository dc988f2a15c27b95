/** Signal ABI of Linux arm64 (asm-generic signal numbers, struct sigaction as arm64 lays it out). */

export const NSIG = 64;
export const SIGHUP = 1;
export const SIGINT = 2;
export const SIGQUIT = 3;
export const SIGILL = 4;
export const SIGTRAP = 5;
export const SIGABRT = 6;
export const SIGBUS = 7;
export const SIGFPE = 8;
export const SIGKILL = 9;
export const SIGUSR1 = 10;
export const SIGSEGV = 11;
export const SIGUSR2 = 12;
export const SIGPIPE = 13;
export const SIGALRM = 14;
export const SIGTERM = 15;
export const SIGSTKFLT = 16;
export const SIGCHLD = 17;
export const SIGCONT = 18;
export const SIGSTOP = 19;
export const SIGTSTP = 20;
export const SIGTTIN = 21;
export const SIGTTOU = 22;
export const SIGURG = 23;
export const SIGXCPU = 24;
export const SIGXFSZ = 25;
export const SIGVTALRM = 26;
export const SIGPROF = 27;
export const SIGWINCH = 28;
export const SIGIO = 29;
export const SIGPWR = 30;
export const SIGSYS = 31;
export const SIGRTMIN = 32;

export const SIGNAL_NAMES: readonly string[] = [
  "0",
  "SIGHUP",
  "SIGINT",
  "SIGQUIT",
  "SIGILL",
  "SIGTRAP",
  "SIGABRT",
  "SIGBUS",
  "SIGFPE",
  "SIGKILL",
  "SIGUSR1",
  "SIGSEGV",
  "SIGUSR2",
  "SIGPIPE",
  "SIGALRM",
  "SIGTERM",
  "SIGSTKFLT",
  "SIGCHLD",
  "SIGCONT",
  "SIGSTOP",
  "SIGTSTP",
  "SIGTTIN",
  "SIGTTOU",
  "SIGURG",
  "SIGXCPU",
  "SIGXFSZ",
  "SIGVTALRM",
  "SIGPROF",
  "SIGWINCH",
  "SIGIO",
  "SIGPWR",
  "SIGSYS",
];

/** rt_sigprocmask `how`. */
export const SIG_BLOCK = 0;
export const SIG_UNBLOCK = 1;
export const SIG_SETMASK = 2;
export const SIGPROCMASK_HOW_NAMES = ["SIG_BLOCK", "SIG_UNBLOCK", "SIG_SETMASK"] as const;

/** sa_handler special values. */
export const SIG_DFL = 0n;
export const SIG_IGN = 1n;

/** sa_flags. */
export const SA_NOCLDSTOP = 0x1;
export const SA_NOCLDWAIT = 0x2;
export const SA_SIGINFO = 0x4;
export const SA_UNSUPPORTED = 0x400;
export const SA_EXPOSE_TAGBITS = 0x800;
export const SA_RESTORER = 0x0400_0000;
export const SA_ONSTACK = 0x0800_0000;
export const SA_RESTART = 0x1000_0000;
export const SA_NODEFER = 0x4000_0000;
export const SA_RESETHAND = 0x8000_0000;

/** The kernel's sigset_t is 64 bits on every 64-bit arch; rt_sig* insist on this size. */
export const SIGSET_SIZE = 8;

/** struct sigaction as the arm64 kernel reads it (arch has SA_RESTORER, so sa_restorer precedes sa_mask). */
export const SIGACTION = {
  size: 32,
  handler: 0,
  flags: 8,
  restorer: 16,
  mask: 24,
} as const;

/** Bits of the sigset that can never be blocked (SIGKILL and SIGSTOP). */
export const UNBLOCKABLE_MASK = (1n << BigInt(SIGKILL - 1)) | (1n << BigInt(SIGSTOP - 1));
