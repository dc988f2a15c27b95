/** Clocks and sleeps: timespec/timeval are the same on both 64-bit arches, so the host writes guest memory. */

import { CLOCK_REALTIME, NSEC_PER_SEC, TIMER_ABSTIME } from "../abi/clock.ts";
import { EFAULT, EINTR, EINVAL, EPERM } from "../abi/errno.ts";
import { TIMESPEC, TIMEVAL, TMS } from "../abi/structs.ts";
import type { SyscallContext, SyscallHandler } from "../context.ts";
import { SCRATCH_GENERAL } from "../host/host.ts";

// Output structs: when the guest's pointer is bad the call runs on scratch first, so argument errors
// (EINVAL for a bad clock) win over EFAULT as they do in Linux.

export const clockGettime: SyscallHandler = (args, ctx) => {
  const clock = args.int(0);
  const out = ctx.memory.hostPointer(args.ptr(1), TIMESPEC.size, true);
  if (out >= 0) return ctx.host.sym.host_clock_gettime(clock, out);
  const r = ctx.host.sym.host_clock_gettime(clock, ctx.host.scratchAddress + SCRATCH_GENERAL);
  return r < 0 ? r : -EFAULT;
};

export const clockGetres: SyscallHandler = (args, ctx) => {
  const clock = args.int(0);
  const address = args.ptr(1);
  // A NULL res only validates the clock.
  const out = address === 0 ? -EFAULT : ctx.memory.hostPointer(address, TIMESPEC.size, true);
  if (out >= 0) return ctx.host.sym.host_clock_getres(clock, out);
  const r = ctx.host.sym.host_clock_getres(clock, ctx.host.scratchAddress + SCRATCH_GENERAL);
  return r < 0 || address === 0 ? r : -EFAULT;
};

/**
 * clock_settime: validated as Linux does (only CLOCK_REALTIME is settable; a timespec outside [0, 1e9) ns or
 * before the epoch is EINVAL; a bad pointer EFAULT), then refused with EPERM — what a task without
 * CAP_SYS_TIME gets: the runtime never sets the host's clock for a guest.
 */
export const clockSettime: SyscallHandler = (args, ctx) => {
  // In the kernel's order: the clock (only CLOCK_REALTIME can be set), the pointer, the value, the permission.
  if (args.int(0) !== CLOCK_REALTIME) return -EINVAL;
  const address = args.ptr(1);
  if (!ctx.memory.check(address, TIMESPEC.size, false)) return -EFAULT;
  const seconds = ctx.memory.readI64(address);
  const nanoseconds = ctx.memory.readI64(address + 8);
  if (seconds < 0 || nanoseconds < 0 || nanoseconds >= NSEC_PER_SEC) return -EINVAL;
  return -EPERM;
};

export const gettimeofday: SyscallHandler = (args, ctx) => {
  const tv = args.ptr(0);
  const tz = args.ptr(1);
  if (tv !== 0) {
    const out = ctx.memory.hostPointer(tv, TIMEVAL.size, true);
    if (out < 0) return out;
    const r = ctx.host.sym.host_gettimeofday(out);
    if (r < 0) return r;
  }
  if (tz !== 0) {
    // struct timezone { tz_minuteswest, tz_dsttime }: Linux reports sys_tz, zero unless settimeofday set it.
    if (!ctx.memory.check(tz, 8, true)) return -EFAULT;
    ctx.memory.writeU32(tz, 0);
    ctx.memory.writeU32(tz + 4, 0);
  }
  return 0;
};

/** Reads and validates a guest timespec; returns its host pointer or -errno. */
function requestTimespec(ctx: SyscallContext, address: number): number {
  const memory = ctx.memory;
  if (!memory.check(address, TIMESPEC.size, false)) return -EFAULT;
  const sec = memory.readI64(address + TIMESPEC.sec);
  const nsec = memory.readI64(address + TIMESPEC.nsec);
  if (sec < 0 || nsec < 0 || nsec >= NSEC_PER_SEC) return -EINVAL;
  return memory.hostAddress + address;
}

/** rem: written only when the sleep is interrupted; an unusable pointer is dropped (EFAULT then, on Linux). */
function remainingPointer(ctx: SyscallContext, address: number): number {
  if (address === 0) return 0;
  const out = ctx.memory.hostPointer(address, TIMESPEC.size, true);
  return Math.max(out, 0);
}

/**
 * A relative wait (nanosleep, a futex timeout) that a host signal interrupted and the runtime restarts
 * transparently (no handler ran) goes on only for the time it had left, as Linux's restart_syscall does: the
 * first call notes when it ends, the restart waits until then. Returns the host address of the timespec to
 * wait for: the guest's own request, or scratch holding the time left. `finishRelativeWait` closes it.
 */
export function relativeWait(ctx: SyscallContext, address: number, request: number): number {
  const thread = ctx.process.currentThread;
  if (ctx.process.restarting && thread.waitEnd > 0) {
    return ctx.host.timespec(SCRATCH_RESTART, thread.waitEnd - performance.now());
  }
  const sec = ctx.memory.readI64(address + TIMESPEC.sec);
  const nsec = ctx.memory.readI64(address + TIMESPEC.nsec);
  thread.waitEnd = performance.now() + sec * 1000 + nsec / 1e6;
  return request;
}

/** The relative wait is over unless a host signal interrupted it (then a restart may continue it). */
export function finishRelativeWait(ctx: SyscallContext, result: number): number {
  if (result !== -EINTR) ctx.process.currentThread.waitEnd = 0;
  return result;
}

/** Past the general scratch area's small users (timespecs, pollfds in transit): the time a restart has left. */
const SCRATCH_RESTART = SCRATCH_GENERAL + 0xff00;

export const nanosleep: SyscallHandler = (args, ctx) => {
  const request = requestTimespec(ctx, args.ptr(0));
  if (request < 0) return request;
  const wait = relativeWait(ctx, args.ptr(0), request);
  return finishRelativeWait(ctx, ctx.host.sym.host_nanosleep(wait, remainingPointer(ctx, args.ptr(1))));
};

export const clockNanosleep: SyscallHandler = (args, ctx) => {
  const flags = args.int(1);
  const request = requestTimespec(ctx, args.ptr(2));
  if (request < 0) return request;
  if (flags & TIMER_ABSTIME) return ctx.host.sym.host_clock_nanosleep(args.int(0), TIMER_ABSTIME, request, 0);
  const wait = relativeWait(ctx, args.ptr(2), request);
  const remaining = remainingPointer(ctx, args.ptr(3));
  return finishRelativeWait(ctx, ctx.host.sym.host_clock_nanosleep(args.int(0), 0, wait, remaining));
};

/** struct itimerval: it_interval and it_value, each a struct timeval of two longs. */
const ITIMERVAL_SIZE = 32;
const ITIMER_PROF = 2;

/**
 * setitimer/getitimer: the host process's timers (ITIMER_REAL is wall time; VIRTUAL and PROF count the
 * runtime's CPU time, which includes emulating the guest). Expiry signals reach the guest through the
 * host-signal bridge of the CLI's runtime.
 */
export const setitimer: SyscallHandler = (args, ctx) => {
  const which = args.int(0);
  if (which < 0 || which > ITIMER_PROF) return -EINVAL;
  const value = args.ptr(1) === 0 ? 0 : ctx.memory.hostPointer(args.ptr(1), ITIMERVAL_SIZE, false);
  if (value < 0) return -EFAULT;
  const old = args.ptr(2) === 0 ? 0 : ctx.memory.hostPointer(args.ptr(2), ITIMERVAL_SIZE, true);
  if (old < 0) return -EFAULT;
  return ctx.host.sym.host_setitimer(which, value, old);
};

export const getitimer: SyscallHandler = (args, ctx) => {
  const which = args.int(0);
  if (which < 0 || which > ITIMER_PROF) return -EINVAL;
  const value = ctx.memory.hostPointer(args.ptr(1), ITIMERVAL_SIZE, true);
  if (value < 0) return -EFAULT;
  return ctx.host.sym.host_getitimer(which, value);
};

/** times(): the host's process times (struct tms is the same on LP64 arches) and its clock-tick count. */
export const times: SyscallHandler = (args, ctx) => {
  const address = args.ptr(0);
  const out = address === 0 ? 0 : ctx.memory.hostPointer(address, TMS.size, true);
  if (out < 0) return out;
  return ctx.host.sym.host_times(out);
};
