/** fd-table syscalls: dup/dup3/fcntl/pipe2/ioctl. Each guest fd owns its own host fd (host dup). */
import { EBADF, EFAULT, EINVAL, ENOTTY } from "../abi/errno.ts";
import {
  F_ADD_SEALS,
  F_DUPFD,
  F_DUPFD_CLOEXEC,
  F_GET_SEALS,
  F_GETFD,
  F_GETFL,
  F_GETLEASE,
  F_GETLK,
  F_GETOWN,
  F_GETPIPE_SZ,
  F_GETSIG,
  F_OFD_GETLK,
  F_OFD_SETLK,
  F_OFD_SETLKW,
  F_SETFD,
  F_SETFL,
  F_SETLEASE,
  F_SETLK,
  F_SETLKW,
  F_SETOWN,
  F_SETPIPE_SZ,
  F_SETSIG,
  FD_CLOEXEC,
  O_CLOEXEC,
  O_DIRECT,
  O_NONBLOCK,
} from "../abi/fcntl.ts";
import {
  FIOCLEX,
  FIONBIO,
  FIONCLEX,
  FIONREAD,
  TCGETS,
  TCSETS,
  TCSETSF,
  TCSETSW,
  TERMIOS_ACTION,
  TIOCGPGRP,
  TIOCGWINSZ,
  TIOCSPGRP,
} from "../abi/ioctl.ts";
import { TERMIOS, WINSIZE } from "../abi/structs.ts";
import type { SyscallContext, SyscallHandler } from "../context.ts";
import { SCRATCH_GENERAL } from "../host/host.ts";

/** O_NOTIFICATION_PIPE (== O_EXCL): accepted by pipe2 only with CONFIG_WATCH_QUEUE; we have no watch queues. */
const PIPE2_FLAGS = O_CLOEXEC | O_NONBLOCK | O_DIRECT;
/** struct flock on 64-bit arches (l_type, l_whence, l_start, l_len, l_pid): 32 bytes, same on arm64 and x86_64. */
const FLOCK_SIZE = 32;
/** Host fds the guest owns are numbered from here, away from the runtime's stdio. */
const HOST_FD_MIN = 3;

/** New guest fd (lowest free >= min) for a host dup of `hostFd`. */
function duplicate(ctx: SyscallContext, hostFd: number, cloexec: boolean, path: string, min: number): number {
  const free = ctx.process.fds.peek(min);
  if (free < 0) return free;
  const copy = ctx.host.sym.host_dup_min(hostFd, HOST_FD_MIN);
  if (copy < 0) return copy;
  return ctx.process.adopt(copy, cloexec, path, min);
}

export const dup: SyscallHandler = (args, ctx) => {
  const entry = ctx.process.fds.get(args.int(0));
  if (entry === undefined) return -EBADF;
  return duplicate(ctx, entry.hostFd, false, entry.path, 0);
};

export const dup3: SyscallHandler = (args, ctx) => {
  const oldfd = args.int(0);
  const newfd = args.int(1);
  const flags = args.int(2);
  if (flags & ~O_CLOEXEC) return -EINVAL;
  if (oldfd === newfd) return -EINVAL;
  const fds = ctx.process.fds;
  if (newfd < 0 || newfd >= fds.limit) return -EBADF;
  const entry = fds.get(oldfd);
  if (entry === undefined) return -EBADF;
  const copy = ctx.host.sym.host_dup_min(entry.hostFd, HOST_FD_MIN);
  if (copy < 0) return copy;
  const replaced = fds.install(newfd, { hostFd: copy, cloexec: (flags & O_CLOEXEC) !== 0, path: entry.path });
  if (replaced !== undefined) ctx.host.sym.host_close(replaced.hostFd);
  return newfd;
};

export const fcntl: SyscallHandler = (args, ctx) => {
  const fd = args.int(0);
  const entry = ctx.process.fds.get(fd);
  if (entry === undefined) return -EBADF;
  const cmd = args.int(1);
  const sym = ctx.host.sym;
  switch (cmd) {
    case F_DUPFD:
    case F_DUPFD_CLOEXEC: {
      const min = args.ulong(2);
      if (min >= ctx.process.fds.limit) return -EINVAL;
      return duplicate(ctx, entry.hostFd, cmd === F_DUPFD_CLOEXEC, entry.path, min);
    }
    case F_GETFD:
      return entry.cloexec ? FD_CLOEXEC : 0;
    case F_SETFD:
      entry.cloexec = (args.int(2) & FD_CLOEXEC) !== 0;
      return 0;
    case F_GETFL: {
      const flags = sym.host_fcntl(entry.hostFd, F_GETFL, 0);
      return flags < 0 ? flags : ctx.flags.toGuest(flags);
    }
    case F_SETFL:
      return sym.host_fcntl(entry.hostFd, F_SETFL, ctx.flags.toHost(args.int(2)));
    case F_GETLK:
    case F_SETLK:
    case F_SETLKW:
    case F_OFD_GETLK:
    case F_OFD_SETLK:
    case F_OFD_SETLKW: {
      // struct flock has the same layout on both sides: the host reads/writes the guest's copy in place.
      const flock = ctx.memory.hostPointer(args.ptr(2), FLOCK_SIZE, cmd === F_GETLK || cmd === F_OFD_GETLK);
      if (flock < 0) return flock;
      return sym.host_fcntl(entry.hostFd, cmd, flock);
    }
    case F_SETOWN:
    case F_GETOWN:
    case F_SETSIG:
    case F_GETSIG:
    case F_SETLEASE:
    case F_GETLEASE:
    case F_SETPIPE_SZ:
    case F_GETPIPE_SZ:
    case F_ADD_SEALS:
    case F_GET_SEALS:
      return sym.host_fcntl(entry.hostFd, cmd, args.int(2));
    default:
      return -EINVAL;
  }
};

export const pipe2: SyscallHandler = (args, ctx) => {
  const flags = args.int(1);
  if (flags & ~PIPE2_FLAGS) return -EINVAL;
  const fds = ctx.process.fds;
  const address = args.ptr(0);
  if (!ctx.memory.check(address, 8, true)) return -EFAULT;
  const first = fds.peek();
  if (first < 0) return first;
  const sym = ctx.host.sym;
  const scratch = ctx.host.scratchAddress + SCRATCH_GENERAL;
  const r = sym.host_pipe2(scratch, ctx.flags.toHost(flags & ~O_CLOEXEC));
  if (r < 0) return r;
  const view = ctx.host.scratchView;
  const readEnd = view.getInt32(SCRATCH_GENERAL, true);
  const writeEnd = view.getInt32(SCRATCH_GENERAL + 4, true);
  const cloexec = (flags & O_CLOEXEC) !== 0;
  const readFd = ctx.process.adopt(readEnd, cloexec, "pipe:[read]");
  if (readFd < 0) {
    sym.host_close(writeEnd);
    return readFd;
  }
  const writeFd = ctx.process.adopt(writeEnd, cloexec, "pipe:[write]");
  if (writeFd < 0) {
    sym.host_close(fds.remove(readFd)!.hostFd);
    return writeFd;
  }
  ctx.memory.writeU32(address, readFd);
  ctx.memory.writeU32(address + 4, writeFd);
  return 0;
};

export const ioctl: SyscallHandler = (args, ctx) => {
  const entry = ctx.process.fds.get(args.int(0));
  if (entry === undefined) return -EBADF;
  const request = args.uint(1);
  const argp = args.ptr(2);
  const sym = ctx.host.sym;
  const memory = ctx.memory;
  const scratch = ctx.host.scratchAddress + SCRATCH_GENERAL;
  const scratchBytes = ctx.host.scratch;
  switch (request) {
    case TCGETS:
    case TIOCGWINSZ: {
      const size = request === TCGETS ? TERMIOS.size : WINSIZE.size;
      const r =
        request === TCGETS
          ? sym.host_tcgets(entry.hostFd, scratch)
          : sym.host_tiocgwinsz(entry.hostFd, scratch);
      if (r < 0) return r;
      // Linux x86_64 and arm64 share the kernel termios layout and flag values: a byte copy translates it.
      const w = memory.writeBytes(argp, scratchBytes.subarray(SCRATCH_GENERAL, SCRATCH_GENERAL + size));
      return Math.min(w, 0);
    }
    case TCSETS:
    case TCSETSW:
    case TCSETSF: {
      if (sym.host_isatty(entry.hostFd) !== 1) return -ENOTTY;
      const termios = memory.viewBytes(argp, TERMIOS.size, false);
      if (typeof termios === "number") return termios;
      scratchBytes.set(termios, SCRATCH_GENERAL);
      return sym.host_tcsets(entry.hostFd, TERMIOS_ACTION[request], scratch);
    }
    case TIOCGPGRP: {
      const r = sym.host_tiocgpgrp(entry.hostFd, scratch);
      if (r < 0) return r;
      const w = memory.writeU32(argp, ctx.host.scratchView.getInt32(SCRATCH_GENERAL, true));
      return Math.min(w, 0);
    }
    case TIOCSPGRP: {
      // The guest's processes are host processes: the terminal's foreground group is the host's, for real.
      if (!memory.check(argp, 4, false)) return -EFAULT;
      ctx.host.scratchView.setInt32(SCRATCH_GENERAL, memory.readI32(argp), true);
      return sym.host_tiocspgrp(entry.hostFd, scratch);
    }
    case FIONREAD: {
      const r = sym.host_fionread(entry.hostFd, scratch);
      if (r < 0) return r;
      const w = memory.writeU32(argp, ctx.host.scratchView.getInt32(SCRATCH_GENERAL, true));
      return Math.min(w, 0);
    }
    case FIOCLEX:
    case FIONCLEX:
      entry.cloexec = request === FIOCLEX;
      return 0;
    case FIONBIO: {
      if (!memory.check(argp, 4, false)) return -EFAULT;
      const on = memory.readI32(argp) !== 0;
      const flags = sym.host_fcntl(entry.hostFd, F_GETFL, 0);
      if (flags < 0) return flags;
      return sym.host_fcntl(entry.hostFd, F_SETFL, on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK);
    }
    default:
      return -ENOTTY;
  }
};
