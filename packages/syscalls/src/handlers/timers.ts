/**
 * POSIX per-process timers: timer_create, timer_settime, timer_gettime, timer_getoverrun, timer_delete.
 *
 * Each guest timer is a host POSIX timer on the same clock id (see host.c): the host keeps the time (gettime,
 * TIMER_ABSTIME, interval reload), and a signalling timer's expiries reach the host-signal bridge as
 * TIMER_SIGNAL aimed at the thread running the guest, so a guest blocked in a host call (read, ppoll,
 * nanosleep, rt_sigsuspend) is interrupted as on Linux. The bridge counts expiries per timer slot; at the next
 * pull (syscall return, EINTR, run-loop exit) `deliverTimerExpiries` raises the guest's own signal with a
 * SI_TIMER siginfo (si_timerid, si_overrun, si_value). As on Linux, a periodic timer waits while its signal is
 * pending (its host timer is disarmed, so it does not keep interrupting blocking calls) and is re-armed when
 * the signal is delivered, the periods missed meanwhile becoming si_overrun, which timer_getoverrun reports.
 *
 * CPU-time clocks: CLOCK_PROCESS_CPUTIME_ID measures the whole runtime process (the guest's CPU time is the
 * runtime's, emulation included); CLOCK_THREAD_CPUTIME_ID the host thread that runs the guest (every guest
 * thread of the emulator shares it).
 *
 * Without the CLI's bridge (a runtime built by a test), timer_create installs the bridge's handler for
 * TIMER_SIGNAL alone, so timers work the same way. Timers are not inherited across fork (the table notices
 * the new pid and starts empty, ids from 0 again) and are deleted at execve (`deleteAllTimers`), while the id
 * counter carries on, as Linux's lives in the signal_struct that exec keeps.
 */
import { EAGAIN, EFAULT, EINVAL } from "../abi/errno.ts";
import { NSIG, SIGALRM } from "../abi/signal.ts";
import {
  DELAYTIMER_MAX,
  HOST_TIMER_SLOTS,
  ITIMERSPEC,
  SI_TIMER,
  SIGEV_NONE,
  SIGEV_SIGNAL,
  SIGEV_THREAD,
  SIGEV_THREAD_ID,
  SIGEVENT,
  SIGINFO_TIMER,
  TIMER_ABSTIME,
} from "../abi/timer.ts";
import type { SyscallHandler } from "../context.ts";
import { type Host, SCRATCH_GENERAL } from "../host/host.ts";
import type { GuestMemory } from "../memory.ts";
import type { ProcessState, ThreadState } from "../process.ts";
import { defaultAction, SIG_DFL, SIG_IGN, SIGINFO_SIZE } from "../signals/abi.ts";
import type { SignalDelivery, SignalInfo } from "../signals/delivery.ts";

const NSEC_PER_SEC = 1_000_000_000;

export interface GuestTimer {
  readonly id: number;
  readonly clock: number;
  /** SIGEV_SIGNAL (SIGEV_THREAD is taken as it), SIGEV_NONE or SIGEV_THREAD_ID. */
  readonly notify: number;
  readonly signal: number;
  /** sigev_value (a sigval_t: 8 bytes). */
  readonly value: bigint;
  /** SIGEV_THREAD_ID's target thread. */
  readonly targetTid: number;
  readonly hostId: number;
  readonly slot: number;
  /** The siginfo of this timer's signal while it may still be pending (its si_overrun still grows). */
  queued: Uint8Array | null;
  /** si_overrun of the last signal delivered (timer_getoverrun). */
  lastOverrun: number;
  /**
   * A periodic timer whose signal is pending is not re-armed until that signal is delivered (Linux's
   * posixtimer_rearm at dequeue): its host timer is disarmed meanwhile, so it does not keep interrupting
   * blocking calls, and the periods missed become si_overrun at delivery. `next` is the expiry the host
   * timer had next (ns on the timer's clock), `interval` its period (ns).
   */
  paused: { next: bigint; interval: bigint } | null;
}

/** One process's timers. */
class TimerTable {
  nextId = 0;
  readonly timers = new Map<number, GuestTimer>();
  constructor(public pid: number) {}
}

const tables = new WeakMap<ProcessState, TimerTable>();
/** Timers paused while their signal is pending (checked at every pull: a signal may go without a frame). */
const pausedTimers = new Set<GuestTimer>();
/** Host slots in use in this host process, and by which timer. */
const slotOwners = new Map<number, { table: TimerTable; timer: GuestTimer }>();
let hostEnabled = false;

/**
 * The process's table. In a forked child (same ProcessState object, new pid) the parent's timers are gone:
 * the host's were not inherited, so the table and the host slots start empty, ids from 0.
 */
function tableOf(process: ProcessState, host: Host): TimerTable {
  let table = tables.get(process);
  if (table === undefined) {
    table = new TimerTable(process.pid);
    tables.set(process, table);
  } else if (table.pid !== process.pid) {
    host.sym.host_timers_reset();
    slotOwners.clear();
    pausedTimers.clear();
    table = new TimerTable(process.pid);
    tables.set(process, table);
  }
  return table;
}

function freeSlot(): number {
  for (let slot = 0; slot < HOST_TIMER_SLOTS; slot++) if (!slotOwners.has(slot)) return slot;
  return -1;
}

/** Reads a guest timespec at `address` (already checked readable): valid (timespec64_valid) or not. */
function validTimespec(memory: GuestMemory, address: number): boolean {
  const sec = memory.readI64(address);
  const nsec = memory.readI64(address + 8);
  return sec >= 0 && nsec >= 0 && nsec < NSEC_PER_SEC;
}

const bit = (signal: number): bigint => 1n << BigInt(signal - 1);

/** Is this timer's queued signal still pending (not yet delivered or dequeued)? */
function stillPending(process: ProcessState, timer: GuestTimer): boolean {
  const mask = bit(timer.signal);
  if (timer.notify === SIGEV_THREAD_ID)
    return ((process.threads.get(timer.targetTid)?.pending ?? 0n) & mask) !== 0n;
  if (process.sharedPending & mask) return true;
  for (const thread of process.threads.values()) if (thread.pending & mask) return true;
  return false;
}

/** Scratch layout for the itimerspecs built here (the general slot; nothing else is in flight meanwhile). */
const SPEC_NEW = SCRATCH_GENERAL;
const SPEC_OLD = SCRATCH_GENERAL + ITIMERSPEC.size;
const NS = BigInt(NSEC_PER_SEC);

function readSpecNs(host: Host, at: number, field: number): bigint {
  const view = host.scratchView;
  return view.getBigInt64(at + field, true) * NS + view.getBigInt64(at + field + 8, true);
}
function writeSpecNs(view: DataView, at: number, interval: bigint, value: bigint): void {
  view.setBigInt64(at + ITIMERSPEC.interval, interval / NS, true);
  view.setBigInt64(at + ITIMERSPEC.interval + 8, interval % NS, true);
  view.setBigInt64(at + ITIMERSPEC.value, value / NS, true);
  view.setBigInt64(at + ITIMERSPEC.value + 8, value % NS, true);
}

/** The timer's clock now, in ns (0 if the host cannot read it, which a live timer's clock never is). */
function clockNow(host: Host, clock: number): bigint {
  if (host.sym.host_clock_gettime(clock, host.scratchAddress + SPEC_OLD) < 0) return 0n;
  return readSpecNs(host, SPEC_OLD, 0);
}

/** A paused schedule moved past `now`: the periods missed and the next expiry (hrtimer_forward). */
function forward(paused: { next: bigint; interval: bigint }, now: bigint): { missed: bigint; next: bigint } {
  if (now < paused.next) return { missed: 0n, next: paused.next };
  const missed = (now - paused.next) / paused.interval + 1n;
  return { missed, next: paused.next + missed * paused.interval };
}

/** Its signal is now pending: a periodic timer stops until it is delivered (see GuestTimer.paused). */
function pause(host: Host, timer: GuestTimer): void {
  host.scratch.fill(0, SPEC_NEW, SPEC_NEW + ITIMERSPEC.size);
  const at = host.scratchAddress;
  if (host.sym.host_timer_settime(timer.hostId, timer.slot, 0, at + SPEC_NEW, at + SPEC_OLD) < 0) return;
  const interval = readSpecNs(host, SPEC_OLD, ITIMERSPEC.interval);
  const remaining = readSpecNs(host, SPEC_OLD, ITIMERSPEC.value);
  if (interval === 0n) return; // a one-shot timer: nothing more was to come
  timer.paused = { next: clockNow(host, timer.clock) + remaining, interval };
  pausedTimers.add(timer);
}

/** Re-arm a paused timer at its next period boundary; returns the periods it missed meanwhile. */
function resume(host: Host, timer: GuestTimer): number {
  const paused = timer.paused;
  if (paused === null) return 0;
  timer.paused = null;
  pausedTimers.delete(timer);
  const { missed, next } = forward(paused, clockNow(host, timer.clock));
  writeSpecNs(host.scratchView, SPEC_NEW, paused.interval, next);
  host.sym.host_timer_settime(timer.hostId, timer.slot, TIMER_ABSTIME, host.scratchAddress + SPEC_NEW, 0);
  return missed > BigInt(DELAYTIMER_MAX) ? DELAYTIMER_MAX : Number(missed);
}

/**
 * The queued signal is being delivered (or is gone): the periods missed while it was pending join its
 * si_overrun, which becomes timer_getoverrun's, and a periodic timer runs again.
 */
function finalize(host: Host, timer: GuestTimer): void {
  const raw = timer.queued;
  if (raw === null) return;
  timer.queued = null;
  const view = new DataView(raw.buffer);
  const overrun = Math.min(view.getInt32(SIGINFO_TIMER.overrun, true) + resume(host, timer), DELAYTIMER_MAX);
  view.setInt32(SIGINFO_TIMER.overrun, overrun, true);
  timer.lastOverrun = overrun;
}

/** Its queued signal left the pending sets without being read (dequeued with no siginfo, dropped): finalize. */
function reconcile(process: ProcessState, host: Host, timer: GuestTimer): void {
  if (timer.queued !== null && !stillPending(process, timer)) finalize(host, timer);
}

/**
 * Re-armed, disarmed or deleted: Linux drops the timer's pending signal (its sequence no longer matches). The
 * host's untaken expiries are dropped by host_timer_settime / host_timer_forget.
 */
function dropGuestSignal(process: ProcessState, timer: GuestTimer): void {
  if (timer.queued !== null && stillPending(process, timer)) {
    const mask = ~bit(timer.signal);
    if (timer.notify === SIGEV_THREAD_ID) {
      const thread = process.threads.get(timer.targetTid);
      if (thread) thread.pending &= mask;
    } else {
      process.sharedPending &= mask;
    }
  }
  timer.queued = null;
  timer.paused = null;
  pausedTimers.delete(timer);
}

/** What timer_gettime reports for a paused timer: the time to its next period boundary, and the period. */
function pausedSetting(host: Host, timer: GuestTimer, out: DataView, at: number): void {
  const paused = timer.paused!;
  const now = clockNow(host, timer.clock);
  writeSpecNs(out, at, paused.interval, forward(paused, now).next - now);
}

function release(table: TimerTable, host: Host, process: ProcessState, timer: GuestTimer): void {
  host.sym.host_timer_delete(timer.hostId);
  host.sym.host_timer_forget(timer.slot);
  dropGuestSignal(process, timer);
  slotOwners.delete(timer.slot);
  table.timers.delete(timer.id);
}

/** The timer named by a syscall's int argument, or null (EINVAL). */
function lookup(process: ProcessState, host: Host, id: number): GuestTimer | null {
  return tableOf(process, host).timers.get(id) ?? null;
}

export const timerCreate: SyscallHandler = (args, ctx) => {
  const { memory, process, host } = ctx;
  const clock = args.int(0);
  const eventAddress = args.ptr(1);
  const idAddress = args.ptr(2);
  let notify = SIGEV_SIGNAL;
  let signal = SIGALRM;
  let value: bigint | null = null; // null: the timer's own id (NULL sigevent)
  let targetTid = 0;
  if (eventAddress !== 0) {
    if (!memory.check(eventAddress, SIGEVENT.size, false)) return -EFAULT;
    value = memory.readU64Big(eventAddress + SIGEVENT.value) as bigint;
    signal = memory.readI32(eventAddress + SIGEVENT.signo);
    notify = memory.readI32(eventAddress + SIGEVENT.notify);
    targetTid = memory.readI32(eventAddress + SIGEVENT.tid);
  }
  // good_sigevent(): checked after the clock (and after an id is taken), as Linux does.
  let eventValid: boolean;
  switch (notify) {
    case SIGEV_THREAD_ID: {
      const thread: ThreadState | undefined = process.threads.get(targetTid);
      eventValid = thread !== undefined && signal >= 1 && signal <= NSIG;
      break;
    }
    case SIGEV_SIGNAL:
    case SIGEV_THREAD:
      notify = SIGEV_SIGNAL;
      eventValid = signal >= 1 && signal <= NSIG;
      break;
    case SIGEV_NONE:
      eventValid = true;
      break;
    default:
      eventValid = false;
  }
  const table = tableOf(process, host);
  if (!hostEnabled) {
    const enabled = host.sym.host_timers_enable();
    if (enabled < 0) return enabled;
    hostEnabled = true;
  }
  const slot = freeSlot();
  if (slot < 0) return -EAGAIN;
  // The host answers for the clock: EINVAL for an unknown one, EOPNOTSUPP for one without timers.
  const hostSignal = eventValid && notify !== SIGEV_NONE ? signal : 0;
  const hostId = host.sym.host_timer_create(clock, slot, hostSignal);
  if (hostId < 0) return hostId;
  const id = table.nextId;
  table.nextId = (table.nextId + 1) & 0x7fff_ffff;
  let error = eventValid ? 0 : -EINVAL;
  if (error === 0 && memory.writeU32(idAddress, id) < 0) error = -EFAULT;
  if (error < 0) {
    host.sym.host_timer_delete(hostId);
    host.sym.host_timer_forget(slot);
    return error;
  }
  const timer: GuestTimer = {
    id,
    clock,
    notify,
    signal: notify === SIGEV_NONE ? 0 : signal,
    value: value ?? BigInt(id),
    targetTid,
    hostId,
    slot,
    queued: null,
    lastOverrun: 0,
    paused: null,
  };
  table.timers.set(id, timer);
  slotOwners.set(slot, { table, timer });
  return 0;
};

export const timerSettime: SyscallHandler = (args, ctx) => {
  const { memory, process, host } = ctx;
  const flags = args.int(1);
  const valueAddress = args.ptr(2);
  const oldAddress = args.ptr(3);
  if (valueAddress === 0) return -EINVAL;
  if (!memory.check(valueAddress, ITIMERSPEC.size, false)) return -EFAULT;
  if (
    !validTimespec(memory, valueAddress + ITIMERSPEC.interval) ||
    !validTimespec(memory, valueAddress + ITIMERSPEC.value)
  )
    return -EINVAL;
  const timer = lookup(process, host, args.int(0));
  if (timer === null) return -EINVAL;
  const oldWritable = oldAddress !== 0 && memory.check(oldAddress, ITIMERSPEC.size, true);
  const old =
    oldAddress === 0
      ? 0
      : oldWritable
        ? memory.hostAddress + oldAddress
        : host.scratchAddress + SCRATCH_GENERAL;
  // A paused timer's host timer is disarmed: its old setting is the paused schedule's.
  let pausedOld: Uint8Array | null = null;
  if (timer.paused !== null && oldAddress !== 0) {
    pausedOld = new Uint8Array(ITIMERSPEC.size);
    pausedSetting(host, timer, new DataView(pausedOld.buffer), 0);
  }
  // A new arming: the old one's queued signal and untaken expiries are dropped, the overrun reset.
  dropGuestSignal(process, timer);
  timer.lastOverrun = 0;
  const result = host.sym.host_timer_settime(
    timer.hostId,
    timer.slot,
    flags & TIMER_ABSTIME,
    memory.hostAddress + valueAddress,
    old,
  );
  if (result < 0) return result;
  if (oldAddress !== 0 && !oldWritable) return -EFAULT;
  if (pausedOld !== null) memory.bytes.set(pausedOld, oldAddress);
  return 0;
};

export const timerGettime: SyscallHandler = (args, ctx) => {
  const { memory, process, host } = ctx;
  const timer = lookup(process, host, args.int(0));
  if (timer === null) return -EINVAL;
  const address = args.ptr(1);
  const out = memory.hostPointer(address, ITIMERSPEC.size, true);
  if (timer.paused !== null) {
    if (out < 0) return -EFAULT;
    const view = new DataView(memory.bytes.buffer, memory.bytes.byteOffset + address, ITIMERSPEC.size);
    pausedSetting(host, timer, view, 0);
    return 0;
  }
  const result = host.sym.host_timer_gettime(
    timer.hostId,
    out >= 0 ? out : host.scratchAddress + SCRATCH_GENERAL,
  );
  if (result < 0) return result;
  return out >= 0 ? 0 : -EFAULT;
};

export const timerGetoverrun: SyscallHandler = (args, ctx) => {
  const timer = lookup(ctx.process, ctx.host, args.int(0));
  if (timer === null) return -EINVAL;
  reconcile(ctx.process, ctx.host, timer);
  return timer.lastOverrun;
};

export const timerDelete: SyscallHandler = (args, ctx) => {
  const table = tableOf(ctx.process, ctx.host);
  const timer = table.timers.get(args.int(0));
  if (timer === undefined) return -EINVAL;
  release(table, ctx.host, ctx.process, timer);
  return 0;
};

/** execve (exit_itimers): every timer of the process is deleted; the id counter carries on. */
export function deleteAllTimers(process: ProcessState, host: Host): void {
  const table = tables.get(process);
  if (table === undefined || table.pid !== process.pid) return;
  for (const timer of [...table.timers.values()]) release(table, host, process, timer);
}

/** The process's timers (for tests and /proc). */
export function timersOf(process: ProcessState, host: Host): readonly GuestTimer[] {
  return [...tableOf(process, host).timers.values()];
}

/** Expiry records taken from the bridge at once (pairs of u32 in the general scratch slot). */
const TAKE_MAX = 256;

/**
 * Turn the expiries the bridge counted into guest signals: a SI_TIMER siginfo raised for the process
 * (SIGEV_SIGNAL) or its target thread (SIGEV_THREAD_ID). A signal the process ignores (and does not block) is
 * dropped, as Linux drops it, and so is one whose number is already pending (standard signals do not queue).
 * First, paused timers whose signal left without a frame (dequeued with no siginfo, dropped) run again.
 * `recorded`: the bridge's flag was up (only then can there be expiries to take). Returns how many expired.
 */
export function deliverTimerExpiries(
  signals: SignalDelivery,
  process: ProcessState,
  host: Host,
  recorded: boolean,
): number {
  if (!hostEnabled) return 0;
  const table = tableOf(process, host);
  for (const timer of pausedTimers) if (table.timers.get(timer.id) === timer) reconcile(process, host, timer);
  if (!recorded) return 0;
  let total = 0;
  for (;;) {
    const n = host.sym.host_timers_take(host.scratchAddress + SCRATCH_GENERAL, TAKE_MAX);
    if (n <= 0) return total;
    const view = host.scratchView;
    const records: Array<[number, number]> = [];
    for (let i = 0; i < n; i++) {
      records.push([
        view.getUint32(SCRATCH_GENERAL + 8 * i, true),
        view.getUint32(SCRATCH_GENERAL + 8 * i + 4, true),
      ]);
    }
    for (const [slot, count] of records) {
      const owner = slotOwners.get(slot);
      if (owner === undefined || owner.table !== table || count === 0) continue;
      expire(signals, process, host, owner.timer, count);
      total++;
    }
    if (n < TAKE_MAX) return total;
  }
}

function expire(
  signals: SignalDelivery,
  process: ProcessState,
  host: Host,
  timer: GuestTimer,
  count: number,
): void {
  if (timer.notify === SIGEV_NONE) return;
  reconcile(process, host, timer);
  if (timer.queued !== null) {
    // Still pending (a host signal that was already on its way when the timer paused): an overrun.
    const view = new DataView(timer.queued.buffer);
    const overrun = view.getInt32(SIGINFO_TIMER.overrun, true) + count;
    view.setInt32(SIGINFO_TIMER.overrun, Math.min(overrun, DELAYTIMER_MAX), true);
    return;
  }
  let target: ThreadState | null = null;
  if (timer.notify === SIGEV_THREAD_ID) {
    target = process.threads.get(timer.targetTid) ?? null;
    if (target === null) return; // the thread is gone: nobody to signal
  }
  const mask = bit(timer.signal);
  const blocker = target ?? process.currentThread;
  const handler = process.signalActions.handler(timer.signal);
  const action = defaultAction(timer.signal);
  const ignored =
    handler === SIG_IGN || (handler === SIG_DFL && (action === "ignore" || action === "continue"));
  if (ignored && !(blocker.blocked & mask)) return;
  if (((target?.pending ?? 0n) | process.sharedPending) & mask) return; // standard signals do not queue
  const raw = new Uint8Array(SIGINFO_SIZE);
  const view = new DataView(raw.buffer);
  view.setInt32(0, timer.signal, true);
  view.setInt32(8, SI_TIMER, true);
  view.setInt32(SIGINFO_TIMER.timerid, timer.id, true);
  view.setInt32(SIGINFO_TIMER.overrun, Math.min(count - 1, DELAYTIMER_MAX), true);
  view.setBigUint64(SIGINFO_TIMER.value, timer.value, true);
  timer.queued = raw;
  pause(host, timer);
  // Reading `raw` is delivering it (the frame or rt_sigtimedwait's siginfo): that is when Linux re-arms the
  // timer and counts the periods missed.
  const info: SignalInfo = {
    signal: timer.signal,
    code: SI_TIMER,
    get raw(): Uint8Array {
      if (timer.queued === raw) finalize(host, timer);
      return raw;
    },
  };
  if (target !== null) signals.raiseOn(target, info);
  else signals.raiseProcess(info);
}
