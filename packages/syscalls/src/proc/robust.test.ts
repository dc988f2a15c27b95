import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { FUTEX_OWNER_DIED, FUTEX_WAITERS } from "../abi/futex.ts";
import { sharedHost } from "../host/host.ts";
import { ThreadState } from "../process.ts";
import { createFakeGuest, type FakeGuest } from "../test-support.ts";
import { exitRobustList, type RobustListContext } from "./robust.ts";

/**
 * A glibc-shaped robust list in guest memory: each mutex has its `struct robust_list` link at offset 0 and its
 * futex word at FUTEX_OFFSET (glibc's __list at a negative offset works the same way: futex_offset is signed).
 */
const FUTEX_OFFSET = 16;
const TID = 4242;

let guest: FakeGuest;
let woken: number[];
let context: RobustListContext;
beforeEach(() => {
  guest = createFakeGuest();
  woken = [];
  context = {
    memory: guest.memory,
    host: sharedHost(),
    wakeLocal: (address, count) => {
      woken.push(address);
      return count;
    },
  };
});
afterEach(() => guest.close());

/** A list head and `words.length` entries holding those futex words; returns the head and entry addresses. */
function buildList(words: number[], pending = 0): { head: number; entries: number[] } {
  const head = guest.alloc(24);
  const entries = words.map(() => guest.alloc(32));
  entries.forEach((entry, i) => {
    guest.memory.writeU64(entry, i + 1 < entries.length ? entries[i + 1]! : head);
    guest.memory.writeU32(entry + FUTEX_OFFSET, words[i]!);
  });
  guest.memory.writeU64(head, entries[0] ?? head);
  guest.memory.writeU64(head + 8, FUTEX_OFFSET);
  guest.memory.writeU64(head + 16, pending);
  return { head, entries };
}

function dyingThread(head: number): ThreadState {
  const thread = new ThreadState(TID);
  thread.robustListHead = head;
  return thread;
}

describe("robust futexes at thread death", () => {
  test("owned words get OWNER_DIED (keeping WAITERS); a waiter is woken only where there are waiters", () => {
    const { head, entries } = buildList([TID, TID | FUTEX_WAITERS, 777]);
    exitRobustList(context, dyingThread(head));
    const word = (i: number) => guest.memory.readU32(entries[i]! + FUTEX_OFFSET);
    expect(word(0)).toBe(FUTEX_OWNER_DIED);
    expect(word(1)).toBe((FUTEX_OWNER_DIED | FUTEX_WAITERS) >>> 0);
    expect(word(2)).toBe(777); // another thread's lock: untouched
    expect(woken).toEqual([entries[1]! + FUTEX_OFFSET]);
  });

  test("the pending entry is released too; an unowned pending word only gets a wake-up", () => {
    const pending = guest.alloc(32);
    guest.memory.writeU32(pending + FUTEX_OFFSET, 0);
    const { head } = buildList([], pending);
    exitRobustList(context, dyingThread(head));
    expect(woken).toEqual([pending + FUTEX_OFFSET]);
    expect(guest.memory.readU32(pending + FUTEX_OFFSET)).toBe(0);
  });

  test("the list is forgotten afterwards, and a corrupt list stops the walk without throwing", () => {
    const { head, entries } = buildList([TID]);
    const thread = dyingThread(head);
    exitRobustList(context, thread);
    expect(thread.robustListHead).toBe(0);
    // A link into unmapped memory (page 0): the walk stops there.
    guest.memory.writeU32(entries[0]! + FUTEX_OFFSET, TID);
    guest.memory.writeU64(entries[0]!, 8);
    guest.memory.writeU64(head, entries[0]!);
    expect(() => exitRobustList(context, dyingThread(head))).not.toThrow();
    expect(guest.memory.readU32(entries[0]! + FUTEX_OFFSET)).toBe(FUTEX_OWNER_DIED);
  });

  test("a cyclic list ends at the kernel's limit of 2048 entries", () => {
    const { head, entries } = buildList([TID, TID]);
    guest.memory.writeU64(entries[1]!, entries[0]!); // never returns to the head
    expect(() => exitRobustList(context, dyingThread(head))).not.toThrow();
    expect(guest.memory.readU32(entries[0]! + FUTEX_OFFSET)).toBe(FUTEX_OWNER_DIED);
  });
});
