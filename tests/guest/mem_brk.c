/*
 * brk (memory-semantics.md §3): brk(0) reports the break; growth gives zero-filled memory; a growth that
 * would run into a mapping is refused by returning the old break; shrinking unmaps (a read of the released
 * range faults with SEGV_MAPERR) and growing again gives zeroes. Built for x86_64 too and run natively.
 *
 * Raw syscall(SYS_brk) only: glibc's sbrk caches the break. malloc's heap lies below the break we start
 * from, and the break is put back exactly there before anything that may allocate (stdio) runs: results are
 * collected first and printed after. (stdout's buffer is allocated by the first printf, in main.)
 */
// fixture: native
#include "mem_check.h"

static uintptr_t raw_brk(uintptr_t addr) { return (uintptr_t)syscall(SYS_brk, addr); }

static uintptr_t page_up(uintptr_t addr) { return (addr + PAGE - 1) & ~(PAGE - 1); }

static void test_grow_and_shrink(void) {
  uintptr_t start = raw_brk(0);
  /* The first whole page above the break: what is below it in the same page belongs to malloc's heap. */
  uintptr_t fresh = page_up(start);
  int query_ok = start != 0 && start == raw_brk(0);
  int grown = raw_brk(fresh + 8 * PAGE) == fresh + 8 * PAGE;
  int reports_new = raw_brk(0) == fresh + 8 * PAGE;
  int zero = grown && all_bytes((unsigned char *)fresh, 8 * PAGE, 0);
  struct fault write_top = {0};
  if (grown) {
    fill_pattern((unsigned char *)fresh, 8 * PAGE, 130);
    write_top = probe(PROBE_WRITE, fresh + 8 * PAGE - 1);
  }
  int kept = grown && has_pattern((unsigned char *)fresh, 8 * PAGE - 1, 130);
  /* The break is a byte address: an unaligned value is kept as given, the mapping covers its page. */
  int unaligned = raw_brk(fresh + 5 * PAGE + 10) == fresh + 5 * PAGE + 10;
  struct fault in_last_page = probe(PROBE_READ, fresh + 6 * PAGE - 1);
  int shrunk = raw_brk(fresh + 2 * PAGE) == fresh + 2 * PAGE;
  int kept_below = has_pattern((unsigned char *)fresh, 2 * PAGE, 130);
  struct fault released = probe(PROBE_READ, fresh + 3 * PAGE + 0x123);
  struct fault released_end = probe(PROBE_READ, fresh + 8 * PAGE - 1);
  int regrown = raw_brk(fresh + 8 * PAGE) == fresh + 8 * PAGE;
  int regrown_zero = regrown && all_bytes((unsigned char *)fresh + 2 * PAGE, 6 * PAGE, 0);
  int regrown_kept = has_pattern((unsigned char *)fresh, 2 * PAGE, 130);
  int restored = raw_brk(start) == start;

  CHECK("brk(0) reports the break", query_ok);
  CHECK("brk grow", grown);
  CHECK("brk(0) reports the new break", reports_new);
  CHECK("brk growth is zero-filled", zero);
  CHECK("brk growth is writable up to the break", write_top.signo == 0);
  CHECK("brk memory keeps what was written", kept);
  CHECK("brk unaligned break returned as asked", unaligned);
  CHECK("brk unaligned break maps its whole page", in_last_page.signo == 0);
  CHECK("brk shrink", shrunk);
  CHECK("brk shrink keeps what is below the break", kept_below);
  if (!qemu_skips("brk shrink unmaps the released range")) {
    CHECK("brk shrink unmaps: read faults SIGSEGV SEGV_MAPERR at the address",
          released.signo == SIGSEGV && released.code == SEGV_MAPERR && released.addr == fresh + 3 * PAGE + 0x123);
    CHECK("brk shrink unmaps up to the old break", released_end.signo == SIGSEGV && released_end.code == SEGV_MAPERR &&
                                                       released_end.addr == fresh + 8 * PAGE - 1);
  }
  CHECK("brk regrow", regrown);
  CHECK("brk regrown memory is zero-filled", regrown_zero);
  CHECK("brk regrow keeps what was below", regrown_kept);
  CHECK("brk restored", restored);
}

/*
 * A mapping 4 pages above the break. Linux keeps a one-page gap below the next mapping (mm/mmap.c brk():
 * newbrk + PAGE_SIZE > vm_start_gap(next) is refused), so growth up to one page below the wall works, and up
 * to the wall, into it or past it is refused by returning the old break.
 */
static void test_wall(void) {
  uintptr_t start = raw_brk(0);
  uintptr_t fresh = page_up(start);
  unsigned char *wall = mmap((void *)(fresh + 4 * PAGE), PAGE, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  int wall_ok = wall == (void *)(fresh + 4 * PAGE);
  if (wall_ok) memset(wall, 0x33, PAGE);
  uintptr_t touching = wall_ok ? raw_brk(fresh + 4 * PAGE) : 0;
  uintptr_t into = wall_ok ? raw_brk(fresh + 4 * PAGE + 1) : 0;
  uintptr_t past = wall_ok ? raw_brk(fresh + 64 * PAGE) : 0;
  uintptr_t after_refusals = raw_brk(0);
  int wall_intact = wall_ok && all_bytes(wall, PAGE, 0x33);
  uintptr_t below = wall_ok ? raw_brk(fresh + 3 * PAGE) : 0;
  int below_zero = below == fresh + 3 * PAGE && all_bytes((unsigned char *)fresh, 3 * PAGE, 0);
  uintptr_t restored = raw_brk(start);
  if (wall_ok) munmap(wall, PAGE);

  CHECK("mmap a wall 4 pages above the break", wall_ok);
  CHECK("brk growth right up to a mapping returns the old break (Linux keeps a page gap)", touching == start);
  CHECK("brk growth into a mapping returns the old break", into == start);
  CHECK("brk growth past a mapping returns the old break", past == start);
  CHECK("refused growth left the break", after_refusals == start);
  CHECK("refused growth left the mapping intact", wall_intact);
  CHECK("brk growth to a page below the mapping works and is zero-filled", below_zero);
  CHECK("brk restored", restored == start);
}

static void test_refused(void) {
  uintptr_t start = raw_brk(0);
  /* Below the start of the heap, or absurdly far: refused, the break stays. */
  uintptr_t too_low = raw_brk(start - (64UL << 20));
  uintptr_t too_high = raw_brk(start + (1UL << 46));
  uintptr_t final = raw_brk(0);
  CHECK("brk below the heap start returns the old break", too_low == start);
  CHECK("brk absurdly high returns the old break", too_high == start);
  CHECK("the break never moved", final == start);
  /* qemu 7.2 keeps its own reservation above the break: nothing else can be mapped there. */
  if (!qemu_skips("brk against a mapping right above the break")) test_wall();
}

int main(int argc, char **argv) {
  mem_init(argc, argv, NULL);
  printf("brk tests\n"); /* allocates stdout's buffer before the break moves */
  test_grow_and_shrink();
  test_refused();
  void *from_malloc = malloc(200000);
  CHECK("malloc still works", from_malloc != NULL);
  if (from_malloc) {
    memset(from_malloc, 1, 200000);
    free(from_malloc);
  }
  return finish();
}
