import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EBADF, EFAULT, EINVAL, EMFILE, ENOTTY } from "../abi/errno.ts";
import {
  AT_FDCWD,
  F_DUPFD,
  F_DUPFD_CLOEXEC,
  F_GETFD,
  F_GETFL,
  F_SETFD,
  F_SETFL,
  FD_CLOEXEC,
  O_APPEND,
  O_CLOEXEC,
  O_DIRECT,
  O_DIRECTORY,
  O_LARGEFILE,
  O_NONBLOCK,
  O_RDONLY,
  O_RDWR,
} from "../abi/fcntl.ts";
import { FIONREAD, TCGETS, TIOCGWINSZ } from "../abi/ioctl.ts";
import { RLIMIT_NOFILE } from "../abi/resource.ts";
import { createFlagTranslator } from "../host/flags.ts";
import { FdTable } from "../process.ts";
import { createFakeGuest, type FakeGuest } from "../test-support.ts";

let dir: string;
let guest: FakeGuest;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "guest-fd-"));
  writeFileSync(join(dir, "f"), "file contents");
  guest = createFakeGuest({ cwd: dir });
});
afterEach(() => {
  guest.close();
  rmSync(dir, { recursive: true, force: true });
});
const num = (r: unknown): number => r as number;
const open = (flags = O_RDONLY) => num(guest.call("openat", AT_FDCWD, guest.cstr("f"), flags));

describe("FdTable", () => {
  test("allocates the lowest free number and reuses holes", () => {
    const table = new FdTable(8);
    const e = (n: number) => ({ hostFd: 100 + n, cloexec: false, path: "" });
    expect([0, 1, 2, 3].map((n) => table.allocate(e(n)))).toEqual([0, 1, 2, 3]);
    table.remove(1);
    expect(table.allocate(e(9))).toBe(1);
    expect(table.allocate(e(9))).toBe(4);
    table.remove(2);
    table.remove(0);
    expect(table.allocate(e(9))).toBe(0);
    expect(table.allocate(e(9), 3)).toBe(5);
    expect(table.allocate(e(9))).toBe(2);
    expect(table.allocate(e(9), 8)).toBe(-EINVAL);
    expect(table.allocate(e(9))).toBe(6);
    expect(table.allocate(e(9))).toBe(7);
    expect(table.allocate(e(9))).toBe(-EMFILE);
    expect(table.install(3, e(42))?.hostFd).toBe(103);
    expect(table.get(3)?.hostFd).toBe(142);
    expect([...table.open()].map(([fd]) => fd)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });
});

describe("dup, dup3, fcntl", () => {
  test("stdio is inherited; new fds take the lowest free number", () => {
    expect([0, 1, 2].map((fd) => guest.process.fds.get(fd) !== undefined)).toEqual([true, true, true]);
    const a = open();
    const b = open();
    expect([a, b]).toEqual([3, 4]);
    expect(guest.call("close", a)).toBe(0);
    expect(open()).toBe(3);
    expect(guest.call("dup", 4)).toBe(5);
    expect(guest.call("close", 0)).toBe(0);
    expect(guest.call("dup", 4)).toBe(0);
  });

  test("dup shares the file offset; dup3 replaces and honours O_CLOEXEC", () => {
    const fd = open();
    const copy = num(guest.call("dup", fd));
    const buf = guest.alloc(16);
    expect(guest.call("read", fd, buf, 4)).toBe(4);
    expect(guest.call("read", copy, buf, 4)).toBe(4);
    expect(guest.text(buf, 4)).toBe(" con");
    expect(guest.call("fcntl", copy, F_GETFD)).toBe(0);
    expect(guest.call("dup3", fd, 10, O_CLOEXEC)).toBe(10);
    expect(guest.call("fcntl", 10, F_GETFD)).toBe(FD_CLOEXEC);
    expect(guest.call("dup3", fd, 10, 0)).toBe(10);
    expect(guest.call("fcntl", 10, F_GETFD)).toBe(0);
    expect(guest.call("dup3", fd, fd, 0)).toBe(-EINVAL);
    expect(guest.call("dup3", fd, 11, 0x1)).toBe(-EINVAL);
    expect(guest.call("dup3", 99, 11, 0)).toBe(-EBADF);
    expect(guest.call("dup3", fd, guest.process.fds.limit, 0)).toBe(-EBADF); // at RLIMIT_NOFILE: past the table
    expect(guest.call("dup", 99)).toBe(-EBADF);
  });

  test("O_CLOEXEC at open, F_SETFD/F_GETFD, F_DUPFD(_CLOEXEC) from a minimum", () => {
    const fd = open(O_RDONLY | O_CLOEXEC);
    expect(guest.call("fcntl", fd, F_GETFD)).toBe(FD_CLOEXEC);
    expect(guest.call("fcntl", fd, F_SETFD, 0)).toBe(0);
    expect(guest.call("fcntl", fd, F_GETFD)).toBe(0);
    expect(guest.call("fcntl", fd, F_DUPFD, 20)).toBe(20);
    expect(guest.call("fcntl", fd, F_DUPFD, 20)).toBe(21);
    expect(guest.call("fcntl", fd, F_DUPFD_CLOEXEC, 7)).toBe(7);
    expect(guest.call("fcntl", 7, F_GETFD)).toBe(FD_CLOEXEC);
    expect(guest.call("fcntl", fd, F_DUPFD, 1 << 20)).toBe(-EINVAL);
    expect(guest.call("fcntl", fd, 12345)).toBe(-EINVAL);
    expect(guest.call("fcntl", 99, F_GETFD)).toBe(-EBADF);
  });

  test("F_GETFL/F_SETFL speak arm64 flag values", () => {
    const fd = open(O_RDWR);
    const flags = num(guest.call("fcntl", fd, F_GETFL));
    expect(flags & 3).toBe(O_RDWR);
    // A 64-bit kernel always reports O_LARGEFILE: in the arm64 encoding.
    expect(flags & O_LARGEFILE).toBe(O_LARGEFILE);
    expect(guest.call("fcntl", fd, F_SETFL, O_APPEND | O_NONBLOCK)).toBe(0);
    const after = num(guest.call("fcntl", fd, F_GETFL));
    expect(after & (O_APPEND | O_NONBLOCK)).toBe(O_APPEND | O_NONBLOCK);
    const dfd = num(guest.call("openat", AT_FDCWD, guest.cstr("."), O_RDONLY | O_DIRECTORY));
    expect(num(guest.call("fcntl", dfd, F_GETFL)) & O_DIRECTORY).toBe(O_DIRECTORY);
  });

  test("the flag translator swaps the four bits arm64 moved", () => {
    const x86 = createFlagTranslator("x86_64");
    expect(x86.toHost(O_DIRECTORY)).toBe(0x10000);
    expect(x86.toHost(O_DIRECT | O_LARGEFILE)).toBe(0x4000 | 0x8000);
    expect(x86.toGuest(0x10000 | 0x20000)).toBe(O_DIRECTORY | 0x8000);
    expect(x86.toHost(O_RDWR | O_CLOEXEC | O_APPEND)).toBe(O_RDWR | O_CLOEXEC | O_APPEND);
    const same = createFlagTranslator("aarch64");
    expect(same.toHost(O_DIRECTORY | O_DIRECT)).toBe(O_DIRECTORY | O_DIRECT);
  });

  test("RLIMIT_NOFILE bounds the table: EMFILE", () => {
    const limit = guest.alloc(16);
    guest.memory.writeU64(limit, 6);
    guest.memory.writeU64(limit + 8, 6);
    expect(guest.call("prlimit64", 0, RLIMIT_NOFILE, limit, 0)).toBe(0);
    expect([open(), open(), open()]).toEqual([3, 4, 5]);
    expect(open()).toBe(-EMFILE);
    expect(guest.call("dup", 3)).toBe(-EMFILE);
  });
});

describe("pipe2 and ioctl", () => {
  test("pipe2 returns two guest fds that talk to each other", () => {
    const fds = guest.alloc(8);
    expect(guest.call("pipe2", fds, O_CLOEXEC)).toBe(0);
    const r = guest.memory.readU32(fds);
    const w = guest.memory.readU32(fds + 4);
    expect([r, w]).toEqual([3, 4]);
    expect(guest.call("fcntl", r, F_GETFD)).toBe(FD_CLOEXEC);
    const msg = guest.cstr("ping");
    expect(guest.call("write", w, msg, 4)).toBe(4);
    const count = guest.alloc(4);
    expect(guest.call("ioctl", r, FIONREAD, count)).toBe(0);
    expect(guest.memory.readU32(count)).toBe(4);
    const buf = guest.alloc(8);
    expect(guest.call("read", r, buf, 8)).toBe(4);
    expect(guest.text(buf, 4)).toBe("ping");
    expect(guest.call("pipe2", fds, 0x1)).toBe(-EINVAL);
    expect(guest.call("pipe2", 0, 0)).toBe(-EFAULT);
  });

  test("terminal ioctls on a non-tty are ENOTTY; unknown requests are ENOTTY", () => {
    const fd = open();
    const buf = guest.alloc(64);
    expect(guest.call("ioctl", fd, TCGETS, buf)).toBe(-ENOTTY);
    expect(guest.call("ioctl", fd, TIOCGWINSZ, buf)).toBe(-ENOTTY);
    expect(guest.call("ioctl", fd, 0x1234, buf)).toBe(-ENOTTY);
    expect(guest.call("ioctl", 99, TCGETS, buf)).toBe(-EBADF);
  });
});
