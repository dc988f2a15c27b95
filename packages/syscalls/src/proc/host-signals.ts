/**
 * Host signals → guest signals. A guest process is a host process, so what other processes send it (kill
 * from another guest, SIGCHLD from its children, a terminal's SIGINT/SIGTSTP) arrives as host signals. The
 * C bridge in host.c records them; the runtime moves the records into the guest's pending set at the next
 * syscall return or run-loop exit. A signal whose guest action is the default "terminate" or "stop" and that
 * the guest does not block acts in the bridge at once, so even a guest that never makes a syscall is killed
 * or stopped as on Linux. A handler waits for the guest's next syscall (or blocking call, which the signal
 * interrupts): Unicorn cannot be stopped safely from a signal handler (an instruction may run twice).
 *
 * Not caught (left to Bun): the synchronous faults (the runtime's own SIGSEGV/SIGBUS/SIGILL/SIGFPE/SIGTRAP/
 * SIGSYS are Bun's crash reports; the guest's are decoded from its own faults), SIGPIPE and SIGXFSZ (ignored
 * so host calls return EPIPE/EFBIG, which the runtime turns into the guest's signal), SIGPWR (JavaScriptCore
 * suspends threads with it), SIGKILL/SIGSTOP (cannot be), 32/33 (glibc's own).
 */
import { type Pointer, toArrayBuffer } from "bun:ffi";
import { SA_NOCLDSTOP, SA_NOCLDWAIT, SIGCHLD } from "../abi/signal.ts";
import { deliverTimerExpiries } from "../handlers/timers.ts";
import { type Host, SCRATCH_GENERAL } from "../host/host.ts";
import type { ProcessState } from "../process.ts";
import { CLD_CONTINUED, CLD_STOPPED, defaultAction, SIG_DFL, SIG_IGN } from "../signals/abi.ts";
import type { SignalDelivery } from "../signals/delivery.ts";

const NOT_CAUGHT = new Set([4, 5, 7, 8, 9, 11, 13, 19, 25, 30, 31, 32, 33]);
/** Signals the bridge catches (bit n-1 for signal n). */
export const CAUGHT_HOST_SIGNALS: bigint = (() => {
  let set = 0n;
  for (let signal = 1; signal <= 64; signal++) if (!NOT_CAUGHT.has(signal)) set |= 1n << BigInt(signal - 1);
  return set;
})();

/** One recorded host signal: the sender and, for SIGCHLD, the child's status. */
export interface HostSignal {
  signal: number;
  pid: number;
  uid: number;
  code: number;
  status: number;
}

export class HostSignalBridge {
  /** The C flag word: nonzero once something is recorded (read in place, no FFI call). */
  private readonly flag: Int32Array;
  private installed = false;

  /** The C immediate masks (see host_signals_immediate), written in place. */
  private readonly immediate: BigUint64Array;

  constructor(private readonly host: Host) {
    this.flag = new Int32Array(toArrayBuffer(host.sym.host_signals_flag() as Pointer, 0, 4));
    this.immediate = new BigUint64Array(toArrayBuffer(host.sym.host_signals_immediate() as Pointer, 0, 16));
  }

  /** Catch CAUGHT_HOST_SIGNALS from now on (idempotent); 0 or -errno. */
  install(): number {
    if (this.installed) return 0;
    this.host.scratchView.setBigUint64(SCRATCH_GENERAL, CAUGHT_HOST_SIGNALS, true);
    const result = this.host.sym.host_signals_install(this.host.scratchAddress + SCRATCH_GENERAL);
    if (result === 0) this.installed = true;
    return result;
  }

  /**
   * A word the bridge sets whenever it records a signal (the vCPU's interrupt word: a guest running code
   * without syscalls then stops at its next block boundary and gets its handler at once). 0: none.
   */
  setInterruptWord(address: number): void {
    this.host.sym.host_signals_kick_word(address);
  }

  /** Restore the dispositions install() replaced and forget the kick (the runtime is closing). */
  uninstall(): void {
    if (!this.installed) return;
    this.setInterruptWord(0); // its memory goes with the vCPU
    this.host.sym.host_signals_uninstall();
    this.installed = false;
    this.seenBlocked = -1n;
    this.seenVersion = -1;
    this.childIgnored = false;
    this.childNoWait = false;
  }

  get active(): boolean {
    return this.installed;
  }

  /**
   * Tell the bridge which signals act the moment they arrive: those the guest leaves to their default action
   * "terminate" (or "stop") and does not block. Called whenever the mask or the actions may have changed.
   */
  updateImmediate(process: ProcessState): void {
    if (!this.installed) return;
    const blocked = process.currentThread.blocked;
    const actions = process.signalActions;
    if (blocked === this.seenBlocked && actions.version === this.seenVersion) return;
    this.seenBlocked = blocked;
    this.seenVersion = actions.version;
    let fatal = 0n;
    let stop = 0n;
    for (let signal = 1; signal <= 64; signal++) {
      const bit = 1n << BigInt(signal - 1);
      if (!(CAUGHT_HOST_SIGNALS & bit) || blocked & bit || actions.handler(signal) !== SIG_DFL) continue;
      const action = defaultAction(signal);
      if (action === "terminate" || action === "core") fatal |= bit;
      else if (action === "stop") stop |= bit;
    }
    this.immediate[0] = fatal;
    this.immediate[1] = stop;
  }
  private seenBlocked = -1n;
  private seenVersion = -1;

  get recorded(): boolean {
    return this.flag[0] !== 0;
  }

  /** Move the records out (empty when nothing was recorded). */
  take(): HostSignal[] {
    if (this.flag[0] === 0) return [];
    const base = SCRATCH_GENERAL;
    const n = this.host.sym.host_signals_take(this.host.scratchAddress + base);
    if (n <= 0) return [];
    const view = this.host.scratchView;
    const mask = view.getBigUint64(base, true);
    const taken: HostSignal[] = [];
    for (let signal = 1; signal <= 64; signal++) {
      if (!(mask & (1n << BigInt(signal - 1)))) continue;
      const at = base + 8 + 16 * (signal - 1);
      taken.push({
        signal,
        pid: view.getInt32(at, true),
        uid: view.getInt32(at + 4, true),
        code: view.getInt32(at + 8, true),
        status: view.getInt32(at + 12, true),
      });
    }
    return taken;
  }

  /**
   * Raise what was recorded as guest signals. Like Linux's sig_ignored(), a signal the guest ignores (SIG_IGN,
   * or SIG_DFL whose default is to ignore) and does not block is dropped at once. Then the guest timers'
   * expiries. Returns how many records were taken (signals and expired timers).
   */
  pullInto(signals: SignalDelivery, process: ProcessState): number {
    const flagged = this.flag[0] !== 0;
    const taken = this.take();
    for (const record of taken) {
      if (record.signal === SIGCHLD) process.childEvents++;
      const handler = process.signalActions.handler(record.signal);
      const blocked = (process.currentThread.blocked >> BigInt(record.signal - 1)) & 1n;
      const ignored =
        handler === SIG_IGN ||
        (handler === SIG_DFL &&
          (defaultAction(record.signal) === "ignore" || defaultAction(record.signal) === "continue"));
      if (ignored && !blocked) continue;
      // SA_NOCLDSTOP: a child stopping or continuing is not worth a SIGCHLD.
      if (
        record.signal === SIGCHLD &&
        (record.code === CLD_STOPPED || record.code === CLD_CONTINUED) &&
        process.signalActions.flags(SIGCHLD) & BigInt(SA_NOCLDSTOP)
      ) {
        continue;
      }
      signals.raiseProcess({
        signal: record.signal,
        code: record.code,
        pid: record.pid,
        uid: record.uid,
        status: record.signal === SIGCHLD ? record.status : undefined,
      });
    }
    // Guest POSIX timers' expiries come through the same flag (see handlers/timers.ts).
    const expired = deliverTimerExpiries(signals, process, this.host, flagged);
    return taken.length + expired;
  }

  /** Mirror the guest's SIGCHLD disposition where the host kernel acts on it (auto-reaping). */
  mirrorChildDisposition(process: ProcessState): void {
    if (!this.installed) return;
    const handler = process.signalActions.handler(SIGCHLD);
    const flags = process.signalActions.flags(SIGCHLD);
    const ignore = handler === SIG_IGN;
    const noWait = (flags & BigInt(SA_NOCLDWAIT)) !== 0n;
    if (ignore === this.childIgnored && noWait === this.childNoWait) return;
    this.childIgnored = ignore;
    this.childNoWait = noWait;
    this.host.sym.host_signals_child_mode(ignore ? 1 : 0, noWait ? 1 : 0);
  }
  private childIgnored = false;
  private childNoWait = false;

  /** Sleep until a caught host signal is recorded (no lost wake-up: see host_signals_wait). */
  waitForAny(): void {
    this.host.sym.host_signals_wait();
  }

  /** waitForAny for at most `ms` milliseconds. */
  waitFor(ms: number): void {
    this.host.sym.host_signals_wait_timeout(this.host.timespec(SCRATCH_GENERAL, ms));
  }
}

let shared: HostSignalBridge | null = null;
/** The process-wide bridge (host signal dispositions are per process). */
export function sharedHostSignals(host: Host): HostSignalBridge {
  shared ??= new HostSignalBridge(host);
  return shared;
}
