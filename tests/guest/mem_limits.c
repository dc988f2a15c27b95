/*
 * The region limit (memory-semantics.md §1): no small fixed cap, only vm.max_map_count (65530). A process
 * can hold that many regions; the split that would make one more fails with ENOMEM, cleanly (every region
 * keeps its contents and prot), and the program keeps running. Built for x86_64 too and run natively.
 *
 * Regions are made by mapping one big range and mprotecting every other page, so that neighbours differ and
 * cannot merge. Exact counts depend on how many regions the process already has, so the limit is read from
 * /proc/sys/vm/max_map_count (65530 when that file does not exist, as under our runtime) and the current
 * count from /proc/self/maps (not counting [vsyscall], which the kernel shows but does not count).
 */
// fixture: native
#include "mem_check.h"

/*
 * Lines of /proc/self/maps, streamed through a small buffer, not counting the [vsyscall] gate area that
 * x86_64 shows (always last: it lies at the top of the address space) but does not count as a region.
 */
static long region_count(void) {
  static char chunk[1 << 16];
  int fd = open("/proc/self/maps", O_RDONLY);
  if (fd < 0) return -1;
  long lines = 0;
  char last[16] = ""; /* the final bytes of the text */
  ssize_t n;
  while ((n = read(fd, chunk, sizeof chunk)) > 0) {
    for (ssize_t i = 0; i < n; i++) lines += chunk[i] == '\n';
    size_t keep = n < 15 ? (size_t)n : 15, old = strlen(last);
    if (old + keep > 15) {
      memmove(last, last + old + keep - 15, 15 - keep);
      old = 15 - keep;
    }
    memcpy(last + old, chunk + n - keep, keep);
    last[old + keep] = 0;
  }
  close(fd);
  size_t len = strlen(last);
  int vsyscall = len >= 11 && strcmp(last + len - 11, "[vsyscall]\n") == 0;
  return lines - vsyscall;
}

static long max_map_count(void) {
  int fd = open("/proc/sys/vm/max_map_count", O_RDONLY);
  if (fd < 0) return 65530;
  char text[32] = "";
  ssize_t n = read(fd, text, sizeof text - 1);
  close(fd);
  return n > 0 ? strtol(text, NULL, 10) : 65530;
}

/* Pages of the big range that get a marker byte (every 64th), to check contents after the failure. */
#define MARK_EVERY 64
static unsigned char marker(size_t page) { return (unsigned char)(page * 7 + 3) | 1; }

static int markers_intact(unsigned char *p, size_t pages) {
  for (size_t i = 0; i < pages; i += MARK_EVERY)
    if (p[i * PAGE + 100] != marker(i)) return 0;
  return 1;
}

/* Every other page of [p, p + pages) read-only, from page `first` on; returns how many calls succeeded. */
static size_t alternate(unsigned char *p, size_t first, size_t pages, int *failed_errno, size_t *failed_page) {
  size_t done = 0;
  *failed_errno = 0;
  for (size_t i = first; i < pages; i += 2) {
    if (mprotect(p + i * PAGE, PAGE, PROT_READ) != 0) {
      *failed_errno = errno;
      *failed_page = i;
      break;
    }
    done++;
  }
  return done;
}

/* A private anonymous read-write mapping of `pages` pages with free pages around it, so it merges with nothing. */
static unsigned char *map_alone(size_t pages) {
  uintptr_t at = free_range(pages * PAGE, 4);
  void *p = mmap((void *)at, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                 -1, 0);
  return p == (void *)at ? (unsigned char *)p : NULL;
}

static void test_many_regions(void) {
  /* A thousand splits, nowhere near the limit: odd pages 1..1999 of 2001, each in the middle of a region. */
  size_t pages = 2001;
  /* qemu 7.2 builds /proc/self/maps from the host's mappings and its own page flags: other counts. */
  int counting = !qemu_skips("region counts from /proc/self/maps");
  long before = region_count();
  unsigned char *p = map_alone(pages);
  CHECK("mmap 2001 pages", p != NULL);
  if (!p) return;
  for (size_t i = 0; i < pages; i += MARK_EVERY) p[i * PAGE + 100] = marker(i);
  long mapped = region_count();
  if (counting) CHECK("a mapping with nothing around it is one more region", mapped == before + 1);
  int failed_errno;
  size_t failed_page;
  size_t done = alternate(p, 1, pages - 1, &failed_errno, &failed_page);
  CHECK("1000 splits succeed", done == 1000 && failed_errno == 0);
  if (counting) CHECK("1000 splits: 2000 more regions", region_count() == mapped + 2000);
  CHECK("1000 splits: contents intact", markers_intact(p, pages));
  CHECK_FAULT("1000 splits: odd pages read-only", PROBE_WRITE, p + 1001 * PAGE + 5, SIGSEGV, SEGV_ACCERR);
  CHECK_NO_FAULT("1000 splits: even pages writable", PROBE_WRITE, p + 1000 * PAGE + 5);
  CHECK("mprotect it all back", mprotect(p, pages * PAGE, PROT_READ | PROT_WRITE) == 0);
  if (counting) CHECK("mprotect back: the regions merge again", region_count() == mapped);
  CHECK("munmap", munmap(p, pages * PAGE) == 0);
  if (counting) CHECK("munmap: back to the count before", region_count() == before);
}

/*
 * Linux's two limits differ by one (mm/vma.c): a split is refused once map_count >= max_map_count, but a new
 * mmap only once map_count > max_map_count, so one more mmap still works at the split limit. Not in
 * memory-semantics.md; Linux wins.
 */
static void test_limit(void) {
  long limit = max_map_count();
  long before = region_count();
  CHECK("count regions", before > 0 && before < limit);
  /* Enough pages to reach the limit with every other page split off, and some to spare. */
  size_t pages = (size_t)(limit - before) + 64;
  unsigned char *p = map_alone(pages);
  CHECK("mmap the range to split", p != NULL);
  if (!p) return;
  /*
   * Two addresses for single-page mappings at the limit, found now (at the limit even finding one needs an
   * mmap) and after the big range is placed: free_range leaves 4 free pages each side of spare1, and spare2
   * is 2 pages above it, so neither mapping can touch (and merge with) anything.
   */
  uintptr_t spare1 = free_range(PAGE, 4), spare2 = spare1 + 2 * PAGE;
  for (size_t i = 0; i < pages; i += MARK_EVERY) p[i * PAGE + 100] = marker(i);
  /*
   * Each split of a page in the middle of a region adds two regions. Linux does the two splits one after the
   * other, so if only one more fits, the first one stays: the mprotect fails with ENOMEM but leaves two
   * adjacent, identical regions behind. To fail cleanly, reach the limit exactly: with an odd number of
   * regions to go, split the last page off first (one region).
   */
  if ((limit - region_count()) % 2 != 0) mprotect(p + (pages - 1) * PAGE, PAGE, PROT_NONE);
  int failed_errno;
  size_t failed_page = 0;
  alternate(p, 1, pages - 1, &failed_errno, &failed_page);
  long at_limit = region_count();
  CHECK("splitting until it fails gives ENOMEM", failed_errno == ENOMEM);
  CHECK("the process holds max_map_count regions", at_limit == limit);
  CHECK("after ENOMEM: contents intact", markers_intact(p, pages));
  /* Odd pages up to failed_page - 2 are read-only; from failed_page - 1 on it is one read-write region. */
  CHECK_NO_FAULT("after ENOMEM: the page that failed is still writable", PROBE_WRITE, p + failed_page * PAGE + 9);
  CHECK_FAULT("after ENOMEM: the last page split off is still read-only", PROBE_WRITE,
              p + (failed_page - 2) * PAGE + 9, SIGSEGV, SEGV_ACCERR);
  CHECK("after ENOMEM: the count did not change", region_count() == at_limit);
  /* Odd pages up to failed_page - 2 read-only, then one read-write region up to the last page. */
  CHECK_ERRNO("at the limit: another split", mprotect(p + (failed_page + 2) * PAGE, PAGE, PROT_READ), ENOMEM);
  /* Unmapping a page in the middle of the read-write tail needs a split. */
  CHECK_ERRNO("at the limit: munmap that would split a region", munmap(p + (failed_page + 2) * PAGE, PAGE), ENOMEM);
  CHECK("at the limit: an mprotect of a whole region still works",
        mprotect(p + (failed_page - 2) * PAGE, PAGE, PROT_READ | PROT_EXEC) == 0);
  CHECK("at the limit: and no region was added", region_count() == at_limit);

  void *one_more = mmap((void *)spare1, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  CHECK("at the split limit, one more mmap still works (Linux)", one_more == (void *)spare1);
  CHECK("and makes max_map_count + 1 regions", region_count() == limit + 1);
  CHECK_ERRNO("past it, mmap of a new region",
              (long)mmap((void *)spare2, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0),
              ENOMEM);
  if (one_more != MAP_FAILED) munmap(one_more, PAGE);

  /* Release one region's worth, and splitting works again. */
  CHECK("munmap a whole region", munmap(p + 1 * PAGE, PAGE) == 0);
  CHECK("one fewer region", region_count() == at_limit - 1);
  /* The first page of the read-write tail: one split (at its end), one more region (PROT_NONE: unlike its
   * read-only neighbour below, so it cannot merge with it). */
  CHECK("after munmap: a split works again", mprotect(p + (failed_page - 1) * PAGE, PAGE, PROT_NONE) == 0);
  CHECK("and the count is at the limit again", region_count() == at_limit);
  CHECK("contents still intact", markers_intact(p, pages));
  CHECK("munmap the whole range", munmap(p, pages * PAGE) == 0);
  CHECK("back to the count before", region_count() == before);
  unsigned char *q = map_anon(PAGE, PROT_READ | PROT_WRITE);
  CHECK("mmap works again", q != NULL);
  if (q) munmap(q, PAGE);
}

int main(int argc, char **argv) {
  mem_init(argc, argv, NULL);
  printf("region limit tests\n"); /* stdout's buffer (and a dynamic build's [heap]) exist before counting */
  test_many_regions();
  /* Under qemu-user the host's own mappings count against the host's limit: the guest cannot reach 65530. */
  if (!qemu_skips("reaching vm.max_map_count")) test_limit();
  return finish();
}
