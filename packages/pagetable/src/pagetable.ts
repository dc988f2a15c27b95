import type { TlbInvalidation } from "@guest/hvf-bindings";
import { ENOMEM, PROT_EXEC, PROT_READ, PROT_WRITE } from "./abi.ts";
import {
  DESC_AF,
  DESC_AP_EL0,
  DESC_AP_RO,
  DESC_ATTRS_MASK_HI,
  DESC_ATTRS_MASK_LO,
  DESC_NG,
  DESC_OA_MASK_HI,
  DESC_OA_MASK_LO,
  DESC_PXN_HI,
  DESC_SH_INNER,
  DESC_SW_GUARD_HI,
  DESC_SW_PROT_NONE_HI,
  DESC_TYPE_BLOCK,
  DESC_TYPE_MASK,
  DESC_TYPE_PAGE,
  DESC_TYPE_TABLE,
  DESC_UXN_HI,
  DESC_VALID,
  L0_SPAN,
  L1_SPAN,
  L2_SPAN,
  PAGE_SIZE,
  VA_LIMIT,
} from "./descriptor.ts";
import { InvalidationBatch } from "./tlb.ts";

export interface PageTableOptions {
  /** The whole guest physical memory; index == guest physical address. */
  memory: Uint8Array;
  /** Guest PA of the table pool (4 KiB aligned); its first page is the L0 table. */
  poolBase: number;
  /** Bytes of the pool (a multiple of 4 KiB, at least one page). */
  poolSize: number;
  /** TLB batch limits (tests use small ones). */
  maxInvalidationRanges?: number;
  maxInvalidationBytes?: number;
}

export interface Translation {
  pa: number;
  read: boolean;
  write: boolean;
  exec: boolean;
}

export interface DescriptorInfo {
  /** Level whose descriptor ended the walk (0..3). */
  level: number;
  /** The raw 64-bit descriptor there (0n when a table was missing). */
  raw: bigint;
  /** Guest PA of the descriptor slot (-1 if the walk left the pool). */
  slot: number;
}

/** What a range operation does to each page. */
enum Op {
  Map = 0,
  Protect = 1,
  Unmap = 2,
  GuardInstall = 3,
  GuardRemove = 4,
}

const TWO32 = 0x1_0000_0000;
const ENTRY_WORDS = 2;
const TABLE_WORDS = 1024;

/** Low-word attributes shared by every valid user page/block: normal memory, inner shareable, AF, nG, PXN. */
const USER_LO = DESC_SH_INNER | DESC_AF | DESC_NG;

/**
 * AArch64 stage-1 tables in guest physical memory, identity mapped (OA == VA), 4 KiB granule, 48-bit VA.
 * Tables come from a fixed pool with a free list; every operation first counts the table pages it needs,
 * so it either completes or returns -ENOMEM having changed nothing.
 */
export class PageTable {
  readonly rootAddress: number;
  readonly poolBase: number;
  readonly poolPages: number;
  private readonly u: Int32Array;
  /** Non-zero entries per pool page (a table page is freed when it drops to 0). */
  private readonly used: Uint16Array;
  private readonly freeList: Int32Array;
  private freeTop = 0;
  /** Pages [bump, poolPages) have never been handed out. */
  private bump = 1;
  private readonly tlb: InvalidationBatch;

  // The operation in progress (kept in fields so the walkers allocate nothing).
  private op: Op = Op.Map;
  /** The page descriptor the op writes, attributes only: low word (type + attrs), high word attrs. */
  private opLo = 0;
  private opHi = 0;
  private dry = false;
  private need = 0;
  // Scratch of lookup().
  private foundLevel = 0;
  private foundWord = -1;

  constructor(options: PageTableOptions) {
    const { memory, poolBase, poolSize } = options;
    if (poolBase % PAGE_SIZE !== 0 || poolSize % PAGE_SIZE !== 0 || poolSize < PAGE_SIZE) {
      throw new RangeError("page-table pool must be 4 KiB aligned and at least one page");
    }
    if (poolBase < 0 || poolBase + poolSize > memory.byteLength) {
      throw new RangeError("page-table pool lies outside guest memory");
    }
    if ((memory.byteOffset + poolBase) % 4 !== 0) throw new RangeError("guest memory view is misaligned");
    if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) throw new Error("big-endian host");
    this.poolBase = poolBase;
    this.poolPages = poolSize / PAGE_SIZE;
    this.rootAddress = poolBase;
    this.u = new Int32Array(memory.buffer, memory.byteOffset + poolBase, poolSize / 4);
    this.used = new Uint16Array(this.poolPages);
    this.freeList = new Int32Array(this.poolPages);
    this.tlb = new InvalidationBatch(options.maxInvalidationRanges, options.maxInvalidationBytes);
    this.u.fill(0, 0, TABLE_WORDS);
  }

  /** Table pages in use, the root included. */
  get pagesInUse(): number {
    return this.bump - this.freeTop;
  }

  /** Table pages still available. */
  get pagesFree(): number {
    return this.freeTop + (this.poolPages - this.bump);
  }

  // ---------------------------------------------------------------------------------------------------
  // Public operations. Addresses and lengths are 4 KiB aligned; length 0 is a no-op.

  /** Map [va, va+length) with `prot`, replacing whatever was there (guards included). */
  map(va: number, length: number, prot: number): number {
    this.setOpProt(prot);
    return this.run(Op.Map, va, length);
  }

  /** Change the protection of every mapped page in the range; unmapped pages stay unmapped, guards stay guards. */
  protect(va: number, length: number, prot: number): number {
    this.setOpProt(prot);
    return this.run(Op.Protect, va, length);
  }

  /** Remove every entry in the range (guards too). Can need a table page to split a block: -ENOMEM. */
  unmap(va: number, length: number): number {
    return this.run(Op.Unmap, va, length);
  }

  /** Make every page of the range a guard (invalid, software-marked), remembering its protection. */
  installGuard(va: number, length: number): number {
    return this.run(Op.GuardInstall, va, length);
  }

  /** Clear guard markers in the range; pages get back the protection they had. Never allocates. */
  removeGuard(va: number, length: number): number {
    return this.run(Op.GuardRemove, va, length);
  }

  /** Drop every mapping and table (execve). */
  clear(): void {
    this.u.fill(0, 0, TABLE_WORDS);
    this.used.fill(0);
    this.freeTop = 0;
    this.bump = 1;
    this.tlb.addAll();
  }

  /** The TLB work the changes since the last call require, as one compact batch. */
  takeInvalidations(): TlbInvalidation[] {
    return this.tlb.take();
  }

  get hasPendingInvalidations(): boolean {
    return !this.tlb.isEmpty;
  }

  isGuard(va: number): boolean {
    if (!this.lookup(va) || this.foundLevel !== 3) return false;
    return (this.u[this.foundWord + 1] & DESC_SW_GUARD_HI) !== 0;
  }

  /** Where va translates and what EL0 may do there; null when unmapped or a guard. PROT_NONE: all false. */
  translate(va: number): Translation | null {
    const prot = this.protectionAt(va);
    if (prot < 0) return null;
    const lo = this.u[this.foundWord];
    const hi = this.u[this.foundWord + 1];
    const span = this.foundLevel === 1 ? L1_SPAN : this.foundLevel === 2 ? L2_SPAN : PAGE_SIZE;
    const oa = (hi & DESC_OA_MASK_HI) * TWO32 + ((lo & DESC_OA_MASK_LO) >>> 0);
    return {
      pa: Math.floor(oa / span) * span + Math.floor((va % span) / PAGE_SIZE) * PAGE_SIZE,
      read: (prot & PROT_READ) !== 0,
      write: (prot & PROT_WRITE) !== 0,
      exec: (prot & PROT_EXEC) !== 0,
    };
  }

  /**
   * Allocation-free variant of translate(): the effective PROT_* bits of the page (write implies read,
   * exec implies read), -1 if unmapped, -2 if a guard.
   */
  protectionAt(va: number): number {
    if (!this.lookup(va)) return -1;
    const lo = this.u[this.foundWord];
    const hi = this.u[this.foundWord + 1];
    if (lo & DESC_VALID) {
      if (this.foundLevel === 0) return -1;
      if (this.foundLevel === 3 && (lo & DESC_TYPE_MASK) !== DESC_TYPE_PAGE) return -1;
      let prot = 0;
      if (lo & DESC_AP_EL0) prot = lo & DESC_AP_RO ? PROT_READ : PROT_READ | PROT_WRITE;
      if (!(hi & DESC_UXN_HI)) prot |= PROT_EXEC | PROT_READ;
      return prot;
    }
    if (this.foundLevel === 3 && hi & DESC_SW_GUARD_HI) return -2;
    if (this.foundLevel >= 2 && hi & DESC_SW_PROT_NONE_HI) return 0;
    return -1;
  }

  /** The descriptor that decides va's translation (for tests and debugging). */
  describe(va: number): DescriptorInfo {
    if (!this.lookup(va)) {
      return { level: this.foundLevel, raw: 0n, slot: -1 };
    }
    const w = this.foundWord;
    return {
      level: this.foundLevel,
      raw: (BigInt(this.u[w + 1] >>> 0) << 32n) | BigInt(this.u[w] >>> 0),
      slot: this.poolBase + w * 4,
    };
  }

  // ---------------------------------------------------------------------------------------------------
  // Internals

  /** Walk to the descriptor deciding va: sets foundLevel/foundWord; false if va is out of range. */
  private lookup(va: number): boolean {
    if (!(va >= 0 && va < VA_LIMIT)) {
      this.foundLevel = 0;
      return false;
    }
    const u = this.u;
    let page = 0;
    for (let level = 0; ; level++) {
      const index =
        level === 0
          ? Math.floor(va / L0_SPAN)
          : level === 1
            ? Math.floor(va / L1_SPAN) % 512
            : level === 2
              ? Math.floor(va / L2_SPAN) % 512
              : Math.floor(va / PAGE_SIZE) % 512;
      const w = page * TABLE_WORDS + index * ENTRY_WORDS;
      this.foundLevel = level;
      this.foundWord = w;
      const lo = u[w];
      if (level === 3 || (lo & DESC_TYPE_MASK) !== DESC_TYPE_TABLE) return true;
      const next = this.tableOf(lo, u[w + 1]);
      if (next < 0) return false;
      page = next;
    }
  }

  /** Pool page index of a table descriptor's target, or -1 if it points outside the pool. */
  private tableOf(lo: number, hi: number): number {
    const pa = (hi & DESC_OA_MASK_HI) * TWO32 + ((lo & DESC_OA_MASK_LO) >>> 0);
    const page = (pa - this.poolBase) / PAGE_SIZE;
    return page >= 0 && page < this.poolPages ? page : -1;
  }

  private setOpProt(prot: number): void {
    if ((prot & (PROT_READ | PROT_WRITE | PROT_EXEC)) === 0) {
      this.opLo = 0;
      this.opHi = DESC_SW_PROT_NONE_HI;
      return;
    }
    let lo = DESC_TYPE_PAGE | USER_LO | DESC_AP_EL0;
    // Write implies read on arm64; exec without write is readable (no EPAN execute-only).
    if (!(prot & PROT_WRITE)) lo |= DESC_AP_RO;
    this.opLo = lo;
    this.opHi = prot & PROT_EXEC ? DESC_PXN_HI : DESC_PXN_HI | DESC_UXN_HI;
  }

  private run(op: Op, va: number, length: number): number {
    if (length === 0) return 0;
    const end = va + length;
    if (!(va >= 0 && end <= VA_LIMIT && va % PAGE_SIZE === 0 && length % PAGE_SIZE === 0 && length > 0)) {
      throw new RangeError(`page-table range ${va}+${length} is not 4 KiB aligned below 2^48`);
    }
    this.op = op;
    if (op !== Op.GuardRemove) {
      this.dry = true;
      this.need = 0;
      this.walkUpper(0, 0, va, end);
      if (this.need > this.pagesFree) return -ENOMEM;
    }
    this.dry = false;
    this.walkUpper(0, 0, va, end);
    return 0;
  }

  private creates(): boolean {
    return this.op === Op.Map || this.op === Op.GuardInstall;
  }

  /** L0 (level 0) and L1 (level 1) tables hold only table descriptors here. page = -1: a table not yet allocated (dry run). */
  private walkUpper(level: number, page: number, start: number, end: number): void {
    const u = this.u;
    const span = level === 0 ? L0_SPAN : L1_SPAN;
    for (let x = start; x < end; ) {
      const slotBase = Math.floor(x / span) * span;
      const next = Math.min(end, slotBase + span);
      const w = page < 0 ? -1 : page * TABLE_WORDS + (Math.floor(x / span) % 512) * ENTRY_WORDS;
      const lo = w < 0 ? 0 : u[w];
      let child: number;
      if ((lo & DESC_TYPE_MASK) === DESC_TYPE_TABLE) {
        child = this.tableOf(lo, u[w + 1]);
        if (child < 0) throw new Error("page-table descriptor points outside the pool");
      } else if (lo & DESC_VALID) {
        throw new Error("unexpected L0/L1 block descriptor"); // never written by this package
      } else if (this.creates()) {
        if (this.dry) {
          this.need++;
          child = -1;
        } else {
          child = this.allocZeroed();
          this.setTable(w, page, child);
        }
      } else {
        x = next;
        continue;
      }
      if (level === 0) this.walkUpper(1, child, x, next);
      else this.walkL2(child, x, next);
      if (!this.dry && this.used[child] === 0) {
        this.clearTableEntry(w, page);
        this.release(child);
        this.tlb.add(slotBase, slotBase + span);
      }
      x = next;
    }
  }

  private walkL2(page: number, start: number, end: number): void {
    const u = this.u;
    const op = this.op;
    for (let from = start; from < end; ) {
      const chunk = Math.floor(from / L2_SPAN) * L2_SPAN;
      const chunkEnd = chunk + L2_SPAN;
      const to = Math.min(end, chunkEnd);
      const full = from === chunk && to === chunkEnd;
      const w = page < 0 ? -1 : page * TABLE_WORDS + (Math.floor(from / L2_SPAN) % 512) * ENTRY_WORDS;
      const lo = w < 0 ? 0 : u[w];
      const hi = w < 0 ? 0 : u[w + 1];
      const a = from;
      from = to;
      if ((lo & DESC_TYPE_MASK) === DESC_TYPE_TABLE) {
        const child = this.tableOf(lo, hi);
        if (child < 0) throw new Error("page-table descriptor points outside the pool");
        if (this.dry) continue;
        if (full && (op === Op.Map || op === Op.Unmap)) {
          // The whole 2 MiB is replaced: drop the L3 table outright.
          if (op === Op.Map) this.putStructural(w, this.blockLo(chunk), this.blockHi(chunk));
          else this.putStructural(w, 0, 0);
          if (op === Op.Unmap) this.used[page]--;
          this.release(child);
          this.tlb.add(chunk, chunkEnd);
          continue;
        }
        this.walkL3(w, page, child, chunk, a, to);
        continue;
      }
      // A block, a PROT_NONE block marker, or nothing.
      const isEmpty = lo === 0 && hi === 0;
      if (op === Op.GuardRemove) continue;
      if (isEmpty && (op === Op.Protect || op === Op.Unmap)) continue;
      if (full && op !== Op.GuardInstall) {
        if (this.dry) continue;
        let nlo = 0;
        let nhi = 0;
        if (op === Op.Map || (op === Op.Protect && !isEmpty)) {
          nlo = this.blockLo(chunk);
          nhi = this.blockHi(chunk);
        }
        if (nlo !== lo || nhi !== hi) {
          this.putLeaf(w, page, lo, hi, nlo, nhi);
          if (lo & DESC_VALID) this.tlb.add(chunk, chunkEnd);
        }
        continue;
      }
      // Partial chunk (or guard install): an L3 table is needed unless nothing would change.
      if (
        (op === Op.Map || op === Op.Protect) &&
        !isEmpty &&
        lo === this.blockLo(chunk) &&
        hi === this.blockHi(chunk)
      ) {
        continue;
      }
      if (this.dry) {
        this.need++;
        continue;
      }
      const child = this.split(w, page, lo, hi, chunk);
      this.walkL3(w, page, child, chunk, a, to);
    }
  }

  /** L2 entry (low word) the current op's protection gives a 2 MiB block at `chunk`. */
  private blockLo(chunk: number): number {
    const attrs = this.opLo;
    if (attrs === 0) return (chunk % TWO32) | 0; // PROT_NONE marker: output address only
    return (chunk % TWO32) | (attrs & ~DESC_TYPE_MASK) | DESC_TYPE_BLOCK | 0;
  }

  private blockHi(chunk: number): number {
    return Math.floor(chunk / TWO32) | this.opHi | 0;
  }

  /**
   * Apply the op to the L3 entries covering [from, to) of the table `page` (2 MiB chunk at `chunk`),
   * then free the table if it emptied or fold it back into a block if it became uniform.
   */
  private walkL3(l2w: number, l2page: number, page: number, chunk: number, from: number, to: number): void {
    const u = this.u;
    const op = this.op;
    const first = (from - chunk) / PAGE_SIZE;
    const last = (to - chunk) / PAGE_SIZE; // exclusive
    const base = page * TABLE_WORDS;
    const loBase = chunk % TWO32; // < 2^32 - 2 MiB, so lo OA stays below 2^32 for all 512 pages
    const hiOa = Math.floor(chunk / TWO32);
    let delta = 0;
    let touchedValid = false;
    if (op === Op.Map) {
      const attrLo = this.opLo;
      const nhi = hiOa | this.opHi | 0;
      for (let i = first; i < last; i++) {
        const w = base + i * ENTRY_WORDS;
        const olo = u[w];
        const ohi = u[w + 1];
        const nlo = (loBase + i * PAGE_SIZE) | attrLo | 0;
        if (olo === nlo && ohi === nhi) continue;
        if (olo === 0 && ohi === 0) delta++;
        if (olo & DESC_VALID) touchedValid = true;
        this.putEntry(w, olo, ohi, nlo, nhi);
      }
    } else if (op === Op.Protect) {
      const attrLo = this.opLo;
      const nhi = hiOa | this.opHi | 0;
      for (let i = first; i < last; i++) {
        const w = base + i * ENTRY_WORDS;
        const olo = u[w];
        const ohi = u[w + 1];
        // Only mapped pages change: valid/guarded-valid keep bit 1, PROT_NONE ones carry the marker.
        if (!(olo & DESC_TYPE_PAGE & ~DESC_VALID) && !(ohi & DESC_SW_PROT_NONE_HI)) continue;
        let nlo = (loBase + i * PAGE_SIZE) | attrLo | 0;
        let h = nhi;
        if (ohi & DESC_SW_GUARD_HI) {
          nlo = (nlo & ~DESC_VALID) | 0;
          h = h | DESC_SW_GUARD_HI | 0;
        }
        if (olo === nlo && ohi === h) continue;
        if (olo & DESC_VALID) touchedValid = true;
        this.putEntry(w, olo, ohi, nlo, h);
      }
    } else if (op === Op.Unmap) {
      for (let i = first; i < last; i++) {
        const w = base + i * ENTRY_WORDS;
        const olo = u[w];
        const ohi = u[w + 1];
        if (olo === 0 && ohi === 0) continue;
        delta--;
        if (olo & DESC_VALID) touchedValid = true;
        u[w] = 0;
        u[w + 1] = 0;
      }
    } else if (op === Op.GuardInstall) {
      for (let i = first; i < last; i++) {
        const w = base + i * ENTRY_WORDS;
        const olo = u[w];
        const ohi = u[w + 1];
        if (ohi & DESC_SW_GUARD_HI) continue;
        if (olo === 0 && ohi === 0) delta++;
        if (olo & DESC_VALID) touchedValid = true;
        u[w] = (olo & ~DESC_VALID) | 0; // invalidate first
        u[w + 1] = ohi | DESC_SW_GUARD_HI | 0;
      }
    } else {
      for (let i = first; i < last; i++) {
        const w = base + i * ENTRY_WORDS;
        const olo = u[w];
        const ohi = u[w + 1];
        if (!(ohi & DESC_SW_GUARD_HI)) continue;
        const nhi = (ohi & ~DESC_SW_GUARD_HI) | 0;
        const nlo = olo & DESC_TYPE_PAGE & ~DESC_VALID ? olo | DESC_VALID | 0 : olo;
        if (nlo === 0 && nhi === 0) delta--;
        u[w + 1] = nhi;
        u[w] = nlo;
      }
    }
    this.used[page] += delta;
    if (touchedValid) this.tlb.add(from, to);
    const used = this.used[page];
    if (used === 0) {
      this.putStructural(l2w, 0, 0);
      this.used[l2page]--;
      this.release(page);
      this.tlb.add(chunk, chunk + L2_SPAN);
    } else if (used === 512 && op !== Op.Unmap && op !== Op.GuardInstall) {
      // Cheap pre-check: an untouched entry must look like the touched ones for the table to be uniform.
      const ref = first > 0 ? 0 : last < 512 ? 511 : -1;
      if (ref >= 0) {
        const rw = base + ref * ENTRY_WORDS;
        const tw = base + first * ENTRY_WORDS;
        if ((u[rw] & DESC_ATTRS_MASK_LO) !== (u[tw] & DESC_ATTRS_MASK_LO)) return;
        if ((u[rw + 1] & DESC_ATTRS_MASK_HI) !== (u[tw + 1] & DESC_ATTRS_MASK_HI)) return;
      }
      this.tryMerge(l2w, page, chunk);
    }
  }

  /** Fold a full L3 table whose 512 entries share one protection back into an L2 block (or PROT_NONE marker). */
  private tryMerge(l2w: number, page: number, chunk: number): void {
    const u = this.u;
    const base = page * TABLE_WORDS;
    const lo0 = u[base] & DESC_ATTRS_MASK_LO;
    const hi0 = u[base + 1] & DESC_ATTRS_MASK_HI;
    if (hi0 & DESC_SW_GUARD_HI) return;
    const valid = (lo0 & DESC_TYPE_MASK) === DESC_TYPE_PAGE;
    if (!valid && !(lo0 === 0 && hi0 === DESC_SW_PROT_NONE_HI)) return;
    for (let w = base + ENTRY_WORDS; w < base + TABLE_WORDS; w += ENTRY_WORDS) {
      if ((u[w] & DESC_ATTRS_MASK_LO) !== lo0 || (u[w + 1] & DESC_ATTRS_MASK_HI) !== hi0) return;
    }
    const oaLo = chunk % TWO32;
    const nlo = valid ? oaLo | (lo0 & ~DESC_TYPE_MASK) | DESC_TYPE_BLOCK | 0 : oaLo | 0;
    const nhi = Math.floor(chunk / TWO32) | hi0 | 0;
    this.putStructural(l2w, nlo, nhi);
    this.release(page);
    this.tlb.add(chunk, chunk + L2_SPAN);
  }

  /** Replace the block / marker / empty L2 entry at w by an L3 table with the same per-page contents. */
  private split(w: number, l2page: number, lo: number, hi: number, chunk: number): number {
    const u = this.u;
    const page = this.allocRaw();
    const base = page * TABLE_WORDS;
    if (lo === 0 && hi === 0) {
      u.fill(0, base, base + TABLE_WORDS);
      this.used[page] = 0;
      this.used[l2page]++;
    } else {
      const oaLo = chunk % TWO32;
      const attrs = lo & DESC_VALID ? (lo & DESC_ATTRS_MASK_LO) | DESC_TYPE_PAGE : 0;
      for (let i = 0; i < 512; i++) {
        u[base + i * ENTRY_WORDS] = (oaLo + i * PAGE_SIZE) | attrs;
        u[base + i * ENTRY_WORDS + 1] = hi;
      }
      this.used[page] = 512;
      if (lo & DESC_VALID) this.tlb.add(chunk, chunk + L2_SPAN);
    }
    const pa = this.poolBase + page * PAGE_SIZE;
    this.putStructural(w, (pa % TWO32) | DESC_TYPE_TABLE | 0, Math.floor(pa / TWO32));
    return page;
  }

  /**
   * Write one leaf entry in an order a concurrent hardware walker tolerates: a valid descriptor becomes
   * visible only once complete, and a permission change never passes through write+exec.
   */
  private putEntry(w: number, olo: number, ohi: number, nlo: number, nhi: number): void {
    const u = this.u;
    if (nlo & DESC_VALID && !(olo & DESC_VALID && !(nhi & DESC_UXN_HI) && ohi & DESC_UXN_HI)) {
      u[w + 1] = nhi;
      u[w] = nlo;
    } else {
      u[w] = nlo;
      u[w + 1] = nhi;
    }
  }

  /** putEntry for an upper-level leaf (block/marker) that also keeps the table's entry count. */
  private putLeaf(w: number, page: number, olo: number, ohi: number, nlo: number, nhi: number): void {
    const wasEmpty = olo === 0 && ohi === 0;
    const isEmpty = nlo === 0 && nhi === 0;
    if (wasEmpty && !isEmpty) this.used[page]++;
    else if (!wasEmpty && isEmpty) this.used[page]--;
    this.putEntry(w, olo, ohi, nlo, nhi);
  }

  /** Table <-> block changes: break (invalidate), then make. The entry count is the caller's business. */
  private putStructural(w: number, nlo: number, nhi: number): void {
    const u = this.u;
    u[w] = 0;
    u[w + 1] = nhi;
    u[w] = nlo;
  }

  private setTable(w: number, page: number, child: number): void {
    const pa = this.poolBase + child * PAGE_SIZE;
    this.used[page]++;
    this.u[w + 1] = Math.floor(pa / TWO32);
    this.u[w] = (pa % TWO32) | DESC_TYPE_TABLE | 0;
  }

  private clearTableEntry(w: number, page: number): void {
    this.u[w] = 0;
    this.u[w + 1] = 0;
    this.used[page]--;
  }

  private allocRaw(): number {
    if (this.freeTop > 0) return this.freeList[--this.freeTop];
    if (this.bump < this.poolPages) return this.bump++;
    throw new Error("page-table pool exhausted after a successful reservation"); // a counting bug
  }

  private allocZeroed(): number {
    const page = this.allocRaw();
    this.u.fill(0, page * TABLE_WORDS, (page + 1) * TABLE_WORDS);
    this.used[page] = 0;
    return page;
  }

  private release(page: number): void {
    this.used[page] = 0;
    this.freeList[this.freeTop++] = page;
  }
}
