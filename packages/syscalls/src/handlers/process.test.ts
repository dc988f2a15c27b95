import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { CLOCK_MONOTONIC, CLOCK_REALTIME, TIMER_ABSTIME } from "../abi/clock.ts";
import { EFAULT, EINVAL, ENOSYS, EPERM, ESRCH } from "../abi/errno.ts";
import { RLIM_INFINITY, RLIMIT_NOFILE, RLIMIT_STACK } from "../abi/resource.ts";
import { SYSINFO, TMS, UTSNAME } from "../abi/structs.ts";
import { NR } from "../abi/syscalls.ts";
import { createFakeGuest, type FakeGuest } from "../test-support.ts";

let guest: FakeGuest;
beforeEach(() => {
  guest = createFakeGuest();
});
afterEach(() => guest.close());
const num = (r: unknown): number => r as number;

describe("identity", () => {
  test("pid/ppid/tid/uid/gid are the host's", () => {
    expect(guest.call("getpid")).toBe(process.pid);
    expect(guest.call("getppid")).toBe(process.ppid);
    expect(guest.call("gettid")).toBe(process.pid);
    expect(guest.call("getuid")).toBe(process.getuid!());
    expect(guest.call("geteuid")).toBe(process.geteuid!());
    expect(guest.call("getgid")).toBe(process.getgid!());
    expect(guest.call("getegid")).toBe(process.getegid!());
  });

  test("uname reports Linux 6.18 on aarch64 with the host name", () => {
    const buf = guest.alloc(UTSNAME.size);
    expect(guest.call("uname", buf)).toBe(0);
    const field = (offset: number) => guest.memory.readCString(buf + offset, 65);
    expect(field(UTSNAME.sysname)).toBe("Linux");
    expect(field(UTSNAME.nodename)).toBe(hostname());
    expect(field(UTSNAME.release)).toBe("6.18.0");
    expect(field(UTSNAME.version)).toBe("#1 SMP PREEMPT_DYNAMIC guest");
    expect(field(UTSNAME.machine)).toBe("aarch64");
    expect(field(UTSNAME.domainname)).toBe("(none)");
    expect(guest.call("uname", 0)).toBe(-EFAULT);
  });

  test("set_tid_address, set_robust_list, rseq, exit_group", () => {
    expect(guest.call("set_tid_address", 0x1234)).toBe(process.pid);
    expect(guest.process.currentThread.clearChildTid).toBe(0x1234);
    expect(guest.call("set_robust_list", 0x5000, 24)).toBe(0);
    expect(guest.call("set_robust_list", 0x5000, 16)).toBe(-EINVAL);
    expect(guest.process.currentThread.robustListHead).toBe(0x5000);
    expect(guest.call("rseq", 0x6000, 32, 0, 0xd428bc00)).toBe(-ENOSYS);
    expect(guest.call("exit_group", 0x1_07)).toEqual({ control: "exit", status: 7, group: true });
    expect(guest.call("exit", 3)).toEqual({ control: "exit", status: 3, group: false });
  });

  test("unimplemented and out-of-range numbers are ENOSYS", () => {
    expect(guest.call(NR.mmap, 0, 4096, 3, 0x22, -1, 0)).toBe(-ENOSYS);
    expect(guest.call(9999)).toBe(-ENOSYS);
    expect(guest.call(0xffff_ffff)).toBe(-ENOSYS);
  });
});

describe("limits", () => {
  test("the guest inherits the host process's limits (as qemu-user shows them)", () => {
    const limits = readFileSync("/proc/self/limits", "utf8");
    const soft = (label: string): bigint => {
      const value = new RegExp(`^${label}\\s+(\\S+)`, "m").exec(limits)![1]!;
      return value === "unlimited" ? RLIM_INFINITY : BigInt(value);
    };
    const old = guest.alloc(16);
    expect(guest.call("prlimit64", 0, RLIMIT_NOFILE, 0, old)).toBe(0);
    expect(guest.memory.readU64Big(old)).toBe(soft("Max open files"));
    expect(guest.call("prlimit64", 0, RLIMIT_STACK, 0, old)).toBe(0);
    expect(guest.memory.readU64Big(old)).toBe(soft("Max stack size"));
  });

  test("prlimit64 get/set within the hard limit", () => {
    const old = guest.alloc(16);
    const initialNofile = guest.process.rlimits[RLIMIT_NOFILE]![0];
    const next = guest.alloc(16);
    guest.memory.writeU64(next, 512);
    guest.memory.writeU64(next + 8, 2048);
    expect(guest.call("prlimit64", process.pid, RLIMIT_NOFILE, next, old)).toBe(0);
    expect(guest.memory.readU64Big(old)).toBe(initialNofile);
    expect(guest.process.fds.limit).toBe(512);
    expect(guest.call("getrlimit", RLIMIT_NOFILE, old)).toBe(0);
    expect([guest.memory.readU64(old), guest.memory.readU64(old + 8)]).toEqual([512, 2048]);
    // cur > max
    guest.memory.writeU64(next, 4096);
    expect(guest.call("setrlimit", RLIMIT_NOFILE, next)).toBe(-EINVAL);
    // beyond fs.nr_open
    guest.memory.writeU64(next, 1);
    guest.memory.writeU64(next + 8, 1n << 40n);
    expect(guest.call("setrlimit", RLIMIT_NOFILE, next)).toBe(-EPERM);
    expect(guest.call("prlimit64", 1, RLIMIT_NOFILE, 0, old)).toBe(-ESRCH);
    expect(guest.call("prlimit64", 0, 16, 0, old)).toBe(-EINVAL);
    expect(guest.call("getrlimit", RLIMIT_NOFILE, 0)).toBe(-EFAULT);
  });

  test("raising a hard limit takes CAP_SYS_RESOURCE (the host process's), not merely uid 0", () => {
    // Found natively: root in a container without CAP_SYS_RESOURCE gets EPERM; the runtime said 0.
    const capEff = BigInt(
      `0x${/^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync("/proc/self/status", "utf8"))![1]}`,
    );
    const privileged = (capEff & (1n << 24n)) !== 0n;
    const next = guest.alloc(16);
    guest.memory.writeU64(next, 256);
    guest.memory.writeU64(next + 8, 512);
    expect(guest.call("setrlimit", RLIMIT_NOFILE, next)).toBe(0); // lowering is always allowed
    guest.memory.writeU64(next + 8, 1024);
    expect(guest.call("setrlimit", RLIMIT_NOFILE, next)).toBe(privileged ? 0 : -EPERM);
  });
});

describe("time", () => {
  test("clock_settime: validated as Linux, then EPERM (the host clock is never set)", () => {
    const ts = guest.alloc(16);
    guest.memory.writeU64(ts, 1_000_000);
    guest.memory.writeU64(ts + 8, 0);
    expect(guest.call("clock_settime", CLOCK_MONOTONIC, ts)).toBe(-EINVAL);
    expect(guest.call("clock_settime", CLOCK_REALTIME, 0)).toBe(-EFAULT);
    expect(guest.call("clock_settime", CLOCK_REALTIME, ts)).toBe(-EPERM);
    guest.memory.writeU64(ts, -1);
    expect(guest.call("clock_settime", CLOCK_REALTIME, ts)).toBe(-EINVAL); // before the epoch (checked natively)
  });

  test("clock_gettime writes a plausible timespec straight into guest memory", () => {
    const ts = guest.alloc(16);
    expect(guest.call("clock_gettime", CLOCK_REALTIME, ts)).toBe(0);
    const sec = guest.memory.readI64(ts);
    expect(Math.abs(sec - Date.now() / 1000)).toBeLessThan(5);
    expect(guest.memory.readI64(ts + 8)).toBeLessThan(1e9);
    expect(guest.call("clock_gettime", 10, ts)).toBe(-EINVAL);
    expect(guest.call("clock_gettime", 99, 0)).toBe(-EINVAL);
    expect(guest.call("clock_gettime", CLOCK_MONOTONIC, 0)).toBe(-EFAULT);
    expect(guest.call("clock_getres", CLOCK_MONOTONIC, ts)).toBe(0);
    expect(guest.memory.readI64(ts)).toBe(0);
    expect(guest.memory.readI64(ts + 8)).toBe(1);
    expect(guest.call("clock_getres", CLOCK_MONOTONIC, 0)).toBe(0);
  });

  test("gettimeofday, nanosleep and clock_nanosleep validation", () => {
    const tv = guest.alloc(16);
    expect(guest.call("gettimeofday", tv, 0)).toBe(0);
    expect(Math.abs(guest.memory.readI64(tv) - Date.now() / 1000)).toBeLessThan(5);
    const req = guest.alloc(16);
    guest.memory.writeU64(req, 0);
    guest.memory.writeU64(req + 8, 1000);
    expect(guest.call("nanosleep", req, 0)).toBe(0);
    guest.memory.writeU64(req + 8, 1_000_000_000);
    expect(guest.call("nanosleep", req, 0)).toBe(-EINVAL);
    guest.memory.writeU64(req, -1);
    guest.memory.writeU64(req + 8, 0);
    expect(guest.call("nanosleep", req, 0)).toBe(-EINVAL);
    expect(guest.call("nanosleep", 0, 0)).toBe(-EFAULT);
    // An absolute deadline in the past returns at once.
    guest.memory.writeU64(req, 1);
    expect(guest.call("clock_nanosleep", CLOCK_MONOTONIC, TIMER_ABSTIME, req, 0)).toBe(0);
  });
});

describe("system information", () => {
  test("getrandom fills the buffer and validates flags", () => {
    const buf = guest.alloc(64);
    expect(guest.call("getrandom", buf, 64, 0)).toBe(64);
    expect(guest.bytes.subarray(buf, buf + 64).some((b) => b !== 0)).toBe(true);
    expect(guest.call("getrandom", buf, 16, 0x8)).toBe(-EINVAL);
    expect(guest.call("getrandom", buf, 16, 0x6)).toBe(-EINVAL);
    expect(guest.call("getrandom", 0, 16, 0)).toBe(-EFAULT);
    expect(guest.call("getrandom", buf, 0, 0)).toBe(0);
  });

  test("sysinfo and getrusage", () => {
    const info = guest.alloc(SYSINFO.size);
    expect(guest.call("sysinfo", info)).toBe(0);
    expect(
      guest.memory.readU64(info + SYSINFO.totalram) * guest.memory.readU32(info + SYSINFO.memUnit),
    ).toBeGreaterThan(1 << 20);
    expect(guest.call("sysinfo", 0)).toBe(-EFAULT);
    const usage = guest.alloc(144);
    expect(guest.call("getrusage", 0, usage)).toBe(0);
    expect(guest.call("getrusage", 5, usage)).toBe(-EINVAL);
  });

  test("sched_getaffinity returns the host's CPUs in a kernel-sized mask", () => {
    const mask = guest.alloc(128);
    const size = num(guest.call("sched_getaffinity", 0, 128, mask));
    expect(size % 8).toBe(0);
    expect(size).toBeGreaterThanOrEqual(8);
    let cpus = 0;
    for (let i = 0; i < size; i++) for (let b = guest.bytes[mask + i]!; b; b &= b - 1) cpus++;
    expect(cpus).toBe(navigator.hardwareConcurrency);
    expect(guest.call("sched_getaffinity", 0, 7, mask)).toBe(-EINVAL);
    // Another process (guest pids are host pids): the host's answer; no such process: ESRCH.
    expect(num(guest.call("sched_getaffinity", 1, 128, mask))).toBe(size);
    expect(guest.call("sched_getaffinity", 0x7fff_ffff, 128, mask)).toBe(-ESRCH);
    expect(guest.call("sched_getaffinity", 0, 128, 0)).toBe(-EFAULT);
    expect(guest.call("sched_yield")).toBe(0);
  });
});

describe("times and personality", () => {
  test("times fills struct tms with the host's process times and returns clock ticks", () => {
    const tms = guest.alloc(TMS.size);
    guest.bytes.fill(0xff, tms, tms + TMS.size);
    const ticks = num(guest.call("times", tms));
    expect(ticks).toBeGreaterThan(0);
    // utime + stime of this process, in 1/100 s: what Bun itself reports, within rounding.
    const usage = process.cpuUsage();
    const hostTicks = (usage.user + usage.system) / 10_000;
    const guestTicks = guest.memory.readU64(tms) + guest.memory.readU64(tms + 8);
    expect(guestTicks).toBeLessThanOrEqual(hostTicks + 2);
    expect(guestTicks).toBeGreaterThanOrEqual(0);
    expect(guest.memory.readU64(tms + 16)).toBeLessThan(2 ** 40);
    // The tick count only moves forward.
    expect(num(guest.call("times", 0))).toBeGreaterThanOrEqual(ticks);
    expect(guest.call("times", 8)).toBe(-EFAULT);
  });

  test("personality returns the previous persona; 0xffffffff only queries", () => {
    expect(guest.call("personality", 0xffff_ffff)).toBe(0);
    expect(guest.call("personality", 0x0040000)).toBe(0);
    expect(guest.call("personality", 0xffff_ffff)).toBe(0x0040000);
    expect(guest.call("personality", 0)).toBe(0x0040000);
    expect(guest.call("personality", 0xffff_ffff)).toBe(0);
  });
});
