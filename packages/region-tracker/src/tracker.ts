import { DEFAULT_MAX_MAP_COUNT, ENOMEM, PAGE_SIZE } from "./abi.ts";
import {
  applyChange,
  canMerge,
  mergeRegions,
  type Region,
  type RegionChange,
  sliceRegion,
} from "./region.ts";

/** Regions per leaf. Leaf edits are native splices of at most this many pointers. */
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
 * The guest's VMAs: an ordered set of non-overlapping, page-aligned, maximally merged regions.
 *
 * Storage is a two-level sorted list: leaves of at most LEAF_MAX regions in address order, plus a
 * directory of each leaf's first start. A lookup is two binary searches (directory, leaf); an edit
 * splices one leaf, and only a leaf split or fold splices the directory (at 65,530 regions it holds
 * about 1,000 entries). Every mutation first computes the new run of regions replacing the affected
 * window (overlapped regions plus both neighbours, so merging stays local), checks the count limit,
 * and only then writes: a failure (-ENOMEM) changes nothing.
 */
export class RegionTracker {
  readonly maxCount: number;
  private leaves: Region[][] = [];
  private leafStarts: number[] = [];
  /** Each leaf's region starts, kept in step with `leaves`: lookups search these contiguous numbers. */
  private keys: number[][] = [];
  private total = 0;
  // Cursor scratch (seek results): leaf and index within it; pi = -1 means "before everything".
  private pl = 0;
  private pi = -1;

  constructor(options: RegionTrackerOptions = {}) {
    this.maxCount = options.maxCount ?? DEFAULT_MAX_MAP_COUNT;
  }

  get count(): number {
    return this.total;
  }

  *[Symbol.iterator](): IterableIterator<Region> {
    for (const leaf of this.leaves) yield* leaf;
  }

  /** All regions, in order (a copy). */
  toArray(): Region[] {
    return this.leaves.flat();
  }

  // ---------------------------------------------------------------------------------------------------
  // Queries

  /** The region containing addr. */
  find(addr: number): Region | undefined {
    this.seekLE(addr);
    if (this.pi < 0) return undefined;
    const r = this.leaves[this.pl][this.pi];
    return addr < r.end ? r : undefined;
  }

  /** The first region with end > addr (the one containing addr, or the next one above it). */
  firstEndingAbove(addr: number): Region | undefined {
    this.seekLE(addr);
    if (this.pi >= 0) {
      const r = this.leaves[this.pl][this.pi];
      if (r.end > addr) return r;
    }
    return this.advance() ? this.leaves[this.pl][this.pi] : undefined;
  }

  /** Regions intersecting [start, end), in order. */
  *overlapping(start: number, end: number): IterableIterator<Region> {
    if (!this.seekFirstOverlap(start, end)) return;
    let l = this.pl;
    let i = this.pi;
    while (l < this.leaves.length) {
      const leaf = this.leaves[l];
      for (; i < leaf.length; i++) {
        const r = leaf[i];
        if (r.start >= end) return;
        yield r;
      }
      l++;
      i = 0;
    }
  }

  /** Every byte of [start, end) lies in some region. */
  isFullyMapped(start: number, end: number): boolean {
    if (end <= start) return true;
    this.seekLE(start);
    if (this.pi < 0) return false;
    let cursor = start;
    for (;;) {
      const r = this.leaves[this.pl][this.pi];
      if (r.start > cursor || r.end <= cursor) return false;
      cursor = r.end;
      if (cursor >= end) return true;
      if (!this.advance()) return false;
    }
  }

  /** Every region intersecting [start, end) has exactly `prot` (gaps are not checked: see isFullyMapped). */
  everyHasProt(start: number, end: number, prot: number): boolean {
    if (!this.seekFirstOverlap(start, end)) return true;
    do {
      const r = this.leaves[this.pl][this.pi];
      if (r.start >= end) return true;
      if (r.prot !== prot) return false;
    } while (this.advance());
    return true;
  }

  /** Some region intersecting [start, end) is lazy (noreserve). */
  anyLazy(start: number, end: number): boolean {
    if (!this.seekFirstOverlap(start, end)) return false;
    do {
      const r = this.leaves[this.pl][this.pi];
      if (r.start >= end) return false;
      if (r.flags.noreserve) return true;
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
    if (topDown) {
      let gapEnd = high;
      this.seekLE(high - 1);
      // The region just above the window may still claim a guard gap below it.
      const pl = this.pl;
      const pi = this.pi;
      if (this.advance()) {
        const above = this.leaves[this.pl][this.pi];
        if (above.flags.growsDown && above.start >= high) gapEnd = Math.min(gapEnd, above.start - gap);
      }
      this.pl = pl;
      this.pi = pi;
      if (this.pi >= 0) {
        do {
          const r = this.leaves[this.pl][this.pi];
          const gapStart = Math.max(low, r.end);
          const candidate = Math.floor((gapEnd - length) / alignment) * alignment;
          if (candidate >= gapStart) return candidate;
          gapEnd = Math.min(gapEnd, r.start - (r.flags.growsDown ? gap : 0));
          if (gapEnd - length < low) return -ENOMEM;
        } while (this.retreat());
      }
      const candidate = Math.floor((gapEnd - length) / alignment) * alignment;
      return candidate >= low ? candidate : -ENOMEM;
    }
    let gapStart = low;
    if (this.firstEndingAbove(low) !== undefined) {
      do {
        const r = this.leaves[this.pl][this.pi];
        const gapEnd = Math.min(high, r.start - (r.flags.growsDown ? gap : 0));
        const candidate = Math.ceil(gapStart / alignment) * alignment;
        if (candidate + length <= gapEnd) return candidate;
        if (r.start >= high) return -ENOMEM;
        gapStart = Math.max(gapStart, r.end);
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
    this.leaves = [];
    this.leafStarts = [];
    this.keys = [];
    this.total = 0;
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
      this.leaves = [[inserted]];
      this.leafStarts = [inserted.start];
      this.keys = [[inserted.start]];
      this.total = 1;
      return 0;
    }
    const firstLeaf = this.pl;
    const firstIndex = this.pi;
    const window: Region[] = [];
    do {
      const r = this.leaves[this.pl][this.pi];
      if (r.start > end) break;
      window.push(r);
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
    const leaves = this.leaves;
    const first = leaves[leaf];
    this.total += items.length - count;
    // Fast path: the edit stays inside one leaf, which keeps a sensible size.
    if (index + count <= first.length && items.length <= LEAF_MAX) {
      const size = first.length - count + items.length;
      if (size <= LEAF_MAX && (size >= LEAF_MIN || leaves.length === 1) && size > 0) {
        const keys = this.keys[leaf];
        if (count === items.length) {
          for (let k = 0; k < count; k++) {
            first[index + k] = items[k];
            keys[index + k] = items[k].start;
          }
        } else {
          first.splice(index, count, ...items);
          shiftKeys(keys, index, count, items);
        }
        this.leafStarts[leaf] = first[0].start;
        return;
      }
    }
    // General path: rebuild the leaves the window spans (plus a small neighbour) into even chunks.
    let last = leaf;
    let rest = count - (first.length - index);
    while (rest > 0) {
      last++;
      rest -= leaves[last].length;
    }
    const tailStart = leaves[last].length + rest; // rest <= 0: index of the first kept item in `last`
    let combined = first.slice(0, index).concat(items, leaves[last].slice(tailStart));
    let from = leaf;
    if (combined.length < LEAF_MIN) {
      if (last + 1 < leaves.length && combined.length + leaves[last + 1].length <= LEAF_MAX) {
        last++;
        combined = combined.concat(leaves[last]);
      } else if (from > 0 && combined.length + leaves[from - 1].length <= LEAF_MAX) {
        from--;
        combined = leaves[from].concat(combined);
      }
    }
    const chunks: Region[][] = [];
    if (combined.length > 0) {
      const pieces = Math.ceil(combined.length / LEAF_MAX);
      const size = Math.ceil(combined.length / pieces);
      for (let k = 0; k < combined.length; k += size) chunks.push(combined.slice(k, k + size));
    }
    leaves.splice(from, last - from + 1, ...chunks);
    this.leafStarts.splice(from, last - from + 1, ...chunks.map((c) => c[0].start));
    this.keys.splice(from, last - from + 1, ...chunks.map((c) => c.map(startOf)));
  }

  /** Cursor to the last region with start <= addr; pi = -1 (pl = 0) if there is none. */
  private seekLE(addr: number): void {
    const starts = this.leafStarts;
    let lo = 0;
    let hi = starts.length - 1;
    if (hi < 0 || starts[0] > addr) {
      this.pl = 0;
      this.pi = -1;
      return;
    }
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (starts[mid] <= addr) lo = mid;
      else hi = mid - 1;
    }
    const keys = this.keys[lo];
    let a = 0;
    let b = keys.length - 1;
    while (a < b) {
      const mid = (a + b + 1) >>> 1;
      if (keys[mid] <= addr) a = mid;
      else b = mid - 1;
    }
    this.pl = lo;
    this.pi = a;
  }

  /** Cursor to the first region intersecting [start, end); false if there is none. */
  private seekFirstOverlap(start: number, end: number): boolean {
    if (end <= start) return false;
    this.seekLE(start);
    if (this.pi >= 0 && this.leaves[this.pl][this.pi].end > start) return true;
    if (!this.advance()) return false;
    return this.leaves[this.pl][this.pi].start < end;
  }

  /** Move the cursor to the next region; false at the end (cursor unchanged then). */
  private advance(): boolean {
    const leaves = this.leaves;
    if (leaves.length === 0) return false;
    if (this.pi + 1 < leaves[this.pl].length) {
      this.pi++;
      return true;
    }
    if (this.pl + 1 < leaves.length) {
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
      this.pi = this.leaves[this.pl].length - 1;
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

/** keys.splice(index, count, ...items.map(startOf)) without the temporaries. */
function shiftKeys(keys: number[], index: number, count: number, items: Region[]): void {
  const delta = items.length - count;
  const oldLength = keys.length;
  if (delta > 0) {
    for (let k = 0; k < delta; k++) keys.push(0);
    for (let k = oldLength - 1; k >= index + count; k--) keys[k + delta] = keys[k];
  } else if (delta < 0) {
    for (let k = index + count; k < oldLength; k++) keys[k + delta] = keys[k];
    keys.length = oldLength + delta;
  }
  for (let k = 0; k < items.length; k++) keys[index + k] = items[k].start;
}

function startOf(r: Region): number {
  return r.start;
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
