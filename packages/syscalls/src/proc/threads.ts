/**
 * Guest threads on one vCPU (the emulator: all threads of a process share one engine, so guest atomics stay
 * atomic). A thread runs until it blocks (futex wait, nanosleep, a read/write/epoll wait that would block),
 * yields (sched_yield), exits, or its time slice ends (the app's preemption); the app then saves its
 * registers and runs the next runnable thread (round robin).
 * While a process has more than one thread, futex is implemented here (wait queues in the runtime); with
 * one thread it is the host's (handlers/futex.ts), which also reaches other processes' shared futexes.
 *
 * A read/readv/write/writev that would block (an empty or full pipe, a terminal) blocks only its thread: it
 * waits for the fd to be ready and then re-issues the syscall.
 *
 * Not yet (the threads issue): other blocking host calls (pause, ppoll, wait4) still stop every thread; per-thread
 * alternate signal stacks; shared futexes between a multi-threaded process and another process.
 */
import {
  CLONE_CHILD_CLEARTID,
  CLONE_CHILD_SETTID,
  CLONE_PARENT_SETTID,
  CLONE_SETTLS,
  CLONE_SIGHAND,
  CLONE_THREAD,
  CLONE_VM,
} from "../abi/clone.ts";
import { EAGAIN, EFAULT, EINVAL, ENOSYS, ETIMEDOUT } from "../abi/errno.ts";
import { F_GETFL, O_NONBLOCK } from "../abi/fcntl.ts";
import {
  FUTEX_CLOCK_REALTIME,
  FUTEX_CMD_MASK,
  FUTEX_CMP_REQUEUE,
  FUTEX_REQUEUE,
  FUTEX_WAIT,
  FUTEX_WAIT_BITSET,
  FUTEX_WAKE,
  FUTEX_WAKE_BITSET,
  FUTEX_WAKE_OP,
} from "../abi/futex.ts";
import { POLLFD, POLLIN, POLLOUT } from "../abi/poll.ts";
import { TIMESPEC } from "../abi/structs.ts";
import { NR } from "../abi/syscalls.ts";
import type { SyscallArgs, SyscallContext, SyscallHandler, SyscallResult } from "../context.ts";
import type { Dispatcher } from "../dispatch.ts";
import { futex as hostFutex } from "../handlers/futex.ts";
import { type Host, SCRATCH_GENERAL } from "../host/host.ts";
import { type ProcessState, ThreadState } from "../process.ts";

const SWITCH: SyscallResult = { control: "switch-thread" };
/** Thread ids: the pid plus a counter (a guest sees distinct tids; they are not host tids). */
let nextTidOffset = 1;

/** Whether a host fd is ready for `events` now, or is non-blocking (then the call answers for itself). */
function wouldNotBlock(ctx: SyscallContext, hostFd: number, events: number): boolean {
  const flags = ctx.host.sym.host_fcntl(hostFd, F_GETFL, 0);
  if (flags < 0 || flags & O_NONBLOCK) return true;
  const view = ctx.host.scratchView;
  const at = SCRATCH_GENERAL;
  view.setInt32(at + POLLFD.fd, hostFd, true);
  view.setInt16(at + POLLFD.events, events, true);
  view.setInt16(at + POLLFD.revents, 0, true);
  view.setBigInt64(at + 16, 0n, true); // zero timeout
  view.setBigInt64(at + 24, 0n, true);
  const ready = ctx.host.sym.host_ppoll(ctx.host.scratchAddress + at, 1, ctx.host.scratchAddress + at + 16);
  return ready !== 0;
}

/**
 * The scheduler's wait for threads blocked on fds: one host ppoll over all of them, up to `timeoutMs`
 * (Infinity: no limit; a host signal ends it early). Ready threads become runnable (they re-issue their call).
 * Returns how many became runnable.
 */
export function pollBlockedThreads(process: ProcessState, host: Host, timeoutMs: number): number {
  const waiting = [...process.threads.values()].filter(
    (thread) => thread.run === "blocked" && thread.waitFd >= 0,
  );
  if (waiting.length === 0) return 0;
  const view = host.scratchView;
  const base = SCRATCH_GENERAL;
  const timeoutAt = base + waiting.length * POLLFD.size;
  waiting.forEach((thread, i) => {
    view.setInt32(base + i * POLLFD.size + POLLFD.fd, thread.waitFd, true);
    view.setInt16(base + i * POLLFD.size + POLLFD.events, thread.waitEvents, true);
    view.setInt16(base + i * POLLFD.size + POLLFD.revents, 0, true);
  });
  let timeout = 0;
  if (timeoutMs !== Number.POSITIVE_INFINITY) {
    const ms = Math.max(0, timeoutMs);
    view.setBigInt64(timeoutAt, BigInt(Math.floor(ms / 1000)), true);
    view.setBigInt64(timeoutAt + 8, BigInt(Math.floor((ms % 1000) * 1e6)), true);
    timeout = host.scratchAddress + timeoutAt;
  }
  const ready = host.sym.host_ppoll(host.scratchAddress + base, waiting.length, timeout);
  if (ready <= 0) return 0;
  let woken = 0;
  waiting.forEach((thread, i) => {
    if (view.getInt16(base + i * POLLFD.size + POLLFD.revents, true) === 0) return;
    thread.wake(null); // issues its call again
    woken++;
  });
  return woken;
}

/**
 * Park the current thread until `hostFd` is ready for `events` (then it re-issues its syscall, X0 = `x0`) or
 * until `deadline` (then the syscall returns 0: "nothing happened in time"; 0 = no deadline).
 */
export function parkOnFd(
  ctx: SyscallContext,
  hostFd: number,
  events: number,
  x0: bigint,
  deadline = 0,
): SyscallResult {
  const thread = ctx.process.currentThread;
  thread.run = "blocked";
  thread.waitFd = hostFd;
  thread.waitEvents = events;
  thread.restartX0 = x0;
  thread.deadline = deadline;
  thread.wakeResult = 0;
  return SWITCH;
}

/** Wake up to `count` threads blocked on `key` whose bitset meets `bitset`; returns how many. */
export function wakeWaiters(ctx: SyscallContext, key: number, count: number, bitset = 0xffff_ffff): number {
  let woken = 0;
  for (const thread of ctx.process.threads.values()) {
    if (woken >= count) break;
    if (thread.run !== "blocked" || thread.waitKey !== key || !(thread.waitBitset & bitset)) continue;
    thread.wake(0);
    woken++;
  }
  return woken;
}

/** Block the current thread on `key` (or only until `deadline` when key is -1). */
function block(ctx: SyscallContext, key: number, bitset: number, deadline: number): SyscallResult {
  const thread = ctx.process.currentThread;
  thread.run = "blocked";
  thread.waitKey = key;
  thread.waitBitset = bitset;
  thread.deadline = deadline;
  thread.wakeResult = key === -1 ? 0 : -ETIMEDOUT; // what a deadline ends it with
  return SWITCH;
}

/** A timespec's deadline in performance.now() ms: relative, or absolute on CLOCK_MONOTONIC/REALTIME. */
function deadlineOf(ctx: SyscallContext, address: number, absolute: boolean, realtime: boolean): number {
  if (!ctx.memory.check(address, TIMESPEC.size, false)) return -EFAULT;
  const sec = ctx.memory.readI64(address + TIMESPEC.sec);
  const nsec = ctx.memory.readI64(address + TIMESPEC.nsec);
  if (nsec < 0 || nsec >= 1_000_000_000 || sec < 0) return -EINVAL;
  const ms = sec * 1000 + nsec / 1e6;
  if (!absolute) return performance.now() + ms;
  // The host's clock now (same clock ids as the guest's), in ms.
  const at = ctx.host.scratchAddress + SCRATCH_GENERAL;
  ctx.host.sym.host_clock_gettime(realtime ? CLOCK_REALTIME : CLOCK_MONOTONIC, at);
  const view = ctx.host.scratchView;
  const now =
    Number(view.getBigInt64(SCRATCH_GENERAL, true)) * 1000 +
    Number(view.getBigInt64(SCRATCH_GENERAL + 8, true)) / 1e6;
  return performance.now() + (ms - now);
}
const CLOCK_REALTIME = 0;
const CLOCK_MONOTONIC = 1;

/** FUTEX_OP's operation on *uaddr2 (returns the old value), and its comparison. */
function wakeOp(
  ctx: SyscallContext,
  address: number,
  encoded: number,
): { old: number; wake: boolean } | number {
  if (!ctx.memory.check(address, 4, true)) return -EFAULT;
  const old = ctx.memory.readU32(address);
  const op = (encoded >>> 28) & 7;
  const shift = (encoded >>> 28) & 8;
  const cmp = (encoded >>> 24) & 15;
  let oparg = (encoded << 8) >> 20;
  const cmparg = (encoded << 20) >> 20;
  if (shift) oparg = 1 << (oparg & 31);
  const next = [oparg, old + oparg, old | oparg, old & ~oparg, old ^ oparg][op];
  if (next === undefined) return -ENOSYS;
  ctx.memory.writeU32(address, next >>> 0);
  const signedOld = old | 0;
  const wake = [
    signedOld === cmparg,
    signedOld !== cmparg,
    signedOld < cmparg,
    signedOld <= cmparg,
    signedOld > cmparg,
    signedOld >= cmparg,
  ][cmp];
  if (wake === undefined) return -ENOSYS;
  return { old, wake };
}

/** futex(2) among this process's threads (only while it has more than one). */
function threadFutex(args: SyscallArgs, ctx: SyscallContext): SyscallResult {
  const uaddr = args.ptr(0);
  const op = args.int(1);
  const command = op & FUTEX_CMD_MASK;
  const value = args.uint(2);
  if (uaddr % 4 !== 0) return -EINVAL;
  const memory = ctx.memory;
  if (!memory.check(uaddr, 4, false)) return -EFAULT;
  const current = memory.readU32(uaddr);
  switch (command) {
    case FUTEX_WAIT:
    case FUTEX_WAIT_BITSET: {
      const bitset = command === FUTEX_WAIT ? 0xffff_ffff : args.uint(5);
      if (bitset === 0) return -EINVAL;
      let deadline = 0;
      if (args.ptr(3) !== 0) {
        deadline = deadlineOf(
          ctx,
          args.ptr(3),
          command === FUTEX_WAIT_BITSET,
          (op & FUTEX_CLOCK_REALTIME) !== 0,
        );
        if (deadline < 0) return deadline;
      }
      if (current !== value) return -EAGAIN;
      return block(ctx, uaddr, bitset, deadline);
    }
    case FUTEX_WAKE:
    case FUTEX_WAKE_BITSET: {
      const bitset = command === FUTEX_WAKE ? 0xffff_ffff : args.uint(5);
      if (bitset === 0) return -EINVAL;
      return wakeWaiters(ctx, uaddr, value, bitset);
    }
    case FUTEX_REQUEUE:
    case FUTEX_CMP_REQUEUE: {
      if (command === FUTEX_CMP_REQUEUE && current !== args.uint(5)) return -EAGAIN;
      const uaddr2 = args.ptr(4);
      if (uaddr2 % 4 !== 0) return -EINVAL;
      const woken = wakeWaiters(ctx, uaddr, value);
      let moved = 0;
      const limit = args.uint(3);
      for (const thread of ctx.process.threads.values()) {
        if (moved >= limit) break;
        if (thread.run === "blocked" && thread.waitKey === uaddr) {
          thread.waitKey = uaddr2;
          moved++;
        }
      }
      return woken + moved;
    }
    case FUTEX_WAKE_OP: {
      const uaddr2 = args.ptr(4);
      if (uaddr2 % 4 !== 0) return -EINVAL;
      const result = wakeOp(ctx, uaddr2, args.uint(5));
      if (typeof result === "number") return result;
      let woken = wakeWaiters(ctx, uaddr, value);
      if (result.wake) woken += wakeWaiters(ctx, uaddr2, args.uint(3));
      return woken;
    }
    default:
      return -ENOSYS;
  }
}

export interface ThreadSpawner {
  /** Make `child` runnable with a copy of the calling thread's registers (X0 = 0, `sp`, `tls` applied). */
  spawn(child: ThreadState, sp: bigint, tls: bigint | null): void;
}

/**
 * clone for a thread (CLONE_VM|CLONE_SIGHAND|CLONE_THREAD, as glibc's and Go's flag sets): a new ThreadState
 * sharing everything else of the process; the parent gets its tid.
 */
export function cloneThread(
  ctx: SyscallContext,
  spawner: ThreadSpawner,
  request: { flags: number; stack: bigint; parentTid: number; childTid: number; tls: bigint },
): number {
  const { flags } = request;
  const required = CLONE_VM | CLONE_SIGHAND | CLONE_THREAD;
  if ((flags & required) !== required) return -ENOSYS;
  const process = ctx.process;
  const parent = process.currentThread;
  let tid = process.pid + nextTidOffset++;
  while (process.threads.has(tid)) tid = process.pid + nextTidOffset++;
  const child = new ThreadState(tid);
  child.blocked = parent.blocked;
  child.comm.set(parent.comm);
  if (flags & CLONE_CHILD_CLEARTID) child.clearChildTid = request.childTid;
  if (flags & CLONE_PARENT_SETTID && ctx.memory.writeU32(request.parentTid, tid) < 0) return -EFAULT;
  if (flags & CLONE_CHILD_SETTID && ctx.memory.writeU32(request.childTid, tid) < 0) return -EFAULT;
  process.threads.set(tid, child);
  spawner.spawn(child, request.stack, flags & CLONE_SETTLS ? request.tls : null);
  return tid;
}

/** The syscalls that behave differently once a process has several threads. */
export function registerThreadHandlers(dispatcher: Dispatcher): void {
  const futex: SyscallHandler = (args, ctx) =>
    ctx.process.threads.size > 1 ? threadFutex(args, ctx) : hostFutex(args, ctx);

  /** exit(2) of one thread: clear_child_tid is zeroed and woken (pthread_join waits on it). */
  const exit: SyscallHandler = (args, ctx) => {
    const process = ctx.process;
    const status = args.int(0) & 0xff;
    if (process.threads.size <= 1) return { control: "exit", status, group: false };
    const thread = process.currentThread;
    if (thread.clearChildTid !== 0 && ctx.memory.writeU32(thread.clearChildTid, 0) >= 0) {
      wakeWaiters(ctx, thread.clearChildTid, 1);
    }
    process.threads.delete(thread.tid);
    thread.context?.free();
    thread.context = null;
    return SWITCH;
  };

  const schedYield: SyscallHandler = (_args, ctx) => {
    if (ctx.process.threads.size <= 1) return ctx.host.sym.host_sched_yield();
    ctx.process.currentThread.wakeResult = 0;
    return SWITCH;
  };

  const original = {
    nanosleep: dispatcher.handlerOf(NR.nanosleep),
    clockNanosleep: dispatcher.handlerOf(NR.clock_nanosleep),
  };
  /** With other threads to run, a sleeping thread blocks only itself. */
  const sleep = (ctx: SyscallContext, request: number, absolute: boolean) => {
    const deadline = deadlineOf(ctx, request, absolute, false);
    if (deadline < 0) return deadline;
    return block(ctx, -1, 0, Math.max(deadline, performance.now()));
  };
  const nanosleep: SyscallHandler = (args, ctx) =>
    ctx.process.threads.size > 1 ? sleep(ctx, args.ptr(0), false) : original.nanosleep!(args, ctx);
  const clockNanosleep: SyscallHandler = (args, ctx) =>
    ctx.process.threads.size > 1
      ? sleep(ctx, args.ptr(2), (args.int(1) & 1) !== 0)
      : original.clockNanosleep!(args, ctx);

  /**
   * read/readv on a blocking fd with nothing to read: with other threads to run, only this thread waits (for
   * POLLIN, in the scheduler's host ppoll) and then issues the read again.
   */
  const parkUntilReady = (nr: number, name: string, events: number) => {
    const handler = dispatcher.handlerOf(nr);
    if (!handler) return;
    dispatcher.registerHandler(nr, name, (args, ctx) => {
      if (ctx.process.threads.size <= 1) return handler(args, ctx);
      const entry = ctx.process.fds.get(args.int(0));
      if (entry === undefined || wouldNotBlock(ctx, entry.hostFd, events)) return handler(args, ctx);
      return parkOnFd(ctx, entry.hostFd, events, args.raw(0));
    });
  };
  parkUntilReady(NR.read, "read", POLLIN);
  parkUntilReady(NR.readv, "readv", POLLIN);
  // A write to a full pipe parks until there is room (POLLOUT: at least a page free). A write larger than the
  // room left still blocks the engine until a reader — if it is a thread of this process, for good: not yet.
  parkUntilReady(NR.write, "write", POLLOUT);
  parkUntilReady(NR.writev, "writev", POLLOUT);

  dispatcher.registerHandler(NR.futex, "futex", futex);
  dispatcher.registerHandler(NR.exit, "exit", exit);
  dispatcher.registerHandler(NR.sched_yield, "sched_yield", schedYield);
  if (original.nanosleep) dispatcher.registerHandler(NR.nanosleep, "nanosleep", nanosleep);
  if (original.clockNanosleep)
    dispatcher.registerHandler(NR.clock_nanosleep, "clock_nanosleep", clockNanosleep);
}
