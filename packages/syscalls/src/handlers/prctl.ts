/**
 * prctl: the options a Linux task can use on itself without privileges, kept in the thread/process state
 * (comm, parent-death signal, dumpable, no_new_privs, timer slack, child subreaper). Everything else is
 * -EINVAL, which is what Linux answers for an option it does not know or a feature it was built without.
 */
import { EFAULT, EINVAL } from "../abi/errno.ts";
import {
  DEFAULT_TIMER_SLACK_NS,
  PR_GET_CHILD_SUBREAPER,
  PR_GET_DUMPABLE,
  PR_GET_NAME,
  PR_GET_NO_NEW_PRIVS,
  PR_GET_PDEATHSIG,
  PR_GET_TIMERSLACK,
  PR_SET_CHILD_SUBREAPER,
  PR_SET_DUMPABLE,
  PR_SET_NAME,
  PR_SET_NO_NEW_PRIVS,
  PR_SET_PDEATHSIG,
  PR_SET_TIMERSLACK,
  SUID_DUMP_DISABLE,
  SUID_DUMP_USER,
  TASK_COMM_LEN,
} from "../abi/process.ts";
import { NSIG } from "../abi/signal.ts";
import type { SyscallArgs, SyscallContext, SyscallHandler } from "../context.ts";

/** strncpy_from_user(comm, arg, 15): stops at a NUL or after 15 bytes; a fault before either is EFAULT. */
function setName(ctx: SyscallContext, address: number): number {
  const name = new Uint8Array(TASK_COMM_LEN - 1);
  for (let i = 0; i < name.length; i++) {
    const byte = ctx.memory.readU8(address + i);
    if (byte < 0) return -EFAULT;
    if (byte === 0) break;
    name[i] = byte;
  }
  ctx.process.currentThread.setComm(name);
  return 0;
}

/** Arguments 2..5 are all zero (options that take none insist on it). */
function restZero(args: SyscallArgs, from: number): boolean {
  for (let i = from; i <= 4; i++) if (args.raw(i) !== 0n) return false;
  return true;
}

export const prctl: SyscallHandler = (args, ctx) => {
  const thread = ctx.process.currentThread;
  const arg2 = args.raw(1);
  switch (args.int(0)) {
    case PR_SET_PDEATHSIG:
      if (arg2 > BigInt(NSIG)) return -EINVAL;
      thread.parentDeathSignal = Number(arg2);
      return 0;
    case PR_GET_PDEATHSIG:
      return Math.min(ctx.memory.writeU32(args.ptr(1), thread.parentDeathSignal), 0);
    case PR_GET_DUMPABLE:
      return ctx.process.dumpable;
    case PR_SET_DUMPABLE:
      if (arg2 !== BigInt(SUID_DUMP_DISABLE) && arg2 !== BigInt(SUID_DUMP_USER)) return -EINVAL;
      ctx.process.dumpable = Number(arg2);
      return 0;
    case PR_SET_NAME:
      return setName(ctx, args.ptr(1));
    case PR_GET_NAME:
      return Math.min(ctx.memory.writeBytes(args.ptr(1), thread.comm), 0);
    case PR_SET_TIMERSLACK:
      // 0 restores the default.
      thread.timerSlackNs = arg2 === 0n ? DEFAULT_TIMER_SLACK_NS : Number(arg2);
      return 0;
    case PR_GET_TIMERSLACK:
      return thread.timerSlackNs;
    case PR_SET_CHILD_SUBREAPER:
      ctx.process.childSubreaper = arg2 !== 0n;
      return 0;
    case PR_GET_CHILD_SUBREAPER:
      return Math.min(ctx.memory.writeU32(args.ptr(1), ctx.process.childSubreaper ? 1 : 0), 0);
    case PR_SET_NO_NEW_PRIVS:
      if (arg2 !== 1n || !restZero(args, 2)) return -EINVAL;
      thread.noNewPrivs = true;
      return 0;
    case PR_GET_NO_NEW_PRIVS:
      if (!restZero(args, 1)) return -EINVAL;
      return thread.noNewPrivs ? 1 : 0;
    default:
      return -EINVAL;
  }
};
