import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { EAGAIN, EFAULT, EINVAL, ENOSYS, ETIMEDOUT } from "../abi/errno.ts";
import { FUTEX_LOCK_PI, FUTEX_PRIVATE_FLAG, FUTEX_WAIT, FUTEX_WAKE, FUTEX_WAKE_OP } from "../abi/futex.ts";
import { createFakeGuest, type FakeGuest } from "../test-support.ts";

let g: FakeGuest;
beforeEach(() => {
  g = createFakeGuest();
});
afterEach(() => g.close());

function word(value: number): number {
  const address = g.alloc(8);
  new DataView(g.bytes.buffer).setUint32(address, value, true);
  return address;
}

describe("futex on the host's futex", () => {
  test("WAKE with nobody waiting wakes 0", () => {
    expect(g.call("futex", word(0), FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, 0, 0, 0)).toBe(0);
  });

  test("WAIT on a changed value is EAGAIN at once", () => {
    expect(g.call("futex", word(5), FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 4, 0, 0, 0)).toBe(-EAGAIN);
  });

  test("WAIT with a relative timeout ends in ETIMEDOUT", () => {
    const timeout = g.alloc(16);
    const view = new DataView(g.bytes.buffer);
    view.setBigInt64(timeout, 0n, true);
    view.setBigInt64(timeout + 8, 1_000_000n, true); // 1 ms
    expect(g.call("futex", word(7), FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 7, timeout, 0, 0)).toBe(-ETIMEDOUT);
  });

  test("WAKE_OP performs its operation on the second word", () => {
    const first = word(0);
    const second = word(1);
    // FUTEX_OP(FUTEX_OP_SET, 9, FUTEX_OP_CMP_EQ, 1): *second = 9, wake on first if old == 1
    const op = (0 << 28) | (0 << 24) | (9 << 12) | 1;
    expect(g.call("futex", first, FUTEX_WAKE_OP | FUTEX_PRIVATE_FLAG, 1, 1, second, op)).toBe(0);
    expect(new DataView(g.bytes.buffer).getUint32(second, true)).toBe(9);
  });

  test("misaligned, unmapped and PI futexes are refused as Linux refuses them", () => {
    expect(g.call("futex", word(0) + 2, FUTEX_WAKE, 1, 0, 0, 0)).toBe(-EINVAL);
    expect(g.call("futex", 0, FUTEX_WAKE, 1, 0, 0, 0)).toBe(-EFAULT);
    expect(g.call("futex", word(0), FUTEX_LOCK_PI, 0, 0, 0, 0)).toBe(-ENOSYS);
  });
});
