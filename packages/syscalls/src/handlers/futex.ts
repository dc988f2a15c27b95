/**
 * futex(2) on the host's futex: a guest futex word lives in this process's memory (its host address is the
 * slab base plus the guest address), and a MAP_SHARED guest mapping is a host shared mapping, so waits and
 * wakes between guest processes meet in the host kernel exactly as they would in Linux. Pointer arguments
 * are checked against the guest's mappings first (EFAULT), alignment as Linux checks it (EINVAL).
 * PI futexes need the kernel to know guest thread ids as owners: refused with ENOSYS (said under --trace).
 */

import { EAGAIN, EFAULT, EINVAL, ENOSYS } from "../abi/errno.ts";
import {
  FUTEX_CMD_MASK,
  FUTEX_CMP_REQUEUE,
  FUTEX_PRIVATE_FLAG,
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

/** FUTEX_OP_XOR, the last of FUTEX_WAKE_OP's operations (SET, ADD, OR, ANDN, XOR). */
const FUTEX_OP_XOR = 4;

/** arm64 user addresses are below 2^48 (TASK_SIZE with 48-bit VAs): a key beyond it is EFAULT. */
const USER_ADDRESS_LIMIT = 2 ** 48;

export const futex: SyscallHandler = (args, ctx) => {
  const uaddr = args.ptr(0);
  const op = args.int(1);
  const command = op & FUTEX_CMD_MASK;
  if (uaddr % 4 !== 0) return -EINVAL;
  if (command === FUTEX_REQUEUE || command === FUTEX_CMP_REQUEUE) return requeue(args, ctx, op, uaddr);
  const memory = ctx.memory;
  const isPrivate = (op & FUTEX_PRIVATE_FLAG) !== 0;
  // The bitset is checked before the address (futex_wait / futex_wake).
  if ((command === FUTEX_WAIT_BITSET || command === FUTEX_WAKE_BITSET) && args.uint(5) === 0) return -EINVAL;
  const word = memory.hostPointer(uaddr, 4, false);
  if (word < 0) {
    // A private futex's key is the address alone: waking at an address with nothing readable behind it is not
    // a fault, there is just nobody to wake (this single thread is the only one that could wait).
    const wake = command === FUTEX_WAKE || command === FUTEX_WAKE_BITSET;
    if (isPrivate && wake && uaddr + 4 <= USER_ADDRESS_LIMIT) return 0;
    if (!(isPrivate && command === FUTEX_WAKE_OP)) return -EFAULT;
  }
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
    case FUTEX_WAKE_OP: {
      // The fourth argument is a count here (val2), not a pointer; the operation writes uaddr2.
      fourth = args.uint(3);
      const uaddr2 = args.ptr(4);
      if (uaddr2 % 4 !== 0) return -EINVAL;
      second = memory.hostPointer(uaddr2, 4, true);
      if (second < 0 && !isPrivate) return -EFAULT; // a shared key needs a mapping
      // futex_atomic_op_inuser refuses an unknown operation before it touches uaddr2.
      if (((args.uint(5) >>> 28) & 7) > FUTEX_OP_XOR) return -ENOSYS;
      if (second < 0) return -EFAULT;
      // A private uaddr with nothing readable behind it: the operation on uaddr2 happens, nobody is woken there.
      if (word < 0) return ctx.host.sym.host_futex(second, op, 0, fourth, second, args.uint(5));
      break;
    }
    default:
      return -ENOSYS;
  }
  return ctx.host.sym.host_futex(word, op, args.uint(2), fourth, second, args.uint(5));
};

/**
 * FUTEX_REQUEUE / FUTEX_CMP_REQUEUE in futex_requeue's order: negative counts, the two keys (a shared key needs
 * a mapping: EFAULT; a private one is just the address; a requeue onto itself is allowed), then CMP's value.
 */
function requeue(
  args: Parameters<SyscallHandler>[0],
  ctx: Parameters<SyscallHandler>[1],
  op: number,
  uaddr: number,
): number {
  if ((args.uint(2) | 0) < 0 || (args.uint(3) | 0) < 0) return -EINVAL;
  const memory = ctx.memory;
  const isPrivate = (op & FUTEX_PRIVATE_FLAG) !== 0;
  const word = memory.hostPointer(uaddr, 4, false);
  if (word < 0 && (!isPrivate || uaddr + 4 > USER_ADDRESS_LIMIT)) return -EFAULT;
  const uaddr2 = args.ptr(4);
  if (uaddr2 % 4 !== 0) return -EINVAL;
  const second = memory.hostPointer(uaddr2, 4, false);
  if (second < 0 && (!isPrivate || uaddr2 + 4 > USER_ADDRESS_LIMIT)) return -EFAULT;
  if ((op & FUTEX_CMD_MASK) === FUTEX_CMP_REQUEUE) {
    if (word < 0) return -EFAULT;
    if (memory.readU32(uaddr) !== args.uint(5)) return -EAGAIN;
  }
  // A private key with nothing readable behind it has no waiters (this single thread is the only one).
  if (word < 0 || second < 0) return 0;
  return ctx.host.sym.host_futex(word, op, args.uint(2), args.uint(3), second, args.uint(5));
}
