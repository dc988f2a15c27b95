/**
 * A naive reference model of a Linux address space, one entry per 4 KiB page: unmapped, or mapped with a
 * prot and possibly a MADV_GUARD_INSTALL guard marker. Deliberately nothing clever (no regions, no page
 * tables), so that it can be trusted as the expected answer for the real AddressSpace. The semantics are
 * Linux 6.18's (memory-semantics.md), written from the man pages and the kernel's guard-regions selftests.
 */

export const PAGE = 4096;
const PROT_READ = 1;
const PROT_WRITE = 2;
const PROT_EXEC = 4;
const ENOMEM = 12;

export interface PageState {
  /** PROT_READ | PROT_WRITE | PROT_EXEC bits as the guest asked (0 = PROT_NONE). */
  prot: number;
  /** A guard marker: every access faults until MADV_GUARD_REMOVE, the mapping (and prot) stay. */
  guard: boolean;
}

export interface Access {
  read: boolean;
  write: boolean;
  exec: boolean;
}

export const NO_ACCESS: Readonly<Access> = Object.freeze({ read: false, write: false, exec: false });

/** What EL0 may do on a page (arm64 without EPAN: write implies read, exec implies read). */
export function accessOf(state: PageState | undefined): Access {
  if (!state || state.guard) return NO_ACCESS;
  return {
    read: state.prot !== 0,
    write: (state.prot & PROT_WRITE) !== 0,
    exec: (state.prot & PROT_EXEC) !== 0,
  };
}

export function describeState(state: PageState | undefined): string {
  if (!state) return "unmapped";
  const prot =
    state.prot === 0
      ? "---"
      : `${state.prot & PROT_READ ? "r" : "-"}${state.prot & PROT_WRITE ? "w" : "-"}${state.prot & PROT_EXEC ? "x" : "-"}`;
  return state.guard ? `${prot}+guard` : prot;
}

/** A maximal run of pages in the same state (mapped runs only). */
export interface Run {
  start: number;
  end: number;
  state: PageState;
}

export class PageModel {
  /** Page number → state; absent = unmapped. */
  private readonly pages = new Map<number, PageState>();

  get(address: number): PageState | undefined {
    return this.pages.get(Math.floor(address / PAGE));
  }

  isFree(start: number, length: number): boolean {
    for (let a = start; a < start + length; a += PAGE) if (this.get(a)) return false;
    return true;
  }

  isFullyMapped(start: number, length: number): boolean {
    for (let a = start; a < start + length; a += PAGE) if (!this.get(a)) return false;
    return true;
  }

  /** mmap(MAP_FIXED) / a new mapping: replaces whatever was there, guards included. */
  map(start: number, length: number, prot: number): void {
    for (let a = start; a < start + length; a += PAGE) this.pages.set(a / PAGE, { prot, guard: false });
  }

  /** Put one page's state back (mremap moves pages with their guard markers). */
  set(address: number, state: PageState | undefined): void {
    if (state) this.pages.set(address / PAGE, { ...state });
    else this.pages.delete(address / PAGE);
  }

  unmap(start: number, length: number): void {
    for (let a = start; a < start + length; a += PAGE) this.pages.delete(a / PAGE);
  }

  /**
   * mprotect(2): the first page unmapped → ENOMEM, nothing changed; otherwise every page from `start` up to
   * the first hole gets `prot` (guard markers stay), and a hole before the end reports ENOMEM.
   */
  protect(start: number, length: number, prot: number): number {
    for (let a = start; a < start + length; a += PAGE) {
      const state = this.get(a);
      if (!state) return -ENOMEM;
      state.prot = prot;
    }
    return 0;
  }

  /** MADV_GUARD_INSTALL / MADV_GUARD_REMOVE: every mapped page of the range; a hole reports ENOMEM. */
  guard(start: number, length: number, install: boolean): number {
    let hole = false;
    for (let a = start; a < start + length; a += PAGE) {
      const state = this.get(a);
      if (state) state.guard = install;
      else hole = true;
    }
    return hole ? -ENOMEM : 0;
  }

  /** Mapped pages' addresses, ascending. */
  mappedAddresses(): number[] {
    return [...this.pages.keys()].sort((a, b) => a - b).map((page) => page * PAGE);
  }

  /** Maximal runs of adjacent pages with the same state. */
  runs(): Run[] {
    const runs: Run[] = [];
    for (const address of this.mappedAddresses()) {
      const state = this.get(address)!;
      const last = runs.at(-1);
      if (
        last &&
        last.end === address &&
        last.state.prot === state.prot &&
        last.state.guard === state.guard
      ) {
        last.end += PAGE;
      } else {
        runs.push({ start: address, end: address + PAGE, state: { ...state } });
      }
    }
    return runs;
  }
}
