/**
 * Load planning: where each PT_LOAD goes, with which protection, and how its bytes are written.
 *
 * Shared pages: when segment B's first page is segment A's last page (A ends and B starts inside one
 * page), the two page ranges overlap. `segments` keeps each segment's own page range; `mappings` is the
 * non-overlapping, sorted union the caller should actually map, with the protections of every segment
 * touching a page OR-ed together. (Linux maps B over A with MAP_FIXED, so the shared page gets only B's
 * protection; the union differs only on that page and only by being more permissive, which keeps code at
 * the end of A executable. Linkers separate R-X and RW- segments by a page, so real binaries rarely hit it.)
 */

import { ADDRESS_LIMIT, type ElfImage, PAGE_SIZE, type TlsTemplate } from "./elf.ts";
import { PF_R, PF_W, PF_X, PROT_EXEC, PROT_READ, PROT_WRITE } from "./elf-abi.ts";
import { ElfError, hex } from "./errors.ts";

/** Where a static-PIE image is placed (the runtime's fixed layout: ET_EXEC images usually live here too). */
export const DEFAULT_PIE_BASE = 0x400000;
/** Lowest address an image may occupy (the runtime keeps 0–64 KiB unmapped as a null guard; Linux mmap_min_addr). */
export const DEFAULT_MIN_ADDRESS = 0x10000;

export interface PlannedSegment {
  /** index in the program-header table */
  readonly index: number;
  /** page-aligned start of this segment's pages (biased) */
  readonly start: number;
  /** page-rounded end of this segment's pages (biased) */
  readonly end: number;
  /** PROT_READ | PROT_WRITE | PROT_EXEC from p_flags */
  readonly prot: number;
  /** p_offset, p_filesz, p_memsz */
  readonly fileOffset: number;
  readonly fileSize: number;
  readonly memSize: number;
  /** p_vaddr + bias */
  readonly vaddr: number;
  /** the first page is also the previous segment's last page */
  readonly sharesFirstPage: boolean;
  /** the last page is also the next segment's first page */
  readonly sharesLastPage: boolean;
}

/** A page range to map: the union of segment pages, non-overlapping, sorted, page-aligned. */
export interface PlannedMapping {
  readonly start: number;
  readonly end: number;
  readonly prot: number;
}

export interface LoadPlan {
  readonly loadBias: number;
  readonly segments: readonly PlannedSegment[];
  readonly mappings: readonly PlannedMapping[];
  /** page-rounded end of the highest segment: where brk starts */
  readonly imageEnd: number;
  /** lowest mapped address */
  readonly imageStart: number;
  /** e_entry + bias */
  readonly entry: number;
  /** AT_PHDR: biased vaddr of the program headers (bias itself when no PT_LOAD holds them, as Linux) */
  readonly phdrAddress: number;
  readonly phnum: number;
  readonly phent: number;
  /** PT_TLS with its vaddr biased, or null */
  readonly tls: TlsTemplate | null;
  readonly execStack: boolean;
}

export interface PlanOptions {
  /** added to every p_vaddr; must be 0 for ET_EXEC; default 0 (ET_EXEC) or pieLoadBias(image) (ET_DYN) */
  readonly loadBias?: number;
  /** lowest address the image may touch (default DEFAULT_MIN_ADDRESS) */
  readonly minAddress?: number;
  /** the image must end at or below this address (default 2^48) */
  readonly maxAddress?: number;
}

const pageDown = (x: number): number => x - (x % PAGE_SIZE);
const pageUp = (x: number): number => pageDown(x + PAGE_SIZE - 1);

export function protFromFlags(flags: number): number {
  return (flags & PF_R ? PROT_READ : 0) | (flags & PF_W ? PROT_WRITE : 0) | (flags & PF_X ? PROT_EXEC : 0);
}

/**
 * The load bias that places a static-PIE image at `base` (as Linux does for ET_DYN without an interpreter,
 * minus randomisation): `base` rounded up to the image's largest p_align, minus its first page.
 */
export function pieLoadBias(image: ElfImage, base: number = DEFAULT_PIE_BASE): number {
  const aligned = Math.ceil(base / image.maxAlign) * image.maxAlign;
  const first = pageDown(image.minVaddr);
  return aligned >= first ? aligned - first : aligned;
}

export function planLoad(image: ElfImage, options: PlanOptions = {}): LoadPlan {
  const loadBias = options.loadBias ?? (image.isPie ? pieLoadBias(image) : 0);
  const minAddress = options.minAddress ?? DEFAULT_MIN_ADDRESS;
  const maxAddress = Math.min(options.maxAddress ?? ADDRESS_LIMIT, ADDRESS_LIMIT);
  if (!Number.isSafeInteger(loadBias) || loadBias < 0 || loadBias % PAGE_SIZE !== 0) {
    throw new ElfError(
      "bad-load-bias",
      `load bias ${loadBias} is not a non-negative multiple of ${PAGE_SIZE}`,
    );
  }
  if (!image.isPie && loadBias !== 0) {
    throw new ElfError(
      "bad-load-bias",
      `ET_EXEC images load at their link address; load bias ${hex(loadBias)} given`,
    );
  }
  const imageStart = pageDown(image.minVaddr + loadBias);
  const imageEnd = pageUp(image.maxVaddrEnd + loadBias);
  if (imageEnd > maxAddress) {
    throw new ElfError(
      image.maxVaddrEnd + loadBias > ADDRESS_LIMIT ? "address-overflow" : "too-large",
      `image [${hex(imageStart)}, ${hex(imageEnd)}) does not fit below ${hex(maxAddress)}`,
    );
  }
  if (imageStart < minAddress) {
    throw new ElfError(
      "address-too-low",
      `image starts at ${hex(imageStart)}, below the lowest mappable address ${hex(minAddress)}`,
    );
  }

  const loads = image.loads;
  const segments: PlannedSegment[] = [];
  for (let i = 0; i < loads.length; i++) {
    const s = loads[i]!;
    const vaddr = s.vaddr + loadBias;
    const start = pageDown(vaddr);
    const end = pageUp(vaddr + s.memsz);
    const prev = segments[i - 1];
    const sharesFirstPage = prev !== undefined && prev.end > start;
    if (sharesFirstPage) (segments[i - 1] as { sharesLastPage: boolean }).sharesLastPage = true;
    segments.push({
      index: s.index,
      start,
      end,
      prot: protFromFlags(s.flags),
      fileOffset: s.offset,
      fileSize: s.filesz,
      memSize: s.memsz,
      vaddr,
      sharesFirstPage,
      sharesLastPage: false,
    });
  }

  const mappings: PlannedMapping[] = [];
  for (const seg of segments) {
    const prev = mappings[mappings.length - 1];
    if (prev !== undefined && prev.end > seg.start) {
      // The shared page gets both protections; the rest of this segment its own.
      mappings[mappings.length - 1] = { start: prev.start, end: seg.start, prot: prev.prot };
      if (prev.start === seg.start) mappings.pop();
      mappings.push({ start: seg.start, end: prev.end, prot: prev.prot | seg.prot });
      if (seg.end > prev.end) mappings.push({ start: prev.end, end: seg.end, prot: seg.prot });
    } else {
      mappings.push({ start: seg.start, end: seg.end, prot: seg.prot });
    }
  }

  const tls = image.tls === null ? null : { ...image.tls, vaddr: image.tls.vaddr + loadBias };
  return {
    loadBias,
    segments,
    mappings,
    imageEnd,
    imageStart,
    entry: image.entry + loadBias,
    phdrAddress: (image.phdrVaddr ?? 0) + loadBias,
    phnum: image.phnum,
    phent: image.phentsize,
    tls,
    execStack: image.execStack,
  };
}

/**
 * Copy the file's bytes into guest memory (index = guest address) as Linux's file mappings would show
 * them, then zero each BSS tail. The caller has mapped `plan.mappings`; memory may hold stale data.
 *
 * Per segment: the whole pages of file content around [vaddr, vaddr + filesz) are copied (the bytes
 * before vaddr in its first page and after the file part in its last page are file bytes in Linux too,
 * e.g. the ELF header at the start of the text segment); then [vaddr + filesz, page end of vaddr + memsz)
 * is zeroed when the segment has a BSS (Linux padzero + anonymous pages). On a shared page no segment
 * writes over another segment's own bytes. Work is proportional to the image, which the caller sized.
 */
export function writeSegments(plan: LoadPlan, bytes: Uint8Array, memory: Uint8Array): void {
  if (plan.imageEnd > memory.length) {
    throw new ElfError(
      "too-large",
      `image ends at ${hex(plan.imageEnd)}, beyond guest memory of ${hex(memory.length)} bytes`,
    );
  }
  const segments = plan.segments;
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    const prev = segments[i - 1];
    const next = segments[i + 1];
    const lowLimit = prev === undefined ? seg.start : Math.max(seg.start, prev.vaddr + prev.memSize);
    const highLimit = next === undefined ? seg.end : Math.min(seg.end, next.vaddr);
    const delta = seg.fileOffset - seg.vaddr; // file offset = guest address + delta
    const fileEnd = seg.vaddr + seg.fileSize;
    const hasBss = seg.memSize > seg.fileSize;
    // File-backed part: [lowLimit, copyEnd) where copyEnd is the page end after the file bytes, or fileEnd with a BSS.
    // (A segment with no file bytes is all anonymous memory in Linux >= 6.7: nothing is copied.)
    const copyEnd = seg.fileSize === 0 ? lowLimit : Math.min(hasBss ? fileEnd : pageUp(fileEnd), highLimit);
    if (copyEnd > lowLimit) {
      const srcStart = lowLimit + delta;
      const srcEnd = Math.min(copyEnd + delta, bytes.length);
      if (srcEnd > srcStart) memory.set(bytes.subarray(srcStart, srcEnd), lowLimit);
      // Past the end of the file a mapping reads as zeroes.
      const written = Math.max(srcEnd - srcStart, 0);
      if (lowLimit + written < copyEnd) memory.fill(0, lowLimit + written, copyEnd);
    }
    if (hasBss) {
      const zeroStart = seg.fileSize === 0 ? lowLimit : Math.max(fileEnd, lowLimit);
      const zeroEnd = Math.min(pageUp(seg.vaddr + seg.memSize), highLimit);
      if (zeroEnd > zeroStart) memory.fill(0, zeroStart, zeroEnd);
    }
  }
}
