/**
 * The guest's address space: region tracker + page tables + guest physical memory, moved together by the
 * memory syscalls (memory-semantics.md). Identity model: guest virtual == guest physical == slab offset.
 *
 * Invariants:
 * - Every page of the slab outside a mapping reads as zero (munmap, brk shrink and MADV_DONTNEED discard the
 *   host pages), so a new anonymous mapping needs no zeroing and costs nothing until touched.
 * - The page tables change first and the tracker second (an ENOMEM from the table allocator leaves the
 *   tracker on the old state, so a retry really retries).
 * - TLB invalidations are batched: one backend request per syscall, sent by `commit()`.
 */
import type { GuestPhysicalMemory, TlbInvalidation } from "@guest/hvf-bindings";
import { PageTable } from "@guest/pagetable";
import { type Region, type RegionFlags, RegionTracker } from "@guest/region-tracker";
import { sharedHost } from "../host/host.ts";
import {
  EACCES,
  EBADF,
  EBUSY,
  EEXIST,
  EFAULT,
  EINVAL,
  ENODEV,
  ENOMEM,
  EOPNOTSUPP,
  EPERM,
  MADV,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MAP_GROWSDOWN,
  MAP_LOCKED,
  MAP_NORESERVE,
  MAP_PRIVATE,
  MAP_SHARED,
  MAP_SHARED_VALIDATE,
  MAP_TYPE,
  MAP_VALIDATE_KNOWN,
  MAX_MAP_COUNT,
  MCL_CURRENT,
  MCL_FUTURE,
  MCL_ONFAULT,
  MREMAP_DONTUNMAP,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  MS_ASYNC,
  MS_INVALIDATE,
  MS_SYNC,
  PAGE_SIZE,
  PROT_ACCESS,
  PROT_EXEC,
  PROT_GROWSDOWN,
  PROT_GROWSUP,
  PROT_KNOWN,
  PROT_READ,
  PROT_WRITE,
} from "./abi.ts";

/** What the address space needs from the backend. */
export interface AddressSpaceBackend {
  readonly memory: Pick<
    GuestPhysicalMemory,
    | "size"
    | "bytes"
    | "discard"
    | "mapSharedFile"
    | "mapPrivateFile"
    | "unmapSharedFile"
    | "moveSharedMapping"
  >;
  setTranslationRoot(rootAddress: number): void;
  invalidateTlb(requests: readonly TlbInvalidation[]): void;
  invalidateCode(address: number, length: number): void;
}

/** A file a guest asks to mmap, as the fd table resolves it. */
export interface MappableFile {
  readable: boolean;
  writable: boolean;
  /** false for pipes, sockets, directories…: mmap says ENODEV. */
  mappable: boolean;
  dev: number;
  inode: number;
  path: string;
  /** Host fd of the open file (for shared mappings backed by the host's page cache). */
  hostFd: number;
  /** File size in bytes (a shared mapping is backed by the file only up to its end). */
  size: number;
  /** Copy file bytes [offset, offset+length) to guest memory at `address`; returns bytes copied or -errno. */
  readInto(address: number, length: number, offset: number): number;
  /**
   * A reference to the open file that outlives the guest's fd (a mapping keeps its file, as a VMA does), or
   * -errno. Private file mappings keep one to re-read pages (MADV_DONTNEED, guard removal, mremap growth).
   */
  retain(): FileReference | number;
}

export interface FileReference {
  readInto(address: number, length: number, offset: number): number;
  /** The file's current size, or -errno. */
  size(): number;
  /** The reference's own host fd (shared mappings re-overlay pages that become valid). */
  readonly hostFd: number;
  release(): void;
}

export interface AddressSpaceLayout {
  /** Lowest address mmap may place a mapping at without a hint (Linux: mmap_min_addr, 64 KiB). */
  mmapMin: number;
  /** Top of the top-down mmap area (below the stack and its growth room). */
  mmapBase: number;
  /** Runtime-private window [reservedStart, memory.size): page-table pool etc. Never a guest region. */
  reservedStart: number;
}

export interface MapRequest {
  start: number;
  length: number;
  prot: number;
  shared?: boolean;
  file?: { dev: number; inode: number; path: string; offset: number };
  name?: string;
  growsDown?: boolean;
  noreserve?: boolean;
  locked?: boolean;
}

/** Not built yet, and said so (-ENOSYS shows under --trace): duplicating a shared mapping (old_size 0). */
/**
 * madvise advice that only sets or clears VMA flags: no effect on what the guest sees, but they keep areas
 * apart in /proc/self/maps as on Linux (VM_DONTCOPY, VM_DONTDUMP, VM_RAND_READ / VM_SEQ_READ).
 */
const VMA_FLAG_ADVICE = new Map<number, Partial<RegionFlags>>([
  [MADV.DONTFORK, { dontFork: true }],
  [MADV.DOFORK, { dontFork: false }],
  [MADV.DONTDUMP, { dontDump: true }],
  [MADV.DODUMP, { dontDump: false }],
  [MADV.NORMAL, { randomRead: false, sequentialRead: false }],
  [MADV.RANDOM, { randomRead: true, sequentialRead: false }],
  [MADV.SEQUENTIAL, { randomRead: false, sequentialRead: true }],
]);

const ENOSYS_MREMAP_DUP = 38;
/** Not built yet: moving a shared file mapping (its host overlay would have to move with it). */
const ENOSYS_MREMAP_SHARED_FILE = 38;

const KNOWN_ADVICE = new Set<number>(Object.values(MADV));

const pageUp = (n: number): number => Math.ceil(n / PAGE_SIZE) * PAGE_SIZE;
const isAligned = (n: number): boolean => n % PAGE_SIZE === 0;

/** What a forked child takes out of its copy of the address space (start, end pairs). */
export interface ForkChildChanges {
  /** MADV_DONTFORK ranges: not in the child. */
  dropped: Array<[number, number]>;
  /** MADV_WIPEONFORK ranges: zero-filled in the child. */
  wiped: Array<[number, number]>;
}

export class AddressSpace {
  readonly tables: PageTable;
  readonly regions: RegionTracker;
  /** brk bounds: [brkStart, brkEnd) is the heap's current extent (brkEnd unaligned as the guest set it). */
  brkStart = 0;
  brkEnd = 0;
  /** RLIMIT_DATA-style cap on the heap, in bytes. */
  brkLimit = Number.POSITIVE_INFINITY;
  private nextMappingId = 1;
  private readonly pendingCode: Array<[number, number]> = [];
  /** Files mapped MAP_SHARED through a writable fd, by "dev:inode" (mprotect may then grant PROT_WRITE). */
  private readonly writableSharedFiles = new Set<string>();
  /** Private file mappings keep a way to read their file (mremap growth reads the next bytes). */
  private readonly fileReaders = new Map<number, FileReference>();
  /**
   * Pages of file mappings that lie past the end of their file: guard-marked, so an access faults, and
   * resolved by resolveBusFault() (SIGBUS, or the page became part of the file and is filled in).
   */
  private busPages: Array<{ start: number; end: number }> = [];
  /** Bytes of guest memory still mapped through each file reference: released when it reaches zero. */
  private readonly fileReferenceBytes = new Map<FileReference, number>();

  constructor(
    private readonly backend: AddressSpaceBackend,
    readonly layout: AddressSpaceLayout,
  ) {
    const poolSize = backend.memory.size - layout.reservedStart;
    this.tables = new PageTable({ memory: backend.memory.bytes, poolBase: layout.reservedStart, poolSize });
    // Splits stop at vm.max_map_count; mmap may add one more (see mapFixed).
    this.regions = new RegionTracker({ maxCount: MAX_MAP_COUNT });
    backend.setTranslationRoot(this.tables.rootAddress);
  }

  get size(): number {
    return this.layout.reservedStart;
  }

  /** Send the batched TLB / code-cache invalidations of the syscall that just ran. */
  commit(): void {
    // Called after every syscall: the common case (nothing changed) must cost two checks, no allocation.
    if (this.tables.hasPendingInvalidations) this.backend.invalidateTlb(this.tables.takeInvalidations());
    if (this.pendingCode.length === 0) return;
    for (const [address, length] of this.pendingCode) this.backend.invalidateCode(address, length);
    this.pendingCode.length = 0;
  }

  /**
   * Give back the memory of [start, end) on its way out of the address space: shared file mappings get private
   * zero-filled memory put back over the host file mapping, everything else is discarded (reads as zero).
   */
  private release(start: number, end: number): void {
    this.releaseRegions([...this.regions.overlapping(start, end)], start, end);
  }

  /** release() for regions already removed from the tracker. */
  private releaseRegions(regions: readonly Region[], start: number, end: number): void {
    if (this.busPages.length > 0) {
      const kept: Array<{ start: number; end: number }> = [];
      for (const range of this.busPages) {
        if (range.end <= start || range.start >= end) kept.push(range);
        else {
          if (range.start < start) kept.push({ start: range.start, end: start });
          if (range.end > end) kept.push({ start: end, end: range.end });
        }
      }
      this.busPages = kept;
    }
    const memory = this.backend.memory;
    let cursor = start;
    for (const region of regions) {
      if (region.file && !region.flags.shared) {
        this.detachFileBytes(region, Math.max(region.start, start), Math.min(region.end, end));
      }
      // Shared memory (a host file, or the shmem object of MAP_SHARED|MAP_ANONYMOUS) and private file mappings
      // may be overlaid on the slab: private zero-filled memory goes back over them.
      if (!(region.flags.shared || region.file) || !memory.unmapSharedFile) continue;
      const from = Math.max(region.start, start);
      const to = Math.min(region.end, end);
      if (from > cursor) memory.discard(cursor, from - cursor);
      memory.unmapSharedFile(from, to - from);
      cursor = to;
    }
    if (cursor < end) memory.discard(cursor, end - cursor);
  }

  /** True when [start, start+length) is inside the guest's usable address range. */
  private inRange(start: number, length: number): boolean {
    return start >= 0 && length >= 0 && start + length <= this.layout.reservedStart;
  }

  private newRegion(request: MapRequest): Region {
    return {
      start: request.start,
      end: request.start + request.length,
      prot: request.prot & PROT_ACCESS,
      flags: {
        shared: request.shared ?? false,
        anonymous: request.file === undefined,
        noreserve: request.noreserve ?? false,
        growsDown: request.growsDown ?? false,
        locked: request.locked ?? false,
      },
      file: request.file,
      name: request.name,
      mappingId: this.nextMappingId++,
      mayHoldGuards: false,
    };
  }

  /**
   * Map [start, start+length) (page aligned), replacing whatever was there (MAP_FIXED semantics).
   * Used by the loader for segments and the stack, and by mmap. Contents: zero (old pages discarded).
   */
  mapFixed(request: MapRequest): number {
    const { start, length } = request;
    if (!isAligned(start) || !isAligned(length) || length === 0 || !this.inRange(start, length))
      return -EINVAL;
    // do_mmap refuses only once the count is already past the limit (so one mmap may reach limit + 1).
    if (this.regions.count > MAX_MAP_COUNT) return -ENOMEM;
    const replacing = this.regions.overlapping(start, start + length).next().done === false;
    const tableResult = this.tables.map(start, length, request.prot & PROT_ACCESS);
    if (tableResult < 0) return tableResult;
    if (replacing) {
      this.release(start, start + length);
      const removed = this.regions.remove(start, start + length);
      if (removed < 0) {
        this.tables.unmap(start, length);
        return removed;
      }
    }
    const inserted = this.regions.insert(this.newRegion(request), MAX_MAP_COUNT + 1);
    if (inserted < 0) {
      this.tables.unmap(start, length);
      return inserted;
    }
    if (request.prot & PROT_EXEC) this.pendingCode.push([start, length]);
    return 0;
  }

  /** A free range of `length` bytes: the hint if it is free, otherwise top-down below mmapBase. */
  private findFree(length: number, hint: number): number {
    if (hint !== 0) {
      const start = Math.floor(hint / PAGE_SIZE) * PAGE_SIZE;
      if (
        start >= this.layout.mmapMin &&
        this.inRange(start, length) &&
        this.regions.overlapping(start, start + length).next().done
      ) {
        return start;
      }
    }
    const gap = this.regions.findFreeGap({
      length,
      topDown: true,
      low: this.layout.mmapMin,
      high: this.layout.mmapBase,
      alignment: PAGE_SIZE,
    });
    return gap ?? -ENOMEM;
  }

  /** mmap(2). `resolveFile` maps a guest fd to a file (or -EBADF); offset is in bytes. */
  mmap(
    address: number,
    length: number,
    prot: number,
    flags: number,
    fd: number,
    offset: number,
    resolveFile: (fd: number) => MappableFile | number,
  ): number {
    if (offset % PAGE_SIZE !== 0 || offset < 0) return -EINVAL;
    if (length === 0) return -EINVAL;
    const type = flags & MAP_TYPE;
    if (type === MAP_SHARED_VALIDATE) {
      if (flags & ~MAP_VALIDATE_KNOWN) return -EOPNOTSUPP;
    } else if (type !== MAP_SHARED && type !== MAP_PRIVATE) {
      return -EINVAL;
    }
    // do_mmap never validates prot (only mprotect does): bits it does not know are dropped.
    prot &= PROT_KNOWN;
    const size = pageUp(length);
    if (!Number.isFinite(size) || size > this.layout.reservedStart) return -ENOMEM;
    const shared = type !== MAP_PRIVATE;
    const anonymous = (flags & MAP_ANONYMOUS) !== 0;
    let file: MappableFile | undefined;
    if (!anonymous) {
      const resolved = resolveFile(fd);
      if (typeof resolved === "number") return resolved < 0 ? resolved : -EBADF;
      if (!resolved.mappable) return -ENODEV;
      if (!resolved.readable) return -EACCES;
      if (shared && prot & PROT_WRITE && !resolved.writable) return -EACCES;
      file = resolved;
    }
    const overlay = shared && !anonymous && this.backend.memory.mapSharedFile !== undefined;
    if (shared && !anonymous && !overlay && prot & PROT_WRITE) {
      // Without a host overlay stores could not reach the file: refuse rather than silently drop them.
      return -ENODEV;
    }
    if (this.regions.count > MAX_MAP_COUNT) return -ENOMEM;
    let start: number;
    if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
      if (address % PAGE_SIZE !== 0) return -EINVAL;
      if (address < this.layout.mmapMin) return -EPERM; // below vm.mmap_min_addr
      if (!this.inRange(address, size)) return -ENOMEM;
      if (
        flags & MAP_FIXED_NOREPLACE &&
        !(flags & MAP_FIXED) &&
        !this.regions.overlapping(address, address + size).next().done
      ) {
        return -EEXIST;
      }
      start = address;
    } else {
      start = this.findFree(size, address);
      if (start < 0) return start;
    }
    const result = this.mapFixed({
      start,
      length: size,
      prot,
      shared,
      file: file ? { dev: file.dev, inode: file.inode, path: file.path, offset } : undefined,
      name: file?.path,
      growsDown: (flags & MAP_GROWSDOWN) !== 0,
      noreserve: (flags & MAP_NORESERVE) !== 0,
      locked: (flags & MAP_LOCKED) !== 0 || this.lockFuture,
    });
    if (result < 0) return result;
    if (file) {
      const region = this.regions.find(start);
      const reference = file.retain();
      if (region && typeof reference !== "number")
        this.attachFileReference(region.mappingId, reference, size);
      // Pages wholly past the end of the file raise SIGBUS (as on Linux), until the file grows.
      const backedEnd = start + Math.min(size, Math.max(0, pageUp(file.size - offset)));
      if (backedEnd < start + size) this.markPastEnd(backedEnd, start + size);
    }
    if (file && overlay) {
      // Backed by the host file up to its last page; pages past the end stay zero-filled memory.
      const backed = Math.min(size, Math.max(0, pageUp(file.size - offset)));
      if (backed > 0) {
        const mapped = this.backend.memory.mapSharedFile!(start, backed, file.hostFd, offset, file.writable);
        if (mapped < 0) {
          this.munmap(start, size);
          return mapped;
        }
      }
      if (file.writable) this.writableSharedFiles.add(`${file.dev}:${file.inode}`);
    } else if (shared && anonymous && this.backend.memory.mapSharedFile) {
      // A shmem object of its own, as in Linux: the memory then stays shared with children after fork.
      const host = sharedHost().sym;
      const memfd = host.host_memfd(size);
      if (memfd < 0) {
        this.munmap(start, size);
        return memfd;
      }
      const mapped = this.backend.memory.mapSharedFile(start, size, memfd, 0, true);
      host.host_close(memfd); // the host mapping keeps the object alive
      if (mapped < 0) {
        this.munmap(start, size);
        return mapped;
      }
    } else if (file) {
      // A private file mapping follows the file until written (the host's MAP_PRIVATE), where the backend can;
      // otherwise it is a copy taken now.
      const backed = Math.min(size, Math.max(0, pageUp(file.size - offset)));
      const mapped =
        backed > 0 && this.backend.memory.mapPrivateFile
          ? this.backend.memory.mapPrivateFile(start, backed, file.hostFd, offset)
          : -1;
      if (mapped < 0) {
        const copied = file.readInto(start, size, offset);
        if (copied < 0) {
          this.munmap(start, size);
          return copied;
        }
      }
    }
    return start;
  }

  /** munmap(2). */
  munmap(address: number, length: number): number {
    if (address % PAGE_SIZE !== 0 || length === 0) return -EINVAL;
    const size = pageUp(length);
    if (!this.inRange(address, size)) return -EINVAL;
    if (this.regions.overlapping(address, address + size).next().done) return 0;
    // Splitting a region can exceed the region limit: check (via remove) before giving any memory back.
    const overlays = [...this.regions.overlapping(address, address + size)];
    const removed = this.regions.remove(address, address + size);
    if (removed < 0) return removed;
    this.tables.unmap(address, size);
    this.releaseRegions(overlays, address, address + size);
    return 0;
  }

  /**
   * mprotect(2) with the same-prot fast path (memory-semantics.md §2). As Linux: an unmapped first page is
   * ENOMEM with nothing changed; otherwise the mapped run from `address` up to the first hole is changed and
   * the hole then reports ENOMEM.
   */
  mprotect(address: number, length: number, prot: number): number {
    // In do_mprotect_pkey's order: a length of 0 succeeds before the prot bits are validated.
    if (prot & PROT_GROWSDOWN && prot & PROT_GROWSUP) return -EINVAL;
    if (address % PAGE_SIZE !== 0) return -EINVAL;
    if (length === 0) return 0;
    if (prot & ~PROT_KNOWN) return -EINVAL;
    if (prot & PROT_GROWSUP) return -EINVAL; // arm64 has no upward-growing mappings
    const size = pageUp(length);
    if (!this.inRange(address, size)) return -ENOMEM;
    let start = address;
    const end = address + size;
    const access = prot & PROT_ACCESS;
    // Fast path first, before any mutation: the whole range is mapped, every region already has exactly
    // this prot, and none is lazy.
    if (
      !(prot & PROT_GROWSDOWN) &&
      this.regions.everyHasProt(start, end, access) &&
      this.regions.isFullyMapped(start, end) &&
      !this.regions.anyLazy(start, end)
    ) {
      return 0;
    }
    const first = this.regions.find(start);
    if (!first || first.start > start) return -ENOMEM;
    if (prot & PROT_GROWSDOWN) {
      if (!first.flags.growsDown) return -EINVAL;
      start = first.start; // the change extends down to the start of the grows-down mapping
    }
    // The mapped run from `start` up to the first hole (or `end`), checking shared-file write permission.
    let covered = start;
    for (const region of this.regions.overlapping(start, end)) {
      if (region.start > covered) break;
      const file = region.file;
      if (
        region.flags.shared &&
        file &&
        access & PROT_WRITE &&
        !this.writableSharedFiles.has(`${file.dev}:${file.inode}`)
      ) {
        if (covered === start) return -EACCES;
        break;
      }
      covered = Math.min(region.end, end);
    }
    const tableResult = this.tables.protect(start, covered - start, access);
    if (tableResult < 0) return tableResult;
    const updated = this.regions.update(start, covered, { prot: access });
    if (updated < 0) {
      // Put the tables back in line with the (unchanged) tracker.
      for (const region of this.regions.overlapping(start, covered)) {
        const from = Math.max(region.start, start);
        const to = Math.min(region.end, covered);
        this.tables.protect(from, to - from, region.prot);
      }
      return updated;
    }
    if (access & PROT_EXEC) this.pendingCode.push([start, covered - start]);
    return covered < end ? -ENOMEM : 0;
  }

  /**
   * mremap(2): shrink in place, grow in place when the pages above are free, otherwise move (MREMAP_MAYMOVE)
   * — contents move with the pages; MREMAP_FIXED puts the result at `newAddress`; MREMAP_DONTUNMAP leaves the
   * old range mapped (private anonymous only) and zero-filled.
   */
  mremap(
    oldAddress: number,
    oldLength: number,
    newLength: number,
    flags: number,
    newAddress: number,
  ): number {
    if (oldAddress % PAGE_SIZE !== 0) return -EINVAL;
    if (flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP)) return -EINVAL;
    if (flags & (MREMAP_FIXED | MREMAP_DONTUNMAP) && !(flags & MREMAP_MAYMOVE)) return -EINVAL;
    const oldSize = pageUp(oldLength);
    const newSize = pageUp(newLength);
    if (newSize === 0) return -EINVAL;
    if (flags & MREMAP_DONTUNMAP && oldSize !== newSize) return -EINVAL;
    // The new address is looked at whenever the call implies one (FIXED or DONTUNMAP): aligned, or EINVAL.
    if (flags & (MREMAP_FIXED | MREMAP_DONTUNMAP) && newAddress % PAGE_SIZE !== 0) return -EINVAL;
    if (flags & MREMAP_FIXED) {
      if (!this.inRange(newAddress, newSize) || newAddress < this.layout.mmapMin) return -EINVAL;
      if (newAddress < oldAddress + oldSize && oldAddress < newAddress + newSize) return -EINVAL;
    }
    const region = this.regions.find(oldAddress);
    if (!region || region.start > oldAddress) return -EFAULT;
    // oldLength 0 duplicates a shared mapping in Linux; for private mappings it is EINVAL.
    if (oldSize === 0) return region.flags.shared ? -ENOSYS_MREMAP_DUP : -EINVAL;
    const movesTo = flags & (MREMAP_FIXED | MREMAP_DONTUNMAP);
    // Shrinking, or the same size, in place: the tail goes, whatever areas it spans (Linux 6.18 checks only that
    // an area starts at oldAddress).
    if (!movesTo && newSize <= oldSize) {
      if (newSize < oldSize) {
        const result = this.munmap(oldAddress + newSize, oldSize - newSize);
        if (result < 0) return result;
      }
      return oldAddress;
    }
    // A pure move to a given address (same size, MREMAP_FIXED) takes every area in the range along (Linux 6.17+
    // remap_move), each to the same offset at the destination; holes stay holes. Without FIXED: EFAULT below.
    if (flags & MREMAP_FIXED && newSize === oldSize && oldAddress + oldSize > region.end) {
      // Only the destination pieces that receive an area are cleared (each move below clears its own).
      const pieces = [...this.regions.overlapping(oldAddress, oldAddress + oldSize)].map((piece) => [
        Math.max(piece.start, oldAddress),
        Math.min(piece.end, oldAddress + oldSize),
      ]);
      for (const [from, to] of pieces) {
        const moved = this.mremap(from!, to! - from!, to! - from!, flags, newAddress + (from! - oldAddress));
        if (moved < 0) return moved;
      }
      return newAddress;
    }
    // A move that shrinks: the part kept must lie in the first area; the rest goes first.
    if (movesTo && newSize < oldSize) {
      if (oldAddress + newSize > region.end) return -EFAULT;
      const cleared = this.munmap(oldAddress + newSize, oldSize - newSize);
      if (cleared < 0) return cleared;
      return this.mremap(oldAddress, newSize, newSize, flags, newAddress);
    }
    if (oldAddress + oldSize > region.end) return -EFAULT;
    // Growing a shared area maps more of its object (up to and past its end, SIGBUS there): not modelled, so
    // said plainly rather than answered with memory that is no longer shared.
    if (region.flags.shared && newSize > oldSize) return -ENOSYS_MREMAP_SHARED_FILE;
    // Shared areas move by moving the host mapping of their object (same size only, where the backend can).
    const sharedMove =
      region.flags.shared && this.backend.memory.moveSharedMapping !== undefined && newSize === oldSize;
    if (flags & MREMAP_DONTUNMAP && region.flags.shared && !sharedMove) return -ENOSYS_MREMAP_SHARED_FILE;
    const attributes = (start: number, length: number, fileOffset: number): MapRequest => ({
      start,
      length,
      prot: region.prot,
      shared: region.flags.shared,
      file: region.file ? { ...region.file, offset: fileOffset } : undefined,
      name: region.name,
      growsDown: region.flags.growsDown,
      noreserve: region.flags.noreserve,
      locked: region.flags.locked,
    });
    const fileOffsetAt = (address: number): number =>
      region.file ? region.file.offset + (address - region.start) : 0;

    if (!movesTo) {
      const tail = oldAddress + oldSize;
      const growth = newSize - oldSize;
      if (
        tail === region.end &&
        this.inRange(tail, growth) &&
        this.regions.overlapping(tail, tail + growth).next().done
      ) {
        const result = this.mapFixed(attributes(tail, growth, fileOffsetAt(tail)));
        if (result < 0) return result;
        if (region.file && !region.flags.shared) {
          this.shareFileReference(region, tail, growth);
          this.fillFromFile(region, tail, growth);
        }
        return oldAddress;
      }
      if (!(flags & MREMAP_MAYMOVE)) return -ENOMEM;
    }
    if (region.flags.shared && region.file && !sharedMove) return -ENOSYS_MREMAP_SHARED_FILE;
    let destination: number;
    if (flags & MREMAP_FIXED) {
      destination = newAddress;
    } else {
      // DONTUNMAP without FIXED takes the new address as a hint, as mmap does (checked natively).
      destination = this.findFree(newSize, flags & MREMAP_DONTUNMAP ? newAddress : 0);
      if (destination < 0) return destination;
    }
    const result = this.mapFixed(attributes(destination, newSize, fileOffsetAt(oldAddress)));
    if (result < 0) return result;
    if (region.file) this.shareFileReference(region, destination, newSize);
    if (sharedMove) {
      const keepSource = (flags & MREMAP_DONTUNMAP) !== 0;
      const moved = this.backend.memory.moveSharedMapping!(oldAddress, destination, newSize, keepSource);
      if (moved < 0) {
        this.munmap(destination, newSize);
        return moved;
      }
    } else {
      const bytes = this.backend.memory.bytes;
      bytes.copyWithin(destination, oldAddress, oldAddress + Math.min(oldSize, newSize));
    }
    if (region.mayHoldGuards) {
      // Guard markers move with their pages.
      for (let offset = 0; offset < Math.min(oldSize, newSize); offset += PAGE_SIZE) {
        if (!this.tables.isGuard(oldAddress + offset)) continue;
        this.regions.update(destination, destination + newSize, { mayHoldGuards: true });
        this.tables.installGuard(destination + offset, PAGE_SIZE);
      }
    }
    if (newSize > oldSize && region.file && !region.flags.shared) {
      this.fillFromFile(region, destination + oldSize, newSize - oldSize, fileOffsetAt(oldAddress) + oldSize);
    }
    if (flags & MREMAP_DONTUNMAP) {
      // The source stays mapped without its pages: private anonymous memory reads zeroes, a private file
      // mapping the file again, a shared area its object (the host mapping stayed).
      if (!region.flags.shared) {
        this.backend.memory.discard(oldAddress, oldSize);
        if (region.file) this.fillFromFile(region, oldAddress, oldSize);
      }
      // move_vma clears VM_LOCKED on the old area, all of it, not only the part that moved (checked natively on
      // Linux 6.18: the rest of a locked area is unlocked too).
      if (region.flags.locked) this.regions.update(region.start, region.end, { flags: { locked: false } });
      // Guard markers moved with the page tables: the old range keeps none.
      if (region.mayHoldGuards) this.tables.removeGuard(oldAddress, oldSize);
    } else {
      const unmapped = this.munmap(oldAddress, oldSize);
      if (unmapped < 0) {
        this.munmap(destination, newSize);
        return unmapped;
      }
    }
    return destination;
  }

  /** Private file mappings that grow read the file's next bytes (the fresh pages start zero-filled). */
  private fillFromFile(region: Region, address: number, length: number, offset?: number): void {
    const reader = region.file ? this.fileReaders.get(region.mappingId) : undefined;
    if (!reader || !region.file) return;
    reader.readInto(address, length, offset ?? region.file.offset + (address - region.start));
  }

  private markPastEnd(start: number, end: number): void {
    this.regions.update(start, end, { mayHoldGuards: true });
    this.tables.installGuard(start, end - start);
    this.busPages.push({ start, end });
  }

  private busRangeIndex(address: number): number {
    return this.busPages.findIndex((range) => address >= range.start && address < range.end);
  }

  /**
   * A fault at `address`: null when it is not a page past the end of a mapped file; "sigbus" when it still is;
   * "retry" when the file has grown to cover it (the page now shows the file and the access can be retried).
   */
  resolveBusFault(address: number): "sigbus" | "retry" | null {
    const index = this.busRangeIndex(address);
    if (index < 0) return null;
    const page = address - (address % PAGE_SIZE);
    const region = this.regions.find(page);
    const reference = region ? this.fileReaders.get(region.mappingId) : undefined;
    if (!region?.file || !reference) return "sigbus";
    const fileOffset = region.file.offset + (page - region.start);
    const size = reference.size();
    if (size < 0 || fileOffset >= size) return "sigbus";
    // The file now covers this page: it leaves the bus range and shows the file.
    const range = this.busPages[index]!;
    this.busPages.splice(index, 1);
    if (range.start < page) this.busPages.push({ start: range.start, end: page });
    if (page + PAGE_SIZE < range.end) this.busPages.push({ start: page + PAGE_SIZE, end: range.end });
    this.tables.removeGuard(page, PAGE_SIZE);
    const memory = this.backend.memory;
    if (region.flags.shared && memory.mapSharedFile) {
      memory.mapSharedFile(
        page,
        PAGE_SIZE,
        reference.hostFd,
        fileOffset,
        this.writableSharedFiles.has(`${region.file.dev}:${region.file.inode}`),
      );
    } else if (
      !memory.mapPrivateFile ||
      memory.mapPrivateFile(page, PAGE_SIZE, reference.hostFd, fileOffset) < 0
    ) {
      reference.readInto(page, PAGE_SIZE, fileOffset);
    }
    this.commit();
    return "retry";
  }

  /**
   * The guest changed a file's size (ftruncate): mappings of it must not keep host file pages past the new end
   * (the host would fault on them); those pages become SIGBUS pages, as they are on Linux (for private
   * mappings too: truncation unmaps even their copied pages).
   */
  fileResized(dev: number, inode: number, size: number): void {
    for (const region of this.regions.toArray()) {
      const file = region.file;
      if (!file || file.dev !== dev || file.inode !== inode) continue;
      const validEnd = region.start + Math.max(0, pageUp(size - file.offset));
      const from = Math.max(region.start, validEnd);
      if (from >= region.end) continue;
      const already = this.busPages.some((range) => range.start <= from && range.end >= region.end);
      if (already) continue;
      this.backend.memory.unmapSharedFile?.(from, region.end - from);
      this.markPastEnd(from, region.end);
    }
    this.commit();
  }

  /** New pages [start, start+length) of the same file mapping as `from` (mremap) share its file reference. */
  private shareFileReference(from: Region, start: number, length: number): void {
    const reference = this.fileReaders.get(from.mappingId);
    const target = this.regions.find(start);
    if (reference && target) this.attachFileReference(target.mappingId, reference, length);
  }

  private attachFileReference(mappingId: number, reference: FileReference, bytes: number): void {
    this.fileReaders.set(mappingId, reference);
    this.fileReferenceBytes.set(reference, (this.fileReferenceBytes.get(reference) ?? 0) + bytes);
  }

  /** [from, to) of a region with a file reference left the address space: drop the reference when unused. */
  private detachFileBytes(region: Region, from: number, to: number): void {
    const reference = this.fileReaders.get(region.mappingId);
    if (!reference) return;
    const left = (this.fileReferenceBytes.get(reference) ?? 0) - (to - from);
    if (left > 0) {
      this.fileReferenceBytes.set(reference, left);
      return;
    }
    this.fileReferenceBytes.delete(reference);
    for (const [id, candidate] of this.fileReaders) if (candidate === reference) this.fileReaders.delete(id);
    reference.release();
  }

  /** Close every file reference (process exit). */
  close(): void {
    for (const reference of this.fileReferenceBytes.keys()) reference.release();
    this.fileReferenceBytes.clear();
    this.fileReaders.clear();
  }

  /**
   * execve: empty the address space (exec_mmap gives the new program a fresh mm). Every mapping is unmapped
   * (shared file overlays undone, file references released, memory discarded) and the tables and the tracker
   * start over. Translated code needs no flush here: a page can only run again once it is mapped executable,
   * and mapFixed/mprotect invalidate it at that moment.
   */
  reset(): void {
    const end = this.layout.reservedStart;
    this.munmap(0, end);
    this.close();
    this.tables.clear();
    this.regions.clear();
    this.busPages = [];
    this.writableSharedFiles.clear();
    this.lockFuture = false;
    this.brkStart = 0;
    this.brkEnd = 0;
    this.pendingCode.length = 0;
  }

  /** Set up the heap right after the loaded image. */
  initBrk(imageEnd: number): void {
    this.brkStart = pageUp(imageEnd);
    this.brkEnd = this.brkStart;
  }

  /** brk(2): returns the new break, or the old one when the request is refused. */
  brk(requested: number): number {
    if (requested < this.brkStart) return this.brkEnd;
    if (requested - this.brkStart > this.brkLimit) return this.brkEnd;
    const oldTop = pageUp(this.brkEnd);
    const newTop = pageUp(requested);
    if (newTop > oldTop) {
      if (!this.inRange(oldTop, newTop - oldTop)) return this.brkEnd;
      // Refuse to grow into another mapping (Linux leaves a guard gap below the next mapping, too).
      if (!this.regions.overlapping(oldTop, newTop + PAGE_SIZE).next().done) return this.brkEnd;
      const result = this.mapFixed({
        start: oldTop,
        length: newTop - oldTop,
        prot: PROT_READ | PROT_WRITE,
        name: "[heap]",
      });
      if (result < 0) return this.brkEnd;
    } else if (newTop < oldTop) {
      const result = this.munmap(newTop, oldTop - newTop);
      if (result < 0) return this.brkEnd;
    }
    this.brkEnd = requested;
    return this.brkEnd;
  }

  /**
   * Throw away the contents of private pages in [from, to): anonymous pages read back as zero, private file
   * pages show the file's bytes again (Linux semantics for MADV_DONTNEED). Shared pages keep their contents.
   */
  private zap(from: number, to: number): void {
    for (const region of this.regions.overlapping(from, to)) {
      if (region.flags.shared) continue;
      const start = Math.max(region.start, from);
      const end = Math.min(region.end, to);
      this.backend.memory.discard(start, end - start);
      if (region.file) this.fillFromFile(region, start, end - start);
    }
  }

  /** Set fork-related flags on every mapped piece of [from, to) (holes are skipped: madvise's ENOMEM is the caller's). */
  private updateMapped(
    from: number,
    to: number,
    flags: Partial<
      Pick<RegionFlags, "dontFork" | "wipeOnFork" | "dontDump" | "randomRead" | "sequentialRead">
    >,
  ): number {
    const pieces = [...this.regions.overlapping(from, to)].map((r) => [
      Math.max(r.start, from),
      Math.min(r.end, to),
    ]);
    for (const [start, end] of pieces) {
      const result = this.regions.update(start!, end!, { flags });
      if (result < 0) return result;
    }
    return 0;
  }

  /**
   * In the parent, just before the host fork: pending changes are committed, and the ranges Linux's dup_mmap
   * leaves out of the child are listed for afterForkInChild. The scan runs here, in the parent, so that a
   * child does not run (and compile anew, at the price of copy-on-write faults) code its parent never ran.
   */
  prepareFork(): ForkChildChanges {
    this.commit();
    const dropped: Array<[number, number]> = [];
    const wiped: Array<[number, number]> = [];
    for (const region of this.regions.overlapping(0, Number.MAX_SAFE_INTEGER)) {
      if (region.flags.dontFork) dropped.push([region.start, region.end]);
      else if (region.flags.wipeOnFork) wiped.push([region.start, region.end]);
    }
    return { dropped, wiped };
  }

  /**
   * In the child of a fork (host side already forked: memory is a copy-on-write copy of the parent's): what
   * Linux's dup_mmap leaves out is taken out — MADV_DONTFORK ranges are not in the child, MADV_WIPEONFORK
   * ranges are zero-filled (`changes`: the parent's prepareFork, else scanned here).
   */
  afterForkInChild(changes: ForkChildChanges = this.prepareFork()): void {
    for (const [start, end] of changes.dropped) this.munmap(start, end - start);
    for (const [start, end] of changes.wiped) this.backend.memory.discard(start, end - start);
    this.commit();
  }

  /** madvise(2), including guard regions (memory-semantics.md §3, §4). */
  madvise(address: number, length: number, advice: number): number {
    if (address % PAGE_SIZE !== 0) return -EINVAL;
    const size = pageUp(length);
    if (!this.inRange(address, size)) return -EINVAL;
    if (!KNOWN_ADVICE.has(advice)) return -EINVAL;
    if (size === 0) return 0;
    const end = address + size;
    const mapped = this.regions.isFullyMapped(address, end);
    switch (advice) {
      case MADV.DONTNEED:
      case MADV.DONTNEED_LOCKED:
      case MADV.FREE: {
        // Area by area, as madvise_walk_vmas: the first area refused stops the walk with EINVAL, the areas
        // before it are zapped already.
        for (const region of [...this.regions.overlapping(address, end)]) {
          if (advice === MADV.FREE && (region.flags.shared || !region.flags.anonymous)) return -EINVAL;
          // can_madv_lru_vma: MADV_DONTNEED and MADV_FREE leave mlock'ed areas alone (DONTNEED_LOCKED does not).
          if (advice !== MADV.DONTNEED_LOCKED && region.flags.locked) return -EINVAL;
          this.zap(Math.max(region.start, address), Math.min(region.end, end));
        }
        break;
      }
      case MADV.GUARD_INSTALL: {
        // Like Linux, walk the range: the mapped parts get guards up to the first area that refuses them
        // (mlock'ed, [vdso]/[vvar]: EINVAL), and a hole reports ENOMEM at the end.
        for (const region of [...this.regions.overlapping(address, end)]) {
          if (region.flags.locked || (region.name?.startsWith("[v") ?? false)) return -EINVAL;
          const from = Math.max(region.start, address);
          const to = Math.min(region.end, end);
          // Mark the region first (the sticky flag never splits: it is ignored when merging).
          const marked = this.regions.update(from, to, { mayHoldGuards: true });
          if (marked < 0) return marked;
          const guarded = this.tables.installGuard(from, to - from);
          if (guarded < 0) return guarded;
          // Populated pages are zapped as by MADV_DONTNEED: their contents are gone.
          this.zap(from, to);
        }
        return mapped ? 0 : -ENOMEM;
      }
      case MADV.GUARD_REMOVE: {
        for (const region of this.regions.overlapping(address, end)) {
          const from = Math.max(region.start, address);
          const to = Math.min(region.end, end);
          const removed = this.tables.removeGuard(from, to - from);
          if (removed < 0) return removed;
        }
        return mapped ? 0 : -ENOMEM;
      }
      case MADV.WIPEONFORK:
      case MADV.KEEPONFORK: {
        // Area by area, as madvise_walk_vmas: WIPEONFORK stops with EINVAL at the first shared or file-backed
        // area (those before it are changed already); KEEPONFORK applies anywhere.
        for (const region of [...this.regions.overlapping(address, end)]) {
          if (advice === MADV.WIPEONFORK && (region.flags.shared || !region.flags.anonymous)) return -EINVAL;
          const from = Math.max(region.start, address);
          const to = Math.min(region.end, end);
          const updated = this.updateMapped(from, to, { wipeOnFork: advice === MADV.WIPEONFORK });
          if (updated < 0) return updated;
        }
        break;
      }
      case MADV.COLD:
      case MADV.PAGEOUT:
        for (const region of this.regions.overlapping(address, end)) {
          if (region.flags.locked) return -EINVAL; // can_madv_lru_vma
        }
        break;
      case MADV.POPULATE_READ:
      case MADV.POPULATE_WRITE:
        return this.populateCheck(address, end, advice === MADV.POPULATE_WRITE);
      default: {
        const change = VMA_FLAG_ADVICE.get(advice);
        if (!change) break; // hints with no observable effect here
        const updated = this.updateMapped(address, end, change);
        if (updated < 0) return updated;
        break;
      }
    }
    return mapped ? 0 : -ENOMEM;
  }

  /**
   * MADV_POPULATE_(READ|WRITE): every page here is resident already, so only the errors of Linux's
   * madvise_populate are left, met in address order: a hole is ENOMEM, an area without the permission
   * (VM_READ / VM_WRITE itself: a PROT_WRITE-only area cannot be populated for reading) EINVAL, a guard page
   * EFAULT (the fault it raises is a SIGSEGV).
   */
  private populateCheck(start: number, end: number, write: boolean): number {
    let cursor = start;
    for (const region of this.regions.overlapping(start, end)) {
      if (region.start > cursor) return -ENOMEM;
      if (!(region.prot & (write ? PROT_WRITE : PROT_READ))) return -EINVAL;
      if (region.mayHoldGuards && this.anyGuard(Math.max(region.start, start), Math.min(region.end, end))) {
        return -EFAULT;
      }
      cursor = region.end;
    }
    return cursor >= end ? 0 : -ENOMEM;
  }

  /** msync(2): validation as Linux; shared file pages already live in the host's page cache. */
  msync(address: number, length: number, flags: number): number {
    if (address % PAGE_SIZE !== 0) return -EINVAL;
    if (flags & ~(MS_ASYNC | MS_INVALIDATE | MS_SYNC)) return -EINVAL;
    if (flags & MS_ASYNC && flags & MS_SYNC) return -EINVAL;
    const size = pageUp(length);
    if (!this.inRange(address, size)) return -ENOMEM;
    if (size === 0) return 0;
    const end = address + size;
    for (const region of this.regions.overlapping(address, end)) {
      if (flags & MS_INVALIDATE && region.flags.locked) return -EBUSY;
    }
    return this.regions.isFullyMapped(address, end) ? 0 : -ENOMEM;
  }

  /**
   * mlock(2)/mlock2/munlock(2): recorded on the regions (guards then refuse them); every page is resident anyway.
   * As Linux's apply_vma_lock_flags: the areas up to the first hole change, and the hole is ENOMEM. mlock then
   * populates (`populate`, not for MLOCK_ONFAULT): that fails on a PROT_NONE area or a guard page, and mlock
   * says ENOMEM, with the lock already applied.
   */
  setLocked(address: number, length: number, locked: boolean, populate = locked): number {
    const start = address - (address % PAGE_SIZE);
    const end = start + pageUp(length + (address - start));
    if (!this.inRange(start, end - start)) return -ENOMEM;
    if (end === start) return 0;
    let cursor = start;
    for (const region of [...this.regions.overlapping(start, end)]) {
      if (region.start > cursor) return -ENOMEM;
      const to = Math.min(region.end, end);
      const result = this.regions.update(cursor, to, { flags: { locked } });
      if (result < 0) return result;
      cursor = to;
    }
    if (cursor < end) return -ENOMEM;
    if (!populate) return 0;
    for (const region of this.regions.overlapping(start, end)) {
      if (!(region.prot & PROT_ACCESS)) return -ENOMEM;
      if (region.mayHoldGuards && this.anyGuard(Math.max(region.start, start), Math.min(region.end, end))) {
        return -ENOMEM;
      }
    }
    return 0;
  }

  /** Locks new mappings too once mlockall(MCL_FUTURE) was called. */
  lockFuture = false;

  mlockall(flags: number): number {
    if (flags === 0 || flags & ~(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) || flags === MCL_ONFAULT)
      return -EINVAL;
    if (flags & MCL_CURRENT) {
      for (const region of [...this.regions.toArray()]) {
        const result = this.regions.update(region.start, region.end, { flags: { locked: true } });
        if (result < 0) return result;
      }
    }
    this.lockFuture = (flags & MCL_FUTURE) !== 0;
    return 0;
  }

  munlockall(): number {
    for (const region of [...this.regions.toArray()]) {
      if (region.flags.locked) this.regions.update(region.start, region.end, { flags: { locked: false } });
    }
    this.lockFuture = false;
    return 0;
  }

  /** mincore(2): one byte per page; pages of a mapping are reported resident (the runtime does not swap). */
  mincore(address: number, length: number): Uint8Array | number {
    if (address % PAGE_SIZE !== 0) return -EINVAL;
    const size = pageUp(length);
    if (!this.inRange(address, size)) return -ENOMEM;
    if (!this.regions.isFullyMapped(address, address + size)) return -ENOMEM;
    return new Uint8Array(size / PAGE_SIZE).fill(1);
  }

  /** Is any page of [from, to) a guard page? (`from` need not be page aligned.) */
  private anyGuard(from: number, to: number): boolean {
    // Arithmetic, not `& ~PAGE_MASK`: a bitwise AND makes addresses from 2 GiB up negative.
    for (let page = from - (from % PAGE_SIZE); page < to; page += PAGE_SIZE) {
      if (this.tables.isGuard(page)) return true;
    }
    return false;
  }

  /**
   * Can the runtime read (or write) guest memory [address, address+length) on the guest's behalf? False for
   * anything unmapped, without the permission, or a guard page: the syscall then fails with EFAULT.
   */
  isAccessible(address: number, length: number, write: boolean): boolean {
    if (length === 0) return true;
    if (!(address >= 0 && length > 0 && address + length <= this.layout.reservedStart)) return false;
    const end = address + length;
    let cursor = address;
    const need = write ? PROT_WRITE : PROT_READ;
    for (const region of this.regions.overlapping(address, end)) {
      if (region.start > cursor) return false;
      // PROT_EXEC and PROT_WRITE imply readable on arm64 (no EPAN execute-only pages, no write-only pages):
      // the kernel reads such a buffer (a write(2) from a PROT_WRITE-only page succeeds on Linux).
      const allowed = region.prot & (PROT_EXEC | PROT_WRITE) ? region.prot | PROT_READ : region.prot;
      if (!(allowed & need)) return false;
      if (region.mayHoldGuards && this.anyGuard(Math.max(region.start, cursor), Math.min(region.end, end))) {
        return false;
      }
      cursor = region.end;
      if (cursor >= end) return true;
    }
    return cursor >= end;
  }
}
