import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { EFAULT, EINVAL, EPERM } from "../abi/errno.ts";
import { ID_UNCHANGED } from "../abi/process.ts";
import { createFakeGuest, type FakeGuest, PAGE } from "../test-support.ts";

let guest: FakeGuest;
beforeEach(() => {
  guest = createFakeGuest();
});
afterEach(() => guest.close());

/** A field of /proc/self/status as numbers ("Uid:\t0\t0\t0\t0"). */
function statusNumbers(field: string): number[] {
  const line = readFileSync("/proc/self/status", "utf8")
    .split("\n")
    .find((l) => l.startsWith(`${field}:`));
  return (line ?? "")
    .slice(field.length + 1)
    .trim()
    .split(/\s+/)
    .filter((s) => s !== "")
    .map(Number);
}

/** Pretend the host runs unprivileged with these ids (the fields are readonly for handlers, not at runtime). */
function asUnprivileged(uids: [number, number, number], gids: [number, number, number]): void {
  const p = guest.process as unknown as Record<string, number>;
  [p.uid, p.euid, p.suid] = uids;
  [p.gid, p.egid, p.sgid] = gids;
}

describe("getresuid / getresgid", () => {
  test("write the host's real, effective and saved ids", () => {
    const ids = guest.alloc(12);
    expect(guest.call("getresuid", ids, ids + 4, ids + 8)).toBe(0);
    const uid = statusNumbers("Uid");
    expect([0, 4, 8].map((o) => guest.memory.readU32(ids + o))).toEqual(uid.slice(0, 3));
    expect(guest.call("getresgid", ids, ids + 4, ids + 8)).toBe(0);
    expect([0, 4, 8].map((o) => guest.memory.readU32(ids + o))).toEqual(statusNumbers("Gid").slice(0, 3));
  });

  test("a bad pointer is EFAULT; the ids before it are written", () => {
    const ids = guest.alloc(8);
    guest.memory.writeU32(ids, 0xdead);
    guest.memory.writeU32(ids + 4, 0xdead);
    expect(guest.call("getresuid", ids, ids + 4, 0)).toBe(-EFAULT);
    expect(guest.memory.readU32(ids + 4)).toBe(statusNumbers("Uid")[1]!);
    expect(guest.call("getresgid", 0, ids, ids + 4)).toBe(-EFAULT);
    guest.readonly.add(Math.floor(ids / PAGE));
    expect(guest.call("getresuid", ids, ids, ids)).toBe(-EFAULT);
  });
});

describe("setuid family", () => {
  test("setting the current ids succeeds; -1 is EINVAL for setuid/setgid", () => {
    const p = guest.process;
    expect(guest.call("setuid", p.uid)).toBe(0);
    expect(guest.call("setgid", p.gid)).toBe(0);
    expect(guest.call("setreuid", p.uid, p.euid)).toBe(0);
    expect(guest.call("setregid", ID_UNCHANGED, ID_UNCHANGED)).toBe(0);
    expect(guest.call("setresuid", ID_UNCHANGED, p.euid, ID_UNCHANGED)).toBe(0);
    expect(guest.call("setresgid", p.gid, p.egid, p.sgid)).toBe(0);
    expect(guest.call("setuid", ID_UNCHANGED)).toBe(-EINVAL);
    expect(guest.call("setgid", ID_UNCHANGED)).toBe(-EINVAL);
  });

  test("a change is never made: EPERM whether Linux would refuse it or not", () => {
    const other = guest.process.uid + 4242;
    expect(guest.call("setuid", other)).toBe(-EPERM);
    expect(guest.call("setresuid", other, ID_UNCHANGED, ID_UNCHANGED)).toBe(-EPERM);
    expect(guest.call("setgid", guest.process.gid + 4242)).toBe(-EPERM);
    expect(guest.process.uid).toBe(statusNumbers("Uid")[0]!);
  });

  test("unprivileged rules: values must come from the current set", () => {
    asUnprivileged([1000, 1000, 1000], [100, 100, 100]);
    expect(guest.call("setuid", 1000)).toBe(0);
    expect(guest.call("setuid", 0)).toBe(-EPERM);
    expect(guest.call("setresuid", 1000, 1000, 1000)).toBe(0);
    expect(guest.call("setresuid", 1000, 1001, ID_UNCHANGED)).toBe(-EPERM);
    expect(guest.call("setreuid", 1000, ID_UNCHANGED)).toBe(0);
    expect(guest.call("setreuid", 5, ID_UNCHANGED)).toBe(-EPERM);
    expect(guest.call("setregid", ID_UNCHANGED, 7)).toBe(-EPERM);
    expect(guest.call("setgid", 100)).toBe(0);
    // A permitted change (effective back to the saved id) is one we cannot make.
    asUnprivileged([1000, 1000, 0], [100, 100, 100]);
    expect(guest.call("setuid", 0)).toBe(-EPERM);
    // setreuid(-1, ruid) with euid == ruid keeps the saved id: no change.
    expect(guest.call("setreuid", ID_UNCHANGED, 1000)).toBe(0);
    // setreuid(ruid, -1) sets suid = euid: a change.
    expect(guest.call("setreuid", 1000, ID_UNCHANGED)).toBe(-EPERM);
  });
});

describe("groups", () => {
  test("getgroups: count with size 0, the list, EINVAL when too small, EFAULT", () => {
    const expected = statusNumbers("Groups");
    expect(guest.call("getgroups", 0, 0)).toBe(expected.length);
    const list = guest.alloc(4 * 64);
    expect(guest.call("getgroups", 64, list)).toBe(expected.length);
    const got = Array.from({ length: expected.length }, (_, i) => guest.memory.readU32(list + 4 * i));
    expect(got.sort()).toEqual([...expected].sort());
    expect(guest.call("getgroups", -1, list)).toBe(-EINVAL);
    if (expected.length > 0) {
      expect(guest.call("getgroups", expected.length - 1, list)).toBe(-EINVAL);
      expect(guest.call("getgroups", 64, 0)).toBe(-EFAULT);
    }
  });

  test("setgroups: EPERM unprivileged; privileged, only the current set", () => {
    const current = statusNumbers("Groups");
    const list = guest.alloc(4 * (current.length + 1));
    for (const [i, g] of current.entries()) guest.memory.writeU32(list + 4 * i, g);
    if (guest.process.euid === 0) {
      expect(guest.call("setgroups", current.length, list)).toBe(0);
      guest.memory.writeU32(list + 4 * current.length, 4242);
      expect(guest.call("setgroups", current.length + 1, list)).toBe(-EPERM);
      expect(guest.call("setgroups", 70_000, list)).toBe(-EINVAL);
      expect(guest.call("setgroups", 1, 0)).toBe(-EFAULT);
    }
    asUnprivileged([1000, 1000, 1000], [100, 100, 100]);
    expect(guest.call("setgroups", current.length, list)).toBe(-EPERM);
  });
});
