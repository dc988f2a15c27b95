import { DEFAULT_MAX_MAP_COUNT, ENOMEM, PAGE_SIZE } from "./abi.ts";
import {
  applyChange,
  canMerge,
  mergeRegions,
  type Region,
  type RegionChange,
  sliceRegion,
} from "./region.ts";

/** Regions per leaf: a leaf edit moves at most this many slots (typed-array copyWithin). */
const LEAF_MAX = 128;
/** A leaf shrunk below this is folded into a neighbour. */
const LEAF_MIN = LEAF_MAX / 8;

export interface RegionTrackerOptions {
  /** vm.max_map_count: no operation may leave more regions than this (default 65530). */
  maxCount?: number;
}

export interface FreeGapRequest {
  length: number;
  /** Tried first when [hint, hint+length) is free and inside [low, high). */
  hint?: number;
  topDown: boolean;
  /** Search window [low, high). */
  low: number;
  high: number;
  /** Power of two, at least a page (default 4 KiB). */
  alignment?: number;
  /** Bytes kept free below a growsDown region (Linux stack_guard_gap; default 0). */
  stackGuardGap?: number;
}

/**
 * Each slot's `info`: prot and the flags range queries test, so they need not load the region
 * object. A prot outside [0, 2^24) (never a real PROT_* set, but representable) is marked and
 * compared on the object instead.
 */
const INFO_PROT = 0xff_ffff;
const INFO_GROWS_DOWN = 1 << 24;
const INFO_NORESERVE = 1 << 25;
const INFO_PROT_ON_OBJECT = 1 << 26;

/**
 * The guest's VMAs: an ordered set of non-overlapping, page-aligned, maximally merged regions.
 *
 * Storage is a two-level sorted list kept in flat typed arrays. Leaves hold at most LEAF_MAX regions
 * in address order; each leaf owns one block of LEAF_MAX slots, and a slot's start, end, prot and
 * attribute bits live in parallel typed arrays (the Region object only in `regs`). The directory
 * (leaf order) holds each leaf's first start, block base and length. A lookup is two branch-free
 * searches over contiguous doubles (directory, then leaf) and touches no object until it returns
 * one; it skips the directory search when the address is still in the leaf of the previous lookup.
 * Blocks are recycled, so a leaf split or fold moves directory entries only (about 1,000 at 65,530
 * regions). Capacity grows by doubling and is kept until clear().
 *
 * Every mutation first computes the new run of regions replacing the affected window (overlapped
 * regions plus both neighbours, so merging stays local), checks the count limit, and only then
 * writes: a failure (-ENOMEM) changes nothing.
 */
export class RegionTracker {
  readonly maxCount: number;
  // Directory, in address order. dirStart[leafCount] is +Infinity (the upper bound of the last
  // leaf for the previous-leaf check); entries above it are stale.
  private dirStart = new Float64Array(0);
  /** Slot index of the leaf's first region (its block number times LEAF_MAX). */
  private dirBase = new Int32Array(0);
  private dirLen = new Int32Array(0);
  private leafCount = 0;
  // Slots, LEAF_MAX per block; a leaf with n regions uses the first n slots of its block.
  private starts = new Float64Array(0);
  private ends = new Float64Array(0);
  private info = new Int32Array(0);
  private regs: (Region | undefined)[] = [];
  /** Unused block bases. */
  private freeBases: number[] = [];
  private total = 0;
  // Cursor scratch (seek results): leaf and index within it; pi = -1 means "before everything".
  private pl = 0;
  private pi = -1;
  /** The leaf the last seek landed in (always < leafCount): nearby lookups skip the directory search. */
  private lastLeaf = 0;

  constructor(options: RegionTrackerOptions = {}) {
    this.maxCount = options.maxCount ?? DEFAULT_MAX_MAP_COUNT;
  }

  get count(): number {
    return this.total;
  }

  *[Symbol.iterator](): IterableIterator<Region> {
    for (let l = 0; l < this.leafCount; l++) {
      const base = this.dirBase[l];
      const stop = base + this.dirLen[l];
      for (let s = base; s < stop; s++) yield this.regs[s] as Region;
    }
  }

  /** All regions, in order (a copy). */
  toArray(): Region[] {
    const out: Region[] = [];
    for (let l = 0; l < this.leafCount; l++) {
      const base = this.dirBase[l];
      const stop = base + this.dirLen[l];
      for (let s = base; s < stop; s++) out.push(this.regs[s] as Region);
    }
    return out;
  }

  // ---------------------------------------------------------------------------------------------------
  // Queries

  /** The region containing addr. */
  find(addr: number): Region | undefined {
    const s = this.seekLE(addr);
    return s >= 0 && addr < this.ends[s] ? this.regs[s] : undefined;
  }

  /** The first region with end > addr (the one containing addr, or the next one above it). */
  firstEndingAbove(addr: number): Region | undefined {
    const s = this.seekLE(addr);
    if (s >= 0 && this.ends[s] > addr) return this.regs[s];
    return this.advance() ? this.regs[this.slot()] : undefined;
  }

  /** Regions intersecting [start, end), in order. */
  *overlapping(start: number, end: number): IterableIterator<Region> {
    if (!this.seekFirstOverlap(start, end)) return;
    let l = this.pl;
    let i = this.pi;
    while (l < this.leafCount) {
      const base = this.dirBase[l];
      const stop = base + this.dirLen[l];
      for (let s = base + i; s < stop; s++) {
        if (this.starts[s] >= end) return;
        yield this.regs[s] as Region;
      }
      l++;
      i = 0;
    }
  }

  /** Every byte of [start, end) lies in some region. */
  isFullyMapped(start: number, end: number): boolean {
    if (end <= start) return true;
    let s = this.seekLE(start);
    if (s < 0) return false;
    let cursor = start;
    for (;;) {
      if (this.starts[s] > cursor || this.ends[s] <= cursor) return false;
      cursor = this.ends[s];
      if (cursor >= end) return true;
      if (!this.advance()) return false;
      s = this.slot();
    }
  }

  /** Every region intersecting [start, end) has exactly `prot` (gaps are not checked: see isFullyMapped). */
  everyHasProt(start: number, end: number, prot: number): boolean {
    if (!this.seekFirstOverlap(start, end)) return true;
    do {
      const s = this.slot();
      if (this.starts[s] >= end) return true;
      const info = this.info[s];
      if (info & INFO_PROT_ON_OBJECT ? this.region(s).prot !== prot : (info & INFO_PROT) !== prot)
        return false;
    } while (this.advance());
    return true;
  }

  /** Some region intersecting [start, end) is lazy (noreserve). */
  anyLazy(start: number, end: number): boolean {
    if (!this.seekFirstOverlap(start, end)) return false;
    do {
      const s = this.slot();
      if (this.starts[s] >= end) return false;
      if (this.info[s] & INFO_NORESERVE) return true;
    } while (this.advance());
    return false;
  }

  /**
   * A free, aligned [addr, addr+length) inside [low, high): the hint if it is free, else the highest
   * (topDown) or lowest fitting gap. Returns the address or -ENOMEM. Only regions near the window are
   * visited: the walk stops as soon as they lie past it.
   */
  findFreeGap(req: FreeGapRequest): number {
    const { length, low, high, topDown } = req;
    const alignment = Math.max(req.alignment ?? PAGE_SIZE, PAGE_SIZE);
    const gap = req.stackGuardGap ?? 0;
    if (!(length > 0) || high - low < length) return -ENOMEM;
    if (req.hint !== undefined && req.hint !== 0) {
      const hint = Math.ceil(req.hint / PAGE_SIZE) * PAGE_SIZE;
      if (hint >= low && hint + length <= high && this.isFree(hint, hint + length, gap)) return hint;
    }
    const starts = this.starts;
    const ends = this.ends;
    const info = this.info;
    if (topDown) {
      let gapEnd = high;
      const below = this.seekLE(high - 1);
      // The region just above the window may still claim a guard gap below it.
      const pl = this.pl;
      const pi = this.pi;
      if (this.advance()) {
        const s = this.slot();
        if (info[s] & INFO_GROWS_DOWN && starts[s] >= high) gapEnd = Math.min(gapEnd, starts[s] - gap);
      }
      this.pl = pl;
      this.pi = pi;
      if (below >= 0) {
        do {
          const s = this.slot();
          const gapStart = Math.max(low, ends[s]);
          const candidate = Math.floor((gapEnd - length) / alignment) * alignment;
          if (candidate >= gapStart) return candidate;
          gapEnd = Math.min(gapEnd, starts[s] - (info[s] & INFO_GROWS_DOWN ? gap : 0));
          if (gapEnd - length < low) return -ENOMEM;
        } while (this.retreat());
      }
      const candidate = Math.floor((gapEnd - length) / alignment) * alignment;
      return candidate >= low ? candidate : -ENOMEM;
    }
    let gapStart = low;
    if (this.firstEndingAbove(low) !== undefined) {
      do {
        const s = this.slot();
        const gapEnd = Math.min(high, starts[s] - (info[s] & INFO_GROWS_DOWN ? gap : 0));
        const candidate = Math.ceil(gapStart / alignment) * alignment;
        if (candidate + length <= gapEnd) return candidate;
        if (starts[s] >= high) return -ENOMEM;
        gapStart = Math.max(gapStart, ends[s]);
        if (gapStart + length > high) return -ENOMEM;
      } while (this.advance());
    }
    const candidate = Math.ceil(gapStart / alignment) * alignment;
    return candidate + length <= high ? candidate : -ENOMEM;
  }

  // ---------------------------------------------------------------------------------------------------
  // Mutations: 0 or -ENOMEM (the count limit); on failure nothing changed.

  /**
   * Add `region`, replacing whatever overlaps it (MAP_FIXED semantics: callers wanting
   * MAP_FIXED_NOREPLACE check overlapping() first), merging with equal neighbours.
   */
  insert(region: Region, limit: number = this.maxCount): number {
    checkRange(region.start, region.end);
    return this.mutate(region.start, region.end, region, null, limit);
  }

  /** Remove [start, end) (splitting regions at the edges). Unmapping nothing is fine. */
  remove(start: number, end: number, limit: number = this.maxCount): number {
    checkRange(start, end);
    return this.mutate(start, end, null, null, limit);
  }

  /** Apply `change` to every region piece within [start, end) (splits at the edges, then re-merges). */
  update(start: number, end: number, change: RegionChange, limit: number = this.maxCount): number {
    checkRange(start, end);
    return this.mutate(start, end, null, change, limit);
  }

  /** Drop every region (execve). */
  clear(): void {
    this.dirStart = new Float64Array(0);
    this.dirBase = new Int32Array(0);
    this.dirLen = new Int32Array(0);
    this.leafCount = 0;
    this.starts = new Float64Array(0);
    this.ends = new Float64Array(0);
    this.info = new Int32Array(0);
    this.regs = [];
    this.freeBases = [];
    this.total = 0;
    this.lastLeaf = 0;
  }

  // ---------------------------------------------------------------------------------------------------
  // Internals

  /**
   * `limit`: the most regions the result may have (default maxCount). Callers that follow Linux pass a higher
   * one for mmap, which may take the count to max_map_count + 1, while splits stop at max_map_count.
   */
  private mutate(
    start: number,
    end: number,
    inserted: Region | null,
    change: RegionChange | null,
    limit: number = this.maxCount,
  ): number {
    if (end <= start) return 0;
    // The window: the last region starting below `start` (left neighbour or straddler), then every
    // region starting at or before `end` (the last one may be the right neighbour).
    this.seekLE(start - 1);
    if (this.pi < 0 && !this.advance()) {
      // Empty tracker.
      if (inserted === null) return 0;
      if (limit < 1) return -ENOMEM;
      this.spliceDirectory(0, 0, [[inserted]]);
      this.total = 1;
      return 0;
    }
    const firstLeaf = this.pl;
    const firstIndex = this.pi;
    const window: Region[] = [];
    do {
      const s = this.slot();
      if (this.starts[s] > end) break;
      window.push(this.regs[s] as Region);
    } while (this.advance());

    const out: Region[] = [];
    let touched = inserted !== null;
    let placed = false;
    for (const r of window) {
      if (r.end <= start || r.start >= end) {
        if (inserted !== null && !placed && r.start >= end) {
          out.push(inserted);
          placed = true;
        }
        out.push(r);
        continue;
      }
      if (r.start < start) out.push(sliceRegion(r, r.start, start));
      if (inserted !== null) {
        if (!placed) {
          out.push(inserted);
          placed = true;
        }
      } else if (change !== null) {
        const middle = sliceRegion(r, Math.max(r.start, start), Math.min(r.end, end));
        const changed = applyChange(middle, change);
        if (changed !== middle) touched = true;
        out.push(changed);
      } else {
        touched = true;
      }
      if (r.end > end) out.push(sliceRegion(r, end, r.end));
    }
    if (inserted !== null && !placed) out.push(inserted);
    if (!touched) return 0; // an update that changes nothing: no splits either
    const merged = mergeRun(out);
    if (this.total - window.length + merged.length > limit) return -ENOMEM;
    this.replace(firstLeaf, firstIndex, window.length, merged);
    return 0;
  }

  /** Replace `count` regions starting at (leaf, index) by `items` (already ordered and merged). */
  private replace(leaf: number, index: number, count: number, items: Region[]): void {
    const dirLen = this.dirLen;
    const base = this.dirBase[leaf];
    const length = dirLen[leaf];
    this.total += items.length - count;
    // Fast path: the edit stays inside one leaf, which keeps a sensible size.
    if (index + count <= length && items.length <= LEAF_MAX) {
      const size = length - count + items.length;
      if (size <= LEAF_MAX && (size >= LEAF_MIN || this.leafCount === 1) && size > 0) {
        if (size !== length) this.moveSlots(base + index + count, base + length, size - length);
        for (let k = 0; k < items.length; k++) this.writeSlot(base + index + k, items[k]);
        dirLen[leaf] = size;
        this.dirStart[leaf] = this.starts[base];
        return;
      }
    }
    // General path: rebuild the leaves the window spans (plus a small neighbour) into even chunks.
    let last = leaf;
    let rest = count - (length - index);
    while (rest > 0) {
      last++;
      rest -= dirLen[last];
    }
    const tailStart = dirLen[last] + rest; // rest <= 0: index of the first kept item in `last`
    let combined = this.leafSlice(leaf, 0, index).concat(
      items,
      this.leafSlice(last, tailStart, dirLen[last]),
    );
    let from = leaf;
    if (combined.length < LEAF_MIN) {
      if (last + 1 < this.leafCount && combined.length + dirLen[last + 1] <= LEAF_MAX) {
        last++;
        combined = combined.concat(this.leafSlice(last, 0, dirLen[last]));
      } else if (from > 0 && combined.length + dirLen[from - 1] <= LEAF_MAX) {
        from--;
        combined = this.leafSlice(from, 0, dirLen[from]).concat(combined);
      }
    }
    const chunks: Region[][] = [];
    if (combined.length > 0) {
      const pieces = Math.ceil(combined.length / LEAF_MAX);
      const size = Math.ceil(combined.length / pieces);
      for (let k = 0; k < combined.length; k += size) chunks.push(combined.slice(k, k + size));
    }
    this.spliceDirectory(from, last - from + 1, chunks);
  }

  /** Replace directory entries [from, from + removed) by new leaves holding `chunks`. */
  private spliceDirectory(from: number, removed: number, chunks: Region[][]): void {
    for (let l = from; l < from + removed; l++) {
      const base = this.dirBase[l];
      this.regs.fill(undefined, base, base + this.dirLen[l]);
      this.freeBases.push(base);
    }
    const delta = chunks.length - removed;
    const count = this.leafCount + delta;
    if (count + 1 > this.dirStart.length) this.growDirectory(count + 1);
    if (delta !== 0) {
      const tail = from + removed;
      this.dirStart.copyWithin(tail + delta, tail, this.leafCount);
      this.dirBase.copyWithin(tail + delta, tail, this.leafCount);
      this.dirLen.copyWithin(tail + delta, tail, this.leafCount);
    }
    this.leafCount = count;
    this.dirStart[count] = Number.POSITIVE_INFINITY;
    this.lastLeaf = 0;
    for (let k = 0; k < chunks.length; k++) {
      const chunk = chunks[k];
      const base = this.allocateBlock();
      for (let i = 0; i < chunk.length; i++) this.writeSlot(base + i, chunk[i]);
      this.dirStart[from + k] = chunk[0].start;
      this.dirBase[from + k] = base;
      this.dirLen[from + k] = chunk.length;
    }
  }

  private growDirectory(needed: number): void {
    const capacity = Math.max(needed, this.dirStart.length * 2, 8);
    const dirStart = new Float64Array(capacity);
    const dirBase = new Int32Array(capacity);
    const dirLen = new Int32Array(capacity);
    dirStart.set(this.dirStart);
    dirBase.set(this.dirBase);
    dirLen.set(this.dirLen);
    this.dirStart = dirStart;
    this.dirBase = dirBase;
    this.dirLen = dirLen;
  }

  /** A free block's base slot, growing the slot arrays (doubling) when none is left. */
  private allocateBlock(): number {
    const free = this.freeBases.pop();
    if (free !== undefined) return free;
    const oldSlots = this.starts.length;
    const slots = Math.max(oldSlots * 2, 4 * LEAF_MAX);
    const starts = new Float64Array(slots);
    const ends = new Float64Array(slots);
    const info = new Int32Array(slots);
    starts.set(this.starts);
    ends.set(this.ends);
    info.set(this.info);
    this.starts = starts;
    this.ends = ends;
    this.info = info;
    for (let s = oldSlots; s < slots; s++) this.regs.push(undefined);
    // Hand out low blocks first.
    for (let base = slots - LEAF_MAX; base > oldSlots; base -= LEAF_MAX) this.freeBases.push(base);
    return oldSlots;
  }

  private writeSlot(s: number, r: Region): void {
    this.starts[s] = r.start;
    this.ends[s] = r.end;
    const prot = r.prot;
    this.info[s] =
      (prot === (prot & INFO_PROT) ? prot : INFO_PROT_ON_OBJECT) |
      (r.flags.growsDown ? INFO_GROWS_DOWN : 0) |
      (r.flags.noreserve ? INFO_NORESERVE : 0);
    this.regs[s] = r;
  }

  /** Move slots [from, to) by `delta` within their block; slots vacated at the end are cleared. */
  private moveSlots(from: number, to: number, delta: number): void {
    this.starts.copyWithin(from + delta, from, to);
    this.ends.copyWithin(from + delta, from, to);
    this.info.copyWithin(from + delta, from, to);
    const regs = this.regs;
    if (delta > 0) {
      for (let s = to - 1; s >= from; s--) regs[s + delta] = regs[s];
    } else {
      for (let s = from; s < to; s++) regs[s + delta] = regs[s];
      for (let s = to + delta; s < to; s++) regs[s] = undefined;
    }
  }

  /** Regions [i, j) of leaf l. */
  private leafSlice(l: number, i: number, j: number): Region[] {
    const base = this.dirBase[l];
    return this.regs.slice(base + i, base + j) as Region[];
  }

  private region(s: number): Region {
    return this.regs[s] as Region;
  }

  /** The slot under the cursor. */
  private slot(): number {
    return this.dirBase[this.pl] + this.pi;
  }

  /**
   * Cursor to the last region with start <= addr, returning its slot; -1 (pi = -1, pl = 0) if there
   * is none.
   */
  private seekLE(addr: number): number {
    const dir = this.dirStart;
    const leaves = this.leafCount;
    if (leaves === 0 || dir[0] > addr) {
      this.pl = 0;
      this.pi = -1;
      return -1;
    }
    // Still in the previous lookup's leaf? dir[leaves] is +Infinity and lastLeaf < leaves, so both
    // bounds are plain loads, combined without a branch of their own.
    let l = this.lastLeaf;
    if ((-(dir[l] <= addr) & -(addr < dir[l + 1])) === 0) {
      l = lastAtOrBelow(dir, 0, leaves, addr);
      this.lastLeaf = l;
    }
    const base = this.dirBase[l];
    const s = lastAtOrBelow(this.starts, base, this.dirLen[l], addr);
    this.pl = l;
    this.pi = s - base;
    return s;
  }

  /** Cursor to the first region intersecting [start, end); false if there is none. */
  private seekFirstOverlap(start: number, end: number): boolean {
    if (end <= start) return false;
    const s = this.seekLE(start);
    if (s >= 0 && this.ends[s] > start) return true;
    if (!this.advance()) return false;
    return this.starts[this.slot()] < end;
  }

  /** Move the cursor to the next region; false at the end (cursor unchanged then). */
  private advance(): boolean {
    if (this.leafCount > 0 && this.pi + 1 < this.dirLen[this.pl]) {
      this.pi++;
      return true;
    }
    if (this.pl + 1 < this.leafCount) {
      this.pl++;
      this.pi = 0;
      return true;
    }
    return false;
  }

  /** Move the cursor to the previous region; false at the beginning. */
  private retreat(): boolean {
    if (this.pi > 0) {
      this.pi--;
      return true;
    }
    if (this.pl > 0) {
      this.pl--;
      this.pi = this.dirLen[this.pl] - 1;
      return true;
    }
    return false;
  }

  private isFree(start: number, end: number, gap: number): boolean {
    const r = this.firstEndingAbove(start);
    if (r === undefined) return true;
    return end <= r.start - (r.flags.growsDown ? gap : 0);
  }
}

/**
 * The last index in [from, from + n) whose value is <= x, given a sorted run with a[from] <= x.
 * A 4-way search: each step compares three independent pivots (loads that overlap in the CPU) and
 * keeps the quarter holding the answer, so the dependent chain is log4(n) loads, not log2(n);
 * comparisons become numbers (-(a <= x) is 0 or -1) instead of unpredictable branches.
 */
function lastAtOrBelow(a: Float64Array, from: number, n: number, x: number): number {
  let s = from;
  while (n > 3) {
    const q = n >> 2;
    s += (q & -(a[s + q] <= x)) + (q & -(a[s + 2 * q] <= x)) + (q & -(a[s + 3 * q] <= x));
    n -= 3 * q; // the last quarter is the widest, and every narrower one fits in a window that wide
  }
  while (n > 1) {
    const half = n >>> 1;
    s += half & -(a[s + half] <= x);
    n -= half;
  }
  return s;
}

/** Fold mergeable neighbours of an ordered run. */
function mergeRun(items: Region[]): Region[] {
  if (items.length < 2) return items;
  const out: Region[] = [];
  let cur = items[0];
  for (let k = 1; k < items.length; k++) {
    const next = items[k];
    if (canMerge(cur, next)) cur = mergeRegions(cur, next);
    else {
      out.push(cur);
      cur = next;
    }
  }
  out.push(cur);
  return out;
}

function checkRange(start: number, end: number): void {
  if (!(start >= 0 && end <= 2 ** 48 && start % PAGE_SIZE === 0 && end % PAGE_SIZE === 0 && start <= end)) {
    throw new RangeError(`region range ${start}-${end} is not page aligned below 2^48`);
  }
}
