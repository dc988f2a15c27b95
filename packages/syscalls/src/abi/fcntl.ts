/**
 * File-control ABI: open flags, *at() flags, fcntl commands, lseek whence, access modes, renameat2 flags.
 *
 * Open flags are the one place where the arm64 guest and an x86_64 host disagree: arm64 uses the
 * asm-generic values for O_DIRECTORY/O_NOFOLLOW/O_DIRECT/O_LARGEFILE (arch/arm64/include/uapi/asm/fcntl.h
 * overrides four bits), x86_64 uses the historic i386 ones. Everything else is shared.
 */

export const O_ACCMODE = 0o3;
/** close_range(2) flags. */
export const CLOSE_RANGE_UNSHARE = 0x2;
export const CLOSE_RANGE_CLOEXEC = 0x4;
export const O_RDONLY = 0o0;
export const O_WRONLY = 0o1;
export const O_RDWR = 0o2;

/** Open flags as an arm64 guest passes them (name, guest value, x86_64 value). */
export const OPEN_FLAGS: ReadonlyArray<readonly [name: string, aarch64: number, x86_64: number]> = [
  ["O_CREAT", 0o100, 0o100],
  ["O_EXCL", 0o200, 0o200],
  ["O_NOCTTY", 0o400, 0o400],
  ["O_TRUNC", 0o1000, 0o1000],
  ["O_APPEND", 0o2000, 0o2000],
  ["O_NONBLOCK", 0o4000, 0o4000],
  ["O_DSYNC", 0o10000, 0o10000],
  ["FASYNC", 0o20000, 0o20000],
  ["O_DIRECTORY", 0x4000, 0x10000],
  ["O_NOFOLLOW", 0x8000, 0x20000],
  ["O_DIRECT", 0x10000, 0x4000],
  ["O_LARGEFILE", 0x20000, 0x8000],
  ["O_NOATIME", 0o1000000, 0o1000000],
  ["O_CLOEXEC", 0o2000000, 0o2000000],
  // __O_SYNC: O_SYNC is __O_SYNC|O_DSYNC.
  ["__O_SYNC", 0o4000000, 0o4000000],
  ["O_PATH", 0o10000000, 0o10000000],
  // __O_TMPFILE: O_TMPFILE is __O_TMPFILE|O_DIRECTORY.
  ["__O_TMPFILE", 0o20000000, 0o20000000],
];

export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_NOCTTY = 0o400;
export const O_TRUNC = 0o1000;
export const O_APPEND = 0o2000;
export const O_NONBLOCK = 0o4000;
export const O_DSYNC = 0o10000;
export const FASYNC = 0o20000;
/** arm64 guest values. */
export const O_DIRECTORY = 0x4000;
export const O_NOFOLLOW = 0x8000;
export const O_DIRECT = 0x10000;
export const O_LARGEFILE = 0x20000;
export const O_NOATIME = 0o1000000;
export const O_CLOEXEC = 0o2000000;
export const O_SYNC = 0o4000000 | O_DSYNC;
export const O_PATH = 0o10000000;
export const O_TMPFILE = 0o20000000 | O_DIRECTORY;

/** Flags F_SETFL may change (fs/fcntl.c SETFL_MASK); the others are ignored. */
export const SETFL_MASK = O_APPEND | O_NONBLOCK | FASYNC | O_DIRECT | O_NOATIME;

/** The dirfd meaning "the current working directory". */
export const AT_FDCWD = -100;
export const AT_SYMLINK_NOFOLLOW = 0x100;
export const AT_EACCESS = 0x200;
export const AT_REMOVEDIR = 0x200;
export const AT_SYMLINK_FOLLOW = 0x400;
export const AT_NO_AUTOMOUNT = 0x800;
export const AT_EMPTY_PATH = 0x1000;
export const AT_STATX_SYNC_TYPE = 0x6000;
export const AT_STATX_SYNC_AS_STAT = 0x0000;
export const AT_STATX_FORCE_SYNC = 0x2000;
export const AT_STATX_DONT_SYNC = 0x4000;
export const AT_RECURSIVE = 0x8000;

/** renameat2 flags. */
export const RENAME_NOREPLACE = 1;
export const RENAME_EXCHANGE = 2;
export const RENAME_WHITEOUT = 4;

/** fcntl commands (asm-generic, 64-bit: F_GETLK64 == F_GETLK). */
export const F_DUPFD = 0;
export const F_GETFD = 1;
export const F_SETFD = 2;
export const F_GETFL = 3;
export const F_SETFL = 4;
export const F_GETLK = 5;
export const F_SETLK = 6;
export const F_SETLKW = 7;
export const F_SETOWN = 8;
export const F_GETOWN = 9;
export const F_SETSIG = 10;
export const F_GETSIG = 11;
export const F_OFD_GETLK = 36;
export const F_OFD_SETLK = 37;
export const F_OFD_SETLKW = 38;
export const F_SETLEASE = 1024;
export const F_GETLEASE = 1025;
export const F_NOTIFY = 1026;
export const F_DUPFD_CLOEXEC = 1030;
export const F_SETPIPE_SZ = 1031;
export const F_GETPIPE_SZ = 1032;
/** Pipe writes up to this size are atomic; a pipe that polls writable has room for at least this much. */
export const PIPE_BUF = 4096;
export const F_ADD_SEALS = 1033;
export const F_GET_SEALS = 1034;
export const FD_CLOEXEC = 1;

export const FCNTL_COMMAND_NAMES: Readonly<Record<number, string>> = {
  0: "F_DUPFD",
  1: "F_GETFD",
  2: "F_SETFD",
  3: "F_GETFL",
  4: "F_SETFL",
  5: "F_GETLK",
  6: "F_SETLK",
  7: "F_SETLKW",
  8: "F_SETOWN",
  9: "F_GETOWN",
  10: "F_SETSIG",
  11: "F_GETSIG",
  36: "F_OFD_GETLK",
  37: "F_OFD_SETLK",
  38: "F_OFD_SETLKW",
  1024: "F_SETLEASE",
  1025: "F_GETLEASE",
  1026: "F_NOTIFY",
  1030: "F_DUPFD_CLOEXEC",
  1031: "F_SETPIPE_SZ",
  1032: "F_GETPIPE_SZ",
  1033: "F_ADD_SEALS",
  1034: "F_GET_SEALS",
};

export const SEEK_SET = 0;
export const SEEK_CUR = 1;
export const SEEK_END = 2;
export const SEEK_DATA = 3;
export const SEEK_HOLE = 4;
export const SEEK_NAMES = ["SEEK_SET", "SEEK_CUR", "SEEK_END", "SEEK_DATA", "SEEK_HOLE"] as const;

/** access()/faccessat() modes. */
export const F_OK = 0;
export const X_OK = 1;
export const W_OK = 2;
export const R_OK = 4;

/** Linux PATH_MAX, including the terminating NUL. */
export const PATH_MAX = 4096;

/** File type bits of st_mode (shared by every Linux arch). */
export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFIFO = 0o010000;
