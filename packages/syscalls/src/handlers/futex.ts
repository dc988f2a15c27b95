/**
 * futex(2) on the host's futex: a guest futex word lives in this process's memory (its host address is the
 * slab base plus the guest address), and a MAP_SHARED guest mapping is a host shared mapping, so waits and
 * wakes between guest processes meet in the host kernel exactly as they would in Linux. Pointer arguments
 * are checked against the guest's mappings first (EFAULT), alignment as Linux checks it (EINVAL).
 * PI futexes need the kernel to know guest thread ids as owners: refused with ENOSYS (said under --trace).
 */

import { EFAULT, EINVAL, ENOSYS } from "../abi/errno.ts";
import {
  FUTEX_CMD_MASK,
  FUTEX_CMP_REQUEUE,
  FUTEX_REQUEUE,
  FUTEX_WAIT,
  FUTEX_WAIT_BITSET,
  FUTEX_WAKE,
  FUTEX_WAKE_BITSET,
  FUTEX_WAKE_OP,
} from "../abi/futex.ts";
import { TIMESPEC } from "../abi/structs.ts";
import type { SyscallHandler } from "../context.ts";
import { finishRelativeWait, relativeWait } from "./time.ts";

export const futex: SyscallHandler = (args, ctx) => {
  const uaddr = args.ptr(0);
  const op = args.int(1);
  const command = op & FUTEX_CMD_MASK;
  if (uaddr % 4 !== 0) return -EINVAL;
  const memory = ctx.memory;
  const word = memory.hostPointer(uaddr, 4, false);
  if (word < 0) return -EFAULT;
  let fourth = 0;
  let second = 0;
  switch (command) {
    case FUTEX_WAIT:
    case FUTEX_WAIT_BITSET: {
      const timeout = args.ptr(3);
      if (timeout !== 0) {
        fourth = memory.hostPointer(timeout, TIMESPEC.size, false);
        if (fourth < 0) return -EFAULT;
        // FUTEX_WAIT's timeout is relative: a transparent restart waits only for the time left.
        if (command === FUTEX_WAIT) {
          fourth = relativeWait(ctx, timeout, fourth);
          return finishRelativeWait(
            ctx,
            ctx.host.sym.host_futex(word, op, args.uint(2), fourth, 0, args.uint(5)),
          );
        }
      }
      break;
    }
    case FUTEX_WAKE:
    case FUTEX_WAKE_BITSET:
      break;
    case FUTEX_REQUEUE:
    case FUTEX_CMP_REQUEUE:
    case FUTEX_WAKE_OP: {
      // The fourth argument is a count here (val2), not a pointer.
      fourth = args.uint(3);
      const uaddr2 = args.ptr(4);
      if (uaddr2 % 4 !== 0) return -EINVAL;
      second = memory.hostPointer(uaddr2, 4, command === FUTEX_WAKE_OP);
      if (second < 0) return -EFAULT;
      break;
    }
    default:
      return -ENOSYS;
  }
  return ctx.host.sym.host_futex(word, op, args.uint(2), fourth, second, args.uint(5));
};
