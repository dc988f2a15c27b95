/** read/write and friends: guest buffers go to the host as pointers into guest memory (zero copy). */
import { EBADF, EFAULT, EINVAL, ENOSYS } from "../abi/errno.ts";
import { CLOSE_RANGE_CLOEXEC, CLOSE_RANGE_UNSHARE } from "../abi/fcntl.ts";
import { IOVEC, UIO_MAXIOV } from "../abi/structs.ts";
import type { SyscallHandler } from "../context.ts";
import { SCRATCH_GENERAL } from "../host/host.ts";

/** Linux MAX_RW_COUNT: one read/write moves at most INT_MAX rounded down to a page. */
const MAX_RW_COUNT = 0x7fff_f000;

/**
 * read/write/pread64/pwrite64: the guest buffer goes to the host call in place, cut at the first page the guest
 * cannot access in the needed direction (EFAULT only when nothing of it is accessible), as Linux does.
 * `positioned`: the p* variants, whose offset (argument 3) must not be negative.
 */
function transfer(
  args: Parameters<SyscallHandler>[0],
  ctx: Parameters<SyscallHandler>[1],
  intoGuest: boolean,
  positioned: boolean,
): number {
  // ksys_pread64/pwrite64 check the offset before the fd.
  const offset = positioned ? args.long(3) : 0;
  if (offset < 0) return -EINVAL;
  const entry = ctx.process.fds.get(args.int(0));
  if (entry === undefined) return -EBADF;
  const buf = args.ptr(1);
  const count = Math.min(args.ulong(2), MAX_RW_COUNT);
  const length = ctx.memory.accessiblePrefix(buf, count, intoGuest);
  if (length === 0 && count > 0) return -EFAULT;
  const address = ctx.memory.hostAddress + (length === 0 ? 0 : buf);
  const host = ctx.host.sym;
  if (positioned) {
    return intoGuest
      ? host.host_pread(entry.hostFd, address, length, offset)
      : host.host_pwrite(entry.hostFd, address, length, offset);
  }
  return intoGuest
    ? host.host_read(entry.hostFd, address, length)
    : host.host_write(entry.hostFd, address, length);
}

export const read: SyscallHandler = (args, ctx) => transfer(args, ctx, true, false);
export const write: SyscallHandler = (args, ctx) => transfer(args, ctx, false, false);
export const pread64: SyscallHandler = (args, ctx) => transfer(args, ctx, true, true);
export const pwrite64: SyscallHandler = (args, ctx) => transfer(args, ctx, false, true);

/**
 * Builds the host iovec array in scratch from the guest's: each guest base becomes a host pointer.
 * Returns the number of host iovecs, or -errno. Like Linux, the transfer stops at the first segment
 * that is not (fully) accessible; only a fault before any byte is an EFAULT.
 */
function buildIovec(
  args: Parameters<SyscallHandler>[0],
  ctx: Parameters<SyscallHandler>[1],
  write: boolean,
): number {
  const iov = args.ptr(1);
  const count = args.int(2);
  if (count < 0 || count > UIO_MAXIOV) return -EINVAL;
  if (count === 0) return 0;
  const memory = ctx.memory;
  if (!memory.check(iov, count * IOVEC.size, false)) return -EFAULT;
  const view = ctx.host.scratchView;
  let total = 0;
  let segments = 0;
  let faulted = false;
  // Linux validates every length before moving a byte: a total beyond SSIZE_MAX is EINVAL.
  for (let i = 0; i < count; i++) {
    const length = memory.readU64(iov + i * IOVEC.size + IOVEC.len);
    total += length;
    if (!(total <= Number.MAX_SAFE_INTEGER)) return -EINVAL;
  }
  for (let i = 0; i < count && !faulted; i++) {
    const base = memory.readU64(iov + i * IOVEC.size + IOVEC.base);
    let length = memory.readU64(iov + i * IOVEC.size + IOVEC.len);
    if (length === 0) continue;
    const usable = memory.accessiblePrefix(base, length, !write);
    if (usable < length) {
      faulted = true;
      length = usable;
      if (length === 0) break;
    }
    const at = SCRATCH_GENERAL + segments * IOVEC.size;
    writeU64(view, at + IOVEC.base, memory.hostAddress + base);
    writeU64(view, at + IOVEC.len, length);
    segments++;
  }
  if (segments === 0 && faulted) return -EFAULT;
  return segments;
}

function writeU64(view: DataView, at: number, value: number): void {
  view.setUint32(at, value >>> 0, true);
  view.setUint32(at + 4, Math.floor(value / 0x1_0000_0000), true);
}

export const readv: SyscallHandler = (args, ctx) => {
  const entry = ctx.process.fds.get(args.int(0));
  if (entry === undefined) return -EBADF;
  const segments = buildIovec(args, ctx, false);
  if (segments < 0) return segments;
  return ctx.host.sym.host_readv(entry.hostFd, ctx.host.scratchAddress + SCRATCH_GENERAL, segments);
};

export const writev: SyscallHandler = (args, ctx) => {
  const entry = ctx.process.fds.get(args.int(0));
  if (entry === undefined) return -EBADF;
  const segments = buildIovec(args, ctx, true);
  if (segments < 0) return segments;
  return ctx.host.sym.host_writev(entry.hostFd, ctx.host.scratchAddress + SCRATCH_GENERAL, segments);
};

/**
 * preadv/pwritev (offset in argument 3; arm64 passes it whole, pos_h is unused) and preadv2/pwritev2 (flags in
 * argument 5; an offset of -1 means the file position). As do_preadv: the offset is checked before the fd.
 */
function positionedVector(
  args: Parameters<SyscallHandler>[0],
  ctx: Parameters<SyscallHandler>[1],
  write: boolean,
  withFlags: boolean,
): number {
  const offset = args.long(3);
  if (offset < (withFlags ? -1 : 0)) return -EINVAL;
  const entry = ctx.process.fds.get(args.int(0));
  if (entry === undefined) return -EBADF;
  const segments = buildIovec(args, ctx, write);
  if (segments < 0) return segments;
  const flags = withFlags ? args.int(5) : 0;
  const iov = ctx.host.scratchAddress + SCRATCH_GENERAL;
  return write
    ? ctx.host.sym.host_pwritev2(entry.hostFd, iov, segments, offset, flags)
    : ctx.host.sym.host_preadv2(entry.hostFd, iov, segments, offset, flags);
}

export const preadv: SyscallHandler = (args, ctx) => positionedVector(args, ctx, false, false);
export const pwritev: SyscallHandler = (args, ctx) => positionedVector(args, ctx, true, false);
export const preadv2: SyscallHandler = (args, ctx) => positionedVector(args, ctx, false, true);
export const pwritev2: SyscallHandler = (args, ctx) => positionedVector(args, ctx, true, true);

export const lseek: SyscallHandler = (args, ctx) => {
  const entry = ctx.process.fds.get(args.int(0));
  if (entry === undefined) return -EBADF;
  return ctx.host.sym.host_lseek(entry.hostFd, args.long(1), args.uint(2));
};

export const close: SyscallHandler = (args, ctx) => {
  const entry = ctx.process.fds.remove(args.int(0));
  if (entry === undefined) return -EBADF;
  // The guest fd is gone whatever the host says (Linux frees the number even when close reports EIO).
  const result = ctx.host.sym.host_close(entry.hostFd);
  return result < 0 && result !== -EBADF ? result : 0;
};

/**
 * close_range(first, last, flags): every open fd in [first, last] is closed, or with CLOSE_RANGE_CLOEXEC marked
 * close-on-exec. CLOSE_RANGE_UNSHARE first gives the caller its own fd table: a no-op in a single-threaded
 * process; with threads (which share one table here) it cannot be done, and says ENOSYS.
 */
export const closeRange: SyscallHandler = (args, ctx) => {
  const first = args.uint(0);
  const last = args.uint(1);
  const flags = args.uint(2);
  if (flags & ~(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) || first > last) return -EINVAL;
  if (flags & CLOSE_RANGE_UNSHARE && ctx.process.threads.size > 1) return -ENOSYS;
  for (const [fd, entry] of [...ctx.process.fds.open()]) {
    if (fd < first || fd > last) continue;
    if (flags & CLOSE_RANGE_CLOEXEC) {
      entry.cloexec = true;
    } else {
      ctx.process.fds.remove(fd);
      ctx.host.sym.host_close(entry.hostFd);
    }
  }
  return 0;
};

/** sendfile: both fds are host fds, the optional loff_t stays in guest memory (the host updates it in place). */
export const sendfile: SyscallHandler = (args, ctx) => {
  const input = ctx.process.fds.get(args.int(1));
  const output = ctx.process.fds.get(args.int(0));
  if (input === undefined || output === undefined) return -EBADF;
  const offsetAddress = args.ptr(2);
  const offset = offsetAddress === 0 ? 0 : ctx.memory.hostPointer(offsetAddress, 8, true);
  if (offset < 0) return offset;
  const count = Math.min(args.ulong(3), MAX_RW_COUNT);
  return ctx.host.sym.host_sendfile(output.hostFd, input.hostFd, offset, count);
};
