import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statfsSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  EAGAIN,
  EBADF,
  EEXIST,
  EFAULT,
  EINVAL,
  EISDIR,
  ENAMETOOLONG,
  ENOENT,
  ENOTDIR,
  ERANGE,
} from "../abi/errno.ts";
import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_REMOVEDIR,
  AT_SYMLINK_NOFOLLOW,
  O_CLOEXEC,
  O_CREAT,
  O_DIRECTORY,
  O_EXCL,
  O_NOFOLLOW,
  O_RDONLY,
  O_RDWR,
  O_WRONLY,
  SEEK_CUR,
  SEEK_END,
  SEEK_SET,
} from "../abi/fcntl.ts";
import { LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN } from "../abi/process.ts";
import { DIRENT64, STAT, STATFS, STATX } from "../abi/structs.ts";
import { createFakeGuest, type FakeGuest, PAGE } from "../test-support.ts";

let dir: string;
let guest: FakeGuest;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "guest-syscalls-"));
  guest = createFakeGuest({ cwd: dir, exePath: "/opt/guest/bin/prog" });
});
afterEach(() => {
  guest.close();
  rmSync(dir, { recursive: true, force: true });
});

const num = (r: unknown): number => r as number;

describe("open/read/write/close", () => {
  test("a file written through the handlers reads back through them and on the host", () => {
    const path = guest.cstr(join(dir, "hello.txt"));
    const fd = num(guest.call("openat", AT_FDCWD, path, O_WRONLY | O_CREAT | O_EXCL, 0o640));
    expect(fd).toBe(3);
    const data = guest.cstr("hello, guest\n");
    expect(guest.call("write", fd, data, 13)).toBe(13);
    expect(guest.call("close", fd)).toBe(0);
    expect(readFileSync(join(dir, "hello.txt"), "utf8")).toBe("hello, guest\n");
    expect(statSync(join(dir, "hello.txt")).mode & 0o777).toBe(0o640 & ~guest.process.umask);

    const rfd = num(guest.call("openat", AT_FDCWD, guest.cstr("hello.txt"), O_RDONLY));
    expect(rfd).toBe(3);
    const buf = guest.alloc(64);
    expect(guest.call("read", rfd, buf, 64)).toBe(13);
    expect(guest.text(buf, 13)).toBe("hello, guest\n");
    expect(guest.call("read", rfd, buf, 64)).toBe(0);
    expect(guest.call("pread64", rfd, buf, 5, 7)).toBe(5);
    expect(guest.text(buf, 5)).toBe("guest");
    expect(guest.call("lseek", rfd, 0, SEEK_END)).toBe(13);
    expect(guest.call("lseek", rfd, -1, SEEK_SET)).toBe(-EINVAL);
    expect(guest.call("close", rfd)).toBe(0);
    expect(guest.call("close", rfd)).toBe(-EBADF);
  });

  test("O_EXCL on an existing file, missing files, directories", () => {
    writeFileSync(join(dir, "f"), "x");
    expect(guest.call("openat", AT_FDCWD, guest.cstr("f"), O_WRONLY | O_CREAT | O_EXCL, 0o600)).toBe(-EEXIST);
    expect(guest.call("openat", AT_FDCWD, guest.cstr("missing"), O_RDONLY)).toBe(-ENOENT);
    expect(guest.call("openat", AT_FDCWD, guest.cstr("f"), O_RDONLY | O_DIRECTORY)).toBe(-ENOTDIR);
    expect(guest.call("openat", AT_FDCWD, guest.cstr("."), O_RDWR)).toBe(-EISDIR);
    const dfd = num(guest.call("openat", AT_FDCWD, guest.cstr("."), O_RDONLY | O_DIRECTORY));
    expect(dfd).toBeGreaterThanOrEqual(3);
    // Relative to a guest dirfd.
    const fd = num(guest.call("openat", dfd, guest.cstr("f"), O_RDONLY));
    expect(fd).toBe(dfd + 1);
  });

  test("O_NOFOLLOW on a symlink is ELOOP (the arm64 flag value is translated)", () => {
    writeFileSync(join(dir, "target"), "t");
    symlinkSync("target", join(dir, "link"));
    expect(guest.call("openat", AT_FDCWD, guest.cstr("link"), O_RDONLY | O_NOFOLLOW)).toBe(-40);
    expect(num(guest.call("openat", AT_FDCWD, guest.cstr("link"), O_RDONLY))).toBe(3);
  });

  test("bad fds, bad dirfds, bad pointers", () => {
    const buf = guest.alloc(16);
    expect(guest.call("read", 77, buf, 16)).toBe(-EBADF);
    expect(guest.call("write", -1, buf, 16)).toBe(-EBADF);
    expect(guest.call("openat", 55, guest.cstr("relative"), O_RDONLY)).toBe(-EBADF);
    // An absolute path ignores dirfd, even a bad one.
    writeFileSync(join(dir, "abs"), "");
    expect(num(guest.call("openat", 55, guest.cstr(join(dir, "abs")), O_RDONLY))).toBe(3);
    // NULL / unmapped path and buffer.
    expect(guest.call("openat", AT_FDCWD, 0, O_RDONLY)).toBe(-EFAULT);
    expect(guest.call("read", 3, 0, 16)).toBe(-EFAULT);
    guest.unmapped.add(200);
    expect(guest.call("write", 1, 200 * PAGE, 16)).toBe(-EFAULT);
    // Empty path is ENOENT; an overlong one ENAMETOOLONG.
    expect(guest.call("openat", AT_FDCWD, guest.cstr(""), O_RDONLY)).toBe(-ENOENT);
    expect(guest.call("openat", AT_FDCWD, guest.cstr("a".repeat(5000)), O_RDONLY)).toBe(-ENAMETOOLONG);
  });

  test("read into a read-only guest page is EFAULT; a partly accessible buffer reads up to the fault", () => {
    writeFileSync(join(dir, "data"), "0123456789");
    const fd = num(guest.call("openat", AT_FDCWD, guest.cstr("data"), O_RDONLY));
    guest.readonly.add(100);
    expect(guest.call("read", fd, 100 * PAGE, 4)).toBe(-EFAULT);
    // Buffer straddling into the read-only page: 4 bytes fit before it.
    expect(guest.call("read", fd, 100 * PAGE - 4, 10)).toBe(4);
    expect(guest.text(100 * PAGE - 4, 4)).toBe("0123");
  });

  test("readv/writev scatter and gather", () => {
    const fd = num(guest.call("openat", AT_FDCWD, guest.cstr("v"), O_RDWR | O_CREAT, 0o600));
    const a = guest.cstr("abc");
    const b = guest.cstr("defgh");
    const iov = guest.alloc(32);
    guest.memory.writeU64(iov, a);
    guest.memory.writeU64(iov + 8, 3);
    guest.memory.writeU64(iov + 16, b);
    guest.memory.writeU64(iov + 24, 5);
    expect(guest.call("writev", fd, iov, 2)).toBe(8);
    expect(readFileSync(join(dir, "v"), "utf8")).toBe("abcdefgh");
    expect(guest.call("lseek", fd, 0, SEEK_SET)).toBe(0);
    const x = guest.alloc(2);
    const y = guest.alloc(16);
    guest.memory.writeU64(iov, x);
    guest.memory.writeU64(iov + 8, 2);
    guest.memory.writeU64(iov + 16, y);
    guest.memory.writeU64(iov + 24, 16);
    expect(guest.call("readv", fd, iov, 2)).toBe(8);
    expect(guest.text(x, 2)).toBe("ab");
    expect(guest.text(y, 6)).toBe("cdefgh");
    expect(guest.call("readv", fd, iov, -1)).toBe(-EINVAL);
    expect(guest.call("readv", fd, iov, 1025)).toBe(-EINVAL);
    expect(guest.call("writev", fd, 0, 1)).toBe(-EFAULT);
  });
});

describe("stat family", () => {
  function expectStatMatches(address: number, path: string) {
    const st = statSync(path, { bigint: true });
    const view = new DataView(guest.bytes.buffer, address, STAT.size);
    expect(view.getBigUint64(STAT.dev, true)).toBe(st.dev);
    expect(view.getBigUint64(STAT.ino, true)).toBe(st.ino);
    expect(BigInt(view.getUint32(STAT.mode, true))).toBe(st.mode);
    expect(BigInt(view.getUint32(STAT.nlink, true))).toBe(st.nlink);
    expect(BigInt(view.getUint32(STAT.uid, true))).toBe(st.uid);
    expect(BigInt(view.getUint32(STAT.gid, true))).toBe(st.gid);
    expect(view.getBigUint64(STAT.rdev, true)).toBe(st.rdev);
    expect(view.getBigInt64(STAT.size_, true)).toBe(st.size);
    expect(BigInt(view.getInt32(STAT.blksize, true))).toBe(st.blksize);
    expect(view.getBigInt64(STAT.blocks, true)).toBe(st.blocks);
    expect(
      view.getBigInt64(STAT.mtime, true) * 1_000_000_000n + view.getBigUint64(STAT.mtimeNsec, true),
    ).toBe(st.mtimeNs);
    expect(
      view.getBigInt64(STAT.atime, true) * 1_000_000_000n + view.getBigUint64(STAT.atimeNsec, true),
    ).toBe(st.atimeNs);
    expect(
      view.getBigInt64(STAT.ctime, true) * 1_000_000_000n + view.getBigUint64(STAT.ctimeNsec, true),
    ).toBe(st.ctimeNs);
  }

  test("fstat and newfstatat fill the arm64 struct stat like the host's stat", () => {
    writeFileSync(join(dir, "s"), "x".repeat(5000));
    const out = guest.alloc(STAT.size);
    expect(guest.call("newfstatat", AT_FDCWD, guest.cstr("s"), out, 0)).toBe(0);
    expectStatMatches(out, join(dir, "s"));
    const fd = num(guest.call("openat", AT_FDCWD, guest.cstr("s"), O_RDONLY));
    const out2 = guest.alloc(STAT.size);
    expect(guest.call("fstat", fd, out2)).toBe(0);
    expectStatMatches(out2, join(dir, "s"));
    // Character device: st_rdev must round-trip the encoding.
    const out3 = guest.alloc(STAT.size);
    expect(guest.call("newfstatat", AT_FDCWD, guest.cstr("/dev/null"), out3, 0)).toBe(0);
    expectStatMatches(out3, "/dev/null");
  });

  test("AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH, errors", () => {
    writeFileSync(join(dir, "t"), "abc");
    symlinkSync("t", join(dir, "l"));
    const out = guest.alloc(STAT.size);
    expect(guest.call("newfstatat", AT_FDCWD, guest.cstr("l"), out, AT_SYMLINK_NOFOLLOW)).toBe(0);
    expect(guest.memory.readU32(out + STAT.mode) & 0o170000).toBe(0o120000);
    expect(guest.call("newfstatat", AT_FDCWD, guest.cstr("l"), out, 0)).toBe(0);
    expect(guest.memory.readU32(out + STAT.mode) & 0o170000).toBe(0o100000);
    const fd = num(guest.call("openat", AT_FDCWD, guest.cstr("t"), O_RDONLY));
    expect(guest.call("newfstatat", fd, guest.cstr(""), out, AT_EMPTY_PATH)).toBe(0);
    expect(guest.memory.readU64(out + STAT.size_)).toBe(3);
    expect(guest.call("newfstatat", fd, guest.cstr(""), out, 0)).toBe(-ENOENT);
    expect(guest.call("newfstatat", AT_FDCWD, guest.cstr("t"), out, 0x4000)).toBe(-EINVAL);
    expect(guest.call("newfstatat", AT_FDCWD, guest.cstr("nope"), out, 0)).toBe(-ENOENT);
    expect(guest.call("fstat", 99, out)).toBe(-EBADF);
    expect(guest.call("fstat", fd, 0)).toBe(-EFAULT);
    guest.readonly.add(300);
    expect(guest.call("fstat", fd, 300 * PAGE)).toBe(-EFAULT);
  });

  test("statx passes straight through", () => {
    writeFileSync(join(dir, "x"), "12345");
    const out = guest.alloc(STATX.size);
    expect(guest.call("statx", AT_FDCWD, guest.cstr("x"), 0, 0x7ff, out)).toBe(0);
    const st = statSync(join(dir, "x"), { bigint: true });
    expect(guest.memory.readU64(out + STATX.size_)).toBe(5);
    expect(guest.memory.readU64Big(out + STATX.ino)).toBe(st.ino);
    expect(guest.memory.readU32(out + STATX.mask) & 0x7ff).toBe(0x7ff);
    // FORCE_SYNC and DONT_SYNC together are contradictory: EINVAL from the (host) kernel.
    expect(guest.call("statx", AT_FDCWD, guest.cstr("x"), 0x6000, 0x7ff, out)).toBe(-EINVAL);
    expect(guest.call("statx", AT_FDCWD, guest.cstr("x"), 0, 0x7ff, 0)).toBe(-EFAULT);
  });
});

describe("directories and names", () => {
  test("getdents64 lists a directory", () => {
    for (const name of ["a", "bb", "ccc"]) writeFileSync(join(dir, name), "");
    const fd = num(guest.call("openat", AT_FDCWD, guest.cstr("."), O_RDONLY | O_DIRECTORY));
    const buf = guest.alloc(4096);
    const n = num(guest.call("getdents64", fd, buf, 4096));
    expect(n).toBeGreaterThan(0);
    const names: string[] = [];
    for (let at = buf; at < buf + n; ) {
      const reclen = guest.memory.readU16(at + DIRENT64.reclen);
      names.push(guest.memory.readCString(at + DIRENT64.name) as string);
      at += reclen;
    }
    expect(names.sort()).toEqual([".", "..", "a", "bb", "ccc"]);
    expect(guest.call("getdents64", fd, buf, 4096)).toBe(0);
    expect(guest.call("getdents64", 42, buf, 4096)).toBe(-EBADF);
  });

  test("readlinkat: plain links, /proc/self/exe, /proc/self/fd/N", () => {
    symlinkSync("some/target", join(dir, "ln"));
    const buf = guest.alloc(256);
    expect(guest.call("readlinkat", AT_FDCWD, guest.cstr("ln"), buf, 256)).toBe(11);
    expect(guest.text(buf, 11)).toBe("some/target");
    // Truncated without a NUL, like Linux.
    expect(guest.call("readlinkat", AT_FDCWD, guest.cstr("ln"), buf, 4)).toBe(4);
    expect(guest.call("readlinkat", AT_FDCWD, guest.cstr("ln"), buf, 0)).toBe(-EINVAL);
    const exe = "/opt/guest/bin/prog";
    expect(guest.call("readlinkat", AT_FDCWD, guest.cstr("/proc/self/exe"), buf, 256)).toBe(exe.length);
    expect(guest.text(buf, exe.length)).toBe(exe);
    expect(guest.call("readlinkat", AT_FDCWD, guest.cstr(`/proc/${process.pid}/exe`), buf, 256)).toBe(
      exe.length,
    );
    writeFileSync(join(dir, "opened"), "");
    const fd = num(guest.call("openat", AT_FDCWD, guest.cstr("opened"), O_RDONLY));
    const n = num(guest.call("readlinkat", AT_FDCWD, guest.cstr(`/proc/self/fd/${fd}`), buf, 256));
    expect(guest.text(buf, n)).toBe(join(dir, "opened"));
    expect(guest.call("readlinkat", AT_FDCWD, guest.cstr("/proc/self/fd/999"), buf, 256)).toBe(-ENOENT);
  });

  test("faccessat / faccessat2", () => {
    writeFileSync(join(dir, "r"), "");
    expect(guest.call("faccessat", AT_FDCWD, guest.cstr("r"), 4)).toBe(0);
    expect(guest.call("faccessat", AT_FDCWD, guest.cstr("missing"), 0)).toBe(-ENOENT);
    expect(guest.call("faccessat", AT_FDCWD, guest.cstr("r"), 8)).toBe(-EINVAL);
    expect(guest.call("faccessat2", AT_FDCWD, guest.cstr("r"), 4, 0x200)).toBe(0);
    expect(guest.call("faccessat2", AT_FDCWD, guest.cstr("r"), 4, 0x1)).toBe(-EINVAL);
  });

  test("mkdirat, renameat2, unlinkat", () => {
    expect(guest.call("mkdirat", AT_FDCWD, guest.cstr("sub"), 0o755)).toBe(0);
    expect(existsSync(join(dir, "sub"))).toBe(true);
    expect(guest.call("mkdirat", AT_FDCWD, guest.cstr("sub"), 0o755)).toBe(-EEXIST);
    writeFileSync(join(dir, "one"), "1");
    writeFileSync(join(dir, "two"), "2");
    expect(guest.call("renameat2", AT_FDCWD, guest.cstr("one"), AT_FDCWD, guest.cstr("two"), 1)).toBe(
      -EEXIST,
    );
    expect(guest.call("renameat2", AT_FDCWD, guest.cstr("one"), AT_FDCWD, guest.cstr("two"), 2)).toBe(0);
    expect(readFileSync(join(dir, "one"), "utf8")).toBe("2");
    expect(guest.call("renameat2", AT_FDCWD, guest.cstr("one"), AT_FDCWD, guest.cstr("sub/three"), 0)).toBe(
      0,
    );
    expect(readFileSync(join(dir, "sub/three"), "utf8")).toBe("2");
    expect(guest.call("renameat2", AT_FDCWD, guest.cstr("two"), AT_FDCWD, guest.cstr("x"), 3)).toBe(-EINVAL);
    expect(guest.call("unlinkat", AT_FDCWD, guest.cstr("sub"), 0)).toBe(-EISDIR);
    expect(guest.call("unlinkat", AT_FDCWD, guest.cstr("sub/three"), 0)).toBe(0);
    expect(guest.call("unlinkat", AT_FDCWD, guest.cstr("sub"), AT_REMOVEDIR)).toBe(0);
    expect(existsSync(join(dir, "sub"))).toBe(false);
    expect(guest.call("unlinkat", AT_FDCWD, guest.cstr("two"), 0x1)).toBe(-EINVAL);
  });

  test("getcwd, chdir, fchdir: the guest cwd moves, the host's does not", () => {
    const hostCwd = process.cwd();
    const buf = guest.alloc(4096);
    const n = num(guest.call("getcwd", buf, 4096));
    expect(n).toBe(Buffer.byteLength(dir) + 1);
    expect(guest.text(buf, n - 1)).toBe(dir);
    expect(guest.bytes[buf + n - 1]).toBe(0);
    expect(guest.call("getcwd", buf, 3)).toBe(-ERANGE);
    expect(guest.call("getcwd", 0, 4096)).toBe(-EFAULT);
    mkdirSync(join(dir, "inner"));
    writeFileSync(join(dir, "inner", "file"), "in");
    expect(guest.call("chdir", guest.cstr("inner"))).toBe(0);
    expect(process.cwd()).toBe(hostCwd);
    const m = num(guest.call("getcwd", buf, 4096));
    expect(guest.text(buf, m - 1)).toBe(join(dir, "inner"));
    expect(num(guest.call("openat", AT_FDCWD, guest.cstr("file"), O_RDONLY))).toBeGreaterThanOrEqual(3);
    expect(guest.call("chdir", guest.cstr("file"))).toBe(-ENOTDIR);
    expect(guest.call("chdir", guest.cstr("nowhere"))).toBe(-ENOENT);
    const dfd = num(guest.call("openat", AT_FDCWD, guest.cstr(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    expect(guest.call("fchdir", dfd)).toBe(0);
    const k = num(guest.call("getcwd", buf, 4096));
    expect(guest.text(buf, k - 1)).toBe(dir);
    expect(guest.call("fchdir", 200)).toBe(-EBADF);
  });

  test("umask is returned and applied", () => {
    const before = num(guest.call("umask", 0o077));
    expect(guest.call("umask", 0o077)).toBe(0o077);
    const fd = num(guest.call("openat", AT_FDCWD, guest.cstr("m"), O_WRONLY | O_CREAT, 0o666));
    expect(fd).toBeGreaterThanOrEqual(3);
    expect(statSync(join(dir, "m")).mode & 0o777).toBe(0o600);
    guest.call("umask", before);
  });
});

describe("links, modes, times, truncation", () => {
  test("symlinkat, linkat, fchmodat, fchmod, utimensat, ftruncate, fsync", () => {
    writeFileSync(join(dir, "orig"), "0123456789");
    expect(guest.call("symlinkat", guest.cstr("orig"), AT_FDCWD, guest.cstr("sym"))).toBe(0);
    expect(readFileSync(join(dir, "sym"), "utf8")).toBe("0123456789");
    expect(guest.call("linkat", AT_FDCWD, guest.cstr("orig"), AT_FDCWD, guest.cstr("hard"), 0)).toBe(0);
    expect(statSync(join(dir, "orig")).nlink).toBe(2);
    expect(guest.call("linkat", AT_FDCWD, guest.cstr("orig"), AT_FDCWD, guest.cstr("h2"), 0x1)).toBe(-EINVAL);
    expect(guest.call("fchmodat", AT_FDCWD, guest.cstr("orig"), 0o604)).toBe(0);
    expect(statSync(join(dir, "orig")).mode & 0o777).toBe(0o604);
    const fd = num(guest.call("openat", AT_FDCWD, guest.cstr("orig"), O_RDWR));
    expect(guest.call("fchmod", fd, 0o600)).toBe(0);
    expect(statSync(join(dir, "orig")).mode & 0o777).toBe(0o600);
    const times = guest.alloc(32);
    guest.memory.writeU64(times, 1_000_000);
    guest.memory.writeU64(times + 8, 0);
    guest.memory.writeU64(times + 16, 2_000_000);
    guest.memory.writeU64(times + 24, 500);
    expect(guest.call("utimensat", AT_FDCWD, guest.cstr("orig"), times, 0)).toBe(0);
    const st = statSync(join(dir, "orig"), { bigint: true });
    expect(st.atimeNs).toBe(1_000_000n * 1_000_000_000n);
    expect(st.mtimeNs).toBe(2_000_000n * 1_000_000_000n + 500n);
    // futimens form: NULL path, the fd itself.
    guest.memory.writeU64(times + 16, 3_000_000);
    expect(guest.call("utimensat", fd, 0, times, 0)).toBe(0);
    expect(statSync(join(dir, "orig"), { bigint: true }).mtimeNs).toBe(3_000_000n * 1_000_000_000n + 500n);
    expect(guest.call("ftruncate", fd, 4)).toBe(0);
    expect(readFileSync(join(dir, "orig"), "utf8")).toBe("0123");
    expect(guest.call("ftruncate", fd, -1)).toBe(-EINVAL);
    expect(guest.call("fsync", fd)).toBe(0);
    expect(guest.call("fdatasync", 99)).toBe(-EBADF);
  });
});

describe("file systems, locks, sendfile", () => {
  test("statfs (relative to the guest cwd) and fstatfs agree with the host", () => {
    const host = statfsSync(dir);
    const buf = guest.alloc(STATFS.size);
    expect(guest.call("statfs", guest.cstr("."), buf)).toBe(0);
    expect(guest.memory.readU64(buf + STATFS.type)).toBe(host.type);
    expect(guest.memory.readU64(buf + STATFS.bsize)).toBe(host.bsize);
    expect(guest.memory.readU64(buf + STATFS.blocks)).toBe(host.blocks);
    expect(guest.memory.readU64(buf + STATFS.namelen)).toBeGreaterThan(0);
    const fd = num(guest.call("openat", AT_FDCWD, guest.cstr("."), O_RDONLY | O_DIRECTORY));
    const other = guest.alloc(STATFS.size);
    expect(guest.call("fstatfs", fd, other)).toBe(0);
    expect(guest.memory.readU64(other + STATFS.type)).toBe(host.type);
    expect(guest.call("fstatfs", 99, other)).toBe(-EBADF);
    expect(guest.call("fstatfs", fd, 0)).toBe(-EFAULT);
    expect(guest.call("statfs", guest.cstr("missing"), buf)).toBe(-ENOENT);
    expect(guest.call("statfs", guest.cstr("."), 0)).toBe(-EFAULT);
    expect(guest.call("statfs", 0, buf)).toBe(-EFAULT);
  });

  test("sync and syncfs", () => {
    expect(guest.call("sync")).toBe(0);
    const fd = num(guest.call("openat", AT_FDCWD, guest.cstr("."), O_RDONLY | O_DIRECTORY));
    expect(guest.call("syncfs", fd)).toBe(0);
    expect(guest.call("syncfs", 99)).toBe(-EBADF);
  });

  test("flock: per open file description, LOCK_NB conflicts", () => {
    writeFileSync(join(dir, "lock"), "");
    const a = num(guest.call("openat", AT_FDCWD, guest.cstr("lock"), O_RDWR));
    const b = num(guest.call("openat", AT_FDCWD, guest.cstr("lock"), O_RDWR));
    expect(guest.call("flock", a, LOCK_EX)).toBe(0);
    expect(guest.call("flock", b, LOCK_EX | LOCK_NB)).toBe(-EAGAIN);
    expect(guest.call("flock", b, LOCK_SH | LOCK_NB)).toBe(-EAGAIN);
    // A dup shares a's open file description, hence its lock.
    const c = num(guest.call("dup", a));
    expect(guest.call("flock", c, LOCK_EX | LOCK_NB)).toBe(0);
    expect(guest.call("flock", a, LOCK_UN)).toBe(0);
    expect(guest.call("flock", b, LOCK_SH | LOCK_NB)).toBe(0);
    expect(guest.call("flock", 99, LOCK_SH)).toBe(-EBADF);
  });

  test("sendfile: with an offset (updated in guest memory, file position kept) and without", () => {
    writeFileSync(join(dir, "src"), "0123456789");
    const input = num(guest.call("openat", AT_FDCWD, guest.cstr("src"), O_RDONLY));
    const output = num(guest.call("openat", AT_FDCWD, guest.cstr("dst"), O_WRONLY | O_CREAT, 0o644));
    const offset = guest.alloc(8);
    guest.memory.writeU64(offset, 2);
    expect(guest.call("sendfile", output, input, offset, 5)).toBe(5);
    expect(guest.memory.readU64(offset)).toBe(7);
    expect(guest.call("lseek", input, 0, SEEK_CUR)).toBe(0);
    expect(guest.call("sendfile", output, input, 0, 100)).toBe(10);
    expect(guest.call("lseek", input, 0, SEEK_CUR)).toBe(10);
    expect(readFileSync(join(dir, "dst"), "utf8")).toBe("234560123456789");
    expect(guest.call("sendfile", output, 99, 0, 1)).toBe(-EBADF);
    expect(guest.call("sendfile", 99, input, 0, 1)).toBe(-EBADF);
    expect(guest.call("sendfile", output, input, 8, 1)).toBe(-EFAULT);
  });
});
