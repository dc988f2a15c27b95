import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { EBADF, EFAULT, EINVAL } from "../abi/errno.ts";
import { POLLFD, POLLIN, POLLNVAL, POLLOUT } from "../abi/poll.ts";
import { createFakeGuest, type FakeGuest, PAGE } from "../test-support.ts";

let g: FakeGuest;
let readEnd: number;
let writeEnd: number;

beforeEach(() => {
  g = createFakeGuest();
  const fds = g.alloc(8);
  expect(g.call("pipe2", fds, 0)).toBe(0);
  const view = new DataView(g.bytes.buffer);
  readEnd = view.getInt32(fds, true);
  writeEnd = view.getInt32(fds + 4, true);
});
afterEach(() => g.close());

function view(): DataView {
  return new DataView(g.bytes.buffer);
}

/** A guest pollfd array of [fd, events] pairs. */
function pollfds(entries: Array<[number, number]>): number {
  const address = g.alloc(entries.length * POLLFD.size);
  entries.forEach(([fd, events], i) => {
    view().setInt32(address + i * POLLFD.size + POLLFD.fd, fd, true);
    view().setInt16(address + i * POLLFD.size + POLLFD.events, events, true);
    view().setInt16(address + i * POLLFD.size + POLLFD.revents, 0x7777, true);
  });
  return address;
}

const revents = (address: number, i: number): number =>
  view().getInt16(address + i * POLLFD.size + POLLFD.revents, true);

function timespec(sec: number, nsec: number): number {
  const address = g.alloc(16);
  view().setBigInt64(address, BigInt(sec), true);
  view().setBigInt64(address + 8, BigInt(nsec), true);
  return address;
}

function writeByte(): void {
  const buf = g.cstr("x");
  expect(g.call("write", writeEnd, buf, 1)).toBe(1);
}

describe("ppoll", () => {
  test("a pipe: writable at once, readable only after a write", () => {
    const fds = pollfds([
      [readEnd, POLLIN],
      [writeEnd, POLLOUT],
    ]);
    const zero = timespec(0, 0);
    expect(g.call("ppoll", fds, 2, zero, 0, 0)).toBe(1);
    expect(revents(fds, 0)).toBe(0);
    expect(revents(fds, 1)).toBe(POLLOUT);
    expect(g.call("ppoll", fds, 1, zero, 0, 0)).toBe(0);
    writeByte();
    const ten = timespec(10, 0);
    expect(g.call("ppoll", fds, 2, ten, 0, 0)).toBe(2);
    expect(revents(fds, 0)).toBe(POLLIN);
    // The remaining time comes back (a little under 10 s, never more).
    const sec = view().getBigInt64(ten, true);
    expect(sec <= 10n && sec >= 0n).toBe(true);
    expect(view().getBigInt64(ten + 8, true) < 1_000_000_000n).toBe(true);
  });

  test("negative fds are ignored, closed ones get POLLNVAL without waiting", () => {
    const fds = pollfds([
      [-1, POLLIN],
      [999, POLLIN],
      [readEnd, POLLIN],
    ]);
    expect(g.call("ppoll", fds, 3, 0, 0, 0)).toBe(1);
    expect(revents(fds, 0)).toBe(0);
    expect(revents(fds, 1)).toBe(POLLNVAL);
    expect(revents(fds, 2)).toBe(0);
  });

  test("errors: EINVAL for bad timeouts and sigset sizes, EFAULT for bad pointers", () => {
    const fds = pollfds([[readEnd, POLLIN]]);
    const mask = g.alloc(8);
    expect(g.call("ppoll", fds, 1, timespec(0, 1_000_000_000), 0, 0)).toBe(-EINVAL);
    expect(g.call("ppoll", fds, 1, timespec(-1, 0), 0, 0)).toBe(-EINVAL);
    expect(g.call("ppoll", fds, 1, timespec(0, 0), mask, 4)).toBe(-EINVAL);
    expect(g.call("ppoll", fds, 1, 8, 0, 0)).toBe(-EFAULT);
    expect(g.call("ppoll", 8, 1, timespec(0, 0), 0, 0)).toBe(-EFAULT);
    expect(g.call("ppoll", fds, 1, timespec(0, 0), 8, 8)).toBe(-EFAULT);
    expect(g.call("ppoll", fds, 0x7fff_ffff, timespec(0, 0), 0, 0)).toBe(-EINVAL);
    // A read-only array: the poll happens, the revents cannot be stored.
    const page = g.alloc(2 * PAGE);
    const readonly = Math.ceil(page / PAGE) * PAGE;
    view().setInt32(readonly, readEnd, true);
    view().setInt16(readonly + 4, POLLIN, true);
    g.readonly.add(readonly / PAGE);
    expect(g.call("ppoll", readonly, 1, timespec(0, 0), 0, 0)).toBe(-EFAULT);
  });

  test("the signal mask applies for the call only (SIGKILL/SIGSTOP stay unblockable)", () => {
    const fds = pollfds([[writeEnd, POLLOUT]]);
    const mask = g.alloc(8);
    view().setBigUint64(mask, 0xffff_ffff_ffff_ffffn, true);
    const thread = g.process.currentThread;
    thread.blocked = 0b10n;
    expect(g.call("ppoll", fds, 1, timespec(0, 0), mask, 8)).toBe(1);
    expect(thread.blocked).toBe(0b10n);
  });
});

/** A guest fd_set of 1024 bits with `fds` set. */
function fdSet(fds: number[]): number {
  const address = g.alloc(128);
  for (const fd of fds) g.bytes[address + (fd >> 3)]! |= 1 << (fd & 7);
  return address;
}

function members(address: number): number[] {
  const out: number[] = [];
  for (let fd = 0; fd < 1024; fd++) if (g.bytes[address + (fd >> 3)]! & (1 << (fd & 7))) out.push(fd);
  return out;
}

describe("pselect6", () => {
  test("fd_set round trip: only ready fds remain, each set counts", () => {
    const n = Math.max(readEnd, writeEnd) + 1;
    let readable = fdSet([readEnd]);
    let writable = fdSet([writeEnd]);
    expect(g.call("pselect6", n, readable, writable, 0, timespec(0, 0), 0)).toBe(1);
    expect(members(readable)).toEqual([]);
    expect(members(writable)).toEqual([writeEnd]);
    writeByte();
    readable = fdSet([readEnd]);
    writable = fdSet([writeEnd]);
    const ten = timespec(10, 0);
    expect(g.call("pselect6", n, readable, writable, 0, ten, 0)).toBe(2);
    expect(members(readable)).toEqual([readEnd]);
    expect(members(writable)).toEqual([writeEnd]);
    expect(view().getBigInt64(ten, true) <= 10n).toBe(true);
  });

  test("timeout 0 on nothing ready: 0 and cleared sets", () => {
    const readable = fdSet([readEnd]);
    expect(g.call("pselect6", readEnd + 1, readable, 0, 0, timespec(0, 0), 0)).toBe(0);
    expect(members(readable)).toEqual([]);
  });

  test("errors: EBADF, EINVAL, EFAULT", () => {
    const zero = timespec(0, 0);
    expect(g.call("pselect6", 51, fdSet([readEnd, 50]), 0, 0, zero, 0)).toBe(-EBADF);
    expect(g.call("pselect6", -1, 0, 0, 0, zero, 0)).toBe(-EINVAL);
    expect(g.call("pselect6", readEnd + 1, 8, 0, 0, zero, 0)).toBe(-EFAULT);
    expect(g.call("pselect6", readEnd + 1, fdSet([readEnd]), 0, 0, zero, 8)).toBe(-EFAULT);
    const pack = g.alloc(16);
    view().setBigUint64(pack, BigInt(g.alloc(8)), true);
    view().setBigUint64(pack + 8, 4n, true);
    expect(g.call("pselect6", readEnd + 1, fdSet([readEnd]), 0, 0, zero, pack)).toBe(-EINVAL);
    expect(g.call("pselect6", readEnd + 1, fdSet([readEnd]), 0, 0, timespec(0, -1), 0)).toBe(-EINVAL);
  });
});
