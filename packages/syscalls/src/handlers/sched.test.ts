import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { EFAULT, EINVAL, EPERM, ESRCH } from "../abi/errno.ts";
import {
  IOPRIO_WHO_PROCESS,
  PRIO_PGRP,
  PRIO_PROCESS,
  PRIO_USER,
  SCHED_BATCH,
  SCHED_DEADLINE,
  SCHED_FIFO,
  SCHED_IDLE,
  SCHED_OTHER,
  SCHED_RR,
} from "../abi/process.ts";
import { createFakeGuest, type FakeGuest } from "../test-support.ts";

let guest: FakeGuest;
beforeEach(() => {
  guest = createFakeGuest();
});
afterEach(() => guest.close());

/** Field `n` (1-based, as in proc(5)) of /proc/thread-self/stat: the host thread that runs the guest. */
function threadStatField(n: number): number {
  const stat = readFileSync("/proc/thread-self/stat", "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[n - 3]);
}

describe("scheduler policy and parameters", () => {
  test("sched_getscheduler: SCHED_OTHER for ourselves, ESRCH/EINVAL otherwise", () => {
    expect(guest.call("sched_getscheduler", 0)).toBe(SCHED_OTHER);
    expect(guest.call("sched_getscheduler", process.pid)).toBe(SCHED_OTHER);
    expect(guest.call("sched_getscheduler", 0x3fff_ffff)).toBe(-ESRCH);
    expect(guest.call("sched_getscheduler", -1)).toBe(-EINVAL);
  });

  test("sched_getparam writes priority 0", () => {
    const param = guest.alloc(4);
    guest.memory.writeU32(param, 77);
    expect(guest.call("sched_getparam", 0, param)).toBe(0);
    expect(guest.memory.readU32(param)).toBe(0);
    expect(guest.call("sched_getparam", 0, 0)).toBe(-EINVAL);
    expect(guest.call("sched_getparam", -1, param)).toBe(-EINVAL);
    expect(guest.call("sched_getparam", 0x3fff_ffff, param)).toBe(-ESRCH);
    expect(guest.call("sched_getparam", 0, 8)).toBe(-EFAULT);
  });

  test("sched_setscheduler / sched_setparam: the fair policies reach the host thread, real-time ones are refused, validation as Linux", () => {
    const param = guest.alloc(4);
    expect(guest.call("sched_setscheduler", 0, SCHED_OTHER, param)).toBe(0);
    expect(guest.call("sched_setparam", 0, param)).toBe(0);
    guest.memory.writeU32(param, 10);
    expect(guest.call("sched_setscheduler", 0, SCHED_FIFO, param)).toBe(-EPERM);
    expect(guest.call("sched_setscheduler", 0, SCHED_RR, param)).toBe(-EPERM);
    expect(guest.call("sched_setscheduler", 0, SCHED_OTHER, param)).toBe(-EINVAL);
    expect(guest.call("sched_setparam", 0, param)).toBe(-EINVAL);
    guest.memory.writeU32(param, 0);
    expect(guest.call("sched_setscheduler", 0, SCHED_FIFO, param)).toBe(-EINVAL);
    // The host thread takes them (this test's own thread: SCHED_IDLE is left out, leaving it needs CAP_SYS_NICE).
    expect(guest.call("sched_setscheduler", 0, SCHED_BATCH, param)).toBe(0);
    expect(guest.call("sched_getscheduler", 0)).toBe(SCHED_BATCH);
    // (SCHED_RESET_ON_FORK is left out too: clearing it again needs CAP_SYS_NICE, which a CI machine may lack.)
    expect(guest.call("sched_setscheduler", 0, SCHED_DEADLINE, param)).toBe(-EINVAL);
    expect(guest.call("sched_setscheduler", 0, 4, param)).toBe(-EINVAL);
    expect(guest.call("sched_setscheduler", 0, -1, param)).toBe(-EINVAL);
    guest.memory.writeU32(param, 100);
    expect(guest.call("sched_setscheduler", 0, SCHED_FIFO, param)).toBe(-EINVAL);
    expect(guest.call("sched_setscheduler", 0, SCHED_OTHER, 0)).toBe(-EINVAL);
    expect(guest.call("sched_setscheduler", 0, SCHED_OTHER, 8)).toBe(-EFAULT);
    expect(guest.call("sched_setscheduler", 0x3fff_ffff, SCHED_OTHER, param)).toBe(-ESRCH);
    guest.memory.writeU32(param, 0);
    expect(guest.call("sched_setscheduler", 0, SCHED_OTHER, param)).toBe(0);
    expect(guest.call("sched_getscheduler", 0)).toBe(SCHED_OTHER);
    const interval = guest.alloc(16);
    expect(guest.call("sched_rr_get_interval", 0, interval)).toBe(0);
    expect(guest.memory.readU64Big(interval)).toBe(0n); // fair policies report 0 on Linux 6.18
    expect(guest.call("sched_rr_get_interval", 0x3fff_ffff, interval)).toBe(-ESRCH);
  });

  test("priority ranges per policy", () => {
    for (const policy of [SCHED_FIFO, SCHED_RR]) {
      expect(guest.call("sched_get_priority_max", policy)).toBe(99);
      expect(guest.call("sched_get_priority_min", policy)).toBe(1);
    }
    for (const policy of [SCHED_OTHER, SCHED_BATCH, SCHED_IDLE, SCHED_DEADLINE]) {
      expect(guest.call("sched_get_priority_max", policy)).toBe(0);
      expect(guest.call("sched_get_priority_min", policy)).toBe(0);
    }
    expect(guest.call("sched_get_priority_max", 4)).toBe(-EINVAL);
    expect(guest.call("sched_get_priority_min", -1)).toBe(-EINVAL);
  });
});

describe("nice values and I/O priority", () => {
  test("getpriority returns 20 - nice of the host thread running the guest", () => {
    const nice = threadStatField(19);
    expect(guest.call("getpriority", PRIO_PROCESS, 0)).toBe(20 - nice);
    expect(guest.call("getpriority", PRIO_PROCESS, process.pid)).toBe(20 - nice);
    expect(guest.call("getpriority", PRIO_USER, 0)).toBeGreaterThanOrEqual(1);
    expect(guest.call("getpriority", PRIO_PGRP, 0)).toBeGreaterThanOrEqual(1);
    expect(guest.call("getpriority", PRIO_PROCESS, 0x3fff_ffff)).toBe(-ESRCH);
    expect(guest.call("getpriority", 3, 0)).toBe(-EINVAL);
  });

  test("setpriority to the current value succeeds on ourselves; groups and users are refused", () => {
    const nice = threadStatField(19);
    expect(guest.call("setpriority", PRIO_PROCESS, 0, nice)).toBe(0);
    expect(threadStatField(19)).toBe(nice);
    expect(guest.call("setpriority", PRIO_USER, 0, nice)).toBe(-EPERM);
    expect(guest.call("setpriority", PRIO_PROCESS, 0x3fff_ffff, nice)).toBe(-ESRCH);
    expect(guest.call("setpriority", 7, 0, nice)).toBe(-EINVAL);
  });

  test("ioprio_get for ourselves; ESRCH/EINVAL otherwise", () => {
    expect(guest.call("ioprio_get", IOPRIO_WHO_PROCESS, 0)).toBeGreaterThanOrEqual(0);
    expect(guest.call("ioprio_get", IOPRIO_WHO_PROCESS, 0x3fff_ffff)).toBe(-ESRCH);
    expect(guest.call("ioprio_get", 0, 0)).toBe(-EINVAL);
  });
});

describe("getcpu", () => {
  test("writes a CPU the host thread may run on, and node 0..", () => {
    const out = guest.alloc(8);
    guest.memory.writeU32(out, 0xffff);
    guest.memory.writeU32(out + 4, 0xffff);
    expect(guest.call("getcpu", out, out + 4, 0)).toBe(0);
    expect(guest.memory.readU32(out)).toBeLessThan(1024);
    expect(guest.memory.readU32(out + 4)).toBeLessThan(1024);
    const mask = guest.alloc(128);
    guest.call("sched_getaffinity", 0, 128, mask);
    const cpu = guest.memory.readU32(out);
    expect((guest.bytes[mask + (cpu >> 3)]! >> (cpu & 7)) & 1).toBe(1);
    expect(guest.call("getcpu", 0, 0, 0)).toBe(0);
    expect(guest.call("getcpu", 8, 0, 0)).toBe(-EFAULT);
    expect(guest.call("getcpu", out, 8, 0)).toBe(-EFAULT);
  });
});
