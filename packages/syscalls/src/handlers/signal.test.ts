import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { EFAULT, EINVAL } from "../abi/errno.ts";
import {
  SA_RESTART,
  SA_RESTORER,
  SA_SIGINFO,
  SIG_BLOCK,
  SIG_SETMASK,
  SIG_UNBLOCK,
  SIGACTION,
  SIGUSR1,
  SIGUSR2,
} from "../abi/signal.ts";
import { createFakeGuest, type FakeGuest } from "../test-support.ts";

let guest: FakeGuest;
beforeEach(() => {
  guest = createFakeGuest();
});
afterEach(() => guest.close());

const bit = (signal: number) => 1n << BigInt(signal - 1);

describe("rt_sigprocmask", () => {
  test("SIG_BLOCK, SIG_UNBLOCK, SIG_SETMASK and the old mask", () => {
    const set = guest.alloc(8);
    const old = guest.alloc(8);
    guest.memory.writeU64(set, bit(2) | bit(10));
    expect(guest.call("rt_sigprocmask", SIG_BLOCK, set, old, 8)).toBe(0);
    expect(guest.memory.readU64Big(old)).toBe(0n);
    guest.memory.writeU64(set, bit(15));
    expect(guest.call("rt_sigprocmask", SIG_BLOCK, set, old, 8)).toBe(0);
    expect(guest.memory.readU64Big(old)).toBe(bit(2) | bit(10));
    guest.memory.writeU64(set, bit(2));
    expect(guest.call("rt_sigprocmask", SIG_UNBLOCK, set, old, 8)).toBe(0);
    expect(guest.process.currentThread.blocked).toBe(bit(10) | bit(15));
    guest.memory.writeU64(set, bit(64));
    expect(guest.call("rt_sigprocmask", SIG_SETMASK, set, 0, 8)).toBe(0);
    expect(guest.process.currentThread.blocked).toBe(bit(64));
    // Query only: set NULL, `how` is not even looked at.
    expect(guest.call("rt_sigprocmask", 99, 0, old, 8)).toBe(0);
    expect(guest.memory.readU64Big(old)).toBe(bit(64));
  });

  test("SIGKILL and SIGSTOP can never be blocked", () => {
    const set = guest.alloc(8);
    guest.memory.writeU64(set, 0xffff_ffff_ffff_ffffn);
    expect(guest.call("rt_sigprocmask", SIG_SETMASK, set, 0, 8)).toBe(0);
    expect(guest.process.currentThread.blocked).toBe(0xffff_ffff_ffff_ffffn & ~(bit(9) | bit(19)));
  });

  test("errors: sigsetsize, how, bad pointers", () => {
    const set = guest.alloc(8);
    expect(guest.call("rt_sigprocmask", SIG_BLOCK, set, 0, 16)).toBe(-EINVAL);
    expect(guest.call("rt_sigprocmask", 3, set, 0, 8)).toBe(-EINVAL);
    expect(guest.call("rt_sigprocmask", SIG_BLOCK, 8, 0, 8)).toBe(-EFAULT);
    expect(guest.call("rt_sigprocmask", SIG_BLOCK, set, 8, 8)).toBe(-EFAULT);
  });
});

describe("rt_sigaction", () => {
  test("stores the action and returns the previous one", () => {
    const act = guest.alloc(SIGACTION.size);
    const old = guest.alloc(SIGACTION.size);
    guest.memory.writeU64(act + SIGACTION.handler, 0x400123);
    guest.memory.writeU64(act + SIGACTION.flags, SA_SIGINFO | SA_RESTART | SA_RESTORER | 0x100);
    guest.memory.writeU64(act + SIGACTION.restorer, 0x400456);
    guest.memory.writeU64(act + SIGACTION.mask, bit(9) | bit(3));
    expect(guest.call("rt_sigaction", 10, act, old, 8)).toBe(0);
    expect(guest.memory.readU64(old + SIGACTION.handler)).toBe(0);
    expect(guest.call("rt_sigaction", 10, 0, old, 8)).toBe(0);
    expect(guest.memory.readU64(old + SIGACTION.handler)).toBe(0x400123);
    // Unknown flag bits are dropped, as the kernel does since 5.11.
    expect(guest.memory.readU64(old + SIGACTION.flags)).toBe(SA_SIGINFO | SA_RESTART | SA_RESTORER);
    expect(guest.memory.readU64(old + SIGACTION.restorer)).toBe(0x400456);
    expect(guest.memory.readU64Big(old + SIGACTION.mask)).toBe(bit(3));
  });

  test("validation: signal range, SIGKILL/SIGSTOP, sigsetsize, EFAULT", () => {
    const act = guest.alloc(SIGACTION.size);
    expect(guest.call("rt_sigaction", 0, act, 0, 8)).toBe(-EINVAL);
    expect(guest.call("rt_sigaction", 65, act, 0, 8)).toBe(-EINVAL);
    expect(guest.call("rt_sigaction", 9, act, 0, 8)).toBe(-EINVAL);
    expect(guest.call("rt_sigaction", 19, act, 0, 8)).toBe(-EINVAL);
    // Querying SIGKILL is allowed.
    expect(guest.call("rt_sigaction", 9, 0, act, 8)).toBe(0);
    expect(guest.call("rt_sigaction", 2, act, 0, 4)).toBe(-EINVAL);
    expect(guest.call("rt_sigaction", 2, 16, 0, 8)).toBe(-EFAULT);
    expect(guest.call("rt_sigaction", 2, 0, 16, 8)).toBe(-EFAULT);
  });
});

describe("rt_sigpending", () => {
  test("reports pending signals (thread and process) that are blocked", () => {
    const out = guest.alloc(8);
    guest.memory.writeU64(out, -1n);
    expect(guest.call("rt_sigpending", out, 8)).toBe(0);
    expect(guest.memory.readU64Big(out)).toBe(0n);
    const thread = guest.process.currentThread;
    thread.pending = bit(SIGUSR1);
    guest.process.sharedPending = bit(SIGUSR2);
    expect(guest.call("rt_sigpending", out, 8)).toBe(0);
    expect(guest.memory.readU64Big(out)).toBe(0n);
    thread.blocked = bit(SIGUSR1) | bit(SIGUSR2) | bit(40);
    expect(guest.call("rt_sigpending", out, 8)).toBe(0);
    expect(guest.memory.readU64Big(out)).toBe(bit(SIGUSR1) | bit(SIGUSR2));
  });

  test("sizes up to 8 copy that many bytes; more is EINVAL; bad pointers EFAULT", () => {
    const out = guest.alloc(8);
    const thread = guest.process.currentThread;
    thread.pending = bit(SIGUSR1) | bit(40);
    thread.blocked = thread.pending;
    guest.memory.writeU64(out, 0n);
    expect(guest.call("rt_sigpending", out, 4)).toBe(0);
    expect(guest.memory.readU64Big(out)).toBe(bit(SIGUSR1));
    expect(guest.call("rt_sigpending", out, 9)).toBe(-EINVAL);
    expect(guest.call("rt_sigpending", 0, 8)).toBe(-EFAULT);
    expect(guest.call("rt_sigpending", 0, 0)).toBe(0);
  });
});
