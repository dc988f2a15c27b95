/**
 * Issue 3, item 4: both backends see the same permissions for the same history.
 *
 * Guest memory protection is decided by real AArch64 stage-1 descriptors that @guest/pagetable writes into
 * guest memory. HVF's MMU walks them in hardware; the emulator walks the same bytes in core.c's TLB-fill
 * hook. For seeded random histories of mmap / munmap / mprotect / madvise(GUARD_INSTALL/REMOVE) / mremap,
 * driven through AddressSpace on an EmulatorBackend VM, every checked page must agree in all views:
 *
 *   1. expected:  a naive page-by-page reference model (tests/lib/page-model.ts);
 *   2. hardware:  an independent Arm-ARM stage-1 walk of the descriptors in guest memory (what HVF's MMU
 *                 reads, tests/lib/stage1-walk.ts), and PageTable.translate() / isGuard();
 *   3. emulator:  tiny guest programs (a load, a store, a branch) run on the page: fault exit or success;
 *   4. runtime:   AddressSpace.isAccessible() for read and write (EFAULT or not for syscalls).
 *
 * Around every operation the pages it touches are probed on the emulator before (which fills Unicorn's TLB
 * and code caches) and after it, so a missing TLB flush or code-cache drop shows up as a stale permission.
 * After each history every mapped page, every page of the random area and both neighbours of every region
 * are checked in all four views.
 *
 * Linux facts the model encodes that are easy to get wrong (both checked natively on Linux 6.18): a
 * PROT_WRITE-only private mapping is readable, by the CPU and by syscalls (write() from it succeeds); and
 * mremap(MREMAP_DONTUNMAP) moves the page tables, guard markers included, so the source stays mapped with
 * no markers left.
 *
 * A failure lists how many disagreements of each kind were found ("<view> (<model state>)") and the first
 * few examples, each tagged with the operation around which it was seen. PERMISSIONS_STATS=1 prints what
 * each history exercised.
 */
import { describe, expect, test } from "bun:test";
import { EmulatorBackend, type EmulatorVm, emulatorAvailability } from "@guest/emulator";
import type { TlbInvalidation, Vcpu } from "@guest/hvf-bindings";
import {
  AddressSpace,
  type AddressSpaceBackend,
  MADV,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MREMAP_DONTUNMAP,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_EXEC,
  PROT_READ,
  PROT_WRITE,
} from "@guest/syscalls";
import { type Access, accessOf, describeState, NO_ACCESS, PAGE, PageModel } from "./lib/page-model.ts";
import { walkStage1El0 } from "./lib/stage1-walk.ts";

const MiB = 1024 * 1024;
const MEMORY_SIZE = 256 * MiB;
/** The random histories live here (16 MiB: dense enough that operations keep hitting each other). */
const AREA_START = 16 * MiB;
const AREA_END = 32 * MiB;
const AREA_PAGES = (AREA_END - AREA_START) / PAGE;
/** Runtime-private window (page-table pool) from here to the end of memory: 16 MiB of tables. */
const RESERVED_START = 240 * MiB;
/** The probe programs: a page mapped r-x by the test, far above anything the histories can reach. */
const CODE = 64 * MiB;
const LAYOUT = { mmapMin: 0x10000, mmapBase: AREA_END, reservedStart: RESERVED_START };

const SEEDS = [1, 2, 3, 4, 5, 6, 7, 8].map((n) => 0x5eed_0000 + n);
const OPERATIONS = 300;
/** Regions whose every page the final check must cover (the brief's floor). */
const MIN_REGIONS_CHECKED = 64;

// Probe programs (encodings as in packages/emulator/src/emulator.test.ts, assembled with aarch64-linux-gnu-as).
const PROBE_WORDS = [
  0xf9400020, // CODE+0x00  ldr x0, [x1]
  0xd4200000, // CODE+0x04  brk #0
  0xf9000020, // CODE+0x08  str x0, [x1]      (x0 = 0: stores leave the zero-filled pages as they were)
  0xd4200000, // CODE+0x0c  brk #0
  0xd61f0020, // CODE+0x10  br x1             (the target word is 0 = udf #0: reaching it is success)
];
const LOAD_AT = CODE;
const LOAD_DONE = CODE + 0x04;
const STORE_AT = CODE + 0x08;
const STORE_DONE = CODE + 0x0c;
const BRANCH_AT = CODE + 0x10;

const PROTS = [
  0,
  PROT_READ,
  PROT_WRITE,
  PROT_EXEC,
  PROT_READ | PROT_WRITE,
  PROT_READ | PROT_EXEC,
  PROT_WRITE | PROT_EXEC,
  PROT_READ | PROT_WRITE | PROT_EXEC,
];

const hex = (n: number): string => `0x${n.toString(16)}`;

/** mulberry32: small, seedable, good enough to pick operations. */
function prng(seed: number): { int(n: number): number; chance(p: number): boolean } {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  return { int: (n) => Math.floor(next() * n), chance: (p) => next() < p };
}

/** The emulator VM as AddressSpace sees it, remembering the translation root it was given (TTBR0_EL1). */
class RecordingBackend implements AddressSpaceBackend {
  ttbr = -1;
  constructor(readonly vm: EmulatorVm) {}
  get memory() {
    return this.vm.memory;
  }
  setTranslationRoot(rootAddress: number): void {
    this.ttbr = rootAddress;
    this.vm.setTranslationRoot(rootAddress);
  }
  invalidateTlb(requests: readonly TlbInvalidation[]): void {
    this.vm.invalidateTlb(requests);
  }
  invalidateCode(address: number, length: number): void {
    this.vm.invalidateCode(address, length);
  }
}

/** What one probe program did: allowed, denied (with the fault's translation/permission kind), or odd. */
type ProbeResult = { allowed: true } | { allowed: false; mapped: boolean } | { odd: string };

class Prober {
  runs = 0;
  constructor(
    private readonly vm: EmulatorVm,
    private readonly vcpu: Vcpu,
  ) {}

  private run(pc: number, target: number): ReturnType<Vcpu["run"]> {
    this.runs++;
    this.vcpu.setRegister("x0", 0n);
    this.vcpu.setRegister("x1", BigInt(target));
    this.vcpu.setRegister("pc", BigInt(pc));
    return this.vcpu.run();
  }

  read(target: number): ProbeResult {
    const exit = this.run(LOAD_AT, target);
    if (exit.kind === "breakpoint" && exit.pc === LOAD_DONE) return { allowed: true };
    if (exit.kind === "fault" && exit.access === "read" && exit.address === target)
      return { allowed: false, mapped: exit.mapped };
    return { odd: JSON.stringify(exit) };
  }

  write(target: number): ProbeResult {
    const exit = this.run(STORE_AT, target);
    if (exit.kind === "breakpoint" && exit.pc === STORE_DONE) return { allowed: true };
    if (exit.kind === "fault" && exit.access === "write" && exit.address === target)
      return { allowed: false, mapped: exit.mapped };
    return { odd: JSON.stringify(exit) };
  }

  exec(target: number): ProbeResult {
    const bytes = this.vm.memory.bytes;
    if (bytes[target] || bytes[target + 1] || bytes[target + 2] || bytes[target + 3]) {
      // Histories only ever store zeroes; keep the target an udf even so (and drop any stale translation).
      bytes.fill(0, target, target + 4);
      this.vm.invalidateCode(target, 4);
    }
    const exit = this.run(BRANCH_AT, target);
    if (exit.kind === "undefined-instruction" && exit.pc === target) return { allowed: true };
    if (exit.kind === "fault" && exit.access === "exec" && exit.address === target)
      return { allowed: false, mapped: exit.mapped };
    return { odd: JSON.stringify(exit) };
  }
}

const showAccess = (a: Access): string => `${a.read ? "r" : "-"}${a.write ? "w" : "-"}${a.exec ? "x" : "-"}`;
const showProbe = (p: ProbeResult): string =>
  "odd" in p ? `odd ${p.odd}` : p.allowed ? "ok" : p.mapped ? "perm-fault" : "xlat-fault";

/** One history: the address space, the model, the probes, and every disagreement found. */
class History {
  readonly backend: RecordingBackend;
  readonly space: AddressSpace;
  readonly model = new PageModel();
  readonly prober: Prober;
  /** The first disagreements found, and how many there were of each kind (view + what disagreed). */
  readonly mismatches: string[] = [];
  readonly mismatchKinds: Record<string, number> = {};
  readonly counts = {
    operations: 0,
    failedAsExpected: 0,
    pageChecks: 0,
    probedPages: 0,
    /** Page checks whose hardware walk ended in an L2 (2 MiB) block, and checks of guard pages. */
    blockPages: 0,
    guardPages: 0,
  };
  private readonly random: ReturnType<typeof prng>;
  /** What is being done right now, for mismatch reports. */
  private stage = "setup";

  constructor(
    readonly vm: EmulatorVm,
    seed: number,
  ) {
    this.random = prng(seed);
    this.backend = new RecordingBackend(vm);
    this.space = new AddressSpace(this.backend, LAYOUT);
    const vcpu = vm.createVcpu();
    this.prober = new Prober(vm, vcpu);
    const mapped = this.space.mapFixed({ start: CODE, length: PAGE, prot: PROT_READ | PROT_EXEC });
    if (mapped !== 0) throw new Error(`cannot map the probe page: ${mapped}`);
    const view = new DataView(vm.memory.bytes.buffer, vm.memory.bytes.byteOffset);
    for (const [i, word] of PROBE_WORDS.entries()) view.setUint32(CODE + i * 4, word, true);
    this.space.commit();
  }

  private fail(kind: string, message: string): void {
    const seen = (this.mismatchKinds[kind] ?? 0) + 1;
    this.mismatchKinds[kind] = seen;
    // A few examples of each kind, in the order found: the first one is usually the cause.
    if (seen <= 3 && this.mismatches.length < 60) this.mismatches.push(`[${this.stage}] ${message}`);
  }

  // ---------------------------------------------------------------------------------------------- checks

  /**
   * Views 1, 2 and 4 of one page (pure JS, cheap), and view 3 when `probe` is set: the emulator runs a
   * load, a store and a branch at a random offset of the page.
   */
  checkPage(address: number, probe: boolean): void {
    this.counts.pageChecks++;
    const state = this.model.get(address);
    const expected = accessOf(state);
    const where = `page ${hex(address)} model=${describeState(state)} expects ${showAccess(expected)}`;
    const offset = this.random.int(PAGE / 8) * 8;
    const target = address + offset;

    // 2a. The hardware's walk of the descriptors in guest memory.
    const walk = walkStage1El0(this.vm.memory.bytes, this.backend.ttbr, target);
    const hardware: Access = walk.valid ? walk : NO_ACCESS;
    if (walk.valid && walk.level === 2) this.counts.blockPages++;
    if (state?.guard) this.counts.guardPages++;
    if (showAccess(hardware) !== showAccess(expected)) {
      this.fail(
        `hardware walk (${describeState(state)})`,
        `${where}: hardware walk allows ${showAccess(hardware)} (${JSON.stringify(walk, big)})`,
      );
    }
    if (walk.valid && walk.pa !== target) {
      this.fail(
        "hardware walk PA",
        `${where}: hardware walk maps ${hex(target)} to PA ${hex(walk.pa)}, not itself`,
      );
    }
    // A valid descriptor must mean a page the guest may use (PROT_NONE, guard and unmapped are invalid).
    if (walk.valid !== (state !== undefined && !state.guard && state.prot !== 0)) {
      this.fail(
        `hardware walk validity (${describeState(state)})`,
        `${where}: hardware walk valid=${walk.valid} (${JSON.stringify(walk, big)})`,
      );
    }

    // 2b. The page-table package's own reading of the same bytes.
    const translation = this.space.tables.translate(address);
    const translated: Access = translation ?? NO_ACCESS;
    const shouldTranslate = state !== undefined && !state.guard;
    if (
      (translation !== null) !== shouldTranslate ||
      showAccess(translated) !== showAccess(expected) ||
      (translation !== null && (translated.read || translated.exec) && translation.pa !== address)
    ) {
      this.fail(
        `tables.translate (${describeState(state)})`,
        `${where}: tables.translate() says ${JSON.stringify(translation)}`,
      );
    }
    if (this.space.tables.isGuard(address) !== (state?.guard ?? false)) {
      this.fail(
        `tables.isGuard (${describeState(state)})`,
        `${where}: tables.isGuard() says ${this.space.tables.isGuard(address)}`,
      );
    }

    // 4. What syscalls on the guest's behalf see.
    const readable = this.space.isAccessible(target, 8, false);
    const writable = this.space.isAccessible(target, 8, true);
    const wholeReadable = this.space.isAccessible(address, PAGE, false);
    if (readable !== expected.read || wholeReadable !== expected.read) {
      this.fail(
        `isAccessible read (${describeState(state)})`,
        `${where}: isAccessible(read) says ${readable} (whole page: ${wholeReadable})`,
      );
    }
    if (writable !== expected.write)
      this.fail(
        `isAccessible write (${describeState(state)})`,
        `${where}: isAccessible(write) says ${writable}`,
      );

    // 3. What the emulator enforces.
    if (!probe) return;
    this.counts.probedPages++;
    const probes = {
      read: this.prober.read(target),
      write: this.prober.write(target),
      exec: this.prober.exec(target),
    };
    for (const kind of ["read", "write", "exec"] as const) {
      const result = probes[kind];
      const ok = !("odd" in result) && result.allowed === expected[kind];
      // A denied access is a permission fault exactly when the descriptor is valid (translation fault otherwise).
      const kindOk = "odd" in result || result.allowed || result.mapped === walk.valid;
      if (!ok || !kindOk) {
        this.fail(
          `emulator ${kind} (${describeState(state)})`,
          `${where}: emulator ${kind} at ${hex(target)} → ${showProbe(result)}`,
        );
      }
    }
  }

  /** Every page boundary where the state changes: a read/write spanning it is allowed only if both sides are. */
  checkSpan(boundary: number): void {
    const before = accessOf(this.model.get(boundary - PAGE));
    const after = accessOf(this.model.get(boundary));
    for (const write of [false, true]) {
      const expected = write ? before.write && after.write : before.read && after.read;
      const seen = this.space.isAccessible(boundary - 8, 16, write);
      if (seen !== expected) {
        this.fail(
          "isAccessible across a boundary",
          `isAccessible(${hex(boundary - 8)}, 16, ${write ? "write" : "read"}) says ${seen}`,
        );
      }
    }
  }

  /** Pages worth probing around [start, end): both ends, their outside neighbours and one in between. */
  probePagesOf(start: number, end: number): number[] {
    const pages = [start - PAGE, start, end - PAGE, end];
    if (end - start > 2 * PAGE) pages.push(start + PAGE * (1 + this.random.int((end - start) / PAGE - 2)));
    return pages.filter((a) => a >= 0 && a < RESERVED_START && a !== CODE);
  }

  /** All four views on the pages an operation touched; `ranges` are [start, end) pairs. */
  checkAround(ranges: Array<[number, number]>, probe: boolean): void {
    const seen = new Set<number>();
    for (const [start, end] of ranges) {
      // Views 1, 2, 4 on every page (cheap), the emulator on a handful.
      for (let a = Math.max(0, start - PAGE); a < Math.min(end + PAGE, RESERVED_START); a += PAGE) {
        if (a === CODE || seen.has(a)) continue;
        seen.add(a);
        this.checkPage(a, false);
      }
      if (probe) for (const a of this.probePagesOf(start, end)) this.checkPage(a, true);
    }
  }

  /** After a history: every mapped page, every page of the area, every region's neighbours; all probed. */
  checkEverything(): number {
    this.stage = "final";
    const pages = new Set<number>();
    for (let a = AREA_START; a < AREA_END; a += PAGE) pages.add(a);
    const runs = this.model.runs();
    for (const run of runs) {
      for (let a = run.start; a < run.end; a += PAGE) pages.add(a);
      if (run.start >= PAGE) pages.add(run.start - PAGE);
      pages.add(run.end);
    }
    pages.delete(CODE);
    for (const a of [...pages].sort((x, y) => x - y)) this.checkPage(a, true);
    // Spans across every boundary of the model's runs and of the tracker's regions.
    const boundaries = new Set<number>();
    for (const run of runs) boundaries.add(run.start).add(run.end);
    for (const region of this.space.regions.toArray()) boundaries.add(region.start).add(region.end);
    boundaries.delete(0);
    for (const boundary of boundaries) this.checkSpan(boundary);
    return runs.length;
  }

  // ----------------------------------------------------------------------------------------- operations

  private randomProt(): number {
    return PROTS[this.random.int(PROTS.length)]!;
  }

  private randomPages(max: number): number {
    return 1 + this.random.int(max);
  }

  /** A range near existing mappings most of the time (so operations split, merge and overlap), else anywhere. */
  private randomRange(maxPages = 48): [number, number] {
    const runs = this.model.runs().filter((r) => r.start >= AREA_START && r.end <= AREA_END);
    let start: number;
    if (runs.length > 0 && this.random.chance(0.7)) {
      const run = runs[this.random.int(runs.length)]!;
      const span = (run.end - run.start) / PAGE;
      start = run.start + (this.random.int(span + 4) - 2) * PAGE;
    } else {
      start = AREA_START + this.random.int(AREA_PAGES) * PAGE;
    }
    start = Math.min(Math.max(start, AREA_START), AREA_END - PAGE);
    const length = Math.min(this.randomPages(maxPages) * PAGE, AREA_END - start);
    return [start, length];
  }

  private expectResult(name: string, got: number, expected: number): boolean {
    if (got !== expected) {
      this.fail(
        `result of ${name.replace(/^#\d+ /, "").split("(")[0]}`,
        `${name} returned ${got}, the model expects ${expected}`,
      );
      return false;
    }
    if (expected < 0) this.counts.failedAsExpected++;
    return true;
  }

  /** One random operation, with the probes around it. */
  step(index: number): void {
    this.counts.operations++;
    const roll = this.random.int(100);
    if (roll < 22) this.opMapFixed(index);
    else if (roll < 30) this.opMapAnywhere(index);
    else if (roll < 44) this.opUnmap(index);
    else if (roll < 64) this.opProtect(index);
    else if (roll < 74) this.opGuard(index, true);
    else if (roll < 82) this.opGuard(index, false);
    else this.opRemap(index);
  }

  /** Probe (warming the emulator's TLB), run the operation, commit, then check and probe again. */
  private around(
    label: string,
    ranges: Array<[number, number]>,
    operation: () => Array<[number, number]>,
  ): void {
    this.stage = `${label} (before)`;
    for (const [start, end] of ranges) for (const a of this.probePagesOf(start, end)) this.checkPage(a, true);
    this.stage = label;
    const more = operation();
    this.space.commit();
    this.stage = `${label} (after)`;
    this.checkAround([...ranges, ...more], true);
  }

  private opMapFixed(index: number): void {
    // Now and then a 2 MiB-aligned 2-4 MiB mapping, so the tables use (and later split) L2 blocks.
    let start: number;
    let length: number;
    if (this.random.chance(0.05)) {
      length = (1 + this.random.int(2)) * 2 * MiB;
      start = AREA_START + this.random.int((AREA_END - AREA_START - length) / (2 * MiB) + 1) * 2 * MiB;
    } else {
      [start, length] = this.randomRange(64);
    }
    const prot = this.randomProt();
    const label = `#${index} mmap(${hex(start)}, ${hex(length)}, ${prot}, FIXED)`;
    this.around(label, [[start, start + length]], () => {
      const flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
      const got = this.space.mmap(start, length, prot, flags, -1, 0, () => -9);
      if (this.expectResult(label, got, start)) this.model.map(start, length, prot);
      return [];
    });
  }

  private opMapAnywhere(index: number): void {
    const length = this.randomPages(32) * PAGE;
    const hint = this.random.chance(0.5) ? AREA_START + this.random.int(AREA_PAGES) * PAGE : 0;
    const prot = this.randomProt();
    const label = `#${index} mmap(${hex(hint)}, ${hex(length)}, ${prot})`;
    this.around(label, [], () => {
      const got = this.space.mmap(hint, length, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, () => -9);
      const hintUsable = hint !== 0 && hint + length <= RESERVED_START && this.model.isFree(hint, length);
      if (got < 0 || got % PAGE !== 0 || !this.model.isFree(got, length) || got + length > RESERVED_START) {
        this.fail("mmap placement", `${label} returned ${hex(got)}: not a free range`);
        return [];
      }
      if (hintUsable && got !== hint)
        this.fail("mmap placement", `${label} returned ${hex(got)}, not the free hint`);
      this.model.map(got, length, prot);
      return [[got, got + length]];
    });
  }

  private opUnmap(index: number): void {
    const [start, length] = this.randomRange();
    const label = `#${index} munmap(${hex(start)}, ${hex(length)})`;
    this.around(label, [[start, start + length]], () => {
      if (this.expectResult(label, this.space.munmap(start, length), 0)) this.model.unmap(start, length);
      return [];
    });
  }

  private opProtect(index: number): void {
    const [start, length] = this.randomRange();
    const prot = this.randomProt();
    const label = `#${index} mprotect(${hex(start)}, ${hex(length)}, ${prot})`;
    this.around(label, [[start, start + length]], () => {
      const shadow = this.cloneRange(start, length);
      const expected = shadow.protect(start, length, prot);
      if (this.expectResult(label, this.space.mprotect(start, length, prot), expected)) {
        this.model.protect(start, length, prot);
      }
      return [];
    });
  }

  private opGuard(index: number, install: boolean): void {
    const [start, length] = this.randomRange(24);
    const advice = install ? MADV.GUARD_INSTALL : MADV.GUARD_REMOVE;
    const label = `#${index} madvise(${hex(start)}, ${hex(length)}, ${advice})`;
    this.around(label, [[start, start + length]], () => {
      const shadow = this.cloneRange(start, length);
      const expected = shadow.guard(start, length, install);
      if (this.expectResult(label, this.space.madvise(start, length, advice), expected)) {
        this.model.guard(start, length, install);
      }
      return [];
    });
  }

  /**
   * mremap of (part of) one mapping: shrink, grow in place, move (MAYMOVE), move to a chosen place
   * (MAYMOVE|FIXED), or move leaving the old range mapped and empty (MAYMOVE|DONTUNMAP). The range is chosen
   * inside one of the tracker's regions (mremap works within one VMA); the outcome is the model's.
   */
  private opRemap(index: number): void {
    const regions = this.space.regions
      .toArray()
      .filter((r) => r.start >= AREA_START && r.end <= AREA_END + 256 * PAGE);
    if (regions.length === 0) {
      this.opMapFixed(index);
      return;
    }
    const region = regions[this.random.int(regions.length)]!;
    const regionPages = (region.end - region.start) / PAGE;
    let oldPages = this.random.chance(0.5) ? regionPages : this.randomPages(regionPages);
    const old = region.start + this.random.int(regionPages - oldPages + 1) * PAGE;
    oldPages = Math.min(oldPages, 96);
    const oldSize = oldPages * PAGE;
    const mode = this.random.int(10);
    const flags =
      mode < 5
        ? MREMAP_MAYMOVE
        : mode < 7
          ? MREMAP_MAYMOVE | MREMAP_FIXED
          : mode < 8
            ? 0
            : MREMAP_MAYMOVE | MREMAP_DONTUNMAP;
    const newSize = flags & MREMAP_DONTUNMAP ? oldSize : this.randomPages(Math.min(2 * oldPages, 128)) * PAGE;
    let destination = 0;
    if (flags & MREMAP_FIXED) {
      do destination = AREA_START + this.random.int(AREA_PAGES - newSize / PAGE) * PAGE;
      while (destination < old + oldSize && old < destination + newSize);
    }
    const label = `#${index} mremap(${hex(old)}, ${hex(oldSize)}, ${hex(newSize)}, ${flags}, ${hex(destination)})`;

    // The model's view of the source: one mapping, one prot (guard markers may differ page to page).
    const first = this.model.get(old);
    for (let a = old; a < old + oldSize; a += PAGE) {
      const state = this.model.get(a);
      if (!state || state.prot !== first?.prot) {
        this.fail(
          "mremap source",
          `${label}: tracker region ${hex(region.start)}-${hex(region.end)} is not one mapping in the model`,
        );
        return;
      }
    }
    const prot = first!.prot;
    const pages = Array.from({ length: oldPages }, (_, i) => this.model.get(old + i * PAGE)!);
    const tailFree = this.model.isFree(old + oldSize, Math.max(0, newSize - oldSize));

    this.around(label, [[old, old + oldSize]], () => {
      const got = this.space.mremap(old, oldSize, newSize, flags, destination);
      const inPlace = !(flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) && (newSize <= oldSize || tailFree);
      if (inPlace) {
        if (!this.expectResult(label, got, old)) return [];
        if (newSize < oldSize) this.model.unmap(old + newSize, oldSize - newSize);
        else this.model.map(old + oldSize, newSize - oldSize, prot);
        return [[old, old + Math.max(oldSize, newSize)]];
      }
      if (!(flags & MREMAP_MAYMOVE)) {
        this.expectResult(label, got, -12);
        return [];
      }
      if (flags & MREMAP_FIXED) {
        if (!this.expectResult(label, got, destination)) return [];
      } else if (got < 0 || got % PAGE !== 0 || got === old || !this.model.isFree(got, newSize)) {
        this.fail("mremap placement", `${label} returned ${hex(got)}: not a free range to move to`);
        return [];
      }
      // The moved pages keep their prot and guard markers; growth is fresh; the source is gone, or with
      // MREMAP_DONTUNMAP stays mapped with empty page tables (so no guard markers either).
      this.model.unmap(got, newSize);
      this.model.map(got, newSize, prot);
      for (let i = 0; i < Math.min(oldPages, newSize / PAGE); i++) this.model.set(got + i * PAGE, pages[i]);
      if (flags & MREMAP_DONTUNMAP) this.model.map(old, oldSize, prot);
      else this.model.unmap(old, oldSize);
      return [[got, got + newSize]];
    });
  }

  /** A throwaway model holding the states of [start, start+length), to compute an expected result first. */
  private cloneRange(start: number, length: number): PageModel {
    const shadow = new PageModel();
    for (let a = start; a < start + length; a += PAGE) shadow.set(a, this.model.get(a));
    return shadow;
  }
}

/** JSON.stringify replacer for bigint descriptors. */
function big(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? `0x${value.toString(16)}` : value;
}

const availability = emulatorAvailability();

describe.skipIf(!availability.available)(
  availability.available
    ? "permissions: model, hardware walk, emulator and isAccessible agree"
    : `permissions (skipped: the emulator backend is unavailable: ${availability.reason})`,
  () => {
    for (const [n, seed] of SEEDS.entries()) {
      test(`history ${n + 1} (seed ${hex(seed)}, ${OPERATIONS} operations)`, () => {
        const vm = new EmulatorBackend().createVm({ memorySize: MEMORY_SIZE });
        try {
          const history = new History(vm, seed);
          for (let i = 0; i < OPERATIONS; i++) history.step(i);
          const regions = history.checkEverything();
          // PERMISSIONS_STATS=1 shows how much each history exercised.
          if (process.env.PERMISSIONS_STATS) {
            console.log(
              JSON.stringify({ seed, regions, emulatorRuns: history.prober.runs, ...history.counts }),
            );
          }
          expect({ kinds: history.mismatchKinds, examples: history.mismatches }).toEqual({
            kinds: {},
            examples: [],
          });
          // The history must have been rich enough to mean something.
          expect(regions).toBeGreaterThanOrEqual(MIN_REGIONS_CHECKED);
          expect(history.counts.failedAsExpected).toBeGreaterThan(0);
          expect(history.counts.blockPages).toBeGreaterThan(0);
          expect(history.counts.guardPages).toBeGreaterThan(0);
          expect(history.space.tables.pagesInUse).toBeGreaterThan(1);
        } finally {
          vm.destroy();
        }
      });
    }
  },
);

describe.skipIf(!availability.available)("guard pages above 2 GiB", () => {
  // Regression (found by tests/guest/mm_fuzz.c): isAccessible rounded down with `& ~PAGE_MASK`, which turns an
  // address from 2 GiB up negative, so its guard scan started ~2^32 below the range: a million steps per call
  // (an mm_fuzz run took 14 s instead of 0.35 s), and a guard page *before* the range in the same region
  // made a syscall on the buffer fail with EFAULT.
  test("isAccessible sees the guard page and scans only the pages asked about", () => {
    const vm = new EmulatorBackend().createVm({ memorySize: 2 ** 32 });
    try {
      const space = new AddressSpace(vm, {
        mmapMin: 0x10000,
        mmapBase: 0xf000_0000,
        reservedStart: 0xf800_0000,
      });
      const start = 0xe000_0000;
      const flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
      expect(space.mmap(start, 8 * PAGE, PROT_READ | PROT_WRITE, flags, -1, 0, () => -9)).toBe(start);
      expect(space.madvise(start + 3 * PAGE, PAGE, MADV.GUARD_INSTALL)).toBe(0);
      const isGuard = space.tables.isGuard.bind(space.tables);
      let scanned = 0;
      space.tables.isGuard = (address: number) => {
        scanned++;
        return isGuard(address);
      };
      expect(space.isAccessible(start, 8 * PAGE, false)).toBe(false);
      expect(space.isAccessible(start, 3 * PAGE, true)).toBe(true);
      expect(space.isAccessible(start + 4 * PAGE + 100, 4 * PAGE - 100, true)).toBe(true);
      expect(space.isAccessible(start + 3 * PAGE + 8, 8, false)).toBe(false);
      expect(scanned).toBeLessThanOrEqual(8 + 3 + 4 + 1);
    } finally {
      vm.destroy();
    }
  });
});

describe("the independent stage-1 walker reads descriptors as the Arm ARM says", () => {
  // Tables at 0x10000 (L0), 0x11000 (L1), 0x12000 (L2), 0x13000 (L3) in a 4 MiB "guest memory".
  const memory = new Uint8Array(4 * MiB);
  const view = new DataView(memory.buffer);
  const put = (table: number, index: number, value: bigint): void =>
    view.setBigUint64(table + index * 8, value, true);
  const AF = 1n << 10n;
  const AP_EL0 = 1n << 6n;
  const AP_RO = 1n << 7n;
  const UXN = 1n << 54n;
  put(0x10000, 0, 0x11000n | 3n);
  put(0x11000, 0, 0x12000n | 3n);
  put(0x12000, 0, 0x13000n | 3n); // VA [0, 2 MiB) → L3 table
  put(0x12000, 1, 0x200000n | AF | AP_EL0 | 1n); // VA [2 MiB, 4 MiB): RWX block
  put(0x13000, 1, 0x1000n | AF | AP_EL0 | AP_RO | 3n); // r-x
  put(0x13000, 2, 0x2000n | AF | AP_EL0 | UXN | 3n); // rw-
  put(0x13000, 3, 0x3000n | AF | UXN | 3n); // no EL0 access
  put(0x13000, 4, 0x4000n | AP_EL0 | 3n); // AF clear
  put(0x13000, 5, 0x5000n | AF | AP_EL0 | 1n); // L3 0b01: reserved
  put(0x13000, 6, 0x6000n | AF | 3n); // EL0 execute-only
  put(0x13000, 7, 0x7000n | AF | AP_EL0 | UXN | 2n | (1n << 55n)); // software bits, invalid

  test("pages, blocks, AP, UXN, AF and reserved encodings", () => {
    const at = (va: number) => walkStage1El0(memory, 0x10000, va);
    const perms = (va: number) => {
      const w = at(va);
      return w.valid ? showAccess(w) : w.fault;
    };
    expect(perms(0x1008)).toBe("r-x");
    expect(perms(0x2010)).toBe("rw-");
    expect(perms(0x3000)).toBe("---");
    expect(perms(0x4000)).toBe("access-flag");
    expect(perms(0x5000)).toBe("translation");
    expect(perms(0x6000)).toBe("--x");
    expect(perms(0x7000)).toBe("translation");
    expect(perms(0x8000)).toBe("translation");
    expect(perms(0x300123)).toBe("rwx");
    expect(at(0x300123)).toMatchObject({ level: 2, pa: 0x300123 });
    expect(at(0x2010)).toMatchObject({ level: 3, pa: 0x2010 });
    expect(perms(0x40_0000_0000)).toBe("translation"); // L1 index 256: empty
    expect(perms(2 ** 48)).toBe("translation");
  });

  test("hierarchical APTable and UXNTable only take permissions away", () => {
    const copy = memory.slice();
    const v = new DataView(copy.buffer);
    v.setBigUint64(0x12000 + 8, 0x200000n | AF | AP_EL0 | 1n, true);
    v.setBigUint64(0x11000, 0x12000n | 3n | (1n << 62n) | (1n << 60n), true); // read-only, UXN below
    const w = walkStage1El0(copy, 0x10000, 0x300000);
    expect(w.valid && showAccess(w)).toBe("r--");
    v.setBigUint64(0x11000, 0x12000n | 3n | (1n << 61n), true); // no EL0 data access below
    const x = walkStage1El0(copy, 0x10000, 0x300000);
    expect(x.valid && showAccess(x)).toBe("--x");
  });
});
