import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW } from "../abi/clock.ts";
import { EFAULT, EINVAL, EOPNOTSUPP } from "../abi/errno.ts";
import { SIGALRM, SIGUSR1, SIGUSR2 } from "../abi/signal.ts";
import {
  ITIMERSPEC,
  SI_TIMER,
  SIGEV_NONE,
  SIGEV_SIGNAL,
  SIGEV_THREAD_ID,
  SIGEVENT,
  SIGINFO_TIMER,
  TIMER_ABSTIME,
} from "../abi/timer.ts";
import { sharedHost } from "../host/host.ts";
import { sharedHostSignals } from "../proc/host-signals.ts";
import { SignalDelivery } from "../signals/delivery.ts";
import { createFakeGuest, type FakeGuest } from "../test-support.ts";
import { deleteAllTimers, timersOf } from "./timers.ts";

let guest: FakeGuest;
let signals: SignalDelivery;
const bridge = sharedHostSignals(sharedHost());
const bit = (signal: number) => 1n << BigInt(signal - 1);

beforeEach(() => {
  guest = createFakeGuest();
  const registers = {
    getRegister: () => 0n,
    setRegister: () => {},
    getVector: () => new Uint8Array(16),
    setVector: () => {},
  };
  signals = new SignalDelivery(guest.memory, guest.process, registers);
});
afterEach(() => {
  deleteAllTimers(guest.process, sharedHost());
  guest.close();
});

function sigevent(notify: number, signal: number, value: bigint, tid = 0): number {
  const at = guest.alloc(SIGEVENT.size);
  guest.memory.writeU64(at + SIGEVENT.value, value);
  guest.memory.writeU32(at + SIGEVENT.signo, signal);
  guest.memory.writeU32(at + SIGEVENT.notify, notify);
  guest.memory.writeU32(at + SIGEVENT.tid, tid);
  return at;
}

function create(clock: number, event: number): number {
  const idAt = guest.alloc(4);
  const result = guest.call("timer_create", clock, event, idAt);
  return result === 0 ? guest.memory.readI32(idAt) : (result as number);
}

function itimerspec(valueSec: number, valueNsec: number, intervalSec = 0, intervalNsec = 0): number {
  const at = guest.alloc(ITIMERSPEC.size);
  guest.memory.writeU64(at + ITIMERSPEC.interval, BigInt(intervalSec));
  guest.memory.writeU64(at + ITIMERSPEC.interval + 8, BigInt(intervalNsec));
  guest.memory.writeU64(at + ITIMERSPEC.value, BigInt(valueSec));
  guest.memory.writeU64(at + ITIMERSPEC.value + 8, BigInt(valueNsec));
  return at;
}

/** An absolute time long past: the timer expires as it is armed (the host signal arrives before the call returns). */
const fireNow = (): number => itimerspec(1, 0);

/** Pull until something is taken (the expiry is already recorded: one pull normally does it). */
function pull(): number {
  for (let i = 0; i < 1000; i++) {
    const taken = bridge.pullInto(signals, guest.process);
    if (taken > 0) return taken;
  }
  return 0;
}

describe("timer_create", () => {
  test("ids count from 0; a NULL sigevent is SIGALRM with the id as value", () => {
    expect(create(CLOCK_MONOTONIC, 0)).toBe(0);
    expect(create(CLOCK_MONOTONIC, 0)).toBe(1);
    const [first, second] = timersOf(guest.process, sharedHost());
    expect(first!.signal).toBe(SIGALRM);
    expect(first!.notify).toBe(SIGEV_SIGNAL);
    expect(second!.value).toBe(1n);
    expect(guest.call("timer_delete", 0)).toBe(0);
    expect(create(CLOCK_MONOTONIC, 0)).toBe(2); // ids are not reused
  });

  test("clocks: the host's answer (EINVAL unknown, EOPNOTSUPP without timers)", () => {
    expect(create(12345, 0)).toBe(-EINVAL);
    expect(create(CLOCK_MONOTONIC_RAW, 0)).toBe(-EOPNOTSUPP);
    expect(create(CLOCK_MONOTONIC, 0)).toBe(0); // a bad clock takes no id
  });

  test("bad sigevents and pointers", () => {
    expect(create(CLOCK_MONOTONIC, sigevent(3, SIGUSR1, 0n))).toBe(-EINVAL);
    expect(create(CLOCK_MONOTONIC, sigevent(SIGEV_SIGNAL, 0, 0n))).toBe(-EINVAL);
    expect(create(CLOCK_MONOTONIC, sigevent(SIGEV_SIGNAL, 65, 0n))).toBe(-EINVAL);
    expect(create(CLOCK_MONOTONIC, sigevent(SIGEV_THREAD_ID, SIGUSR1, 0n, 999_999))).toBe(-EINVAL);
    expect(guest.call("timer_create", CLOCK_MONOTONIC, 8, guest.alloc(4))).toBe(-EFAULT);
    expect(guest.call("timer_create", CLOCK_MONOTONIC, 0, 8)).toBe(-EFAULT);
    expect(timersOf(guest.process, sharedHost())).toHaveLength(0);
  });
});

describe("timer_settime / timer_gettime", () => {
  test("bad timespecs, unknown ids, remaining time, disarm", () => {
    // Signalling: Linux's gettime of a disarmed SIGEV_NONE timer still counts down to its old expiry.
    const id = create(CLOCK_MONOTONIC, sigevent(SIGEV_SIGNAL, SIGUSR1, 0n));
    expect(guest.call("timer_settime", id, 0, itimerspec(0, 1_000_000_000), 0)).toBe(-EINVAL);
    expect(guest.call("timer_settime", id, 0, itimerspec(-1, 0), 0)).toBe(-EINVAL);
    expect(guest.call("timer_settime", id, 0, itimerspec(1, 0, 0, -1), 0)).toBe(-EINVAL);
    expect(guest.call("timer_settime", id, 0, 0, 0)).toBe(-EINVAL);
    expect(guest.call("timer_settime", id, 0, 8, 0)).toBe(-EFAULT);
    expect(guest.call("timer_settime", 77, 0, itimerspec(1, 0), 0)).toBe(-EINVAL);
    expect(guest.call("timer_settime", id, 0, itimerspec(100, 0, 3, 0), 0)).toBe(0);
    const now = guest.alloc(ITIMERSPEC.size);
    expect(guest.call("timer_gettime", id, now)).toBe(0);
    const remaining = guest.memory.readI64(now + ITIMERSPEC.value);
    expect(remaining).toBeGreaterThanOrEqual(90);
    expect(remaining).toBeLessThanOrEqual(100);
    expect(guest.memory.readI64(now + ITIMERSPEC.interval)).toBe(3);
    expect(guest.call("timer_gettime", id, 8)).toBe(-EFAULT);
    expect(guest.call("timer_gettime", 77, now)).toBe(-EINVAL);
    const old = guest.alloc(ITIMERSPEC.size);
    expect(guest.call("timer_settime", id, 0, itimerspec(0, 0), old)).toBe(0);
    expect(guest.memory.readI64(old + ITIMERSPEC.interval)).toBe(3);
    expect(guest.call("timer_gettime", id, now)).toBe(0);
    expect(guest.memory.readU64Big(now + ITIMERSPEC.value)).toBe(0n);
    expect(guest.memory.readU64Big(now + ITIMERSPEC.value + 8)).toBe(0n);
  });

  test("a bad old pointer is EFAULT, but the timer is armed", () => {
    const id = create(CLOCK_MONOTONIC, sigevent(SIGEV_NONE, 0, 0n));
    expect(guest.call("timer_settime", id, 0, itimerspec(100, 0), 8)).toBe(-EFAULT);
    const now = guest.alloc(ITIMERSPEC.size);
    guest.call("timer_gettime", id, now);
    expect(guest.memory.readI64(now + ITIMERSPEC.value)).toBeGreaterThan(50);
  });
});

describe("expiry", () => {
  test("SIGEV_SIGNAL: a SI_TIMER siginfo for the process", () => {
    const id = create(CLOCK_MONOTONIC, sigevent(SIGEV_SIGNAL, SIGUSR1, 0x1234_5678_9abcn));
    expect(guest.call("timer_settime", id, TIMER_ABSTIME, fireNow(), 0)).toBe(0);
    expect(pull()).toBe(1);
    expect(guest.process.sharedPending & bit(SIGUSR1)).toBe(bit(SIGUSR1));
    const info = signals.dequeue(bit(SIGUSR1));
    expect(info?.code).toBe(SI_TIMER);
    const raw = new DataView(info!.raw!.buffer);
    expect(raw.getInt32(0, true)).toBe(SIGUSR1);
    expect(raw.getInt32(8, true)).toBe(SI_TIMER);
    expect(raw.getInt32(SIGINFO_TIMER.timerid, true)).toBe(id);
    expect(raw.getInt32(SIGINFO_TIMER.overrun, true)).toBe(0);
    expect(raw.getBigUint64(SIGINFO_TIMER.value, true)).toBe(0x1234_5678_9abcn);
  });

  test("SIGEV_THREAD_ID: pending for that thread", () => {
    const tid = guest.process.currentThread.tid;
    const id = create(CLOCK_MONOTONIC, sigevent(SIGEV_THREAD_ID, SIGUSR2, 7n, tid));
    expect(id).toBe(0);
    guest.call("timer_settime", id, TIMER_ABSTIME, fireNow(), 0);
    expect(pull()).toBe(1);
    expect(guest.process.currentThread.pending & bit(SIGUSR2)).toBe(bit(SIGUSR2));
    expect(guest.process.sharedPending & bit(SIGUSR2)).toBe(0n);
  });

  test("a periodic timer waits while its signal is pending; the periods missed become si_overrun", () => {
    const id = create(CLOCK_MONOTONIC, sigevent(SIGEV_SIGNAL, SIGUSR1, 0n));
    guest.call("timer_settime", id, 0, itimerspec(0, 1_000_000, 0, 1_000_000), 0); // every 1 ms
    const timer = timersOf(guest.process, sharedHost())[0]!;
    for (let i = 0; i < 1_000_000 && timer.queued === null; i++) bridge.pullInto(signals, guest.process);
    expect(timer.queued).not.toBeNull();
    expect(timer.paused).not.toBeNull(); // the host timer is disarmed meanwhile
    const now = guest.alloc(ITIMERSPEC.size);
    expect(guest.call("timer_gettime", id, now)).toBe(0);
    expect(guest.memory.readI64(now + ITIMERSPEC.interval + 8)).toBe(1_000_000);
    expect(guest.memory.readI64(now + ITIMERSPEC.value + 8)).toBeLessThanOrEqual(1_000_000);
    Bun.sleepSync(5); // at least 4 more periods go by
    expect(guest.call("timer_getoverrun", id)).toBe(0); // not delivered yet
    const info = signals.dequeue(bit(SIGUSR1));
    const delivered = new DataView(info!.raw!.buffer).getInt32(SIGINFO_TIMER.overrun, true);
    expect(delivered).toBeGreaterThanOrEqual(4);
    expect(timer.paused).toBeNull(); // delivered: running again
    expect(guest.call("timer_getoverrun", id)).toBe(delivered);
    // Re-arming resets the overrun.
    guest.call("timer_settime", id, 0, itimerspec(0, 0), 0);
    expect(guest.call("timer_getoverrun", id)).toBe(0);
  });

  test("a pending signal dequeued without its siginfo: the timer runs again at the next pull", () => {
    const id = create(CLOCK_MONOTONIC, sigevent(SIGEV_SIGNAL, SIGUSR1, 0n));
    guest.call("timer_settime", id, 0, itimerspec(0, 1_000_000, 0, 1_000_000), 0);
    const timer = timersOf(guest.process, sharedHost())[0]!;
    for (let i = 0; i < 1_000_000 && timer.queued === null; i++) bridge.pullInto(signals, guest.process);
    expect(timer.paused).not.toBeNull();
    guest.process.sharedPending &= ~bit(SIGUSR1); // taken without reading it (sigwaitinfo with NULL info)
    bridge.pullInto(signals, guest.process);
    expect(timer.paused).toBeNull();
    expect(timer.queued).toBeNull();
  });

  test("SIGEV_NONE never signals; a deleted timer's expiries are dropped", () => {
    const none = create(CLOCK_MONOTONIC, sigevent(SIGEV_NONE, SIGUSR1, 0n));
    guest.call("timer_settime", none, TIMER_ABSTIME, fireNow(), 0);
    const signalling = create(CLOCK_MONOTONIC, sigevent(SIGEV_SIGNAL, SIGUSR1, 0n));
    guest.call("timer_settime", signalling, TIMER_ABSTIME, fireNow(), 0);
    expect(guest.call("timer_delete", signalling)).toBe(0);
    bridge.pullInto(signals, guest.process);
    expect(guest.process.sharedPending).toBe(0n);
    expect(guest.call("timer_delete", signalling)).toBe(-EINVAL);
    expect(guest.call("timer_getoverrun", signalling)).toBe(-EINVAL);
  });
});

describe("fork and exec", () => {
  test("a forked child (new pid) has no timers and counts ids from 0", () => {
    expect(create(CLOCK_MONOTONIC, 0)).toBe(0);
    expect(create(CLOCK_MONOTONIC, 0)).toBe(1);
    guest.process.pid += 1; // what afterFork does
    expect(guest.call("timer_gettime", 0, guest.alloc(ITIMERSPEC.size))).toBe(-EINVAL);
    expect(create(CLOCK_MONOTONIC, 0)).toBe(0);
  });

  test("exec deletes every timer; ids carry on", () => {
    create(CLOCK_MONOTONIC, 0);
    create(CLOCK_MONOTONIC, 0);
    deleteAllTimers(guest.process, sharedHost());
    expect(timersOf(guest.process, sharedHost())).toHaveLength(0);
    expect(guest.call("timer_delete", 1)).toBe(-EINVAL);
    expect(create(CLOCK_MONOTONIC, 0)).toBe(2);
  });
});
