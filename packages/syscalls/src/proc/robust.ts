/**
 * Robust futexes at thread death (kernel/futex/core.c exit_robust_list): every futex on the dying thread's
 * robust list (set_robust_list) that it still owns gets FUTEX_OWNER_DIED, keeping FUTEX_WAITERS, and one
 * waiter is woken, so the next pthread_mutex_lock of a robust mutex returns EOWNERDEAD instead of hanging.
 * The pending entry (list_op_pending: a lock or unlock in progress) is handled the same way; an unowned
 * pending futex just gets a wake-up.
 *
 * Waiters may be threads of this process (the runtime's futex queues, while it has several threads) or other
 * processes sharing the memory (a process-shared robust mutex: the host futex on the word's host address), so
 * both are woken.
 */
import {
  FUTEX_OWNER_DIED,
  FUTEX_TID_MASK,
  FUTEX_WAITERS,
  FUTEX_WAKE,
  ROBUST_LIST_LIMIT,
} from "../abi/futex.ts";
import type { Host } from "../host/host.ts";
import type { GuestMemory } from "../memory.ts";
import type { ThreadState } from "../process.ts";

/** What the walk needs: guest memory, the host (its futex), and a way to wake this process's own waiters. */
export interface RobustListContext {
  memory: GuestMemory;
  host: Host;
  /** Wake up to `count` of this process's threads waiting on `address`; returns how many. */
  wakeLocal(address: number, count: number): number;
}

/** Wake one waiter of the futex word at `address`, here or in another process. */
function wakeOne(context: RobustListContext, address: number): void {
  if (context.wakeLocal(address, 1) > 0) return;
  const hostAddress = context.memory.hostPointer(address, 4, false);
  if (hostAddress >= 0) context.host.sym.host_futex(hostAddress, FUTEX_WAKE, 1, 0, 0, 0);
}

/** handle_futex_death: false stops the walk (a misaligned or unreadable word). */
function futexDeath(context: RobustListContext, address: number, tid: number, pending: boolean, pi: boolean) {
  const { memory } = context;
  if (address % 4 !== 0 || !memory.check(address, 4, false)) return false;
  const value = memory.readU32(address);
  if (pending && !pi && value === 0) {
    wakeOne(context, address);
    return true;
  }
  if ((value & FUTEX_TID_MASK) !== tid) return true;
  if (!memory.check(address, 4, true)) return false;
  memory.writeU32(address, ((value & FUTEX_WAITERS) | FUTEX_OWNER_DIED) >>> 0);
  if (!pi && value & FUTEX_WAITERS) wakeOne(context, address);
  return true;
}

/** The 64-bit pointer at `address` (bit 0: the entry is a PI futex), or null if unreadable. */
function fetchEntry(memory: GuestMemory, address: number): { entry: number; pi: boolean } | null {
  if (!memory.check(address, 8, false)) return null;
  const raw = memory.readU64(address);
  return { entry: raw - (raw % 2), pi: raw % 2 === 1 };
}

/** exit_robust_list for `thread` (it is dying, or exec'ing); its list is forgotten afterwards. */
export function exitRobustList(context: RobustListContext, thread: ThreadState): void {
  const head = thread.robustListHead;
  thread.robustListHead = 0;
  if (head === 0) return;
  const { memory } = context;
  // struct robust_list_head { struct robust_list *next; long futex_offset; struct robust_list *list_op_pending; }
  const first = fetchEntry(memory, head);
  if (first === null || !memory.check(head + 8, 16, false)) return;
  const futexOffset = memory.readI64(head + 8);
  const pending = fetchEntry(memory, head + 16);
  if (pending === null) return;
  let { entry, pi } = first;
  for (let limit = ROBUST_LIST_LIMIT; entry !== head && limit > 0; limit--) {
    const next = fetchEntry(memory, entry);
    if (entry !== pending.entry && !futexDeath(context, entry + futexOffset, thread.tid, false, pi)) return;
    if (next === null) return;
    ({ entry, pi } = next);
  }
  if (pending.entry !== 0) futexDeath(context, pending.entry + futexOffset, thread.tid, true, pending.pi);
}
