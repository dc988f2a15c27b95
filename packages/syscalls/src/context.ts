/**
 * Contracts between the dispatcher, the handlers and the runtime that composes them. Handlers see
 * only this: decoded arguments, bounds-checked guest memory, and the process state.
 */

/** Arguments of one syscall, decoded lazily from the X0..X8 frame (u32 lo/hi words). */
export class SyscallArgs {
  constructor(public frame: Uint32Array) {}
  /** Syscall number (X8). */
  get number(): number {
    return this.frame[16]!;
  }
  /** Full 64-bit register value. */
  raw(i: number): bigint {
    return (BigInt(this.frame[2 * i + 1]!) << 32n) | BigInt(this.frame[2 * i]!);
  }
  /** C `int` argument: low 32 bits, signed (Linux truncates int arguments the same way). */
  int(i: number): number {
    return this.frame[2 * i]! | 0;
  }
  /** C `unsigned int` argument. */
  uint(i: number): number {
    return this.frame[2 * i]!;
  }
  /** Signed 64-bit value as a number (exact for |v| < 2^53, which covers every offset and size we use). */
  long(i: number): number {
    return (this.frame[2 * i + 1]! | 0) * 0x1_0000_0000 + this.frame[2 * i]!;
  }
  /** Unsigned 64-bit value as a number; values >= 2^53 come back as Infinity so range checks fail closed. */
  ulong(i: number): number {
    const hi = this.frame[2 * i + 1]!;
    return hi >= 0x20_0000 ? Number.POSITIVE_INFINITY : hi * 0x1_0000_0000 + this.frame[2 * i]!;
  }
  /** A guest pointer (same as ulong: anything unrepresentable is out of range, hence -EFAULT). */
  ptr(i: number): number {
    return this.ulong(i);
  }
}

/** What a handler returns: a Linux return value (negative errno on failure) or a control request. */
export type SyscallResult = number | bigint | SyscallControl;

/** Requests that go beyond "put this value in X0". */
export type SyscallControl =
  /** exit / exit_group: stop the guest with this status. */
  | { control: "exit"; status: number; group: boolean }
  /** The handler already rewrote the registers (rt_sigreturn, execve): leave X0 alone. */
  | { control: "registers-set" }
  /** rt_sigreturn found no valid frame at SP: Linux kills the process with SIGSEGV. */
  | { control: "bad-signal-frame" }
  /** The process must die of `signal` (execve failing past its point of no return). */
  | { control: "fatal-signal"; signal: number; detail: string }
  /**
   * The syscall was interrupted and restarts after the pending signal's handler (SA_RESTART): PC goes back to
   * the svc and X0 keeps its original value.
   */
  | { control: "restart-syscall" }
  /**
   * The current thread stopped running (blocked on a futex, yielded, or exited) and another guest thread of
   * this process must run: its state is already recorded in its ThreadState.
   */
  | { control: "switch-thread" }
  /** Deliver pending signals before resuming (kill/raise to self). X0 gets `value`. */
  | { control: "signal-pending"; value: number | bigint };

/** Everything a handler may touch besides its arguments. */
export interface SyscallContext {
  readonly memory: import("./memory.ts").GuestMemory;
  readonly process: import("./process.ts").ProcessState;
  readonly host: import("./host/host.ts").Host;
  readonly flags: import("./host/flags.ts").FlagTranslator;
  /** uname's nodename (the host's hostname, read once). */
  readonly nodename: string;
}

/** One syscall implementation: decoded args in, Linux result (or a control request) out. */
export type SyscallHandler = (args: SyscallArgs, ctx: SyscallContext) => SyscallResult;
