import type { TlbInvalidation } from "@guest/hvf-bindings";

/** Past this many distinct ranges a batch becomes one "invalidate all". */
export const DEFAULT_MAX_RANGES = 64;
/** Past this many bytes in total a batch becomes one "invalidate all" (a full flush is cheaper). */
export const DEFAULT_MAX_BYTES = 0x4000_0000;

/**
 * Accumulates the translations a sequence of table edits made stale, and hands them out as one compact
 * batch: overlapping or adjacent ranges coalesce, and too many (or too large) collapse to "all".
 * Adding is allocation-free.
 */
export class InvalidationBatch {
  private readonly starts: Float64Array;
  private readonly ends: Float64Array;
  private count = 0;
  private totalBytes = 0;
  private all = false;

  constructor(
    private readonly maxRanges = DEFAULT_MAX_RANGES,
    private readonly maxBytes = DEFAULT_MAX_BYTES,
  ) {
    this.starts = new Float64Array(maxRanges);
    this.ends = new Float64Array(maxRanges);
  }

  get isEmpty(): boolean {
    return !this.all && this.count === 0;
  }

  addAll(): void {
    this.all = true;
  }

  add(start: number, end: number): void {
    if (this.all || end <= start) return;
    const last = this.count - 1;
    if (last >= 0 && start <= this.ends[last] && end >= this.starts[last]) {
      const s = Math.min(start, this.starts[last]);
      const e = Math.max(end, this.ends[last]);
      this.totalBytes += e - s - (this.ends[last] - this.starts[last]);
      this.starts[last] = s;
      this.ends[last] = e;
    } else if (this.count === this.maxRanges) {
      this.all = true;
      return;
    } else {
      this.starts[this.count] = start;
      this.ends[this.count] = end;
      this.count++;
      this.totalBytes += end - start;
    }
    if (this.totalBytes > this.maxBytes) this.all = true;
  }

  /** The pending batch (sorted, merged ranges, or a single "all"), and a fresh empty state. */
  take(): TlbInvalidation[] {
    let out: TlbInvalidation[];
    if (this.all) {
      out = [{ kind: "all" }];
    } else if (this.count === 0) {
      out = [];
    } else {
      const order = Array.from({ length: this.count }, (_, i) => i).sort(
        (a, b) => this.starts[a] - this.starts[b],
      );
      out = [];
      let s = this.starts[order[0]];
      let e = this.ends[order[0]];
      for (let k = 1; k < order.length; k++) {
        const i = order[k];
        if (this.starts[i] <= e) {
          if (this.ends[i] > e) e = this.ends[i];
        } else {
          out.push({ kind: "range", address: s, length: e - s });
          s = this.starts[i];
          e = this.ends[i];
        }
      }
      out.push({ kind: "range", address: s, length: e - s });
    }
    this.count = 0;
    this.totalBytes = 0;
    this.all = false;
    return out;
  }
}
