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
 * ppoll/pselect6, rt_sigsuspend, rt_sigtimedwait, futex_waitv and wait4/waitid park only their thread as well
 * (parkOnPoll, parkForSignal, parkOnSignals, parkUntilChild).
 *
 * Not yet (the threads issue): a pipe write larger than the room left blocks the engine; shared futexes
 * between a multi-threaded process and another process are not met (the waits here are the runtime's).
 */

import { CLOCK_MONOTONIC, CLOCK_REALTIME } from "../abi/clock.ts";
import {
  CLONE_CHILD_CLEARTID,
  CLONE_CHILD_SETTID,
  CLONE_PARENT_SETTID,
  CLONE_SETTLS,
  CLONE_SIGHAND,
  CLONE_THREAD,
  CLONE_VM,
} from "../abi/clone.ts";
import { EAGAIN, EFAULT, EINTR, EINVAL, ENOSYS, ETIMEDOUT } from "../abi/errno.ts";
import {
  AT_FDCWD,
  F_GETFL,
  O_CLOEXEC,
  O_NONBLOCK,
  O_WRONLY,
  PIPE_BUF,
  S_IFIFO,
  S_IFMT,
} from "../abi/fcntl.ts";
import {
  FUTEX_CLOCK_REALTIME,
  FUTEX_CMD_MASK,
  FUTEX_CMP_REQUEUE,
  FUTEX_PRIVATE_FLAG,
  FUTEX_REALTIME_COMMANDS,
  FUTEX_REQUEUE,
  FUTEX_WAIT,
  FUTEX_WAIT_BITSET,
  FUTEX_WAITV,
  FUTEX_WAITV_MAX,
  FUTEX_WAKE,
  FUTEX_WAKE_BITSET,
  FUTEX_WAKE_OP,
  FUTEX2_SIZE_MASK,
  FUTEX2_SIZE_U32,
  FUTEX2_VALID_MASK,
} from "../abi/futex.ts";
import { POLLFD, POLLIN, POLLOUT } from "../abi/poll.ts";
import { STATX, TIMESPEC } from "../abi/structs.ts";
import { NR } from "../abi/syscalls.ts";
import type { SyscallArgs, SyscallContext, SyscallHandler, SyscallResult } from "../context.ts";
import type { Dispatcher } from "../dispatch.ts";
import { futex as hostFutex } from "../handlers/futex.ts";
import { type Host, SCRATCH_GENERAL } from "../host/host.ts";
import { type FdEntry, type ProcessState, ThreadState } from "../process.ts";
import { exitRobustList } from "./robust.ts";

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
    (thread) => thread.run === "blocked" && thread.waitPoll !== null,
  );
  if (waiting.length === 0) return 0;
  const view = host.scratchView;
  const base = SCRATCH_GENERAL;
  let count = 0;
  for (const thread of waiting) {
    for (const { fd, events } of thread.waitPoll!) {
      const at = base + count++ * POLLFD.size;
      view.setInt32(at + POLLFD.fd, fd, true);
      view.setInt16(at + POLLFD.events, events, true);
      view.setInt16(at + POLLFD.revents, 0, true);
    }
  }
  const timeoutAt = base + count * POLLFD.size;
  const timeout = timeoutMs === Number.POSITIVE_INFINITY ? 0 : host.timespec(timeoutAt, timeoutMs);
  const ready = host.sym.host_ppoll(host.scratchAddress + base, count, timeout);
  if (ready <= 0) return 0;
  let woken = 0;
  let index = 0;
  for (const thread of waiting) {
    let any = false;
    for (const _ of thread.waitPoll!) {
      if (view.getInt16(base + index++ * POLLFD.size + POLLFD.revents, true) !== 0) any = true;
    }
    if (!any) continue;
    thread.wake(null); // issues its call again
    woken++;
  }
  return woken;
}

/**
 * Park the current thread until `hostFd` is ready for `events` (then it re-issues its syscall, X0 = `x0`) or
 * until `deadline` (then the syscall returns 0: "nothing happened in time"; 0 = no deadline). `restartable`:
 * a signal whose handler has SA_RESTART issues the call again after the handler (read, write) instead of
 * ending it with EINTR (epoll_wait, never restarted).
 */
export function parkOnFd(
  ctx: SyscallContext,
  hostFd: number,
  events: number,
  x0: bigint,
  deadline = 0,
  restartable = false,
): SyscallResult {
  const thread = ctx.process.currentThread;
  thread.run = "blocked";
  thread.restartable = restartable;
  thread.waitPoll = [{ fd: hostFd, events }];
  thread.restartX0 = x0;
  thread.deadline = deadline;
  thread.wakeResult = 0;
  return SWITCH;
}

/**
 * Park a ppoll/pselect6 that found nothing ready: until one of `waits` is ready or `deadline` (0: none), it is
 * issued again either way (see ThreadState.restartAtDeadline); `mask` (its sigmask argument) is the thread's
 * mask meanwhile, the old one kept as Linux's saved mask so a handler that interrupts the wait restores it.
 */
export function parkOnPoll(
  ctx: SyscallContext,
  waits: Array<{ fd: number; events: number }>,
  x0: bigint,
  deadline: number,
  timeoutAddress: number,
  mask: bigint | null,
): SyscallResult {
  const thread = ctx.process.currentThread;
  thread.run = "blocked";
  thread.waitPoll = waits;
  thread.restartX0 = x0;
  thread.deadline = deadline;
  thread.restartAtDeadline = true;
  thread.rewriteTimeout = deadline > 0 ? timeoutAddress : 0;
  thread.restartDeadline = deadline;
  thread.wakeResult = -EINTR; // only a signal ends it with a result
  if (mask !== null) {
    thread.savedMask = thread.blocked;
    thread.blocked = mask;
  }
  return SWITCH;
}

/**
 * Park the current thread until a signal of `set` is pending for it (then it issues its call again, X0 = `x0`)
 * or until `deadline` (performance.now() ms; 0: none), when the call returns -EAGAIN (rt_sigtimedwait).
 */
export function parkOnSignals(ctx: SyscallContext, set: bigint, x0: bigint, deadline: number): SyscallResult {
  const thread = ctx.process.currentThread;
  thread.run = "blocked";
  thread.waitSignals = set;
  thread.restartX0 = x0;
  thread.deadline = deadline;
  thread.wakeResult = -EAGAIN;
  return SWITCH;
}

/**
 * Park the current thread in wait4/waitid until a child changes state (a SIGCHLD reaches the process: see
 * ProcessState.childEvents); it then issues its call again, which finds the child or parks once more.
 */
export function parkUntilChild(ctx: SyscallContext, x0: bigint): SyscallResult {
  const thread = ctx.process.currentThread;
  thread.run = "blocked";
  thread.waitChildEvents = ctx.process.childEvents;
  thread.restartable = true;
  thread.restartX0 = x0;
  thread.deadline = 0;
  thread.wakeResult = -EINTR;
  return SWITCH;
}

/** Park the current thread until a signal its mask lets through is pending (rt_sigsuspend): it returns -EINTR. */
export function parkForSignal(ctx: SyscallContext): SyscallResult {
  const thread = ctx.process.currentThread;
  thread.run = "blocked";
  thread.deadline = 0;
  thread.wakeResult = -EINTR;
  return SWITCH;
}

/** Whether a guest fd's host fd is a pipe or FIFO (cached on the entry: its host fd never changes). */
function isPipe(ctx: SyscallContext, entry: FdEntry & { pipe?: boolean }): boolean {
  if (entry.pipe === undefined) {
    const stat = ctx.host.statFd(entry.hostFd);
    entry.pipe =
      stat >= 0 && (ctx.host.scratchView.getUint16(SCRATCH_GENERAL + STATX.mode, true) & S_IFMT) === S_IFIFO;
  }
  return entry.pipe;
}

/** writev's limit on iovecs (UIO_MAXIOV). */
const IOV_MAX = 1024;

/**
 * write(2) or writev(2) to a pipe while other threads can run: as many bytes as fit go through a non-blocking description
 * of the same pipe (opened afresh through /proc/self/fd, so the guest's own description keeps its flags);
 * if some are left the thread parks until there is room and goes on where it was (ThreadState.writeDone),
 * so a reader thread of this process can drain the pipe meanwhile. Writes of up to PIPE_BUF stay atomic (a
 * non-blocking pipe write of that size is all or nothing). A signal ends it with the bytes written so far.
 */
function pipeWrite(
  args: SyscallArgs,
  ctx: SyscallContext,
  hostFd: number,
  blocking: SyscallHandler,
  gather: boolean,
): SyscallResult {
  const thread = ctx.process.currentThread;
  const done = thread.writeDone;
  thread.writeDone = 0;
  // The bytes still to write, as host iovecs in scratch (write: one; writev: the guest's, past `done`).
  if (gather && (args.int(2) < 0 || args.int(2) > IOV_MAX)) return blocking(args, ctx);
  const pieces = gather ? ctx.memory.readIovec(args.ptr(1), args.int(2)) : [[args.ptr(1), args.ulong(2)]];
  if (typeof pieces === "number") return blocking(args, ctx); // the plain call reports the fault
  const view = ctx.host.scratchView;
  let total = 0;
  let segments = 0;
  let skip = done;
  for (const [base, length] of pieces) {
    total += length;
    if (length <= skip) {
      skip -= length;
      continue;
    }
    const source = ctx.memory.hostPointer(base + skip, length - skip, false);
    if (source < 0) return done > 0 ? done : blocking(args, ctx);
    view.setBigUint64(SCRATCH_GENERAL + segments * 16, BigInt(source), true);
    view.setBigUint64(SCRATCH_GENERAL + segments * 16 + 8, BigInt(length - skip), true);
    segments++;
    skip = 0;
  }
  if (total === 0 || !(total <= Number.MAX_SAFE_INTEGER)) return blocking(args, ctx);
  const host = ctx.host;
  const side = host.sym.host_openat(
    AT_FDCWD,
    host.cString(`/proc/self/fd/${hostFd}`),
    O_WRONLY | O_NONBLOCK | O_CLOEXEC,
    0,
  );
  if (side < 0) return done > 0 ? done : blocking(args, ctx); // no reader (ENXIO): the plain write answers EPIPE
  const written = host.sym.host_writev(side, host.scratchAddress + SCRATCH_GENERAL, segments);
  host.sym.host_close(side);
  if (written === -EAGAIN || (written >= 0 && done + written < total)) {
    thread.writeDone = done + Math.max(written, 0);
    return parkOnFd(ctx, hostFd, POLLOUT, args.raw(0), 0, thread.writeDone === 0);
  }
  if (written < 0) return done > 0 ? done : written;
  return done + written;
}

/** Wake up to `count` threads blocked on `key` whose bitset meets `bitset`; returns how many. */
export function wakeWaiters(ctx: SyscallContext, key: number, count: number, bitset = 0xffff_ffff): number {
  return wakeThreadsOn(ctx.process, key, count, bitset);
}

/** wakeWaiters for a process. */
export function wakeThreadsOn(
  process: ProcessState,
  key: number,
  count: number,
  bitset = 0xffff_ffff,
): number {
  let woken = 0;
  for (const thread of process.threads.values()) {
    if (woken >= count) break;
    if (thread.run !== "blocked") continue;
    if (thread.waitKey === key && thread.waitBitset & bitset) thread.wake(0);
    else {
      const index = thread.waitKeys?.indexOf(key) ?? -1; // futex_waitv: it returns the index woken
      if (index < 0) continue;
      thread.wake(index);
    }
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
export function deadlineOf(
  ctx: SyscallContext,
  address: number,
  absolute: boolean,
  realtime: boolean,
): number {
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

/** The futex commands the runtime implements (the PI ones are not: see the futex handler). */
const FUTEX_COMMANDS_DONE: ReadonlySet<number> = new Set([
  FUTEX_WAIT,
  FUTEX_WAKE,
  FUTEX_REQUEUE,
  FUTEX_CMP_REQUEUE,
  FUTEX_WAKE_OP,
  FUTEX_WAIT_BITSET,
  FUTEX_WAKE_BITSET,
]);

/** futex(2) among this process's threads (only while it has more than one). */
function threadFutex(args: SyscallArgs, ctx: SyscallContext): SyscallResult {
  const uaddr = args.ptr(0);
  const op = args.int(1);
  const command = op & FUTEX_CMD_MASK;
  const value = args.uint(2);
  if (uaddr % 4 !== 0) return -EINVAL;
  const memory = ctx.memory;
  // The same order of checks as on the host path (handlers/futex.ts): counts and bitsets before the address,
  // and a private futex with nothing readable behind it is a key with no waiters, not a fault, for wakes.
  const requeue = command === FUTEX_REQUEUE || command === FUTEX_CMP_REQUEUE;
  if (requeue && ((value | 0) < 0 || (args.uint(3) | 0) < 0)) return -EINVAL;
  if ((command === FUTEX_WAIT_BITSET || command === FUTEX_WAKE_BITSET) && args.uint(5) === 0) return -EINVAL;
  if (!memory.check(uaddr, 4, false)) {
    const wakesOnly = command === FUTEX_WAKE || command === FUTEX_WAKE_BITSET || command === FUTEX_REQUEUE;
    return op & FUTEX_PRIVATE_FLAG && wakesOnly ? 0 : -EFAULT;
  }
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
        if (thread.run !== "blocked") continue;
        if (thread.waitKey === uaddr) {
          thread.waitKey = uaddr2;
          moved++;
          continue;
        }
        // A futex_waitv waiter moves too: woken on uaddr2, it returns the index it waited on uaddr with.
        const index = thread.waitKeys?.indexOf(uaddr) ?? -1;
        if (index >= 0) {
          thread.waitKeys![index] = uaddr2;
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

/**
 * futex_waitv(waiters, count, flags, timeout, clockid): wait on up to 128 u32 futexes at once (an absolute
 * timeout on CLOCK_MONOTONIC or CLOCK_REALTIME); returns the index of the one woken, -EAGAIN if a word no
 * longer holds its value, -ETIMEDOUT. With one thread it is the host's (other processes may wake it).
 */
function futexWaitv(args: SyscallArgs, ctx: SyscallContext): SyscallResult {
  const address = args.ptr(0);
  const count = args.uint(1);
  const timeout = args.ptr(3);
  const clockid = args.int(4);
  if (args.uint(2) !== 0 || count === 0 || count > FUTEX_WAITV_MAX || address === 0) return -EINVAL;
  const memory = ctx.memory;
  let deadline = 0;
  if (timeout !== 0) {
    if (clockid !== CLOCK_REALTIME && clockid !== CLOCK_MONOTONIC) return -EINVAL;
    deadline = deadlineOf(ctx, timeout, true, clockid === CLOCK_REALTIME);
    if (deadline < 0) return deadline;
  }
  const words: Array<{ address: number; value: number; flags: number }> = [];
  for (let i = 0; i < count; i++) {
    const entry = address + i * FUTEX_WAITV.size;
    if (!memory.check(entry, FUTEX_WAITV.size, false)) return -EFAULT;
    const value = memory.readU64(entry + FUTEX_WAITV.val);
    const word = memory.readU64(entry + FUTEX_WAITV.uaddr);
    const flags = memory.readU32(entry + FUTEX_WAITV.flags);
    if (flags & ~FUTEX2_VALID_MASK || memory.readU32(entry + FUTEX_WAITV.reserved) !== 0) return -EINVAL;
    if ((flags & FUTEX2_SIZE_MASK) !== FUTEX2_SIZE_U32 || value > 0xffff_ffff) return -EINVAL;
    if (word % 4 !== 0) return -EINVAL;
    words.push({ address: word, value, flags });
  }
  for (const { address: word, value } of words) {
    if (!memory.check(word, 4, false)) return -EFAULT;
    if (memory.readU32(word) !== value) return -EAGAIN;
  }
  if (ctx.process.threads.size > 1) {
    const thread = ctx.process.currentThread;
    thread.run = "blocked";
    thread.waitKeys = words.map((word) => word.address);
    thread.deadline = deadline;
    thread.wakeResult = -ETIMEDOUT;
    return SWITCH;
  }
  // One thread: the host's futex_waitv over the words' host addresses, built in scratch.
  const view = ctx.host.scratchView;
  for (const [i, { address: word, value, flags }] of words.entries()) {
    const at = SCRATCH_GENERAL + i * FUTEX_WAITV.size;
    view.setBigUint64(at + FUTEX_WAITV.val, BigInt(value), true);
    view.setBigUint64(at + FUTEX_WAITV.uaddr, BigInt(memory.hostPointer(word, 4, false)), true);
    view.setUint32(at + FUTEX_WAITV.flags, flags, true);
    view.setUint32(at + FUTEX_WAITV.reserved, 0, true);
  }
  const hostTimeout = timeout === 0 ? 0 : memory.hostPointer(timeout, TIMESPEC.size, false);
  return ctx.host.sym.host_futex_waitv(
    ctx.host.scratchAddress + SCRATCH_GENERAL,
    count,
    0,
    hostTimeout,
    clockid,
  );
}

export interface ThreadSpawner {
  /**
   * Make `child` runnable with a copy of the calling thread's registers (X0 = 0, `sp`, `tls` applied); a
   * negative errno when no thread can be made (EAGAIN: out of vCPUs).
   */
  spawn(child: ThreadState, sp: bigint, tls: bigint | null): number | undefined;
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
  child.affinity = parent.affinity;
  child.comm.set(parent.comm);
  if (flags & CLONE_CHILD_CLEARTID) child.clearChildTid = request.childTid;
  if (flags & CLONE_PARENT_SETTID && ctx.memory.writeU32(request.parentTid, tid) < 0) return -EFAULT;
  if (flags & CLONE_CHILD_SETTID && ctx.memory.writeU32(request.childTid, tid) < 0) return -EFAULT;
  process.threads.set(tid, child);
  const spawned = spawner.spawn(child, request.stack, flags & CLONE_SETTLS ? request.tls : null);
  if (spawned !== undefined && spawned < 0) {
    process.threads.delete(tid);
    return spawned;
  }
  return tid;
}

/** The syscalls that behave differently once a process has several threads. */
export function registerThreadHandlers(dispatcher: Dispatcher): void {
  const futex: SyscallHandler = (args, ctx) => {
    // do_futex's order: FUTEX_CLOCK_REALTIME with a command that has no use for it is ENOSYS before the
    // address is looked at.
    const op = args.int(1);
    const command = op & FUTEX_CMD_MASK;
    if (op & FUTEX_CLOCK_REALTIME && !FUTEX_REALTIME_COMMANDS.has(command)) return -ENOSYS;
    // Unknown commands, FUTEX_FD (gone since 2.6.26) and the PI family (not done here: the owner would have to
    // be a host thread id) are ENOSYS whatever the address.
    if (!FUTEX_COMMANDS_DONE.has(command)) return -ENOSYS;
    return ctx.process.threads.size > 1 ? threadFutex(args, ctx) : hostFutex(args, ctx);
  };

  /** exit(2) of one thread: clear_child_tid is zeroed and woken (pthread_join waits on it). */
  const exit: SyscallHandler = (args, ctx) => {
    const process = ctx.process;
    const status = args.int(0) & 0xff;
    if (process.threads.size <= 1) return { control: "exit", status, group: false };
    const thread = process.currentThread;
    exitRobustList(
      { memory: ctx.memory, host: ctx.host, wakeLocal: (address, count) => wakeWaiters(ctx, address, count) },
      thread,
    );
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
      return parkOnFd(ctx, entry.hostFd, events, args.raw(0), 0, true);
    });
  };
  parkUntilReady(NR.read, "read", POLLIN);
  parkUntilReady(NR.readv, "readv", POLLIN);
  // A write to a full pipe, FIFO or terminal parks until there is room (POLLOUT); to a pipe it goes through
  // pipeWrite below, so one larger than the room left does not block the other threads either.
  parkUntilReady(NR.write, "write", POLLOUT);
  parkUntilReady(NR.writev, "writev", POLLOUT);
  for (const [nr, name, gather] of [
    [NR.write, "write", false],
    [NR.writev, "writev", true],
  ] as const) {
    const parking = dispatcher.handlerOf(nr);
    if (!parking) continue;
    dispatcher.registerHandler(nr, name, (args, ctx) => {
      if (ctx.process.threads.size <= 1) return parking(args, ctx);
      const entry = ctx.process.fds.get(args.int(0));
      if (entry === undefined || !isPipe(ctx, entry)) return parking(args, ctx);
      // Up to PIPE_BUF bytes a plain write cannot block once the pipe polls writable (parking's own check):
      // no second description to open for the common small write.
      const small = !gather && ctx.process.currentThread.writeDone === 0 && args.ulong(2) <= PIPE_BUF;
      if (small) return parking(args, ctx);
      return pipeWrite(args, ctx, entry.hostFd, parking, gather);
    });
  }

  dispatcher.registerHandler(NR.futex, "futex", futex);
  dispatcher.registerHandler(NR.futex_waitv, "futex_waitv", futexWaitv);
  dispatcher.registerHandler(NR.exit, "exit", exit);
  dispatcher.registerHandler(NR.sched_yield, "sched_yield", schedYield);
  if (original.nanosleep) dispatcher.registerHandler(NR.nanosleep, "nanosleep", nanosleep);
  if (original.clockNanosleep)
    dispatcher.registerHandler(NR.clock_nanosleep, "clock_nanosleep", clockNanosleep);
}
