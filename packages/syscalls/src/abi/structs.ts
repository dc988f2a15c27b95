/**
 * Byte layouts of the structures the handlers read or write in guest memory, as Linux arm64 defines them
 * (LP64, little-endian). Offsets in bytes; `size` is sizeof.
 */

/** struct stat, asm-generic layout (include/uapi/asm-generic/stat.h), which arm64 uses. */
export const STAT = {
  size: 128,
  dev: 0, // u64, new_encode_dev()
  ino: 8, // u64
  mode: 16, // u32
  nlink: 20, // u32
  uid: 24, // u32
  gid: 28, // u32
  rdev: 32, // u64
  pad1: 40, // u64
  size_: 48, // i64
  blksize: 56, // i32
  pad2: 60, // i32
  blocks: 64, // i64
  atime: 72, // i64 sec, then u64 nsec at +8
  atimeNsec: 80,
  mtime: 88,
  mtimeNsec: 96,
  ctime: 104,
  ctimeNsec: 112,
  unused4: 120, // u32
  unused5: 124, // u32
} as const;

/** struct statx (include/uapi/linux/stat.h): arch-neutral. Timestamps are { i64 sec, u32 nsec, i32 pad }. */
export const STATX = {
  size: 256,
  mask: 0, // u32
  blksize: 4, // u32
  attributes: 8, // u64
  nlink: 16, // u32
  uid: 20, // u32
  gid: 24, // u32
  mode: 28, // u16
  ino: 32, // u64
  size_: 40, // u64
  blocks: 48, // u64
  attributesMask: 56, // u64
  atime: 64,
  btime: 80,
  ctime: 96,
  mtime: 112,
  rdevMajor: 128, // u32
  rdevMinor: 132, // u32
  devMajor: 136, // u32
  devMinor: 140, // u32
  mntId: 144, // u64
} as const;

/** statx mask bits. */
export const STATX_TYPE = 0x1;
export const STATX_MODE = 0x2;
export const STATX_NLINK = 0x4;
export const STATX_UID = 0x8;
export const STATX_GID = 0x10;
export const STATX_ATIME = 0x20;
export const STATX_MTIME = 0x40;
export const STATX_CTIME = 0x80;
export const STATX_INO = 0x100;
export const STATX_SIZE = 0x200;
export const STATX_BLOCKS = 0x400;
/** Everything struct stat carries. */
export const STATX_BASIC_STATS = 0x7ff;
/** The kernel rejects this bit: it is reserved for extending the struct. */
export const STATX__RESERVED = 0x8000_0000;

/** struct timespec / struct timeval on LP64: two 64-bit fields. */
export const TIMESPEC = { size: 16, sec: 0, nsec: 8 } as const;
export const TIMEVAL = { size: 16, sec: 0, usec: 8 } as const;

/** struct new_utsname: six 65-byte NUL-padded fields. */
export const UTSNAME = {
  size: 390,
  fieldLength: 65,
  sysname: 0,
  nodename: 65,
  release: 130,
  version: 195,
  machine: 260,
  domainname: 325,
} as const;

/** struct sysinfo on LP64 (include/uapi/linux/sysinfo.h): the padding tail is empty, sizeof is 112. */
export const SYSINFO = {
  size: 112,
  uptime: 0, // i64
  loads: 8, // 3 × u64
  totalram: 32,
  freeram: 40,
  sharedram: 48,
  bufferram: 56,
  totalswap: 64,
  freeswap: 72,
  procs: 80, // u16
  totalhigh: 88,
  freehigh: 96,
  memUnit: 104, // u32
} as const;

/** struct rlimit / rlimit64: two u64 (cur, max). */
export const RLIMIT = { size: 16, cur: 0, max: 8 } as const;

/** struct rusage on LP64: two timevals then 14 longs. */
export const RUSAGE = { size: 144, utime: 0, stime: 16, maxrss: 32 } as const;

/** Kernel struct termios (asm-generic termbits.h): what TCGETS/TCSETS move. 36 bytes. */
export const TERMIOS = {
  size: 36,
  iflag: 0,
  oflag: 4,
  cflag: 8,
  lflag: 12,
  line: 16,
  cc: 17,
  ncc: 19,
} as const;

/** struct winsize: four u16 (rows, cols, xpixel, ypixel). */
export const WINSIZE = { size: 8, row: 0, col: 2, xpixel: 4, ypixel: 6 } as const;

/** struct linux_dirent64 (arch-neutral): d_ino u64, d_off i64, d_reclen u16, d_type u8, d_name[]. */
export const DIRENT64 = { ino: 0, off: 8, reclen: 16, type: 18, name: 19 } as const;

/** struct iovec: base pointer, length. */
export const IOVEC = { size: 16, base: 0, len: 8 } as const;
/** Linux UIO_MAXIOV: readv/writev with more entries → EINVAL. */
export const UIO_MAXIOV = 1024;

/** struct robust_list_head: list pointer, futex_offset, list_op_pending — 24 bytes, the only size accepted. */
export const ROBUST_LIST_HEAD_SIZE = 24;

/** struct tms: four clock_t (utime, stime, cutime, cstime); identical on every LP64 Linux. */
export const TMS = { size: 32 } as const;

/**
 * struct statfs (asm-generic, __statfs_word = long): identical on Linux arm64 and x86_64, 120 bytes:
 * f_type, f_bsize, f_blocks, f_bfree, f_bavail, f_files, f_ffree (u64), f_fsid (2 × i32), f_namelen,
 * f_frsize, f_flags, f_spare[4] (u64).
 */
export const STATFS = { size: 120, type: 0, bsize: 8, blocks: 16, namelen: 64, flags: 80 } as const;
