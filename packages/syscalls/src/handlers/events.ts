/**
 * eventfd, timerfd and membarrier. eventfd and timerfd are host fds in the guest's fd table (their flag bits —
 * CLOEXEC = O_CLOEXEC, NONBLOCK = O_NONBLOCK — and struct itimerspec are the same on arm64 and x86_64); reads
 * of them go through read(2) (a thread whose read would block parks alone). membarrier: every guest thread of
 * a process runs on one engine, one at a time, so a process-private barrier is already implied; those commands
 * (what glibc and Go use) succeed and QUERY reports them; the global ones are EINVAL (not offered).
 */

import {
  CLOCK_BOOTTIME,
  CLOCK_BOOTTIME_ALARM,
  CLOCK_MONOTONIC,
  CLOCK_REALTIME,
  CLOCK_REALTIME_ALARM,
} from "../abi/clock.ts";
import { EBADF, EFAULT, EINVAL, EPERM } from "../abi/errno.ts";
import { O_CLOEXEC, O_NONBLOCK } from "../abi/fcntl.ts";
import { ITIMERSPEC } from "../abi/timer.ts";
import type { SyscallHandler } from "../context.ts";

const TFD_TIMER_ABSTIME = 1;
const TFD_TIMER_CANCEL_ON_SET = 2;

export const eventfd2: SyscallHandler = (args, ctx) => {
  const flags = args.int(1);
  const EFD_SEMAPHORE = 1;
  if (flags & ~(O_CLOEXEC | O_NONBLOCK | EFD_SEMAPHORE)) return -EINVAL;
  const hostFd = ctx.host.sym.host_eventfd(args.uint(0), flags & ~O_CLOEXEC);
  if (hostFd < 0) return hostFd;
  return ctx.process.adopt(hostFd, (flags & O_CLOEXEC) !== 0, "anon_inode:[eventfd]");
};

export const timerfdCreate: SyscallHandler = (args, ctx) => {
  const clock = args.int(0);
  const flags = args.int(1);
  if (flags & ~(O_CLOEXEC | O_NONBLOCK)) return -EINVAL;
  const known = [CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_REALTIME_ALARM, CLOCK_BOOTTIME_ALARM];
  if (!known.includes(clock)) return -EINVAL;
  const hostFd = ctx.host.sym.host_timerfd_create(clock, flags & ~O_CLOEXEC);
  if (hostFd < 0) return hostFd;
  return ctx.process.adopt(hostFd, (flags & O_CLOEXEC) !== 0, "anon_inode:[timerfd]");
};

export const timerfdSettime: SyscallHandler = (args, ctx) => {
  const entry = ctx.process.fds.get(args.int(0));
  if (entry === undefined) return -EBADF;
  if (args.int(1) & ~(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET)) return -EINVAL;
  const value = ctx.memory.hostPointer(args.ptr(2), ITIMERSPEC.size, false);
  if (value < 0) return -EFAULT;
  const old = args.ptr(3) === 0 ? 0 : ctx.memory.hostPointer(args.ptr(3), ITIMERSPEC.size, true);
  if (old < 0) return -EFAULT;
  return ctx.host.sym.host_timerfd_settime(entry.hostFd, args.int(1), value, old);
};

export const timerfdGettime: SyscallHandler = (args, ctx) => {
  const entry = ctx.process.fds.get(args.int(0));
  if (entry === undefined) return -EBADF;
  const value = ctx.memory.hostPointer(args.ptr(1), ITIMERSPEC.size, true);
  if (value < 0) return -EFAULT;
  return ctx.host.sym.host_timerfd_gettime(entry.hostFd, value);
};

/** membarrier commands (include/uapi/linux/membarrier.h) this runtime supports. */
const MEMBARRIER_CMD_QUERY = 0;
const MEMBARRIER_CMD_PRIVATE_EXPEDITED = 8;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED = 16;
/** Only the process-private barriers (what glibc and Go use): the global ones would involve other processes. */
const SUPPORTED_MEMBARRIER = MEMBARRIER_CMD_PRIVATE_EXPEDITED | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED;

/** Processes that registered for the private expedited barrier (Linux refuses it unregistered: EPERM). */
const registered = new WeakSet<object>();

export const membarrier: SyscallHandler = (args, ctx) => {
  const command = args.int(0);
  const flags = args.uint(1);
  if (command === MEMBARRIER_CMD_QUERY) return flags === 0 ? SUPPORTED_MEMBARRIER : -EINVAL;
  if (flags !== 0) return -EINVAL;
  if (command === MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) {
    registered.add(ctx.process);
    return 0;
  }
  // The barrier itself holds already: one engine runs every thread of the process.
  if (command === MEMBARRIER_CMD_PRIVATE_EXPEDITED) return registered.has(ctx.process) ? 0 : -EPERM;
  return -EINVAL;
};
