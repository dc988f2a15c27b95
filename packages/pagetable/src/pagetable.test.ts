import { describe, expect, test } from "bun:test";
import {
  DESC64,
  ENOMEM,
  L2_SPAN,
  PAGE_SIZE,
  PageTable,
  PROT_EXEC,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
} from "./index.ts";
import { prng, walk } from "./testing.ts";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

function setup(poolPages = 256, poolBase = 1 * MiB) {
  const memory = new Uint8Array(poolBase + poolPages * PAGE_SIZE);
  const pt = new PageTable({ memory, poolBase, poolSize: poolPages * PAGE_SIZE });
  return { memory, pt };
}

const USER = DESC64.shInner | DESC64.af | DESC64.nG | DESC64.pxn;

describe("descriptor encoding", () => {
  test("exact bits per protection at L3", () => {
    const { pt, memory } = setup();
    const va = 0x40_0000 + 5 * PAGE_SIZE;
    const cases: [number, bigint][] = [
      [PROT_READ, 3n | USER | DESC64.apEl0 | DESC64.apReadOnly | DESC64.uxn],
      [PROT_READ | PROT_WRITE, 3n | USER | DESC64.apEl0 | DESC64.uxn],
      [PROT_WRITE, 3n | USER | DESC64.apEl0 | DESC64.uxn],
      [PROT_EXEC, 3n | USER | DESC64.apEl0 | DESC64.apReadOnly],
      [PROT_READ | PROT_EXEC, 3n | USER | DESC64.apEl0 | DESC64.apReadOnly],
      [PROT_WRITE | PROT_EXEC, 3n | USER | DESC64.apEl0],
      [PROT_READ | PROT_WRITE | PROT_EXEC, 3n | USER | DESC64.apEl0],
      [PROT_NONE, DESC64.swProtNone],
    ];
    for (const [prot, bits] of cases) {
      expect(pt.map(va, PAGE_SIZE, prot)).toBe(0);
      const d = pt.describe(va);
      expect(d.level).toBe(3);
      expect(d.raw).toBe(BigInt(va) | bits);
      const w = walk(memory, pt.rootAddress, va);
      if (prot === PROT_NONE) {
        expect(w).toBeNull();
        expect(pt.translate(va)).toEqual({ pa: va, read: false, write: false, exec: false });
      } else {
        expect(w).not.toBeNull();
        expect(pt.translate(va)).toEqual({ pa: va, read: w!.read, write: w!.write, exec: w!.exec });
        expect(w!.read).toBe(true);
        expect(w!.write).toBe((prot & PROT_WRITE) !== 0);
        expect(w!.exec).toBe((prot & PROT_EXEC) !== 0);
      }
    }
  });

  test("2 MiB block and table descriptors", () => {
    const { pt, memory } = setup();
    const va = 3 * GiB + 4 * L2_SPAN; // high OA bits above 2^31 in the low word
    expect(pt.map(va, L2_SPAN, PROT_READ | PROT_WRITE)).toBe(0);
    const d = pt.describe(va + 123 * PAGE_SIZE);
    expect(d.level).toBe(2);
    expect(d.raw).toBe(BigInt(va) | 1n | USER | DESC64.apEl0 | DESC64.uxn);
    // Three table pages beyond the root: L1, L2 (block lives in L2) — and no L3.
    expect(pt.pagesInUse).toBe(3);
    const view = new DataView(memory.buffer);
    const l0 = view.getBigUint64(pt.rootAddress, true);
    expect(l0 & 3n).toBe(3n);
    expect(Number(l0 & DESC64.oaMask)).toBeGreaterThanOrEqual(pt.rootAddress);
    expect(walk(memory, pt.rootAddress, va + 77 * PAGE_SIZE)?.pa).toBe(va + 77 * PAGE_SIZE);
  });

  test("addresses above 4 GiB and near 2^48 keep their high output-address bits", () => {
    const { pt, memory } = setup();
    for (const va of [5 * GiB + 7 * PAGE_SIZE, 2 ** 47 + 3 * PAGE_SIZE, 2 ** 48 - PAGE_SIZE]) {
      expect(pt.map(va, PAGE_SIZE, PROT_READ)).toBe(0);
      expect(pt.translate(va)?.pa).toBe(va);
      expect(walk(memory, pt.rootAddress, va)?.pa).toBe(va);
      expect(pt.translate(va - PAGE_SIZE)).toBeNull();
    }
    const big = 2 ** 40;
    expect(pt.map(big, 2 * L2_SPAN, PROT_READ | PROT_EXEC)).toBe(0);
    expect(walk(memory, pt.rootAddress, big + L2_SPAN + PAGE_SIZE)).toMatchObject({
      level: 2,
      pa: big + L2_SPAN + PAGE_SIZE,
      exec: true,
    });
  });
});

describe("blocks: split and merge", () => {
  test("protecting one page splits the block; the other 511 inherit its attributes", () => {
    const { pt, memory } = setup();
    const base = 8 * L2_SPAN;
    pt.map(base, L2_SPAN, PROT_READ | PROT_WRITE);
    const blockRaw = pt.describe(base).raw;
    const before = pt.pagesInUse;
    expect(pt.protect(base + 10 * PAGE_SIZE, PAGE_SIZE, PROT_READ)).toBe(0);
    expect(pt.pagesInUse).toBe(before + 1);
    for (let i = 0; i < 512; i++) {
      const va = base + i * PAGE_SIZE;
      const d = pt.describe(va);
      expect(d.level).toBe(3);
      const w = walk(memory, pt.rootAddress, va)!;
      expect(w.write).toBe(i !== 10);
      if (i !== 10) expect(d.raw).toBe((blockRaw & ~0x1f_f000n) | BigInt(va) | 3n);
    }
    // Restoring the page makes the table uniform again: merged back into the very same block.
    expect(pt.protect(base + 10 * PAGE_SIZE, PAGE_SIZE, PROT_READ | PROT_WRITE)).toBe(0);
    expect(pt.describe(base + 10 * PAGE_SIZE)).toMatchObject({ level: 2, raw: blockRaw });
    expect(pt.pagesInUse).toBe(before);
  });

  test("mapping the same protection inside a block does not split it", () => {
    const { pt } = setup();
    pt.map(0, L2_SPAN, PROT_READ);
    const used = pt.pagesInUse;
    pt.map(64 * PAGE_SIZE, 3 * PAGE_SIZE, PROT_READ);
    pt.protect(5 * PAGE_SIZE, PAGE_SIZE, PROT_READ);
    expect(pt.pagesInUse).toBe(used);
    expect(pt.describe(0).level).toBe(2);
  });

  test("page-by-page mapping of a whole 2 MiB folds into a block; PROT_NONE folds into a marker", () => {
    const { pt } = setup();
    const base = 2 * L2_SPAN;
    for (let i = 0; i < 512; i++) pt.map(base + i * PAGE_SIZE, PAGE_SIZE, PROT_READ | PROT_EXEC);
    expect(pt.describe(base).level).toBe(2);
    pt.protect(base, L2_SPAN, PROT_NONE);
    expect(pt.describe(base)).toMatchObject({ level: 2 });
    expect(pt.describe(base).raw & DESC64.swProtNone).toBe(DESC64.swProtNone);
    expect(pt.translate(base + 9 * PAGE_SIZE)).toEqual({
      pa: base + 9 * PAGE_SIZE,
      read: false,
      write: false,
      exec: false,
    });
    expect(pt.protect(base + PAGE_SIZE, PAGE_SIZE, PROT_READ)).toBe(0);
    expect(pt.translate(base + PAGE_SIZE)?.read).toBe(true);
    expect(pt.translate(base)?.read).toBe(false);
  });

  test("unmap frees every table page that becomes empty", () => {
    const { pt } = setup();
    expect(pt.pagesInUse).toBe(1);
    pt.map(0x1234_5000, 64 * 1024, PROT_READ | PROT_WRITE);
    pt.map(7 * GiB + L2_SPAN, 3 * L2_SPAN, PROT_READ);
    pt.installGuard(0x1234_5000 + 4 * PAGE_SIZE, PAGE_SIZE);
    expect(pt.pagesInUse).toBeGreaterThan(4);
    pt.unmap(7 * GiB + L2_SPAN + PAGE_SIZE, PAGE_SIZE); // splits one block
    pt.unmap(0x1234_5000, 64 * 1024);
    pt.unmap(7 * GiB, 4 * L2_SPAN);
    expect(pt.pagesInUse).toBe(1);
    expect(pt.translate(7 * GiB + 2 * L2_SPAN)).toBeNull();
  });
});

describe("guards", () => {
  test("install, survive protect, remove restores the protection", () => {
    const { pt, memory } = setup();
    const base = 16 * L2_SPAN;
    pt.map(base, L2_SPAN, PROT_READ | PROT_WRITE);
    expect(pt.installGuard(base + 3 * PAGE_SIZE, 2 * PAGE_SIZE)).toBe(0);
    expect(pt.isGuard(base + 3 * PAGE_SIZE)).toBe(true);
    expect(pt.isGuard(base + 4 * PAGE_SIZE)).toBe(true);
    expect(pt.isGuard(base + 5 * PAGE_SIZE)).toBe(false);
    expect(pt.translate(base + 3 * PAGE_SIZE)).toBeNull();
    expect(walk(memory, pt.rootAddress, base + 3 * PAGE_SIZE)).toBeNull();
    const raw = pt.describe(base + 3 * PAGE_SIZE).raw;
    expect(raw & 1n).toBe(0n);
    expect(raw & DESC64.swGuard).toBe(DESC64.swGuard);
    pt.protect(base, L2_SPAN, PROT_READ);
    expect(pt.isGuard(base + 3 * PAGE_SIZE)).toBe(true);
    expect(pt.translate(base + 3 * PAGE_SIZE)).toBeNull();
    expect(pt.translate(base + 5 * PAGE_SIZE)?.write).toBe(false);
    expect(pt.removeGuard(base, L2_SPAN)).toBe(0);
    expect(pt.isGuard(base + 3 * PAGE_SIZE)).toBe(false);
    expect(pt.translate(base + 3 * PAGE_SIZE)).toMatchObject({ read: true, write: false });
    // Uniform again after the guard went: merged.
    expect(pt.describe(base).level).toBe(2);
  });

  test("guards over PROT_NONE and over unmapped pages; unmap clears them", () => {
    const { pt } = setup();
    pt.map(0x10_0000, 4 * PAGE_SIZE, PROT_NONE);
    pt.installGuard(0x10_0000, 8 * PAGE_SIZE);
    for (let i = 0; i < 8; i++) expect(pt.isGuard(0x10_0000 + i * PAGE_SIZE)).toBe(true);
    pt.removeGuard(0x10_0000 + 6 * PAGE_SIZE, PAGE_SIZE);
    expect(pt.translate(0x10_0000 + 6 * PAGE_SIZE)).toBeNull();
    pt.removeGuard(0x10_0000, PAGE_SIZE);
    expect(pt.translate(0x10_0000)).toEqual({ pa: 0x10_0000, read: false, write: false, exec: false });
    pt.unmap(0x10_0000, 8 * PAGE_SIZE);
    expect(pt.isGuard(0x10_0000 + 2 * PAGE_SIZE)).toBe(false);
    expect(pt.pagesInUse).toBe(1);
  });

  test("map over a guard replaces it", () => {
    const { pt } = setup();
    pt.map(0x20_0000, PAGE_SIZE, PROT_READ);
    pt.installGuard(0x20_0000, PAGE_SIZE);
    pt.map(0x20_0000, PAGE_SIZE, PROT_READ | PROT_WRITE);
    expect(pt.isGuard(0x20_0000)).toBe(false);
    expect(pt.translate(0x20_0000)?.write).toBe(true);
  });
});

describe("out of table memory", () => {
  test("-ENOMEM leaves every table byte as it was", () => {
    const { pt, memory } = setup(6);
    expect(pt.map(0, L2_SPAN, PROT_READ)).toBe(0); // root + L1 + L2
    const snapshot = memory.slice();
    const used = pt.pagesInUse;
    // 3 more pages are free; guarding 4 separate 2 MiB chunks needs 4 L3 tables (+0 new upper tables).
    pt.map(L2_SPAN, 8 * L2_SPAN, PROT_READ);
    const snap2 = memory.slice();
    expect(pt.installGuard(PAGE_SIZE, 4 * L2_SPAN)).toBe(-ENOMEM);
    expect(memory).toEqual(snap2);
    expect(pt.pagesInUse).toBe(used);
    // A far address needs new L1 + L2 + L3 tables: 3 pages, fits; another one does not.
    expect(pt.map(600 * GiB + PAGE_SIZE, PAGE_SIZE, PROT_READ)).toBe(0);
    const snap3 = memory.slice();
    expect(pt.map(2000 * GiB + PAGE_SIZE, PAGE_SIZE, PROT_READ)).toBe(-ENOMEM);
    expect(pt.unmap(PAGE_SIZE, PAGE_SIZE)).toBe(-ENOMEM); // splitting a block needs a page
    expect(pt.protect(3 * PAGE_SIZE, PAGE_SIZE, PROT_READ | PROT_WRITE)).toBe(-ENOMEM);
    expect(memory).toEqual(snap3);
    expect(pt.translate(PAGE_SIZE)?.read).toBe(true);
    // Non-splitting operations still work with an empty pool.
    expect(pt.protect(0, 2 * L2_SPAN, PROT_READ | PROT_WRITE)).toBe(0);
    expect(pt.unmap(L2_SPAN, L2_SPAN)).toBe(0);
    expect(snapshot.length).toBe(memory.length);
  });
});

describe("TLB invalidation batches", () => {
  test("nothing for fresh mappings, coalesced ranges for changes, all past the threshold", () => {
    const { pt } = setup(512);
    pt.map(0x40_0000, 16 * PAGE_SIZE, PROT_READ | PROT_WRITE);
    expect(pt.takeInvalidations()).toEqual([]);
    pt.protect(0x40_0000, 4 * PAGE_SIZE, PROT_READ);
    pt.protect(0x40_0000 + 4 * PAGE_SIZE, 4 * PAGE_SIZE, PROT_READ);
    pt.unmap(0x40_0000 + 12 * PAGE_SIZE, PAGE_SIZE);
    expect(pt.takeInvalidations()).toEqual([
      { kind: "range", address: 0x40_0000, length: 8 * PAGE_SIZE },
      { kind: "range", address: 0x40_0000 + 12 * PAGE_SIZE, length: PAGE_SIZE },
    ]);
    expect(pt.takeInvalidations()).toEqual([]);
    pt.map(0x100_0000, 200 * PAGE_SIZE, PROT_READ);
    pt.takeInvalidations();
    for (let i = 0; i < 100; i++) pt.protect(0x100_0000 + 2 * i * PAGE_SIZE, PAGE_SIZE, PROT_NONE);
    expect(pt.takeInvalidations()).toEqual([{ kind: "all" }]);
  });
});

/** Reference model: page number -> state. */
interface ModelPage {
  prot: number | null; // null: not mapped (a bare guard)
  guard: boolean;
}

function expected(model: Map<number, ModelPage>, page: number) {
  const e = model.get(page);
  if (!e || e.guard || e.prot === null) return null;
  const p = e.prot;
  const r = p !== PROT_NONE;
  return { pa: page * PAGE_SIZE, read: r, write: (p & PROT_WRITE) !== 0, exec: (p & PROT_EXEC) !== 0 };
}

describe("random operations against a reference model", () => {
  test("thousands of map/protect/unmap/guard operations", () => {
    const rand = prng(0xc0ffee);
    const { pt, memory } = setup(2048);
    const model = new Map<number, ModelPage>();
    // Two windows: one low, one straddling 4 GiB (high output-address bits).
    const windows = [0, 4 * GiB - 8 * L2_SPAN];
    const windowPages = (16 * L2_SPAN) / PAGE_SIZE;
    const prots = [
      PROT_NONE,
      PROT_READ,
      PROT_READ | PROT_WRITE,
      PROT_READ | PROT_EXEC,
      PROT_WRITE,
      PROT_EXEC,
    ];
    const check = (page: number) => {
      const want = expected(model, page);
      const va = page * PAGE_SIZE;
      const got = pt.translate(va);
      if (JSON.stringify(got) !== JSON.stringify(want)) {
        throw new Error(`page ${va.toString(16)}: got ${JSON.stringify(got)} want ${JSON.stringify(want)}`);
      }
      const w = walk(memory, pt.rootAddress, va);
      const wantHw = want?.read ? want : null;
      expect(w === null ? null : { pa: w.pa, read: w.read, write: w.write, exec: w.exec }).toEqual(wantHw);
      expect(pt.isGuard(va)).toBe(model.get(page)?.guard === true);
    };
    for (let step = 0; step < 4000; step++) {
      const win = windows[Math.floor(rand() * windows.length)] / PAGE_SIZE;
      let first: number;
      let count: number;
      if (rand() < 0.3) {
        // 2 MiB aligned runs exercise blocks.
        first = win + Math.floor(rand() * 16) * 512;
        count = (1 + Math.floor(rand() * 3)) * 512;
      } else {
        first = win + Math.floor(rand() * windowPages);
        count = 1 + Math.floor(rand() * (rand() < 0.8 ? 8 : 1200));
      }
      count = Math.min(count, win + windowPages - first);
      const kind = rand();
      const prot = prots[Math.floor(rand() * prots.length)];
      let rc: number;
      if (kind < 0.35) {
        rc = pt.map(first * PAGE_SIZE, count * PAGE_SIZE, prot);
        for (let p = first; p < first + count; p++) model.set(p, { prot, guard: false });
      } else if (kind < 0.6) {
        rc = pt.protect(first * PAGE_SIZE, count * PAGE_SIZE, prot);
        for (let p = first; p < first + count; p++) {
          const e = model.get(p);
          if (e && e.prot !== null) e.prot = prot;
        }
      } else if (kind < 0.8) {
        rc = pt.unmap(first * PAGE_SIZE, count * PAGE_SIZE);
        for (let p = first; p < first + count; p++) model.delete(p);
      } else if (kind < 0.9) {
        rc = pt.installGuard(first * PAGE_SIZE, count * PAGE_SIZE);
        for (let p = first; p < first + count; p++) {
          const e = model.get(p);
          if (e) e.guard = true;
          else model.set(p, { prot: null, guard: true });
        }
      } else {
        rc = pt.removeGuard(first * PAGE_SIZE, count * PAGE_SIZE);
        for (let p = first; p < first + count; p++) {
          const e = model.get(p);
          if (!e) continue;
          e.guard = false;
          if (e.prot === null) model.delete(p);
        }
      }
      expect(rc).toBe(0);
      for (const p of [first - 1, first, first + count - 1, first + count]) check(p);
      for (let k = 0; k < 4; k++) check(win + Math.floor(rand() * windowPages));
      if (step % 500 === 499) {
        for (const w of windows) for (let p = 0; p < windowPages; p += 1) check(w / PAGE_SIZE + p);
      }
      pt.takeInvalidations();
    }
    // Tear everything down: the pool must be back to the root page alone (no leaks).
    for (const w of windows) pt.unmap(w, 16 * L2_SPAN);
    expect(pt.pagesInUse).toBe(1);
  });

  test("merges happen: uniform protection over a whole chunk always ends as a block", () => {
    const rand = prng(7);
    const { pt } = setup(64);
    const base = 32 * L2_SPAN;
    pt.map(base, L2_SPAN, PROT_READ);
    for (let i = 0; i < 200; i++) {
      const p = Math.floor(rand() * 512);
      pt.protect(base + p * PAGE_SIZE, PAGE_SIZE, [PROT_NONE, PROT_READ | PROT_WRITE][i % 2]);
    }
    expect(pt.describe(base).level).toBe(3);
    pt.protect(base, L2_SPAN - PAGE_SIZE, PROT_READ | PROT_EXEC);
    pt.protect(base + L2_SPAN - PAGE_SIZE, PAGE_SIZE, PROT_READ | PROT_EXEC);
    expect(pt.describe(base).level).toBe(2);
  });
});
