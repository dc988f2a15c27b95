/**
 * epoll on the host's epoll: the instance is a host fd in the guest's fd table, registered fds are translated
 * to their host fds, and events are converted between the arm64 struct epoll_event (16 bytes: u32 events, pad,
 * u64 data) and the host's (packed, 12 bytes, on x86_64) in host.c. The data word comes back as given.
 * With several guest threads, a wait that would block parks only its thread (until the epoll fd is readable,
 * which it is exactly when events are pending, or until the timeout).
 */
import { EBADF, EFAULT, EINVAL } from "../abi/errno.ts";
import { O_CLOEXEC } from "../abi/fcntl.ts";
import { POLLIN } from "../abi/poll.ts";
import { TIMESPEC } from "../abi/structs.ts";
import type { SyscallArgs, SyscallContext, SyscallHandler, SyscallResult } from "../context.ts";
import { parkOnFd } from "../proc/threads.ts";
import { readSigmask, withSigmask } from "./poll.ts";

const EPOLL_CTL_DEL = 2;
const EPOLL_EVENT_SIZE = 16;
/** Linux EP_MAX_EVENTS: INT_MAX / sizeof(struct epoll_event). */
const EP_MAX_EVENTS = Math.floor(0x7fff_ffff / EPOLL_EVENT_SIZE);

export const epollCreate1: SyscallHandler = (args, ctx) => {
  const flags = args.int(0);
  if (flags & ~O_CLOEXEC) return -EINVAL;
  const hostFd = ctx.host.sym.host_epoll_create1(0);
  if (hostFd < 0) return hostFd;
  return ctx.process.adopt(hostFd, (flags & O_CLOEXEC) !== 0, "anon_inode:[eventpoll]");
};

export const epollCtl: SyscallHandler = (args, ctx) => {
  const epoll = ctx.process.fds.get(args.int(0));
  const target = ctx.process.fds.get(args.int(2));
  if (epoll === undefined || target === undefined) return -EBADF;
  if (args.int(0) === args.int(2)) return -EINVAL;
  const op = args.int(1);
  let events = 0;
  let data = 0n;
  if (op !== EPOLL_CTL_DEL) {
    const address = args.ptr(3);
    if (!ctx.memory.check(address, EPOLL_EVENT_SIZE, false)) return -EFAULT;
    events = ctx.memory.readU32(address);
    const value = ctx.memory.readU64Big(address + 8);
    if (typeof value === "number") return -EFAULT;
    data = value;
  }
  return ctx.host.sym.host_epoll_ctl(epoll.hostFd, op, target.hostFd, events, data);
};

/** epoll_pwait/epoll_pwait2 with the timeout in ms (-1: none). */
function wait(args: SyscallArgs, ctx: SyscallContext, timeoutMs: number): SyscallResult {
  const epoll = ctx.process.fds.get(args.int(0));
  if (epoll === undefined) return -EBADF;
  const max = args.int(2);
  if (max <= 0 || max > EP_MAX_EVENTS) return -EINVAL;
  const out = ctx.memory.hostPointer(args.ptr(1), max * EPOLL_EVENT_SIZE, true);
  if (out < 0) return -EFAULT;
  const mask = readSigmask(ctx, args.ptr(4), args.ulong(5));
  if (typeof mask === "number") return mask;
  const sym = ctx.host.sym;
  if (ctx.process.threads.size > 1 && timeoutMs !== 0 && mask === null) {
    const ready = sym.host_epoll_wait(epoll.hostFd, out, max, 0);
    if (ready !== 0) return ready;
    return parkOnFd(
      ctx,
      epoll.hostFd,
      POLLIN,
      args.raw(0),
      timeoutMs < 0 ? 0 : performance.now() + timeoutMs,
    );
  }
  return withSigmask(ctx, mask, () => sym.host_epoll_wait(epoll.hostFd, out, max, timeoutMs));
}

export const epollPwait: SyscallHandler = (args, ctx) => wait(args, ctx, args.int(3));

export const epollPwait2: SyscallHandler = (args, ctx) => {
  const address = args.ptr(3);
  if (address === 0) return wait(args, ctx, -1);
  if (!ctx.memory.check(address, TIMESPEC.size, false)) return -EFAULT;
  const sec = ctx.memory.readI64(address + TIMESPEC.sec);
  const nsec = ctx.memory.readI64(address + TIMESPEC.nsec);
  if (sec < 0 || nsec < 0 || nsec >= 1_000_000_000) return -EINVAL;
  return wait(args, ctx, Math.min(sec * 1000 + Math.ceil(nsec / 1e6), 0x7fff_ffff));
};
