import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import {
  ENOMEM,
  formatProcMaps,
  formatProcMapsLine,
  PAGE_SIZE,
  PROT_EXEC,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
  type Region,
  type RegionFlags,
  RegionTracker,
} from "./index.ts";

const P = PAGE_SIZE;
const RW = PROT_READ | PROT_WRITE;

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ANON: RegionFlags = {
  shared: false,
  anonymous: true,
  noreserve: false,
  growsDown: false,
  locked: false,
};
const LAZY: RegionFlags = { ...ANON, noreserve: true };
const SHARED_ANON: RegionFlags = { ...ANON, shared: true };
const FILE_PRIVATE: RegionFlags = { ...ANON, anonymous: false };

let nextId = 1;
function anon(start: number, end: number, prot = RW, extra: Partial<Region> = {}): Region {
  return { start, end, prot, flags: ANON, mappingId: nextId++, mayHoldGuards: false, ...extra };
}

function summary(t: RegionTracker): string[] {
  return [...t].map((r) => `${r.start / P}-${r.end / P}:${r.prot}${r.file ? `@${r.file.offset / P}` : ""}`);
}

describe("basic operations", () => {
  test("insert, merge of equal neighbours, split by remove and update", () => {
    const t = new RegionTracker();
    expect(t.insert(anon(10 * P, 20 * P))).toBe(0);
    expect(t.insert(anon(20 * P, 30 * P))).toBe(0); // separate mmap, private anonymous: merges
    expect(summary(t)).toEqual(["10-30:3"]);
    expect(t.insert(anon(30 * P, 40 * P, PROT_READ))).toBe(0);
    expect(summary(t)).toEqual(["10-30:3", "30-40:1"]);
    expect(t.remove(15 * P, 17 * P)).toBe(0);
    expect(summary(t)).toEqual(["10-15:3", "17-30:3", "30-40:1"]);
    expect(t.update(25 * P, 35 * P, { prot: PROT_READ })).toBe(0);
    expect(summary(t)).toEqual(["10-15:3", "17-25:3", "25-40:1"]);
    expect(t.update(17 * P, 25 * P, { prot: PROT_READ })).toBe(0);
    expect(summary(t)).toEqual(["10-15:3", "17-40:1"]);
    expect(t.find(16 * P)).toBeUndefined();
    expect(t.find(17 * P)?.end).toBe(40 * P);
    expect(t.find(40 * P)).toBeUndefined();
    expect(t.firstEndingAbove(15 * P)?.start).toBe(17 * P);
    expect(t.firstEndingAbove(14 * P)?.start).toBe(10 * P);
    expect(t.firstEndingAbove(40 * P)).toBeUndefined();
    expect(t.count).toBe(2);
  });

  test("insert replaces what it overlaps (MAP_FIXED)", () => {
    const t = new RegionTracker();
    t.insert(anon(0, 100 * P, PROT_READ));
    t.insert(anon(40 * P, 60 * P, RW));
    expect(summary(t)).toEqual(["0-40:1", "40-60:3", "60-100:1"]);
    t.insert(anon(30 * P, 70 * P, PROT_READ));
    expect(summary(t)).toEqual(["0-100:1"]);
  });

  test("file regions merge only with contiguous offsets; split pieces keep their offsets", () => {
    const t = new RegionTracker();
    const file = { dev: 0xfe00, inode: 77, path: "/lib/libc.so" };
    const fr = (s: number, e: number, off: number): Region => ({
      start: s * P,
      end: e * P,
      prot: PROT_READ,
      flags: FILE_PRIVATE,
      file: { ...file, offset: off * P },
      name: file.path,
      mappingId: nextId++,
      mayHoldGuards: false,
    });
    t.insert(fr(0, 4, 0));
    t.insert(fr(4, 8, 4)); // contiguous: merges
    t.insert(fr(8, 12, 20)); // not contiguous
    expect(summary(t)).toEqual(["0-8:1@0", "8-12:1@20"]);
    t.update(2 * P, 3 * P, { prot: RW });
    expect(summary(t)).toEqual(["0-2:1@0", "2-3:3@2", "3-8:1@3", "8-12:1@20"]);
    t.update(2 * P, 3 * P, { prot: PROT_READ });
    expect(summary(t)).toEqual(["0-8:1@0", "8-12:1@20"]);
  });

  test("shared anonymous mappings keep their mmap boundaries; pieces of one re-merge", () => {
    const t = new RegionTracker();
    const a: Region = { ...anon(0, 4 * P), flags: SHARED_ANON };
    const b: Region = { ...anon(4 * P, 8 * P), flags: SHARED_ANON };
    t.insert(a);
    t.insert(b);
    expect(t.count).toBe(2);
    t.update(P, 2 * P, { prot: PROT_READ });
    expect(t.count).toBe(4);
    t.update(P, 2 * P, { prot: RW });
    expect(t.count).toBe(2);
    expect(t.find(P)?.mappingId).toBe(a.mappingId);
  });

  test("mayHoldGuards is sticky and never splits: the whole region gets it", () => {
    const t = new RegionTracker({ maxCount: 1 });
    t.insert(anon(0, 10 * P));
    expect(t.update(2 * P, 3 * P, { mayHoldGuards: true })).toBe(0);
    expect(t.count).toBe(1);
    expect(t.find(0)?.mayHoldGuards).toBe(true);
    expect(t.find(9 * P)?.mayHoldGuards).toBe(true);
  });

  test("an update that changes nothing does not split", () => {
    const t = new RegionTracker({ maxCount: 1 });
    t.insert(anon(0, 10 * P));
    expect(t.update(2 * P, 3 * P, { prot: RW })).toBe(0);
    expect(t.update(2 * P, 3 * P, { prot: PROT_READ })).toBe(-ENOMEM);
    expect(t.count).toBe(1);
  });

  test("range queries", () => {
    const t = new RegionTracker();
    t.insert(anon(0, 10 * P, RW));
    t.insert({ ...anon(10 * P, 20 * P, RW), flags: LAZY });
    t.insert(anon(25 * P, 30 * P, PROT_READ));
    expect(t.isFullyMapped(0, 20 * P)).toBe(true);
    expect(t.isFullyMapped(5 * P, 21 * P)).toBe(false);
    expect(t.isFullyMapped(20 * P, 25 * P)).toBe(false);
    expect(t.isFullyMapped(26 * P, 27 * P)).toBe(true);
    expect(t.everyHasProt(0, 20 * P, RW)).toBe(true);
    expect(t.everyHasProt(0, 26 * P, RW)).toBe(false);
    expect(t.anyLazy(0, 10 * P)).toBe(false);
    expect(t.anyLazy(9 * P, 11 * P)).toBe(true);
    expect(t.anyLazy(20 * P, 40 * P)).toBe(false);
    expect([...t.overlapping(9 * P, 26 * P)].map((r) => r.start / P)).toEqual([0, 10, 25]);
    expect([...t.overlapping(20 * P, 25 * P)]).toEqual([]);
  });

  test("everyHasProt compares any prot value exactly, including ones the slot bits cannot hold", () => {
    const t = new RegionTracker();
    const odd = [2 ** 24, 2 ** 31, -1, 0.5, 2 ** 40 + 3];
    odd.forEach((prot, k) => {
      t.insert(anon(10 * k * P, (10 * k + 5) * P, prot));
    });
    odd.forEach((prot, k) => {
      expect(t.everyHasProt(10 * k * P, (10 * k + 5) * P, prot)).toBe(true);
      expect(t.everyHasProt(10 * k * P, (10 * k + 5) * P, prot & 0xff_ffff)).toBe(
        prot === (prot & 0xff_ffff),
      );
      expect(t.everyHasProt(10 * k * P, (10 * k + 5) * P, RW)).toBe(false);
    });
    expect(t.everyHasProt(0, 50 * P, 2 ** 24)).toBe(false);
  });
});

describe("free gap search", () => {
  function brute(t: RegionTracker, len: number, low: number, high: number, align: number, topDown: boolean) {
    const fits = (a: number) => a >= low && a + len <= high && [...t.overlapping(a, a + len)].length === 0;
    if (topDown) {
      for (let a = Math.floor((high - len) / align) * align; a >= low; a -= align) if (fits(a)) return a;
    } else {
      for (let a = Math.ceil(low / align) * align; a + len <= high; a += align) if (fits(a)) return a;
    }
    return -ENOMEM;
  }

  test("matches a brute-force search, both directions, with alignment and hints", () => {
    const rand = prng(99);
    for (let round = 0; round < 200; round++) {
      const t = new RegionTracker();
      for (let k = 0; k < 20; k++) {
        const s = Math.floor(rand() * 500);
        t.insert(anon(s * P, (s + 1 + Math.floor(rand() * 20)) * P, [PROT_READ, RW][k % 2]));
      }
      const low = Math.floor(rand() * 100) * P;
      const high = low + Math.floor(rand() * 500) * P;
      const len = (1 + Math.floor(rand() * 30)) * P;
      const align = [P, 4 * P, 16 * P][Math.floor(rand() * 3)];
      for (const topDown of [true, false]) {
        expect(t.findFreeGap({ length: len, low, high, topDown, alignment: align })).toBe(
          brute(t, len, low, high, align, topDown),
        );
      }
      const hint = Math.floor(rand() * 600) * P;
      const free = hint >= low && hint + len <= high && [...t.overlapping(hint, hint + len)].length === 0;
      const got = t.findFreeGap({ length: len, low, high, topDown: true, hint });
      if (free) expect(got).toBe(hint);
      else expect(got).toBe(brute(t, len, low, high, P, true));
    }
  });

  test("keeps the stack guard gap below growsDown regions", () => {
    const t = new RegionTracker();
    t.insert({ ...anon(100 * P, 110 * P), flags: { ...ANON, growsDown: true } });
    expect(
      t.findFreeGap({ length: 10 * P, low: 0, high: 100 * P, topDown: true, stackGuardGap: 5 * P }),
    ).toBe(85 * P);
  });
});

describe("vm.max_map_count", () => {
  test("the 65,531st region fails with ENOMEM and changes nothing", () => {
    const t = new RegionTracker();
    expect(t.maxCount).toBe(65530);
    for (let i = 0; i < 65530; i++) {
      expect(t.insert(anon(2 * i * P, (2 * i + 1) * P, i % 2 ? PROT_READ : RW))).toBe(0);
    }
    expect(t.count).toBe(65530);
    const before = t.toArray();
    expect(t.insert(anon(2 * 65530 * P, (2 * 65530 + 1) * P))).toBe(-ENOMEM);
    expect(t.toArray()).toEqual(before);
    // Filling a gap so that the new region merges with its neighbour keeps the count: allowed.
    expect(t.insert(anon(1 * P, 2 * P, RW))).toBe(0);
    expect(t.count).toBe(65530);
    expect(t.find(0)?.end).toBe(2 * P);
    // Splitting that region (mprotect of one page, munmap of a middle page) needs one more: refused.
    const full = t.toArray();
    expect(t.update(0, P, { prot: PROT_READ })).toBe(-ENOMEM);
    expect(t.insert(anon(0, P, PROT_READ | PROT_EXEC))).toBe(-ENOMEM);
    expect(t.toArray()).toEqual(full);
    // Removing an edge page does not split: fine.
    expect(t.remove(0, P)).toBe(0);
    expect(t.count).toBe(65530);
    const t2 = new RegionTracker({ maxCount: 3 });
    t2.insert(anon(0, 10 * P));
    t2.insert(anon(20 * P, 30 * P, PROT_READ));
    t2.insert(anon(40 * P, 50 * P, PROT_EXEC));
    expect(t2.remove(5 * P, 6 * P)).toBe(-ENOMEM);
    expect(t2.update(5 * P, 6 * P, { prot: PROT_NONE })).toBe(-ENOMEM);
    expect(t2.insert(anon(60 * P, 61 * P))).toBe(-ENOMEM);
    expect(summary(t2)).toEqual(["0-10:3", "20-30:1", "40-50:4"]);
    expect(t2.insert(anon(10 * P, 20 * P))).toBe(0); // merges with the left neighbour
  });
});

/** Page-array reference model. */
interface PageState {
  prot: number;
  template: number;
  fileOffset: number; // of this page, -1 for anonymous
  mappingId: number;
  guards: boolean;
  locked: boolean;
}

const FILE_ID = { dev: 0x0801, inode: 4242, path: "/data/file.bin" };
const TEMPLATES: { flags: RegionFlags; file: boolean; name?: string }[] = [
  { flags: ANON, file: false },
  { flags: LAZY, file: false },
  { flags: FILE_PRIVATE, file: true, name: FILE_ID.path },
  { flags: SHARED_ANON, file: false },
  { flags: ANON, file: false, name: "[heap]" },
];

function checkAgainstModel(t: RegionTracker, model: (PageState | null)[], base: number) {
  const regions = t.toArray();
  expect(regions.length).toBe(t.count);
  for (let k = 0; k < regions.length; k++) {
    const r = regions[k];
    if (!(r.start < r.end && r.start % P === 0 && r.end % P === 0)) throw new Error(`bad region ${r.start}`);
    if (k > 0) {
      const prev = regions[k - 1];
      if (prev.end > r.start) throw new Error("regions overlap or are out of order");
      // Maximal merging, judged independently of canMerge().
      if (prev.end === r.start) {
        const sameFile =
          prev.file === undefined
            ? r.file === undefined
            : r.file !== undefined &&
              prev.file.inode === r.file.inode &&
              r.file.offset === prev.file.offset + (prev.end - prev.start);
        const idsOk = prev.mappingId === r.mappingId || !(prev.flags.shared && prev.flags.anonymous);
        const flagsEqual = JSON.stringify(prev.flags) === JSON.stringify(r.flags);
        if (prev.prot === r.prot && flagsEqual && prev.name === r.name && sameFile && idsOk) {
          throw new Error(`regions at ${prev.start / P} and ${r.start / P} should have merged`);
        }
      }
    }
  }
  let k = 0;
  for (let p = 0; p < model.length; p++) {
    const va = base + p * P;
    while (k < regions.length && regions[k].end <= va) k++;
    const r = k < regions.length && regions[k].start <= va ? regions[k] : undefined;
    const m = model[p];
    if (m === null) {
      if (r !== undefined) throw new Error(`page ${p} should be unmapped`);
      continue;
    }
    if (r === undefined) throw new Error(`page ${p} should be mapped`);
    const tpl = TEMPLATES[m.template];
    const ok =
      r.prot === m.prot &&
      r.flags.shared === tpl.flags.shared &&
      r.flags.anonymous === tpl.flags.anonymous &&
      r.flags.noreserve === tpl.flags.noreserve &&
      r.flags.locked === m.locked &&
      r.name === tpl.name &&
      (m.fileOffset < 0 ? r.file === undefined : r.file?.offset === m.fileOffset - (va - r.start)) &&
      (!m.guards || r.mayHoldGuards) &&
      (!(tpl.flags.shared && tpl.flags.anonymous) || r.mappingId === m.mappingId);
    if (!ok) throw new Error(`page ${p}: region ${JSON.stringify(r)} vs model ${JSON.stringify(m)}`);
  }
  // Lookups agree with the in-order view.
  for (let s = 0; s < 64; s++) {
    const p = Math.floor((s * 7919) % model.length);
    const r = t.find(base + p * P);
    expect(r === undefined).toBe(model[p] === null);
  }
}

describe("random operations against a page model", () => {
  test("100,000 mmap/munmap/mprotect/madvise-like operations", () => {
    const rand = prng(12345);
    const pages = 4096;
    const base = 0x10_0000_0000;
    const t = new RegionTracker();
    const model: (PageState | null)[] = new Array(pages).fill(null);
    const prots = [PROT_NONE, PROT_READ, RW, PROT_READ | PROT_EXEC];
    for (let step = 0; step < 100_000; step++) {
      const first = Math.floor(rand() * pages);
      const count = Math.min(pages - first, 1 + Math.floor(rand() * (rand() < 0.9 ? 16 : 300)));
      const start = base + first * P;
      const end = start + count * P;
      const kind = rand();
      let rc: number;
      if (kind < 0.35) {
        const template = Math.floor(rand() * TEMPLATES.length);
        const tpl = TEMPLATES[template];
        const prot = prots[Math.floor(rand() * prots.length)];
        const id = nextId++;
        // File offsets: mostly "natural" (offset == page index) so separate mmaps can merge.
        const offsetPages = rand() < 0.7 ? first : Math.floor(rand() * 10000);
        rc = t.insert({
          start,
          end,
          prot,
          flags: tpl.flags,
          file: tpl.file ? { ...FILE_ID, offset: offsetPages * P } : undefined,
          name: tpl.name,
          mappingId: id,
          mayHoldGuards: false,
        });
        for (let p = 0; p < count; p++) {
          model[first + p] = {
            prot,
            template,
            fileOffset: tpl.file ? (offsetPages + p) * P : -1,
            mappingId: id,
            guards: false,
            locked: false,
          };
        }
      } else if (kind < 0.55) {
        rc = t.remove(start, end);
        for (let p = 0; p < count; p++) model[first + p] = null;
      } else if (kind < 0.85) {
        const prot = prots[Math.floor(rand() * prots.length)];
        rc = t.update(start, end, { prot });
        for (let p = 0; p < count; p++) {
          const m = model[first + p];
          if (m) m.prot = prot;
        }
      } else if (kind < 0.93) {
        rc = t.update(start, end, { mayHoldGuards: true });
        for (let p = 0; p < count; p++) {
          const m = model[first + p];
          if (m) m.guards = true;
        }
      } else {
        const locked = rand() < 0.5;
        rc = t.update(start, end, { flags: { locked } });
        for (let p = 0; p < count; p++) {
          const m = model[first + p];
          if (m) m.locked = locked;
        }
      }
      expect(rc).toBe(0);
      if (step % 250 === 249) checkAgainstModel(t, model, base);
    }
    checkAgainstModel(t, model, base);
    expect(t.count).toBeGreaterThan(200); // the structure spans several leaves
  });

  test("with a small limit, failures change nothing and really would exceed it", () => {
    const rand = prng(777);
    const t = new RegionTracker({ maxCount: 40 });
    let failures = 0;
    for (let step = 0; step < 5000; step++) {
      const first = Math.floor(rand() * 400);
      const count = 1 + Math.floor(rand() * 12);
      const start = first * P;
      const end = (first + count) * P;
      const prot = [PROT_READ, RW, PROT_NONE][Math.floor(rand() * 3)];
      const before = t.toArray();
      const unlimited = new RegionTracker({ maxCount: 1 << 30 });
      for (const r of before) unlimited.insert(r);
      const kind = rand();
      const apply = (x: RegionTracker) =>
        kind < 0.4
          ? x.insert(anon(start, end, prot))
          : kind < 0.6
            ? x.remove(start, end)
            : x.update(start, end, { prot });
      const rc = apply(t);
      expect(apply(unlimited)).toBe(0);
      if (rc === -ENOMEM) {
        failures++;
        expect(t.toArray()).toEqual(before);
        expect(unlimited.count).toBeGreaterThan(40);
      } else {
        expect(rc).toBe(0);
        expect(t.count).toBeLessThanOrEqual(40);
        expect(summary(t)).toEqual(summary(unlimited));
      }
    }
    expect(failures).toBeGreaterThan(10);
  });
});

describe("many leaves", () => {
  /** Index of the last region starting at or below addr, or -1 (binary search over the in-order array). */
  function lastAtOrBelow(regions: Region[], addr: number): number {
    let lo = -1;
    let hi = regions.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (regions[mid].start <= addr) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  function overlappingBrute(regions: Region[], start: number, end: number): Region[] {
    const out: Region[] = [];
    if (end <= start) return out;
    for (
      let k = Math.max(0, lastAtOrBelow(regions, start));
      k < regions.length && regions[k].start < end;
      k++
    ) {
      if (regions[k].end > start) out.push(regions[k]);
    }
    return out;
  }

  function freeGapBrute(
    regions: Region[],
    len: number,
    low: number,
    high: number,
    align: number,
    gap: number,
    topDown: boolean,
  ) {
    const fits = (a: number) => {
      if (overlappingBrute(regions, a, a + len).length > 0) return false;
      const next = regions[lastAtOrBelow(regions, a + len - 1) + 1];
      return next === undefined || !next.flags.growsDown || a + len <= next.start - gap;
    };
    if (topDown) {
      for (let a = Math.floor((high - len) / align) * align; a >= low; a -= align) if (fits(a)) return a;
    } else {
      for (let a = Math.ceil(low / align) * align; a + len <= high; a += align) if (fits(a)) return a;
    }
    return -ENOMEM;
  }

  /** Every query against a linear view, at random addresses and along short walks (nearby lookups). */
  function checkQueries(t: RegionTracker, rand: () => number, pages: number) {
    const regions = t.toArray();
    expect(regions.length).toBe(t.count);
    let k = 0;
    for (const r of t) expect(r).toBe(regions[k++]);
    expect(k).toBe(regions.length);
    for (let q = 0; q < 60; q++) {
      let addr = Math.floor(rand() * pages) * P + Math.floor(rand() * P);
      for (let step = 0; step < 8; step++) {
        addr = Math.max(0, addr + Math.floor((rand() - 0.5) * 64) * P);
        const i = lastAtOrBelow(regions, addr);
        const containing = i >= 0 && regions[i].end > addr ? regions[i] : undefined;
        expect(t.find(addr)).toBe(containing);
        expect(t.firstEndingAbove(addr)).toBe(containing ?? regions[i + 1]);
        const end = addr + (1 + Math.floor(rand() * 40)) * P;
        const over = overlappingBrute(regions, addr, end);
        const got = [...t.overlapping(addr, end)];
        expect(got.length).toBe(over.length);
        for (let j = 0; j < over.length; j++) expect(got[j]).toBe(over[j]);
        let cursor = addr;
        for (const r of over) if (r.start <= cursor) cursor = Math.max(cursor, r.end);
        expect(t.isFullyMapped(addr, end)).toBe(cursor >= end);
        for (const prot of [PROT_READ, RW]) {
          expect(t.everyHasProt(addr, end, prot)).toBe(over.every((r) => r.prot === prot));
        }
        expect(t.anyLazy(addr, end)).toBe(over.some((r) => r.flags.noreserve));
      }
      const low = Math.floor(rand() * pages) * P;
      const high = low + Math.floor(rand() * 300) * P;
      const len = (1 + Math.floor(rand() * 8)) * P;
      const align = [P, 4 * P][Math.floor(rand() * 2)];
      const gap = Math.floor(rand() * 3) * P;
      for (const topDown of [true, false]) {
        expect(t.findFreeGap({ length: len, low, high, topDown, alignment: align, stackGuardGap: gap })).toBe(
          freeGapBrute(regions, len, low, high, align, gap, topDown),
        );
      }
    }
  }

  test("queries agree with a linear view through leaf splits, folds, block reuse and clear", () => {
    const rand = prng(4242);
    const pages = 60_000;
    const GROWS_DOWN: RegionFlags = { ...ANON, growsDown: true };
    const flagsPool = [ANON, ANON, LAZY, GROWS_DOWN];
    const make = (first: number, count: number): Region => ({
      start: first * P,
      end: (first + count) * P,
      prot: [PROT_READ, RW, PROT_NONE][Math.floor(rand() * 3)],
      flags: flagsPool[Math.floor(rand() * flagsPool.length)],
      mappingId: nextId++,
      mayHoldGuards: false,
    });
    const t = new RegionTracker();
    // 7,500 unmergeable regions with gaps: dozens of leaves.
    for (let i = 0; i < 7500; i++) t.insert(anon(8 * i * P, (8 * i + 3) * P, i % 2 ? PROT_READ : RW));
    expect(t.count).toBe(7500);
    checkQueries(t, rand, pages);
    for (let step = 0; step < 3000; step++) {
      const first = Math.floor(rand() * pages);
      // Mostly small edits; sometimes a span over several leaves (multi-leaf rebuilds and folds).
      const count = 1 + Math.floor(rand() * (rand() < 0.97 ? 24 : 3000));
      const kind = rand();
      let rc: number;
      if (kind < 0.4) rc = t.insert(make(first, count));
      else if (kind < 0.7) rc = t.remove(first * P, (first + count) * P);
      else rc = t.update(first * P, (first + count) * P, { prot: [PROT_READ, RW][Math.floor(rand() * 2)] });
      expect(rc).toBe(0);
      if (step % 200 === 199) checkQueries(t, rand, pages);
    }
    // Empty it through removals, refill (blocks come back from the free list), then clear and refill.
    expect(t.remove(0, (pages + 4000) * P)).toBe(0);
    expect(t.count).toBe(0);
    expect(t.find(5 * P)).toBeUndefined();
    checkQueries(t, rand, pages);
    for (let i = 0; i < 3000; i++) expect(t.insert(make(20 * i, 1 + (i % 7)))).toBe(0);
    checkQueries(t, rand, pages);
    t.clear();
    expect(t.count).toBe(0);
    expect([...t]).toEqual([]);
    expect(t.find(0)).toBeUndefined();
    for (let i = 0; i < 2000; i++) expect(t.insert(make(30 * i, 2))).toBe(0);
    checkQueries(t, rand, pages);
  });
});

describe("/proc/self/maps format", () => {
  test("reproduces the host kernel's own /proc/self/maps byte for byte", () => {
    const text = readFileSync("/proc/self/maps", "utf8");
    const lines = text.split("\n").filter((l) => l.length > 0);
    const regions: Region[] = [];
    for (const line of lines) {
      const m =
        /^([0-9a-f]+)-([0-9a-f]+) ([r-])([w-])([x-])([ps]) ([0-9a-f]+) ([0-9a-f]+):([0-9a-f]+) (\d+) ?\s*(.*)$/.exec(
          line,
        );
      if (!m) throw new Error(`unparsed: ${line}`);
      const major = Number.parseInt(m[8], 16);
      const minor = Number.parseInt(m[9], 16);
      const dev = ((major & 0xfff) << 8) | (minor & 0xff) | ((minor & ~0xff) << 12);
      const inode = Number(m[10]);
      const name = m[11] === "" ? undefined : m[11];
      const hasFile = inode !== 0 || major !== 0 || minor !== 0;
      regions.push({
        start: Number.parseInt(m[1], 16),
        end: Number.parseInt(m[2], 16),
        prot:
          (m[3] === "r" ? PROT_READ : 0) | (m[4] === "w" ? PROT_WRITE : 0) | (m[5] === "x" ? PROT_EXEC : 0),
        flags: { ...ANON, shared: m[6] === "s", anonymous: !hasFile },
        file: hasFile ? { dev, inode, path: name ?? "", offset: Number.parseInt(m[7], 16) } : undefined,
        name: hasFile ? undefined : name,
        mappingId: 0,
        mayHoldGuards: false,
      });
    }
    expect(regions.length).toBeGreaterThan(5);
    expect(formatProcMaps(regions)).toBe(`${lines.join("\n")}\n`);
  });

  test("exact columns for a typical guest layout", () => {
    expect(formatProcMapsLine(anon(0x400000, 0x401000, PROT_READ | PROT_EXEC, { name: "[heap]" }))).toBe(
      `00400000-00401000 r-xp 00000000 00:00 0${" ".repeat(34)}[heap]`,
    );
    expect(formatProcMapsLine(anon(0x7fff0000, 0x80000000, RW))).toBe(
      "7fff0000-80000000 rw-p 00000000 00:00 0 ",
    );
    const withFile: Region = {
      ...anon(0x1000, 0x2000, PROT_READ),
      flags: { ...FILE_PRIVATE, shared: true },
      file: { dev: 0xfe00, inode: 12, path: "/x\ny", offset: 0x3000 },
    };
    expect(formatProcMapsLine(withFile)).toBe(
      `00001000-00002000 r--s 00003000 fe:00 12${" ".repeat(33)}/x\\012y`,
    );
  });
});
