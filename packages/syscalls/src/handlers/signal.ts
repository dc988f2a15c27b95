/** Signal state syscalls: the action table and the per-thread blocked mask (delivery is the runtime's). */
import { EFAULT, EINVAL } from "../abi/errno.ts";
import {
  NSIG,
  SA_EXPOSE_TAGBITS,
  SA_NOCLDSTOP,
  SA_NOCLDWAIT,
  SA_NODEFER,
  SA_ONSTACK,
  SA_RESETHAND,
  SA_RESTART,
  SA_RESTORER,
  SA_SIGINFO,
  SIG_BLOCK,
  SIG_DFL,
  SIG_IGN,
  SIG_SETMASK,
  SIG_UNBLOCK,
  SIGACTION,
  SIGCHLD,
  SIGKILL,
  SIGSET_SIZE,
  SIGSTOP,
  UNBLOCKABLE_MASK,
} from "../abi/signal.ts";
import type { SyscallHandler } from "../context.ts";
import { defaultAction } from "../signals/abi.ts";

/** sa_flags bits the arm64 kernel keeps (UAPI_SA_FLAGS); unknown bits are cleared so SA_UNSUPPORTED probing works. */
const UAPI_SA_FLAGS = BigInt(
  SA_NOCLDSTOP |
    SA_NOCLDWAIT |
    SA_SIGINFO |
    SA_ONSTACK |
    SA_RESTART |
    SA_NODEFER |
    SA_RESETHAND |
    SA_EXPOSE_TAGBITS |
    SA_RESTORER,
);

export const rtSigaction: SyscallHandler = (args, ctx) => {
  if (args.ulong(3) !== SIGSET_SIZE) return -EINVAL;
  const signal = args.int(0);
  const actAddress = args.ptr(1);
  const oldAddress = args.ptr(2);
  const memory = ctx.memory;
  let act: DataView | null = null;
  if (actAddress !== 0) {
    const bytes = memory.viewBytes(actAddress, SIGACTION.size, false);
    if (typeof bytes === "number") return bytes;
    act = new DataView(bytes.buffer, bytes.byteOffset, SIGACTION.size);
  }
  if (signal < 1 || signal > NSIG) return -EINVAL;
  if (act !== null && (signal === SIGKILL || signal === SIGSTOP)) return -EINVAL;
  const actions = ctx.process.signalActions;
  let old: Uint8Array | null = null;
  if (oldAddress !== 0) {
    old = new Uint8Array(SIGACTION.size);
    actions.read(signal, new DataView(old.buffer));
  }
  if (act !== null) {
    const handler = act.getBigUint64(SIGACTION.handler, true);
    actions.write(
      signal,
      handler,
      act.getBigUint64(SIGACTION.flags, true) & UAPI_SA_FLAGS,
      act.getBigUint64(SIGACTION.restorer, true),
      act.getBigUint64(SIGACTION.mask, true) & ~UNBLOCKABLE_MASK,
    );
    if (signal === SIGCHLD) ctx.process.childSignalChanged();
    // An action that ignores the signal drops its pending instances, blocked or not (POSIX; do_sigaction).
    if (handler === SIG_IGN || (handler === SIG_DFL && defaultAction(signal) === "ignore"))
      ctx.process.discardPendingSignal(signal);
  }
  if (old !== null) {
    const w = memory.writeBytes(oldAddress, old);
    if (w < 0) return w;
  }
  return 0;
};

export const rtSigprocmask: SyscallHandler = (args, ctx) => {
  if (args.ulong(3) !== SIGSET_SIZE) return -EINVAL;
  const thread = ctx.process.currentThread;
  const old = thread.blocked;
  const setAddress = args.ptr(1);
  const oldAddress = args.ptr(2);
  if (setAddress !== 0) {
    const set = ctx.memory.readU64Big(setAddress);
    if (typeof set === "number") return -EFAULT;
    const requested = set & ~UNBLOCKABLE_MASK;
    switch (args.int(0)) {
      case SIG_BLOCK:
        thread.blocked = old | requested;
        break;
      case SIG_UNBLOCK:
        thread.blocked = old & ~requested;
        break;
      case SIG_SETMASK:
        thread.blocked = requested;
        break;
      default:
        return -EINVAL;
    }
  }
  if (oldAddress !== 0) {
    const w = ctx.memory.writeU64(oldAddress, old);
    if (w < 0) return w;
  }
  return 0;
};

/** Pending signals (the thread's and the process's) that are blocked; sizes up to 8 bytes are copied. */
export const rtSigpending: SyscallHandler = (args, ctx) => {
  const size = args.ulong(1);
  if (size > SIGSET_SIZE) return -EINVAL;
  const thread = ctx.process.currentThread;
  const pending = (thread.pending | ctx.process.sharedPending) & thread.blocked;
  const bytes = new Uint8Array(SIGSET_SIZE);
  new DataView(bytes.buffer).setBigUint64(0, pending, true);
  return Math.min(ctx.memory.writeBytes(args.ptr(0), bytes.subarray(0, size)), 0);
};
