/** Path and metadata syscalls: *at() calls relative to the guest's dirfds, stat in the arm64 layout. */
import { EBADF, EFAULT, EINVAL, ENOENT, ENOTDIR, ERANGE } from "../abi/errno.ts";
import {
  AT_EACCESS,
  AT_EMPTY_PATH,
  AT_NO_AUTOMOUNT,
  AT_REMOVEDIR,
  AT_SYMLINK_FOLLOW,
  AT_SYMLINK_NOFOLLOW,
  O_CLOEXEC,
  O_CREAT,
  O_DIRECTORY,
  O_PATH,
  O_TMPFILE,
  RENAME_EXCHANGE,
  RENAME_NOREPLACE,
  RENAME_WHITEOUT,
  S_IFDIR,
  S_IFMT,
  X_OK,
} from "../abi/fcntl.ts";
import { STAT, STATFS, STATX, STATX_BASIC_STATS } from "../abi/structs.ts";
import type { SyscallContext, SyscallHandler } from "../context.ts";
import { SCRATCH_GENERAL, SCRATCH_PATH_B } from "../host/host.ts";
import { emptyPath, guestPathText, hostDirFd, hostPath, procSelfLink } from "./paths.ts";

export const openat: SyscallHandler = (args, ctx) => {
  const pathAddress = args.ptr(1);
  const path = hostPath(ctx, pathAddress);
  if (path < 0) return path;
  const dirfd = hostDirFd(ctx, args.int(0), pathAddress);
  if (dirfd < 0 && dirfd !== -100) return dirfd;
  const flags = args.int(2);
  // Linux takes the fd number before opening: a full table fails without creating anything.
  const free = ctx.process.fds.peek();
  if (free < 0) return free;
  const mode = flags & O_CREAT || (flags & O_TMPFILE) === O_TMPFILE ? args.uint(3) & 0o7777 : 0;
  const hostFd = ctx.host.sym.host_openat(dirfd, path, ctx.flags.toHost(flags & ~O_CLOEXEC), mode);
  if (hostFd < 0) return hostFd;
  return ctx.process.adopt(hostFd, (flags & O_CLOEXEC) !== 0, guestPathText(ctx, pathAddress));
};

/** Fills the arm64 struct stat at guest `address` from a host struct statx in scratch. */
function statxToStat(ctx: SyscallContext, address: number): number {
  const memory = ctx.memory;
  if (!memory.check(address, STAT.size, true)) return -EFAULT;
  const sx = ctx.host.scratchView;
  const s = SCRATCH_GENERAL;
  const out = new DataView(memory.bytes.buffer, memory.bytes.byteOffset + address, STAT.size);
  const encodeDev = (major: number, minor: number): bigint =>
    BigInt((minor & 0xff) | ((major & 0xfff) << 8)) |
    (BigInt(minor & ~0xff) << 12n) |
    (BigInt(major & ~0xfff) << 32n);
  out.setBigUint64(
    STAT.dev,
    encodeDev(sx.getUint32(s + STATX.devMajor, true), sx.getUint32(s + STATX.devMinor, true)),
    true,
  );
  out.setBigUint64(STAT.ino, sx.getBigUint64(s + STATX.ino, true), true);
  out.setUint32(STAT.mode, sx.getUint16(s + STATX.mode, true), true);
  out.setUint32(STAT.nlink, sx.getUint32(s + STATX.nlink, true), true);
  out.setUint32(STAT.uid, sx.getUint32(s + STATX.uid, true), true);
  out.setUint32(STAT.gid, sx.getUint32(s + STATX.gid, true), true);
  out.setBigUint64(
    STAT.rdev,
    encodeDev(sx.getUint32(s + STATX.rdevMajor, true), sx.getUint32(s + STATX.rdevMinor, true)),
    true,
  );
  out.setBigUint64(STAT.pad1, 0n, true);
  out.setBigUint64(STAT.size_, sx.getBigUint64(s + STATX.size_, true), true);
  out.setInt32(STAT.blksize, sx.getUint32(s + STATX.blksize, true), true);
  out.setInt32(STAT.pad2, 0, true);
  out.setBigUint64(STAT.blocks, sx.getBigUint64(s + STATX.blocks, true), true);
  for (const [to, from] of [
    [STAT.atime, STATX.atime],
    [STAT.mtime, STATX.mtime],
    [STAT.ctime, STATX.ctime],
  ] as const) {
    out.setBigInt64(to, sx.getBigInt64(s + from, true), true);
    out.setBigUint64(to + 8, BigInt(sx.getUint32(s + from + 8, true)), true);
  }
  out.setUint32(STAT.unused4, 0, true);
  out.setUint32(STAT.unused5, 0, true);
  return 0;
}

function statInto(
  ctx: SyscallContext,
  dirfd: number,
  path: number,
  flags: number,
  statAddress: number,
): number {
  const result = ctx.host.sym.host_statx(
    dirfd,
    path,
    flags,
    STATX_BASIC_STATS,
    ctx.host.scratchAddress + SCRATCH_GENERAL,
  );
  if (result < 0) return result;
  return statxToStat(ctx, statAddress);
}

export const fstat: SyscallHandler = (args, ctx) => {
  const entry = ctx.process.fds.get(args.int(0));
  if (entry === undefined) return -EBADF;
  return statInto(ctx, entry.hostFd, emptyPath(ctx), AT_EMPTY_PATH, args.ptr(1));
};

export const newfstatat: SyscallHandler = (args, ctx) => {
  const flags = args.int(3);
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH)) return -EINVAL;
  const pathAddress = args.ptr(1);
  const path = hostPath(ctx, pathAddress, undefined, (flags & AT_EMPTY_PATH) !== 0);
  if (path < 0) return path;
  const dirfd = hostDirFd(ctx, args.int(0), pathAddress);
  if (dirfd < 0 && dirfd !== -100) return dirfd;
  return statInto(ctx, dirfd, path, flags, args.ptr(2));
};

export const statx: SyscallHandler = (args, ctx) => {
  const flags = args.int(2);
  const pathAddress = args.ptr(1);
  const path = hostPath(ctx, pathAddress, undefined, (flags & AT_EMPTY_PATH) !== 0);
  if (path < 0) return path;
  const dirfd = hostDirFd(ctx, args.int(0), pathAddress);
  if (dirfd < 0 && dirfd !== -100) return dirfd;
  // struct statx is arch-neutral: the host writes it straight into guest memory.
  const buffer = ctx.memory.hostPointer(args.ptr(4), STATX.size, true);
  if (buffer < 0) {
    // Linux reports argument errors before the copy-out fault: ask the host with a scratch buffer.
    const result = ctx.host.sym.host_statx(
      dirfd,
      path,
      flags,
      args.uint(3),
      ctx.host.scratchAddress + SCRATCH_GENERAL,
    );
    return result < 0 ? result : buffer;
  }
  return ctx.host.sym.host_statx(dirfd, path, flags, args.uint(3), buffer);
};

export const getdents64: SyscallHandler = (args, ctx) => {
  const entry = ctx.process.fds.get(args.int(0));
  if (entry === undefined) return -EBADF;
  const buf = args.ptr(1);
  const count = Math.min(args.uint(2), 0x7fff_f000);
  const length = ctx.memory.accessiblePrefix(buf, count, true);
  if (length === 0 && count > 0) return -EFAULT;
  // struct linux_dirent64 is arch-neutral: straight into guest memory.
  return ctx.host.sym.host_getdents64(
    entry.hostFd,
    ctx.memory.hostAddress + (length === 0 ? 0 : buf),
    length,
  );
};

export const readlinkat: SyscallHandler = (args, ctx) => {
  const pathAddress = args.ptr(1);
  const size = args.int(3);
  if (size <= 0) return -EINVAL;
  const path = hostPath(ctx, pathAddress);
  if (path < 0) return path;
  const buf = args.ptr(2);
  const text = ctx.memory.readCString(pathAddress) as string;
  const link = text.startsWith("/proc/") ? procSelfLink(ctx, text) : null;
  if (link !== null && link.kind !== "fd") {
    // The magic links the host cannot answer for us: they would name the runtime.
    const target = new TextEncoder().encode(link.kind === "exe" ? ctx.process.exePath : ctx.process.cwdPath);
    const n = Math.min(target.length, size);
    const r = ctx.memory.writeBytes(buf, target.subarray(0, n));
    return r < 0 ? r : n;
  }
  const dirfd = hostDirFd(ctx, args.int(0), pathAddress);
  if (dirfd < 0 && dirfd !== -100) return dirfd;
  const out = ctx.memory.hostPointer(buf, size, true);
  if (out < 0) {
    const r = ctx.host.sym.host_readlinkat(
      dirfd,
      path,
      ctx.host.scratchAddress + SCRATCH_GENERAL,
      Math.min(size, 0x8000),
    );
    return r < 0 ? r : out;
  }
  return ctx.host.sym.host_readlinkat(dirfd, path, out, size);
};

function access(
  ctx: SyscallContext,
  dirfdArg: number,
  pathAddress: number,
  mode: number,
  flags: number,
): number {
  if (mode & ~7) return -EINVAL;
  if (flags & ~(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) return -EINVAL;
  const path = hostPath(ctx, pathAddress, undefined, (flags & AT_EMPTY_PATH) !== 0);
  if (path < 0) return path;
  const dirfd = hostDirFd(ctx, dirfdArg, pathAddress);
  if (dirfd < 0 && dirfd !== -100) return dirfd;
  return ctx.host.sym.host_faccessat(dirfd, path, mode, flags);
}

export const faccessat: SyscallHandler = (args, ctx) => access(ctx, args.int(0), args.ptr(1), args.int(2), 0);
export const faccessat2: SyscallHandler = (args, ctx) =>
  access(ctx, args.int(0), args.ptr(1), args.int(2), args.int(3));

export const mkdirat: SyscallHandler = (args, ctx) => {
  const pathAddress = args.ptr(1);
  const path = hostPath(ctx, pathAddress);
  if (path < 0) return path;
  const dirfd = hostDirFd(ctx, args.int(0), pathAddress);
  if (dirfd < 0 && dirfd !== -100) return dirfd;
  return ctx.host.sym.host_mkdirat(dirfd, path, args.uint(2) & 0o7777);
};

export const unlinkat: SyscallHandler = (args, ctx) => {
  const flags = args.int(2);
  if (flags & ~AT_REMOVEDIR) return -EINVAL;
  const pathAddress = args.ptr(1);
  const path = hostPath(ctx, pathAddress);
  if (path < 0) return path;
  const dirfd = hostDirFd(ctx, args.int(0), pathAddress);
  if (dirfd < 0 && dirfd !== -100) return dirfd;
  return ctx.host.sym.host_unlinkat(dirfd, path, flags);
};

/**
 * The (olddirfd, oldpath, newdirfd, newpath) arguments 0..3 of renameat/linkat as host values, or -errno.
 * `oldMayBeEmpty`: AT_EMPTY_PATH lets the old path be "" (linkat).
 */
function twoPaths(
  ctx: SyscallContext,
  args: Parameters<SyscallHandler>[0],
  oldMayBeEmpty = false,
): { oldDir: number; oldPath: number; newDir: number; newPath: number } | number {
  const oldAddress = args.ptr(1);
  const newAddress = args.ptr(3);
  const oldPath = hostPath(ctx, oldAddress, undefined, oldMayBeEmpty);
  if (oldPath < 0) return oldPath;
  const newPath = hostPath(ctx, newAddress, SCRATCH_PATH_B);
  if (newPath < 0) return newPath;
  const oldDir = hostDirFd(ctx, args.int(0), oldAddress);
  if (oldDir < 0 && oldDir !== -100) return oldDir;
  const newDir = hostDirFd(ctx, args.int(2), newAddress);
  if (newDir < 0 && newDir !== -100) return newDir;
  return { oldDir, oldPath, newDir, newPath };
}

function rename(ctx: SyscallContext, args: Parameters<SyscallHandler>[0], flags: number): number {
  if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT)) return -EINVAL;
  if (flags & RENAME_NOREPLACE && flags & RENAME_EXCHANGE) return -EINVAL;
  const paths = twoPaths(ctx, args);
  if (typeof paths === "number") return paths;
  return ctx.host.sym.host_renameat2(paths.oldDir, paths.oldPath, paths.newDir, paths.newPath, flags);
}

export const renameat: SyscallHandler = (args, ctx) => rename(ctx, args, 0);
export const renameat2: SyscallHandler = (args, ctx) => rename(ctx, args, args.uint(4));

export const symlinkat: SyscallHandler = (args, ctx) => {
  const target = hostPath(ctx, args.ptr(0), SCRATCH_PATH_B);
  if (target < 0) return target;
  const linkAddress = args.ptr(2);
  const link = hostPath(ctx, linkAddress);
  if (link < 0) return link;
  const dirfd = hostDirFd(ctx, args.int(1), linkAddress);
  if (dirfd < 0 && dirfd !== -100) return dirfd;
  return ctx.host.sym.host_symlinkat(target, dirfd, link);
};

export const linkat: SyscallHandler = (args, ctx) => {
  const flags = args.int(4);
  if (flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH)) return -EINVAL;
  const paths = twoPaths(ctx, args, (flags & AT_EMPTY_PATH) !== 0);
  if (typeof paths === "number") return paths;
  return ctx.host.sym.host_linkat(paths.oldDir, paths.oldPath, paths.newDir, paths.newPath, flags);
};

export const fchmod: SyscallHandler = (args, ctx) => {
  const entry = ctx.process.fds.get(args.int(0));
  if (entry === undefined) return -EBADF;
  return ctx.host.sym.host_fchmod(entry.hostFd, args.uint(1) & 0o7777);
};

export const fchmodat: SyscallHandler = (args, ctx) => {
  const pathAddress = args.ptr(1);
  const path = hostPath(ctx, pathAddress);
  if (path < 0) return path;
  const dirfd = hostDirFd(ctx, args.int(0), pathAddress);
  if (dirfd < 0 && dirfd !== -100) return dirfd;
  return ctx.host.sym.host_fchmodat(dirfd, path, args.uint(2) & 0o7777, 0);
};

export const fchown: SyscallHandler = (args, ctx) => {
  const entry = ctx.process.fds.get(args.int(0));
  if (entry === undefined) return -EBADF;
  return ctx.host.sym.host_fchown(entry.hostFd, args.uint(1), args.uint(2));
};

export const fchownat: SyscallHandler = (args, ctx) => {
  const flags = args.int(4);
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) return -EINVAL;
  const pathAddress = args.ptr(1);
  const path = hostPath(ctx, pathAddress, undefined, (flags & AT_EMPTY_PATH) !== 0);
  if (path < 0) return path;
  const dirfd = hostDirFd(ctx, args.int(0), pathAddress);
  if (dirfd < 0 && dirfd !== -100) return dirfd;
  return ctx.host.sym.host_fchownat(dirfd, path, args.uint(2), args.uint(3), flags);
};

export const utimensat: SyscallHandler = (args, ctx) => {
  const flags = args.int(3);
  const pathAddress = args.ptr(1);
  // A NULL path means "the file dirfd refers to" (the futimens() form).
  const path = pathAddress === 0 ? emptyPath(ctx) : hostPath(ctx, pathAddress);
  if (path < 0) return path;
  let dirfd: number;
  if (pathAddress === 0) {
    const entry = ctx.process.fds.get(args.int(0));
    if (entry === undefined) return -EBADF;
    dirfd = entry.hostFd;
  } else {
    dirfd = hostDirFd(ctx, args.int(0), pathAddress);
    if (dirfd < 0 && dirfd !== -100) return dirfd;
  }
  const timesAddress = args.ptr(2);
  const times = timesAddress === 0 ? 0 : ctx.memory.hostPointer(timesAddress, 32, false);
  if (times < 0) return times;
  return ctx.host.sym.host_utimensat(dirfd, path, times, pathAddress === 0 ? flags | AT_EMPTY_PATH : flags);
};

export const ftruncate: SyscallHandler = (args, ctx) => {
  // do_sys_ftruncate checks the length before the fd.
  const length = args.long(1);
  if (length < 0) return -EINVAL;
  const entry = ctx.process.fds.get(args.int(0));
  if (entry === undefined) return -EBADF;
  return ctx.host.sym.host_ftruncate(entry.hostFd, length);
};

export const fsync: SyscallHandler = (args, ctx) => {
  const entry = ctx.process.fds.get(args.int(0));
  return entry === undefined ? -EBADF : ctx.host.sym.host_fsync(entry.hostFd);
};

export const fdatasync: SyscallHandler = (args, ctx) => {
  const entry = ctx.process.fds.get(args.int(0));
  return entry === undefined ? -EBADF : ctx.host.sym.host_fdatasync(entry.hostFd);
};

/** The guest cwd's current absolute path: the host's view of the cwd fd (follows renames), or ENOENT once deleted. */
function currentCwd(ctx: SyscallContext): string | number {
  const path = ctx.host.fdPath(ctx.process.cwdFd) ?? ctx.process.cwdPath;
  if (path.endsWith(" (deleted)")) return -ENOENT;
  ctx.process.cwdPath = path;
  return path;
}

export const getcwd: SyscallHandler = (args, ctx) => {
  const cwd = currentCwd(ctx);
  if (typeof cwd === "number") return cwd;
  const bytes = new TextEncoder().encode(`${cwd}\0`);
  if (bytes.length > args.ulong(1)) return -ERANGE;
  const r = ctx.memory.writeBytes(args.ptr(0), bytes);
  // Linux returns the length including the NUL (glibc turns it into the buffer pointer).
  return r < 0 ? r : bytes.length;
};

/** Makes host directory fd `dirFd` (owned by the caller) the guest's cwd, after the checks chdir does. */
function enterDirectory(ctx: SyscallContext, dirFd: number): number {
  const sym = ctx.host.sym;
  const stat = ctx.host.statFd(dirFd);
  if (stat < 0) return stat;
  const mode = ctx.host.scratchView.getUint16(SCRATCH_GENERAL + STATX.mode, true);
  if ((mode & S_IFMT) !== S_IFDIR) return -ENOTDIR;
  const permitted = sym.host_faccessat(dirFd, emptyPath(ctx), X_OK, AT_EMPTY_PATH);
  if (permitted < 0) return permitted;
  sym.host_close(ctx.process.cwdFd);
  ctx.process.cwdFd = dirFd;
  ctx.process.cwdPath = ctx.host.fdPath(dirFd) ?? ctx.process.cwdPath;
  return 0;
}

export const chdir: SyscallHandler = (args, ctx) => {
  const pathAddress = args.ptr(0);
  const path = hostPath(ctx, pathAddress);
  if (path < 0) return path;
  const dirFd = ctx.host.sym.host_openat(ctx.process.cwdFd, path, ctx.flags.toHost(O_PATH | O_DIRECTORY), 0);
  if (dirFd < 0) return dirFd;
  const r = enterDirectory(ctx, dirFd);
  if (r < 0) ctx.host.sym.host_close(dirFd);
  return r;
};

export const fchdir: SyscallHandler = (args, ctx) => {
  const entry = ctx.process.fds.get(args.int(0));
  if (entry === undefined) return -EBADF;
  const dirFd = ctx.host.sym.host_dup_min(entry.hostFd, 3);
  if (dirFd < 0) return dirFd;
  const r = enterDirectory(ctx, dirFd);
  if (r < 0) ctx.host.sym.host_close(dirFd);
  return r;
};

export const umask: SyscallHandler = (args, ctx) => {
  const previous = ctx.process.umask;
  ctx.process.umask = args.uint(0) & 0o777;
  // Host creat/mkdir apply the host process's umask: keep it equal to the guest's.
  ctx.host.sym.host_umask(ctx.process.umask);
  return previous;
};

/** Host fstatfs into scratch, then out to the guest (Linux copies out after the lookup, so EFAULT comes last). */
function statfsInto(ctx: SyscallContext, hostFd: number, address: number): number {
  const r = ctx.host.sym.host_fstatfs(hostFd, ctx.host.scratchAddress + SCRATCH_GENERAL);
  if (r < 0) return r;
  // struct statfs is the same on Linux x86_64 and arm64 (asm-generic, 64-bit words).
  const w = ctx.memory.writeBytes(
    address,
    ctx.host.scratch.subarray(SCRATCH_GENERAL, SCRATCH_GENERAL + STATFS.size),
  );
  return Math.min(w, 0);
}

/** statfs(path): the host has no statfsat, so the path (relative to the guest cwd, symlinks followed) is opened O_PATH. */
export const statfs: SyscallHandler = (args, ctx) => {
  const path = hostPath(ctx, args.ptr(0));
  if (path < 0) return path;
  const fd = ctx.host.sym.host_openat(ctx.process.cwdFd, path, ctx.flags.toHost(O_PATH), 0);
  if (fd < 0) return fd;
  const r = statfsInto(ctx, fd, args.ptr(1));
  ctx.host.sym.host_close(fd);
  return r;
};

export const fstatfs: SyscallHandler = (args, ctx) => {
  const entry = ctx.process.fds.get(args.int(0));
  return entry === undefined ? -EBADF : statfsInto(ctx, entry.hostFd, args.ptr(1));
};

export const sync: SyscallHandler = (_args, ctx) => ctx.host.sym.host_sync();

export const syncfs: SyscallHandler = (args, ctx) => {
  const entry = ctx.process.fds.get(args.int(0));
  return entry === undefined ? -EBADF : ctx.host.sym.host_syncfs(entry.hostFd);
};

/** flock locks belong to the open file description: the guest fd's host fd is the one to lock. */
export const flock: SyscallHandler = (args, ctx) => {
  const entry = ctx.process.fds.get(args.int(0));
  return entry === undefined ? -EBADF : ctx.host.sym.host_flock(entry.hostFd, args.int(1));
};
