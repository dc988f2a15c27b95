/**
 * ppoll (73) and pselect6 (72) over the guest's fds: the guest's pollfd array / fd_sets are translated to host
 * fds, the host's raw ppoll/pselect6 waits (remaining time written back as Linux's poll_select_finish does),
 * and the results are translated back. The optional signal mask replaces the thread's blocked mask for the
 * duration of the wait (set_user_sigmask) and is restored afterwards.
 */
import { ptr } from "bun:ffi";
import { EBADF, EFAULT, EINTR, EINVAL } from "../abi/errno.ts";
import {
  FD_SET_WORD_BITS,
  NR_OPEN_DEFAULT,
  NSEC_PER_SEC,
  POLLFD,
  POLLIN,
  POLLNVAL,
  POLLOUT,
  POLLPRI,
  POLLRDBAND,
  POLLRDNORM,
  POLLWRBAND,
  POLLWRNORM,
  SIGSET_ARGPACK,
} from "../abi/poll.ts";
import { SIGSET_SIZE, UNBLOCKABLE_MASK } from "../abi/signal.ts";
import { TIMESPEC } from "../abi/structs.ts";
import type { SyscallContext, SyscallHandler } from "../context.ts";
import { SCRATCH_GENERAL, SCRATCH_GENERAL_SIZE } from "../host/host.ts";
import { deadlineOf, parkOnPoll } from "../proc/threads.ts";

/** Scratch layout: the timespec in transit, a zero timespec, then the host pollfd array or fd_sets. */
const SCRATCH_TIMEOUT = SCRATCH_GENERAL;
const SCRATCH_ZERO_TIMEOUT = SCRATCH_GENERAL + TIMESPEC.size;
const SCRATCH_ARRAY = SCRATCH_GENERAL + 2 * TIMESPEC.size;
const SCRATCH_ARRAY_SIZE = SCRATCH_GENERAL_SIZE - 2 * TIMESPEC.size;

/** A timeout copied into scratch: its host address (0 = none, wait forever) and whether it was zero. */
interface Timeout {
  host: number;
  zero: boolean;
}

/** get_timespec64 + poll_select_set_timeout: EFAULT when unreadable, EINVAL for a negative or bad timespec. */
function readTimeout(ctx: SyscallContext, address: number): Timeout | number {
  if (address === 0) return { host: 0, zero: false };
  const bytes = ctx.memory.viewBytes(address, TIMESPEC.size, false);
  if (typeof bytes === "number") return -EFAULT;
  const host = ctx.host;
  host.scratch.set(bytes, SCRATCH_TIMEOUT);
  const sec = host.scratchView.getBigInt64(SCRATCH_TIMEOUT + TIMESPEC.sec, true);
  const nsec = host.scratchView.getBigUint64(SCRATCH_TIMEOUT + TIMESPEC.nsec, true);
  if (sec < 0n || nsec >= BigInt(NSEC_PER_SEC)) return -EINVAL;
  return { host: host.scratchAddress + SCRATCH_TIMEOUT, zero: sec === 0n && nsec === 0n };
}

/**
 * poll_select_finish: the remaining time goes back to the guest's timespec unless it was zero; a timespec
 * the guest cannot write is silently left alone (Linux ignores that fault).
 */
function writeBackTimeout(ctx: SyscallContext, address: number, timeout: Timeout): void {
  if (timeout.host === 0 || timeout.zero) return;
  if (!ctx.memory.check(address, TIMESPEC.size, true)) return;
  ctx.memory.writeBytes(address, ctx.host.scratch.subarray(SCRATCH_TIMEOUT, SCRATCH_TIMEOUT + TIMESPEC.size));
}

/** set_user_sigmask: the new blocked mask (SIGKILL/SIGSTOP never blocked), null for none, or -errno. */
export function readSigmask(ctx: SyscallContext, address: number, size: number): bigint | null | number {
  if (address === 0) return null;
  if (size !== SIGSET_SIZE) return -EINVAL;
  const set = ctx.memory.readU64Big(address);
  if (typeof set === "number") return -EFAULT;
  return set & ~UNBLOCKABLE_MASK;
}

/** Runs `wait` with the thread's blocked mask replaced by `mask` (when given), restoring it afterwards. */
export function withSigmask(ctx: SyscallContext, mask: bigint | null, wait: () => number): number {
  if (mask === null) return wait();
  const thread = ctx.process.currentThread;
  const saved = thread.blocked;
  thread.blocked = mask;
  // A signal the new mask lets through is already pending: the wait ends at once (it is delivered on return).
  const result = thread.pending & ~mask ? -EINTR : wait();
  // Interrupted: Linux keeps the temporary mask until the interrupting signal's handler is set up (its frame
  // saves the old mask; see ThreadState.savedMask). Otherwise the old mask comes straight back.
  if (result === -EINTR) thread.savedMask = saved;
  else thread.blocked = saved;
  return result;
}

/** A host buffer of `size` bytes: the scratch array slot when it fits, else a fresh one (large typed arrays live outside the moving heap). */
function hostBuffer(ctx: SyscallContext, size: number): { address: number; bytes: Uint8Array } {
  if (size <= SCRATCH_ARRAY_SIZE) {
    const bytes = ctx.host.scratch.subarray(SCRATCH_ARRAY, SCRATCH_ARRAY + size);
    bytes.fill(0);
    return { address: ctx.host.scratchAddress + SCRATCH_ARRAY, bytes };
  }
  const bytes = new Uint8Array(Math.max(size, 8));
  return { address: ptr(bytes), bytes };
}

type PollWaits = Array<{ fd: number; events: number }>;
/** What select waits for in each of its sets, in poll terms (fs/select.c POLLIN_SET, POLLOUT_SET, POLLEX_SET). */
const SELECT_EVENTS = [POLLIN | POLLRDNORM | POLLRDBAND, POLLOUT | POLLWRNORM | POLLWRBAND, POLLPRI];

/**
 * With other guest threads to run, a wait that would block parks only this thread (proc/threads.ts): not for a
 * zero timeout, nor when the call's mask lets a pending signal through (it ends at once with EINTR).
 */
function mayPark(ctx: SyscallContext, timeout: Timeout, mask: bigint | null): boolean {
  if (ctx.process.threads.size <= 1 || timeout.zero) return false;
  return mask === null || !(ctx.process.currentThread.pending & ~mask);
}

/** How many of the host pollfds at `address` are ready right now. */
function pollNow(ctx: SyscallContext, address: number, count: number): number {
  ctx.host.scratch.fill(0, SCRATCH_ZERO_TIMEOUT, SCRATCH_ZERO_TIMEOUT + TIMESPEC.size);
  return ctx.host.sym.host_ppoll(address, count, ctx.host.scratchAddress + SCRATCH_ZERO_TIMEOUT);
}

/** The (already validated) timeout as a performance.now() deadline (0: none). */
const endOf = (ctx: SyscallContext, timeout: Timeout, address: number): number =>
  timeout.host === 0 ? 0 : deadlineOf(ctx, address, false, false);

/** ppoll(fds, nfds, tsp, sigmask, sigsetsize). */
export const ppoll: SyscallHandler = (args, ctx) => {
  const fdsAddress = args.ptr(0);
  const nfds = args.uint(1);
  const timeoutAddress = args.ptr(2);
  const timeout = readTimeout(ctx, timeoutAddress);
  if (typeof timeout === "number") return timeout;
  const mask = readSigmask(ctx, args.ptr(3), args.ulong(4));
  if (typeof mask === "number") return mask;
  // do_sys_poll: more entries than RLIMIT_NOFILE allows fds is EINVAL; the array must be readable.
  if (nfds > ctx.process.fds.limit) return -EINVAL;
  const size = nfds * POLLFD.size;
  const guest = ctx.memory.viewBytes(fdsAddress, size, false);
  if (typeof guest === "number") return -EFAULT;
  const buffer = hostBuffer(ctx, size);
  const host = new DataView(buffer.bytes.buffer, buffer.bytes.byteOffset, size);
  const view = new DataView(guest.buffer, guest.byteOffset, size);
  let invalid = 0;
  for (let i = 0; i < nfds; i++) {
    const at = i * POLLFD.size;
    const fd = view.getInt32(at + POLLFD.fd, true);
    const entry = fd < 0 ? undefined : ctx.process.fds.get(fd);
    if (fd >= 0 && entry === undefined) invalid++;
    // A negative fd is ignored by the host as by Linux; a closed one is answered here with POLLNVAL.
    host.setInt32(at + POLLFD.fd, entry === undefined ? -1 : entry.hostFd, true);
    host.setInt16(at + POLLFD.events, view.getInt16(at + POLLFD.events, true), true);
  }
  // POLLNVAL counts as an event, so the call must not wait: a zero timeout of our own keeps the guest's.
  let hostTimeout = timeout.host;
  if (invalid > 0) {
    ctx.host.scratch.fill(0, SCRATCH_ZERO_TIMEOUT, SCRATCH_ZERO_TIMEOUT + TIMESPEC.size);
    hostTimeout = ctx.host.scratchAddress + SCRATCH_ZERO_TIMEOUT;
  }
  if (mayPark(ctx, timeout, mask) && invalid === 0 && pollNow(ctx, buffer.address, nfds) === 0) {
    const waits: PollWaits = [];
    for (let i = 0; i < nfds; i++) {
      const fd = host.getInt32(i * POLLFD.size + POLLFD.fd, true);
      if (fd >= 0) waits.push({ fd, events: host.getInt16(i * POLLFD.size + POLLFD.events, true) });
    }
    return parkOnPoll(ctx, waits, args.raw(0), endOf(ctx, timeout, timeoutAddress), timeoutAddress, mask);
  }
  const result = withSigmask(ctx, mask, () => ctx.host.sym.host_ppoll(buffer.address, nfds, hostTimeout));
  if (result < 0) {
    // Interrupted: the time left goes back too (a transparent restart then waits only for that).
    if (result === -EINTR && invalid === 0) writeBackTimeout(ctx, timeoutAddress, timeout);
    return result;
  }
  // Copy back only the revents fields, as Linux does (the array must be writable for that).
  if (!ctx.memory.check(fdsAddress, size, true)) {
    writeBackTimeout(ctx, timeoutAddress, timeout);
    return -EFAULT;
  }
  for (let i = 0; i < nfds; i++) {
    const at = i * POLLFD.size;
    const fd = view.getInt32(at + POLLFD.fd, true);
    const revents =
      fd >= 0 && ctx.process.fds.get(fd) === undefined ? POLLNVAL : host.getInt16(at + POLLFD.revents, true);
    view.setInt16(at + POLLFD.revents, revents, true);
  }
  if (invalid === 0) writeBackTimeout(ctx, timeoutAddress, timeout);
  return result + invalid;
};

/** The size of the guest's fd table as select sees it (fdtable max_fds: 64, then powers of two). */
function maxFds(ctx: SyscallContext): number {
  let highest = -1;
  for (const [fd] of ctx.process.fds.open()) highest = fd;
  let size = NR_OPEN_DEFAULT;
  while (size <= highest) size *= 2;
  return size;
}

/** pselect6(n, inp, outp, exp, tsp, sig) with sig → { sigset_t *ss; size_t ss_len; }. */
export const pselect6: SyscallHandler = (args, ctx) => {
  let setAddress = 0;
  let setLength = 0;
  const argpack = args.ptr(5);
  if (argpack !== 0) {
    const set = ctx.memory.readU64(argpack + SIGSET_ARGPACK.set);
    const length = ctx.memory.readU64(argpack + SIGSET_ARGPACK.length);
    if (set === -EFAULT || length === -EFAULT) return -EFAULT;
    setAddress = set;
    setLength = length;
  }
  const timeoutAddress = args.ptr(4);
  const timeout = readTimeout(ctx, timeoutAddress);
  if (typeof timeout === "number") return timeout;
  const mask = readSigmask(ctx, setAddress, setLength);
  if (typeof mask === "number") return mask;

  // core_sys_select: n < 0 is EINVAL; n is clamped to the fd table; each given set holds ⌈n/64⌉ longs.
  let n = args.int(0);
  if (n < 0) return -EINVAL;
  n = Math.min(n, maxFds(ctx));
  const setBytes = Math.ceil(n / FD_SET_WORD_BITS) * 8;
  const addresses = [args.ptr(1), args.ptr(2), args.ptr(3)];
  const guestSets: Array<Uint8Array | null> = [];
  for (const address of addresses) {
    if (address === 0) {
      guestSets.push(null);
      continue;
    }
    const bytes = ctx.memory.readBytes(address, setBytes);
    if (typeof bytes === "number") return -EFAULT;
    guestSets.push(bytes);
  }
  // max_select_fd: every fd named in any set must be open (EBADF otherwise).
  const wanted: Array<[guestFd: number, hostFd: number]> = [];
  let hostN = 0;
  for (let fd = 0; fd < n; fd++) {
    const byte = fd >> 3;
    const bit = 1 << (fd & 7);
    let named = false;
    for (const set of guestSets) if (set !== null && set[byte]! & bit) named = true;
    if (!named) continue;
    const entry = ctx.process.fds.get(fd);
    if (entry === undefined) return -EBADF;
    wanted.push([fd, entry.hostFd]);
    hostN = Math.max(hostN, entry.hostFd + 1);
  }
  const hostSetBytes = Math.ceil(hostN / FD_SET_WORD_BITS) * 8;
  const buffer = hostBuffer(ctx, hostSetBytes * 3);
  const hostSets = [0, 1, 2].map((i) => buffer.bytes.subarray(i * hostSetBytes, (i + 1) * hostSetBytes));
  for (const [guestFd, hostFd] of wanted) {
    for (let i = 0; i < 3; i++) {
      const set = guestSets[i];
      if (set != null && set[guestFd >> 3]! & (1 << (guestFd & 7))) {
        hostSets[i]![hostFd >> 3]! |= 1 << (hostFd & 7);
      }
    }
  }
  const hostSetAddress = (i: number): number =>
    guestSets[i] === null ? 0 : buffer.address + i * hostSetBytes;
  if (mayPark(ctx, timeout, mask)) {
    // select's POLLIN_SET / POLLOUT_SET / POLLEX_SET, as host poll events.
    const waits: PollWaits = [];
    for (const [guestFd, hostFd] of wanted) {
      let events = 0;
      for (let i = 0; i < 3; i++) {
        const set = guestSets[i];
        if (set != null && set[guestFd >> 3]! & (1 << (guestFd & 7))) events |= SELECT_EVENTS[i]!;
      }
      waits.push({ fd: hostFd, events });
    }
    // Its own buffer: the scratch array holds the host fd_sets the select below still needs.
    const pollfds = new Uint8Array(Math.max(8, waits.length * POLLFD.size));
    const view = new DataView(pollfds.buffer);
    waits.forEach(({ fd, events }, i) => {
      view.setInt32(i * POLLFD.size + POLLFD.fd, fd, true);
      view.setInt16(i * POLLFD.size + POLLFD.events, events, true);
    });
    if (pollNow(ctx, ptr(pollfds), waits.length) === 0)
      return parkOnPoll(ctx, waits, args.raw(0), endOf(ctx, timeout, timeoutAddress), timeoutAddress, mask);
    // Something is ready: the select below answers at once.
  }
  const result = withSigmask(ctx, mask, () =>
    ctx.host.sym.host_pselect(hostN, hostSetAddress(0), hostSetAddress(1), hostSetAddress(2), timeout.host),
  );
  if (result < 0) {
    if (result === -EINTR) writeBackTimeout(ctx, timeoutAddress, timeout);
    return result;
  }
  // The sets come back holding only the ready fds (all clear after a timeout).
  let status = result;
  for (let i = 0; i < 3; i++) {
    const set = guestSets[i];
    if (set === null) continue;
    set.fill(0);
    for (const [guestFd, hostFd] of wanted) {
      if (hostSets[i]![hostFd >> 3]! & (1 << (hostFd & 7))) set[guestFd >> 3]! |= 1 << (guestFd & 7);
    }
    if (ctx.memory.writeBytes(addresses[i]!, set) < 0) status = -EFAULT;
  }
  writeBackTimeout(ctx, timeoutAddress, timeout);
  return status;
};
