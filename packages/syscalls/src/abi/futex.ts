/** futex(2) operations and flags (include/uapi/linux/futex.h): identical on arm64 and x86_64. */
export const FUTEX_WAIT = 0;
export const FUTEX_WAKE = 1;
export const FUTEX_FD = 2;
export const FUTEX_REQUEUE = 3;
export const FUTEX_CMP_REQUEUE = 4;
export const FUTEX_WAKE_OP = 5;
export const FUTEX_LOCK_PI = 6;
export const FUTEX_UNLOCK_PI = 7;
export const FUTEX_TRYLOCK_PI = 8;
export const FUTEX_WAIT_BITSET = 9;
export const FUTEX_WAKE_BITSET = 10;
export const FUTEX_WAIT_REQUEUE_PI = 11;
export const FUTEX_CMP_REQUEUE_PI = 12;
export const FUTEX_LOCK_PI2 = 13;
export const FUTEX_PRIVATE_FLAG = 128;
export const FUTEX_CLOCK_REALTIME = 256;
export const FUTEX_CMD_MASK = ~(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
/** The only commands FUTEX_CLOCK_REALTIME may go with (do_futex: anything else is ENOSYS). */
export const FUTEX_REALTIME_COMMANDS: ReadonlySet<number> = new Set([
  FUTEX_WAIT_BITSET,
  FUTEX_WAIT_REQUEUE_PI,
  FUTEX_LOCK_PI2,
]);
/** Robust futex word bits (include/uapi/linux/futex.h) and the kernel's list walk limit. */
export const FUTEX_WAITERS = 0x8000_0000;
export const FUTEX_OWNER_DIED = 0x4000_0000;
export const FUTEX_TID_MASK = 0x3fff_ffff;
export const ROBUST_LIST_LIMIT = 2048;
/** futex2 flags (futex_waitv's per-futex flags) and struct futex_waitv { u64 val; u64 uaddr; u32 flags; u32 rsvd; }. */
export const FUTEX2_SIZE_U32 = 0x02;
export const FUTEX2_SIZE_MASK = 0x03;
export const FUTEX2_NUMA = 0x04;
export const FUTEX2_MPOL = 0x08;
export const FUTEX2_PRIVATE = FUTEX_PRIVATE_FLAG;
export const FUTEX2_VALID_MASK = FUTEX2_SIZE_MASK | FUTEX2_NUMA | FUTEX2_MPOL | FUTEX2_PRIVATE;
export const FUTEX_WAITV_MAX = 128;
export const FUTEX_WAITV = { val: 0, uaddr: 8, flags: 16, reserved: 20, size: 24 } as const;
