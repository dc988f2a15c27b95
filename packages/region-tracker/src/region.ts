/** One virtual memory area. Stored regions are immutable values: every change makes a new object. */
export interface RegionFlags {
  /** MAP_SHARED (the `s` of /proc/self/maps), else private. */
  readonly shared: boolean;
  /** No file behind it (private or shared anonymous memory). */
  readonly anonymous: boolean;
  /** Materialised lazily on first touch (MAP_NORESERVE-like internal state). */
  readonly noreserve: boolean;
  /** MAP_GROWSDOWN (the main stack). */
  readonly growsDown: boolean;
  /** mlock'ed. */
  readonly locked: boolean;
  /** MADV_DONTFORK (VM_DONTCOPY): a forked child does not get this range. */
  readonly dontFork?: boolean;
  /** MADV_WIPEONFORK (VM_WIPEONFORK): a forked child gets it zero-filled. */
  readonly wipeOnFork?: boolean;
  /** MADV_DONTDUMP (VM_DONTDUMP): left out of core dumps. */
  readonly dontDump?: boolean;
  /** MADV_RANDOM / MADV_SEQUENTIAL (VM_RAND_READ / VM_SEQ_READ); MADV_NORMAL clears both. */
  readonly randomRead?: boolean;
  readonly sequentialRead?: boolean;
}

export interface FileIdentity {
  /** st_dev as stat(2) reports it (glibc/Linux userspace dev_t encoding). */
  readonly dev: number;
  readonly inode: number;
  readonly path: string;
  /** File offset of the region's first byte. */
  readonly offset: number;
}

export interface Region {
  /** Half-open [start, end), page aligned. */
  readonly start: number;
  readonly end: number;
  /** PROT_* bits. */
  readonly prot: number;
  readonly flags: RegionFlags;
  readonly file?: FileIdentity;
  /** "[heap]", "[stack]", "[vdso]", or a path; shown in /proc/self/maps (falls back to file.path). */
  readonly name?: string;
  /** The mmap call this region came from (see canMerge for when it keeps neighbours apart). */
  readonly mappingId: number;
  /** Sticky: MADV_GUARD_INSTALL was used somewhere in it (fork copies its entries). */
  readonly mayHoldGuards: boolean;
}

export function sameFlags(a: RegionFlags, b: RegionFlags): boolean {
  return (
    a === b ||
    (a.shared === b.shared &&
      a.anonymous === b.anonymous &&
      a.noreserve === b.noreserve &&
      a.growsDown === b.growsDown &&
      a.locked === b.locked &&
      (a.dontFork ?? false) === (b.dontFork ?? false) &&
      (a.wipeOnFork ?? false) === (b.wipeOnFork ?? false) &&
      (a.dontDump ?? false) === (b.dontDump ?? false) &&
      (a.randomRead ?? false) === (b.randomRead ?? false) &&
      (a.sequentialRead ?? false) === (b.sequentialRead ?? false))
  );
}

/**
 * Whether `a` and `b` (a directly left of b) form one region. Rules (Linux 6.18 vma_merge):
 * - prot, flags and name equal; both without a file, or the same file (dev, inode, path) with b's
 *   offset continuing a's;
 * - mayHoldGuards is ignored (a sticky flag: the merged region has it if either had it);
 * - mappingId: pieces of the same mmap always re-merge. Separate mmaps merge too (Linux merges
 *   adjacent private anonymous areas and contiguous mappings of one file), EXCEPT shared anonymous
 *   mappings: each MAP_SHARED|MAP_ANONYMOUS mmap is its own shmem object in Linux, so its mappingId
 *   acts as the file identity.
 * Not modelled: Linux refuses to merge two private areas that were both faulted in with distinct
 * anon_vmas before becoming adjacent; we merge them (only /proc/self/maps line counts can differ).
 */
export function canMerge(a: Region, b: Region): boolean {
  if (a.end !== b.start || a.prot !== b.prot || a.name !== b.name || !sameFlags(a.flags, b.flags)) {
    return false;
  }
  if (a.mappingId !== b.mappingId && a.flags.shared && a.flags.anonymous) return false;
  const fa = a.file;
  const fb = b.file;
  if (fa === undefined || fb === undefined) return fa === fb;
  return (
    fa.dev === fb.dev &&
    fa.inode === fb.inode &&
    fa.path === fb.path &&
    fb.offset === fa.offset + (a.end - a.start)
  );
}

/** a followed by b as one region (assumes canMerge(a, b)). */
export function mergeRegions(a: Region, b: Region): Region {
  return makeRegion(a, a.start, b.end, a.prot, a.flags, a.file, a.name, a.mayHoldGuards || b.mayHoldGuards);
}

/** The part [start, end) of r (within r), file offset adjusted. */
export function sliceRegion(r: Region, start: number, end: number): Region {
  if (start === r.start && end === r.end) return r;
  const f = r.file;
  const file =
    f && start !== r.start
      ? { dev: f.dev, inode: f.inode, path: f.path, offset: f.offset + (start - r.start) }
      : f;
  return makeRegion(r, start, end, r.prot, r.flags, file, r.name, r.mayHoldGuards);
}

/** A change `update()` applies to every region (piece) in its range. */
export interface RegionChange {
  prot?: number;
  flags?: Partial<RegionFlags>;
  mayHoldGuards?: boolean;
  name?: string;
}

export function applyChange(r: Region, change: RegionChange): Region {
  let flags = r.flags;
  if (change.flags) {
    const f = change.flags;
    const next: RegionFlags = {
      shared: f.shared ?? flags.shared,
      anonymous: f.anonymous ?? flags.anonymous,
      noreserve: f.noreserve ?? flags.noreserve,
      growsDown: f.growsDown ?? flags.growsDown,
      locked: f.locked ?? flags.locked,
      dontFork: f.dontFork ?? flags.dontFork ?? false,
      wipeOnFork: f.wipeOnFork ?? flags.wipeOnFork ?? false,
      dontDump: f.dontDump ?? flags.dontDump ?? false,
      randomRead: f.randomRead ?? flags.randomRead ?? false,
      sequentialRead: f.sequentialRead ?? flags.sequentialRead ?? false,
    };
    if (!sameFlags(next, flags)) flags = next;
  }
  const prot = change.prot ?? r.prot;
  const mayHoldGuards = change.mayHoldGuards ?? r.mayHoldGuards;
  const name = "name" in change ? change.name : r.name;
  if (flags === r.flags && prot === r.prot && mayHoldGuards === r.mayHoldGuards && name === r.name) return r;
  return makeRegion(r, r.start, r.end, prot, flags, r.file, name, mayHoldGuards);
}

/**
 * A derived region: every Region field written out (object spread costs several times more, and
 * the tracker derives a few regions per mutation). Keeps `r`'s mappingId.
 */
function makeRegion(
  r: Region,
  start: number,
  end: number,
  prot: number,
  flags: RegionFlags,
  file: FileIdentity | undefined,
  name: string | undefined,
  mayHoldGuards: boolean,
): Region {
  return { start, end, prot, flags, file, name, mappingId: r.mappingId, mayHoldGuards };
}
