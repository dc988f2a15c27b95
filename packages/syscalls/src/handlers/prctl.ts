/**
 * prctl: the options a Linux task can use on itself, kept in the thread/process state (comm, parent-death
 * signal, dumpable, keepcaps, no_new_privs, timer slack, child subreaper, THP disable, machine-check policy,
 * memory merge) or answered from the host process (the capability bounding set, CAP_SYS_RESOURCE for the
 * privileged ones). Options not done here (seccomp filters, SVE/SME vector lengths, pointer authentication
 * keys, tagged addresses, PR_SET_MM…) answer EINVAL, as a kernel built without them would: programs probe
 * for those that way.
 */
import { EFAULT, EINVAL, EPERM } from "../abi/errno.ts";
import {
  CAP_LAST_CAP,
  DEFAULT_TIMER_SLACK_NS,
  PR_CAPBSET_READ,
  PR_GET_CHILD_SUBREAPER,
  PR_GET_DUMPABLE,
  PR_GET_IO_FLUSHER,
  PR_GET_KEEPCAPS,
  PR_GET_MEMORY_MERGE,
  PR_GET_NAME,
  PR_GET_NO_NEW_PRIVS,
  PR_GET_PDEATHSIG,
  PR_GET_SECCOMP,
  PR_GET_THP_DISABLE,
  PR_GET_TIMERSLACK,
  PR_GET_TIMING,
  PR_MCE_KILL,
  PR_MCE_KILL_CLEAR,
  PR_MCE_KILL_DEFAULT,
  PR_MCE_KILL_GET,
  PR_MCE_KILL_SET,
  PR_SET_CHILD_SUBREAPER,
  PR_SET_DUMPABLE,
  PR_SET_IO_FLUSHER,
  PR_SET_KEEPCAPS,
  PR_SET_MEMORY_MERGE,
  PR_SET_NAME,
  PR_SET_NO_NEW_PRIVS,
  PR_SET_PDEATHSIG,
  PR_SET_THP_DISABLE,
  PR_SET_TIMERSLACK,
  PR_SET_TIMING,
  PR_TASK_PERF_EVENTS_DISABLE,
  PR_TASK_PERF_EVENTS_ENABLE,
  SUID_DUMP_DISABLE,
  SUID_DUMP_USER,
  TASK_COMM_LEN,
} from "../abi/process.ts";
import { CAP_SYS_RESOURCE } from "../abi/resource.ts";
import { NSIG } from "../abi/signal.ts";
import type { SyscallArgs, SyscallContext, SyscallHandler } from "../context.ts";
import { hasCapability, inBoundingSet } from "../host/capabilities.ts";

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
    case PR_GET_KEEPCAPS:
      return thread.keepCaps ? 1 : 0;
    case PR_SET_KEEPCAPS:
      if (arg2 > 1n) return -EINVAL;
      thread.keepCaps = arg2 === 1n;
      return 0;
    case PR_GET_SECCOMP:
      return 0; // no seccomp filter is ever installed on the guest
    case PR_CAPBSET_READ:
      if (arg2 > BigInt(CAP_LAST_CAP)) return -EINVAL;
      return inBoundingSet(Number(arg2), ctx.process.euid) ? 1 : 0;
    case PR_GET_TIMING:
      return 0; // PR_TIMING_STATISTICAL, the only mode
    case PR_SET_TIMING:
      return arg2 === 0n ? 0 : -EINVAL;
    case PR_TASK_PERF_EVENTS_DISABLE:
    case PR_TASK_PERF_EVENTS_ENABLE:
      return 0; // no perf events are ever attached to the guest
    case PR_MCE_KILL_GET:
      if (!restZero(args, 1)) return -EINVAL;
      return thread.machineCheckPolicy;
    case PR_MCE_KILL: {
      if (args.raw(3) !== 0n || args.raw(4) !== 0n) return -EINVAL;
      const policy = args.raw(2);
      if (arg2 === BigInt(PR_MCE_KILL_CLEAR)) thread.machineCheckPolicy = PR_MCE_KILL_DEFAULT;
      else if (arg2 === BigInt(PR_MCE_KILL_SET) && policy <= BigInt(PR_MCE_KILL_DEFAULT))
        thread.machineCheckPolicy = Number(policy);
      else return -EINVAL;
      return 0;
    }
    case PR_SET_THP_DISABLE:
      if (!restZero(args, 2)) return -EINVAL;
      ctx.process.thpDisabled = arg2 !== 0n;
      return 0;
    case PR_GET_THP_DISABLE:
      if (!restZero(args, 1)) return -EINVAL;
      return ctx.process.thpDisabled ? 1 : 0;
    case PR_SET_IO_FLUSHER:
    case PR_GET_IO_FLUSHER:
      // Both need CAP_SYS_RESOURCE; with it, the flag is this task's (never set here).
      if (!hasCapability(CAP_SYS_RESOURCE, ctx.process.euid)) return -EPERM;
      if (!restZero(args, args.int(0) === PR_GET_IO_FLUSHER ? 1 : 2)) return -EINVAL;
      return args.int(0) === PR_GET_IO_FLUSHER ? 0 : arg2 > 1n ? -EINVAL : 0;
    case PR_GET_MEMORY_MERGE:
      if (!restZero(args, 1)) return -EINVAL;
      return ctx.process.memoryMerge ? 1 : 0;
    case PR_SET_MEMORY_MERGE:
      if (!restZero(args, 2)) return -EINVAL;
      if (!hasCapability(CAP_SYS_RESOURCE, ctx.process.euid)) return -EPERM;
      ctx.process.memoryMerge = arg2 !== 0n;
      return 0;
    default:
      return -EINVAL;
  }
};
