import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AT_FDCWD, O_CLOEXEC, O_CREAT, O_RDONLY, O_WRONLY } from "../abi/fcntl.ts";
import { NR } from "../abi/syscalls.ts";
import { createFakeGuest, type FakeGuest } from "../test-support.ts";
import { quoteBytes } from "./format.ts";

let dir: string;
let guest: FakeGuest;
let lines: string[];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "guest-trace-"));
  lines = [];
  guest = createFakeGuest({ cwd: dir, trace: (line) => lines.push(line) });
});
afterEach(() => {
  guest.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("strace-style lines", () => {
  test("openat, read, write, close", () => {
    const passwd = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n";
    writeFileSync(join(dir, "passwd"), passwd);
    const path = join(dir, "passwd");
    const fd = guest.call("openat", AT_FDCWD, guest.cstr(path), O_RDONLY | O_CLOEXEC) as number;
    const buf = guest.alloc(4096);
    guest.call("read", fd, buf, 4096);
    guest.call("write", 1, guest.cstr("hello\n"), 0);
    guest.call("close", fd);
    expect(lines).toEqual([
      `openat(AT_FDCWD, "${path}", O_RDONLY|O_CLOEXEC) = 3`,
      `read(3, "root:x:0:0:root:/root:/bin/bash\\n"..., 4096) = ${passwd.length}`,
      'write(1, "", 0) = 0',
      "close(3) = 0",
    ]);
  });

  test("write with escapes, mode printed only with O_CREAT, errors with errno names", () => {
    const data = guest.alloc(8);
    guest.bytes.set([0x68, 0x69, 0x0a, 0x00, 0x31, 0x09, 0x22, 0xff], data);
    const fd = guest.call("openat", AT_FDCWD, guest.cstr("out"), O_WRONLY | O_CREAT, 0o644) as number;
    guest.call("write", fd, data, 8);
    guest.call("openat", AT_FDCWD, guest.cstr("/nonexistent/x"), O_RDONLY);
    guest.call("close", 42);
    expect(lines).toEqual([
      'openat(AT_FDCWD, "out", O_WRONLY|O_CREAT, 0644) = 3',
      'write(3, "hi\\n\\0001\\t\\"\\377", 8) = 8',
      'openat(AT_FDCWD, "/nonexistent/x", O_RDONLY) = -1 ENOENT (No such file or directory)',
      "close(42) = -1 EBADF (Bad file descriptor)",
    ]);
  });

  test("unimplemented syscalls: hex args, ENOSYS, a one-time notice", () => {
    guest.call(NR.io_setup, 1, 2);
    guest.call(NR.io_setup, 1, 2);
    expect(lines).toEqual([
      "[guest] syscall 0 (io_setup) is not implemented: -ENOSYS from now on",
      "io_setup(0x1, 0x2, 0x0, 0x0, 0x0, 0x0) = -1 ENOSYS (Function not implemented)",
      "io_setup(0x1, 0x2, 0x0, 0x0, 0x0, 0x0) = -1 ENOSYS (Function not implemented)",
    ]);
  });

  test("numbers in a hole of the table and past it are named syscall_0x…; a handler registered there by its name", () => {
    guest.call(300);
    guest.call(600);
    guest.dispatcher.registerHandler(301, "guest_probe", () => 7);
    guest.call(301, 5);
    expect(lines).toEqual([
      "[guest] syscall 300 (syscall_0x12c) is not implemented: -ENOSYS from now on",
      "syscall_0x12c(0x0, 0x0, 0x0, 0x0, 0x0, 0x0) = -1 ENOSYS (Function not implemented)",
      "[guest] syscall 600 (syscall_0x258) is not implemented: -ENOSYS from now on",
      "syscall_0x258(0x0, 0x0, 0x0, 0x0, 0x0, 0x0) = -1 ENOSYS (Function not implemented)",
      "guest_probe(0x5, 0x0, 0x0, 0x0, 0x0, 0x0) = 7",
    ]);
  });

  test("a registered handler (mmap) traces with its format and a hex result", () => {
    guest.dispatcher.registerHandler(NR.mmap, "mmap", () => 0x7f12_3456_0000);
    expect(guest.dispatcher.isImplemented(NR.mmap)).toBe(true);
    guest.call("mmap", 0, 8192, 3, 0x22, -1, 0);
    guest.call("exit_group", 0);
    expect(lines).toEqual([
      "mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f1234560000",
      "exit_group(0) = ?",
    ]);
  });

  test("tracing can be switched off and on", () => {
    guest.dispatcher.setTrace(undefined);
    guest.call("getpid");
    expect(lines).toEqual([]);
    guest.dispatcher.setTrace((line) => lines.push(line));
    guest.call("getpid");
    expect(lines).toEqual([`getpid() = ${process.pid}`]);
  });
});

describe("pointers and 64-bit arguments", () => {
  test("addresses >= 2^31 and >= 2^32 print exactly (no 32-bit truncation or sign)", () => {
    guest.call("uname", 0xfefe_fcc0);
    guest.call("uname", 0x8000_0000);
    guest.call("uname", 0x1_0000_fcc0);
    guest.call("uname", 0xffff_fffe_fefe_fcc0n);
    guest.call("set_tid_address", 0xffff_8000_0000_0010n);
    guest.call("getresuid", 0x7fff_ffff_f000, 0x8000_0000_0000n, 0xdead_beef);
    guest.call("write", 1, 0xfefe_f5c0, 0x1_0000_0000);
    guest.call("openat", AT_FDCWD, 0x9_0000_0000, O_RDONLY);
    expect(lines).toEqual([
      "uname(0xfefefcc0) = -1 EFAULT (Bad address)",
      "uname(0x80000000) = -1 EFAULT (Bad address)",
      "uname(0x10000fcc0) = -1 EFAULT (Bad address)",
      "uname(0xfffffffefefefcc0) = -1 EFAULT (Bad address)",
      `set_tid_address(0xffff800000000010) = ${process.pid}`,
      "getresuid(0x7ffffffff000, 0x800000000000, 0xdeadbeef) = -1 EFAULT (Bad address)",
      "write(1, 0xfefef5c0, 4294967296) = -1 EFAULT (Bad address)",
      "openat(AT_FDCWD, 0x900000000, O_RDONLY) = -1 EFAULT (Bad address)",
    ]);
  });

  test("new formats: prctl options, scheduler policies, priorities, flock, personality", () => {
    const name = guest.cstr("worker");
    guest.call("prctl", 15, name);
    guest.call("sched_get_priority_max", 1);
    guest.call("sched_setscheduler", 0, 0x4000_0002, 0);
    guest.call("getpriority", 0, 0);
    guest.call("flock", 42, 6);
    guest.call("personality", 0xffff_ffff);
    guest.call("rt_sigpending", 0, 8);
    const prio = lines[3]!;
    expect(lines).toEqual([
      `prctl(PR_SET_NAME, 0x${name.toString(16)}, 0x0, 0x0, 0x0) = 0`,
      "sched_get_priority_max(SCHED_FIFO) = 99",
      "sched_setscheduler(0, SCHED_RR|SCHED_RESET_ON_FORK, NULL) = -1 EINVAL (Invalid argument)",
      prio,
      "flock(42, LOCK_EX|LOCK_NB) = -1 EBADF (Bad file descriptor)",
      "personality(0xffffffff) = 0x0",
      "rt_sigpending(NULL, 8) = -1 EFAULT (Bad address)",
    ]);
    expect(prio).toMatch(/^getpriority\(PRIO_PROCESS, 0\) = \d+$/);
  });
});

describe("quoteBytes", () => {
  test("C escapes with strace's octal rules", () => {
    const q = (bytes: number[]) => quoteBytes(new Uint8Array(bytes));
    expect(q([0x61, 0x5c, 0x62])).toBe('"a\\\\b"');
    expect(q([0x00, 0x41])).toBe('"\\0A"');
    expect(q([0x00, 0x37])).toBe('"\\0007"');
    expect(q([0x1b, 0x5b])).toBe('"\\33["');
    expect(q([0x0d, 0x0b, 0x0c])).toBe('"\\r\\v\\f"');
  });
});
