import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { EFAULT, EINVAL, EPERM } from "../abi/errno.ts";
import {
  PR_CAPBSET_READ,
  PR_GET_CHILD_SUBREAPER,
  PR_GET_DUMPABLE,
  PR_GET_IO_FLUSHER,
  PR_GET_KEEPCAPS,
  PR_GET_MEMORY_MERGE,
  PR_GET_NAME,
  PR_GET_NO_NEW_PRIVS,
  PR_GET_PDEATHSIG,
  PR_GET_SECCOMP,
  PR_GET_THP_DISABLE,
  PR_GET_TIMERSLACK,
  PR_GET_TIMING,
  PR_MCE_KILL,
  PR_MCE_KILL_GET,
  PR_SET_CHILD_SUBREAPER,
  PR_SET_DUMPABLE,
  PR_SET_KEEPCAPS,
  PR_SET_NAME,
  PR_SET_NO_NEW_PRIVS,
  PR_SET_PDEATHSIG,
  PR_SET_THP_DISABLE,
  PR_SET_TIMERSLACK,
  PR_SET_TIMING,
  PR_TASK_PERF_EVENTS_DISABLE,
} from "../abi/process.ts";
import { SIGKILL, SIGTERM } from "../abi/signal.ts";
import { ProcessState } from "../process.ts";
import { createFakeGuest, type FakeGuest, PAGE } from "../test-support.ts";

let guest: FakeGuest;
beforeEach(() => {
  guest = createFakeGuest({ exePath: "/opt/bin/a-rather-long-program-name" });
});
afterEach(() => guest.close());

function getName(): Uint8Array {
  const buf = guest.alloc(32);
  guest.bytes.fill(0xaa, buf, buf + 32);
  expect(guest.call("prctl", PR_GET_NAME, buf)).toBe(0);
  // Exactly 16 bytes are written.
  expect(guest.bytes[buf + 16]).toBe(0xaa);
  return guest.bytes.slice(buf, buf + 16);
}
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes.subarray(0, bytes.indexOf(0)));

describe("prctl names", () => {
  test("comm starts as the program's basename, truncated to 15 bytes", () => {
    const name = getName();
    expect(text(name)).toBe("a-rather-long-p");
    expect(name[15]).toBe(0);
  });

  test("execName (the name the program was run as) wins over exePath", () => {
    const p = new ProcessState({ exePath: "/bin/busybox", execName: "./ls", inheritStdio: false });
    expect(p.currentThread.commText).toBe("ls");
    p.closeAll();
  });

  test("PR_SET_NAME copies at most 15 bytes and pads with NULs", () => {
    expect(guest.call("prctl", PR_SET_NAME, guest.cstr("worker"))).toBe(0);
    expect(text(getName())).toBe("worker");
    expect(getName().subarray(6)).toEqual(new Uint8Array(10));
    expect(guest.call("prctl", PR_SET_NAME, guest.cstr("0123456789abcdefghij"))).toBe(0);
    expect(text(getName())).toBe("0123456789abcde");
    expect(guest.process.currentThread.commText).toBe("0123456789abcde");
  });

  test("PR_SET_NAME: a fault before the NUL or 15 bytes is EFAULT; after it, fine", () => {
    expect(guest.call("prctl", PR_SET_NAME, 0)).toBe(-EFAULT);
    // A name ending right before an unmapped page.
    const page = guest.alloc(2 * PAGE);
    const base = Math.ceil(page / PAGE) * PAGE;
    guest.unmapped.add(base / PAGE + 1);
    guest.bytes.set(new TextEncoder().encode("end\0"), base + PAGE - 4);
    expect(guest.call("prctl", PR_SET_NAME, base + PAGE - 4)).toBe(0);
    guest.bytes.set(new TextEncoder().encode("abcd"), base + PAGE - 4);
    expect(guest.call("prctl", PR_SET_NAME, base + PAGE - 4)).toBe(-EFAULT);
    expect(text(getName())).toBe("end");
    expect(guest.call("prctl", PR_GET_NAME, 0)).toBe(-EFAULT);
  });
});

describe("prctl flags", () => {
  test("PR_SET/GET_PDEATHSIG", () => {
    const out = guest.alloc(4);
    expect(guest.call("prctl", PR_GET_PDEATHSIG, out)).toBe(0);
    expect(guest.memory.readU32(out)).toBe(0);
    expect(guest.call("prctl", PR_SET_PDEATHSIG, SIGTERM)).toBe(0);
    expect(guest.call("prctl", PR_GET_PDEATHSIG, out)).toBe(0);
    expect(guest.memory.readU32(out)).toBe(SIGTERM);
    expect(guest.call("prctl", PR_SET_PDEATHSIG, 65)).toBe(-EINVAL);
    expect(guest.call("prctl", PR_SET_PDEATHSIG, SIGKILL)).toBe(0);
    expect(guest.process.currentThread.parentDeathSignal).toBe(SIGKILL);
    expect(guest.call("prctl", PR_GET_PDEATHSIG, 0)).toBe(-EFAULT);
  });

  test("PR_GET/SET_DUMPABLE", () => {
    expect(guest.call("prctl", PR_GET_DUMPABLE)).toBe(1);
    expect(guest.call("prctl", PR_SET_DUMPABLE, 0)).toBe(0);
    expect(guest.call("prctl", PR_GET_DUMPABLE)).toBe(0);
    expect(guest.call("prctl", PR_SET_DUMPABLE, 2)).toBe(-EINVAL);
    expect(guest.call("prctl", PR_SET_DUMPABLE, 1)).toBe(0);
    expect(guest.call("prctl", PR_GET_DUMPABLE)).toBe(1);
  });

  test("PR_SET/GET_NO_NEW_PRIVS: one-way, strict arguments", () => {
    expect(guest.call("prctl", PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)).toBe(0);
    expect(guest.call("prctl", PR_SET_NO_NEW_PRIVS, 0, 0, 0, 0)).toBe(-EINVAL);
    expect(guest.call("prctl", PR_SET_NO_NEW_PRIVS, 1, 1, 0, 0)).toBe(-EINVAL);
    expect(guest.call("prctl", PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)).toBe(0);
    expect(guest.call("prctl", PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)).toBe(1);
    expect(guest.call("prctl", PR_GET_NO_NEW_PRIVS, 1, 0, 0, 0)).toBe(-EINVAL);
  });

  test("timer slack and child subreaper are kept", () => {
    expect(guest.call("prctl", PR_GET_TIMERSLACK)).toBe(50_000);
    expect(guest.call("prctl", PR_SET_TIMERSLACK, 1000)).toBe(0);
    expect(guest.call("prctl", PR_GET_TIMERSLACK)).toBe(1000);
    expect(guest.call("prctl", PR_SET_TIMERSLACK, 0)).toBe(0);
    expect(guest.call("prctl", PR_GET_TIMERSLACK)).toBe(50_000);
    const out = guest.alloc(4);
    expect(guest.call("prctl", PR_SET_CHILD_SUBREAPER, 1)).toBe(0);
    expect(guest.call("prctl", PR_GET_CHILD_SUBREAPER, out)).toBe(0);
    expect(guest.memory.readU32(out)).toBe(1);
  });

  test("keepcaps, seccomp, timing, perf events, machine-check policy, THP disable, memory merge (as natively)", () => {
    // Each answer was checked against a native build on Linux 6.18 (found missing by comparing the two).
    expect(guest.call("prctl", PR_GET_KEEPCAPS)).toBe(0);
    expect(guest.call("prctl", PR_SET_KEEPCAPS, 2)).toBe(-EINVAL);
    expect(guest.call("prctl", PR_SET_KEEPCAPS, 1)).toBe(0);
    expect(guest.call("prctl", PR_GET_KEEPCAPS)).toBe(1);
    expect(guest.call("prctl", PR_GET_SECCOMP)).toBe(0);
    expect(guest.call("prctl", PR_GET_TIMING)).toBe(0);
    expect(guest.call("prctl", PR_SET_TIMING, 1)).toBe(-EINVAL);
    expect(guest.call("prctl", PR_TASK_PERF_EVENTS_DISABLE)).toBe(0);
    expect(guest.call("prctl", PR_MCE_KILL_GET, 0, 0, 0, 0)).toBe(2);
    expect(guest.call("prctl", PR_MCE_KILL, 1, 1, 0, 0)).toBe(0);
    expect(guest.call("prctl", PR_MCE_KILL_GET, 0, 0, 0, 0)).toBe(1);
    expect(guest.call("prctl", PR_MCE_KILL, 0, 0, 0, 0)).toBe(0);
    expect(guest.call("prctl", PR_MCE_KILL_GET, 0, 0, 0, 0)).toBe(2);
    expect(guest.call("prctl", PR_GET_THP_DISABLE, 0, 0, 0, 0)).toBe(0);
    expect(guest.call("prctl", PR_SET_THP_DISABLE, 1, 0, 0, 0)).toBe(0);
    expect(guest.call("prctl", PR_GET_THP_DISABLE, 0, 0, 0, 0)).toBe(1);
    expect(guest.call("prctl", PR_GET_MEMORY_MERGE, 0, 0, 0, 0)).toBe(0);
  });

  test("the capability bounding set and CAP_SYS_RESOURCE are the host process's", () => {
    const status = readFileSync("/proc/self/status", "utf8");
    const set = (name: string) =>
      BigInt(`0x${new RegExp(`^${name}:\\s*([0-9a-f]+)$`, "m").exec(status)![1]}`);
    for (const cap of [0, 21, 24, 40])
      expect(guest.call("prctl", PR_CAPBSET_READ, cap)).toBe(Number((set("CapBnd") >> BigInt(cap)) & 1n));
    expect(guest.call("prctl", PR_CAPBSET_READ, 41)).toBe(-EINVAL);
    const resource = (set("CapEff") >> 24n) & 1n;
    expect(guest.call("prctl", PR_GET_IO_FLUSHER, 0, 0, 0, 0)).toBe(resource ? 0 : -EPERM);
  });

  test("unknown and unsupported options are EINVAL", () => {
    expect(guest.call("prctl", 0)).toBe(-EINVAL);
    expect(guest.call("prctl", 51)).toBe(-EINVAL); // PR_SVE_GET_VL: no SVE
    expect(guest.call("prctl", 0x53564d41, 0, 0, 0, 0)).toBe(-EINVAL); // PR_SET_VMA
    expect(guest.call("prctl", 9999)).toBe(-EINVAL);
  });
});
