import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { EFAULT, EINVAL } from "../abi/errno.ts";
import {
  PR_GET_CHILD_SUBREAPER,
  PR_GET_DUMPABLE,
  PR_GET_NAME,
  PR_GET_NO_NEW_PRIVS,
  PR_GET_PDEATHSIG,
  PR_GET_TIMERSLACK,
  PR_SET_CHILD_SUBREAPER,
  PR_SET_DUMPABLE,
  PR_SET_NAME,
  PR_SET_NO_NEW_PRIVS,
  PR_SET_PDEATHSIG,
  PR_SET_TIMERSLACK,
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

  test("unknown and unsupported options are EINVAL", () => {
    expect(guest.call("prctl", 0)).toBe(-EINVAL);
    expect(guest.call("prctl", 51)).toBe(-EINVAL); // PR_SVE_GET_VL: no SVE
    expect(guest.call("prctl", 0x53564d41, 0, 0, 0, 0)).toBe(-EINVAL); // PR_SET_VMA
    expect(guest.call("prctl", 9999)).toBe(-EINVAL);
  });
});
