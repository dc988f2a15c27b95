/**
 * The memory syscalls as dispatcher handlers over an AddressSpace: brk, mmap, munmap, mprotect, madvise.
 * File mappings resolve the guest fd through the fd table and copy the file's bytes in with host pread
 * straight into guest memory.
 */
import { F_GETFL, O_ACCMODE, O_RDONLY, O_RDWR, O_WRONLY } from "../abi/fcntl.ts";
import { STATX } from "../abi/structs.ts";
import { NR } from "../abi/syscalls.ts";
import type { SyscallContext, SyscallHandler } from "../context.ts";
import type { Dispatcher } from "../dispatch.ts";
import { BUILTIN_HANDLERS } from "../handlers/index.ts";
import { SCRATCH_GENERAL } from "../host/host.ts";
import { EBADF, EFAULT, EINVAL } from "./abi.ts";

/** mlock2 flag: lock pages as they are faulted in (accepted; every page counts as resident here). */
const MLOCK_ONFAULT = 1;

import type { AddressSpace, MappableFile } from "./address-space.ts";

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;

/** Linux's userspace dev_t encoding (glibc makedev) as a number (fits: major < 2^12 here). */
function encodeDev(major: number, minor: number): number {
  return (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12);
}

/** The file behind a guest fd, for mmap. */
export function resolveMappableFile(
  ctx: SyscallContext,
  guestFd: number,
  guestBase: number,
): MappableFile | number {
  const entry = ctx.process.fds.get(guestFd);
  if (entry === undefined) return -EBADF;
  const host = ctx.host;
  const hostFd = entry.hostFd;
  const accessMode = host.sym.host_fcntl(hostFd, F_GETFL, 0);
  if (accessMode < 0) return accessMode;
  const statx = host.statFd(hostFd);
  if (statx < 0) return statx;
  const view = host.scratchView;
  const mode = view.getUint16(SCRATCH_GENERAL + STATX.mode, true);
  const type = mode & S_IFMT;
  const mode3 = accessMode & O_ACCMODE;
  return {
    readable: mode3 === O_RDONLY || mode3 === O_RDWR,
    writable: mode3 === O_WRONLY || mode3 === O_RDWR,
    mappable: type === S_IFREG || type === S_IFCHR || type === S_IFBLK,
    dev: encodeDev(
      view.getUint32(SCRATCH_GENERAL + STATX.devMajor, true),
      view.getUint32(SCRATCH_GENERAL + STATX.devMinor, true),
    ),
    inode: Number(view.getBigUint64(SCRATCH_GENERAL + STATX.ino, true)),
    path: entry.path,
    hostFd,
    size: Number(view.getBigUint64(SCRATCH_GENERAL + STATX.size_, true)),
    retain() {
      // The mapping's own reference to the file: the guest may close its fd right after mmap.
      const own = host.sym.host_dup_min(hostFd, 3);
      if (own < 0) return own;
      return {
        hostFd: own,
        readInto: (address: number, length: number, offset: number) => readFile(own, address, length, offset),
        size: () => fileSize(own),
        release: () => void host.sym.host_close(own),
      };
    },
    readInto(address: number, length: number, offset: number): number {
      return readFile(hostFd, address, length, offset);
    },
  };

  function fileSize(fd: number): number {
    const result = host.statFd(fd);
    if (result < 0) return result;
    return Number(host.scratchView.getBigUint64(SCRATCH_GENERAL + STATX.size_, true));
  }

  function readFile(fd: number, address: number, length: number, offset: number): number {
    // Bytes past end of file stay zero: the fresh mapping is zero-filled.
    let done = 0;
    while (done < length) {
      const n = host.sym.host_pread(fd, guestBase + address + done, length - done, offset + done);
      if (n < 0) return n;
      if (n === 0) break;
      done += n;
    }
    return done;
  }
}

/** Install the memory syscalls on a dispatcher. */
export function registerMemoryHandlers(dispatcher: Dispatcher, space: AddressSpace, guestBase: number): void {
  const brk: SyscallHandler = (args) => space.brk(args.ulong(0));
  const mmap: SyscallHandler = (args, ctx) =>
    space.mmap(args.ulong(0), args.ulong(1), args.int(2), args.int(3), args.int(4), args.long(5), (fd) =>
      resolveMappableFile(ctx, fd, guestBase),
    );
  const munmap: SyscallHandler = (args) => space.munmap(args.ulong(0), args.ulong(1));
  const mprotect: SyscallHandler = (args) => space.mprotect(args.ulong(0), args.ulong(1), args.int(2));
  const madvise: SyscallHandler = (args) => space.madvise(args.ulong(0), args.ulong(1), args.int(2));
  const mremap: SyscallHandler = (args) =>
    space.mremap(args.ulong(0), args.ulong(1), args.ulong(2), args.int(3), args.ulong(4));
  dispatcher.registerHandler(NR.brk, "brk", brk);
  dispatcher.registerHandler(NR.mmap, "mmap", mmap);
  dispatcher.registerHandler(NR.munmap, "munmap", munmap);
  dispatcher.registerHandler(NR.mprotect, "mprotect", mprotect);
  dispatcher.registerHandler(NR.madvise, "madvise", madvise);
  dispatcher.registerHandler(NR.mremap, "mremap", mremap);
  const msync: SyscallHandler = (args) => space.msync(args.ulong(0), args.ulong(1), args.int(2));
  const mlock: SyscallHandler = (args) => space.setLocked(args.ulong(0), args.ulong(1), true);
  const mlock2: SyscallHandler = (args) =>
    args.int(2) & ~MLOCK_ONFAULT
      ? -EINVAL
      : space.setLocked(args.ulong(0), args.ulong(1), true, (args.int(2) & MLOCK_ONFAULT) === 0);
  const munlock: SyscallHandler = (args) => space.setLocked(args.ulong(0), args.ulong(1), false);
  const mlockall: SyscallHandler = (args) => space.mlockall(args.int(0));
  const munlockall: SyscallHandler = () => space.munlockall();
  const mincore: SyscallHandler = (args, ctx) => {
    const result = space.mincore(args.ulong(0), args.ulong(1));
    if (typeof result === "number") return result;
    return ctx.memory.writeBytes(args.ptr(2), result) < 0 ? -EFAULT : 0;
  };
  // ftruncate may shrink a file that is mapped shared: its pages past the new end must stop being host file
  // pages (the host would fault on them) and raise SIGBUS instead.
  const ftruncate: SyscallHandler = (args, ctx) => {
    const result = BUILTIN_HANDLERS.ftruncate!(args, ctx);
    if (typeof result === "number" && result === 0) {
      const file = resolveMappableFile(ctx, args.int(0), guestBase);
      if (typeof file !== "number") space.fileResized(file.dev, file.inode, args.long(1));
    }
    return result;
  };
  dispatcher.registerHandler(NR.ftruncate, "ftruncate", ftruncate);
  dispatcher.registerHandler(NR.msync, "msync", msync);
  dispatcher.registerHandler(NR.mlock, "mlock", mlock);
  dispatcher.registerHandler(NR.mlock2, "mlock2", mlock2);
  dispatcher.registerHandler(NR.munlock, "munlock", munlock);
  dispatcher.registerHandler(NR.mlockall, "mlockall", mlockall);
  dispatcher.registerHandler(NR.munlockall, "munlockall", munlockall);
  dispatcher.registerHandler(NR.mincore, "mincore", mincore);
}

export { EFAULT };
