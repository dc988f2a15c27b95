import { describe, expect, test } from "bun:test";
import { EFAULT, ENAMETOOLONG } from "./abi/errno.ts";
import { GuestMemory } from "./memory.ts";

function memoryOver(
  size: number,
  inaccessible: Array<[number, number]> = [],
  readonly: Array<[number, number]> = [],
) {
  const bytes = new Uint8Array(size);
  const overlaps = (ranges: Array<[number, number]>, a: number, n: number) =>
    ranges.some(([s, e]) => a < e && a + n > s);
  const memory = new GuestMemory({
    bytes,
    hostAddress: 0x1000_0000,
    isAccessible: (a, n, write) => !overlaps(inaccessible, a, n) && !(write && overlaps(readonly, a, n)),
  });
  return { bytes, memory };
}

describe("GuestMemory", () => {
  test("reads and writes little-endian integers", () => {
    const { memory, bytes } = memoryOver(8192);
    expect(memory.writeU32(16, 0xdeadbeef)).toBe(0);
    expect([...bytes.subarray(16, 20)]).toEqual([0xef, 0xbe, 0xad, 0xde]);
    expect(memory.readU32(16)).toBe(0xdeadbeef);
    expect(memory.writeU64(32, 0x1234_5678_9abcn)).toBe(0);
    expect(memory.readU64(32)).toBe(0x1234_5678_9abc);
    expect(memory.writeU64(40, -2)).toBe(0);
    expect(memory.readU64Big(40)).toBe(0xffff_ffff_ffff_fffen);
    expect(memory.readI64(40)).toBe(-2);
    expect(memory.readU64(40)).toBe(Number.POSITIVE_INFINITY);
  });

  test("out of the slab or inaccessible is -EFAULT, never a throw", () => {
    const { memory } = memoryOver(8192, [[4096, 8192]], [[0, 64]]);
    expect(memory.readU32(8190)).toBe(-EFAULT);
    expect(memory.readU32(4094)).toBe(-EFAULT);
    expect(memory.readU32(-4)).toBe(-EFAULT);
    expect(memory.readU64(Number.POSITIVE_INFINITY)).toBe(-EFAULT);
    expect(memory.writeU32(0, 1)).toBe(-EFAULT); // read-only
    expect(memory.readU32(0)).toBe(0);
    expect(memory.writeBytes(4090, new Uint8Array(10))).toBe(-EFAULT);
    expect(memory.readBytes(5000, 1)).toBe(-EFAULT);
    expect(memory.hostPointer(100, 10, false)).toBe(0x1000_0000 + 100);
    expect(memory.hostPointer(4095, 2, false)).toBe(-EFAULT);
    // Zero length never faults.
    expect(memory.hostPointer(5000, 0, true)).toBe(0x1000_0000 + 5000);
    // Not even at an unrepresentable pointer (found by tests/guest/sys_fuzz.c: getgroups with no groups and a
    // pointer >= 2^53 threw a RangeError out of Uint8Array.set).
    expect(memory.writeBytes(Number.POSITIVE_INFINITY, new Uint8Array(0))).toBe(0);
    expect(memory.writeBytes(1 << 20, new Uint8Array(0))).toBe(0);
    expect(memory.readBytes(Number.POSITIVE_INFINITY, 0)).toEqual(new Uint8Array(0));
  });

  test("accessiblePrefix stops at the first inaccessible page", () => {
    const { memory } = memoryOver(16384, [[8192, 12288]]);
    expect(memory.accessiblePrefix(4000, 100, true)).toBe(100);
    expect(memory.accessiblePrefix(8000, 1000, true)).toBe(192);
    expect(memory.accessiblePrefix(8192, 10, true)).toBe(0);
    expect(memory.accessiblePrefix(16000, 1000, false)).toBe(384);
  });

  test("C strings: found, unterminated before a fault, too long", () => {
    const { memory, bytes } = memoryOver(16384, [[8192, 16384]]);
    bytes.set(new TextEncoder().encode("/etc/passwd\0"), 100);
    expect(memory.readCString(100)).toBe("/etc/passwd");
    // A string ending right at the end of accessible memory, with its NUL on the last byte, is fine.
    bytes.set(new TextEncoder().encode("ab\0"), 8189);
    expect(memory.readCString(8189)).toBe("ab");
    bytes.fill(0x61, 8000, 8192);
    expect(memory.readCString(8000)).toBe(-EFAULT);
    bytes.fill(0x61, 0, 4096 + 100);
    expect(memory.cStringLength(0)).toBe(-ENAMETOOLONG);
    expect(memory.readCString(0, 8)).toBe(-ENAMETOOLONG);
    expect(memory.cStringLength(9000)).toBe(-EFAULT);
  });

  test("readIovec decodes base/length pairs", () => {
    const { memory } = memoryOver(8192, [[4096, 8192]]);
    memory.writeU64(64, 0x100);
    memory.writeU64(72, 5);
    memory.writeU64(80, 0x200);
    memory.writeU64(88, 7);
    expect(memory.readIovec(64, 2)).toEqual([
      [0x100, 5],
      [0x200, 7],
    ]);
    expect(memory.readIovec(4080, 2)).toBe(-EFAULT);
  });
});
