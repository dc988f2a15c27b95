/*
 * munmap (memory-semantics.md §3): validation, unmapping nothing, splitting a region in the middle (both
 * halves keep contents and prot), ranges spanning several regions and holes, and SEGV_MAPERR on what was
 * unmapped. Built for x86_64 too and run natively: every expectation is Linux's.
 */
// fixture: native
#include "mem_check.h"

static void test_validation(void) {
  unsigned char *p = map_anon(2 * PAGE, PROT_READ | PROT_WRITE);
  CHECK("mmap", p != NULL);
  if (!p) return;
  p[0] = 1;
  CHECK_ERRNO("munmap unaligned address", munmap(p + 1, PAGE), EINVAL);
  CHECK_ERRNO("munmap len 0", munmap(p, 0), EINVAL);
  CHECK("failed munmaps leave the mapping", p[0] == 1);
  CHECK("munmap", munmap(p, 2 * PAGE) == 0);
  CHECK("munmap of a range with nothing mapped is not an error", munmap(p, 2 * PAGE) == 0);
  uintptr_t never = free_range(16 * PAGE, 0);
  CHECK("munmap of a never-mapped range is not an error", munmap((void *)never, 16 * PAGE) == 0);
}

static void test_split(void) {
  /* Three pages, each with its own pattern; then the middle one goes. */
  unsigned char *p = map_anon(3 * PAGE, PROT_READ | PROT_WRITE);
  CHECK("mmap 3 pages", p != NULL);
  if (!p) return;
  for (unsigned i = 0; i < 3; i++) fill_pattern(p + i * PAGE, PAGE, 10 + i);
  CHECK("munmap the middle page", munmap(p + PAGE, PAGE) == 0);
  CHECK("split: first half keeps its contents", has_pattern(p, PAGE, 10));
  CHECK("split: second half keeps its contents", has_pattern(p + 2 * PAGE, PAGE, 12));
  CHECK_NO_FAULT("split: first half still writable", PROBE_WRITE, p + 10);
  CHECK_NO_FAULT("split: second half still writable", PROBE_WRITE, p + 2 * PAGE + 10);
  CHECK_FAULT("split: unmapped middle", PROBE_READ, p + PAGE + 0x123, SIGSEGV, SEGV_MAPERR);
  CHECK_FAULT("split: unmapped middle", PROBE_WRITE, p + PAGE, SIGSEGV, SEGV_MAPERR);
  munmap(p, 3 * PAGE);

  /* A read-only region split the same way: both halves stay read-only. */
  unsigned char *r = map_anon(4 * PAGE, PROT_READ | PROT_WRITE);
  CHECK("mmap 4 pages", r != NULL);
  if (!r) return;
  fill_pattern(r, 4 * PAGE, 20);
  CHECK("mprotect read-only", mprotect(r, 4 * PAGE, PROT_READ) == 0);
  CHECK("munmap pages 1-2 of a read-only region", munmap(r + PAGE, 2 * PAGE) == 0);
  CHECK("read-only split: contents kept",
        has_pattern(r, PAGE, 20) && has_pattern_from(r + 3 * PAGE, PAGE, 20, 3 * PAGE));
  CHECK_FAULT("read-only split: first half", PROBE_WRITE, r + 0x10, SIGSEGV, SEGV_ACCERR);
  CHECK_FAULT("read-only split: second half", PROBE_WRITE, r + 3 * PAGE + 0x10, SIGSEGV, SEGV_ACCERR);
  CHECK_FAULT("read-only split: hole", PROBE_READ, r + 2 * PAGE + 0xabc, SIGSEGV, SEGV_MAPERR);
  munmap(r, 4 * PAGE);
}

static void test_spanning(void) {
  /* [A: 3 pages][hole: 2 pages][B: 3 pages], unmapped from A's last page to B's first page. */
  uintptr_t base = free_range(8 * PAGE, 2);
  unsigned char *a = mmap((void *)base, 3 * PAGE, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  unsigned char *b = mmap((void *)(base + 5 * PAGE), 3 * PAGE, PROT_READ,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  CHECK("mmap two regions with a hole between", a == (void *)base && b == (void *)(base + 5 * PAGE));
  if (a != (void *)base || b != (void *)(base + 5 * PAGE)) return;
  fill_pattern(a, 3 * PAGE, 30);
  CHECK("munmap across two regions and a hole", munmap(a + 2 * PAGE, 4 * PAGE) == 0);
  CHECK("spanning: A's first pages kept", has_pattern(a, 2 * PAGE, 30));
  CHECK_FAULT("spanning: A's last page", PROBE_READ, a + 2 * PAGE + 8, SIGSEGV, SEGV_MAPERR);
  CHECK_FAULT("spanning: B's first page", PROBE_READ, b + 8, SIGSEGV, SEGV_MAPERR);
  CHECK_NO_FAULT("spanning: B's other pages", PROBE_READ, b + PAGE + 8);
  CHECK_FAULT("spanning: B's other pages keep prot", PROBE_WRITE, b + 2 * PAGE + 8, SIGSEGV, SEGV_ACCERR);
  munmap((void *)base, 8 * PAGE);
  CHECK_FAULT("everything unmapped", PROBE_READ, b + 2 * PAGE + 8, SIGSEGV, SEGV_MAPERR);
}

static void test_rounding(void) {
  /* The length is rounded up to whole pages: munmap(p, 1) removes the whole first page. */
  unsigned char *p = map_anon(2 * PAGE, PROT_READ | PROT_WRITE);
  CHECK("mmap 2 pages", p != NULL);
  if (!p) return;
  p[PAGE] = 42;
  CHECK("munmap 1 byte", munmap(p, 1) == 0);
  CHECK_FAULT("munmap 1 byte removed the page", PROBE_READ, p + PAGE - 1, SIGSEGV, SEGV_MAPERR);
  CHECK("the next page is still there", p[PAGE] == 42);
  munmap(p + PAGE, PAGE);

  /* Unmapping then mapping the same place gives fresh zero-filled memory. */
  unsigned char *q = map_anon(PAGE, PROT_READ | PROT_WRITE);
  CHECK("mmap", q != NULL);
  if (!q) return;
  memset(q, 0x77, PAGE);
  munmap(q, PAGE);
  void *again = mmap(q, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  CHECK("mmap the same place again", again == q);
  CHECK("remapped memory is zero-filled", again == q && all_bytes(q, PAGE, 0));
  munmap(q, PAGE);
}

static void test_file(void) {
  /* Splitting a file mapping keeps each half at its own file offset. */
  int fd = temp_file(4 * PAGE, 40);
  unsigned char *f = fd < 0 ? MAP_FAILED : mmap(NULL, 4 * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
  CHECK("mmap a file", f != MAP_FAILED);
  if (f == MAP_FAILED) return;
  close(fd);
  CHECK("munmap the middle of a file mapping", munmap(f + PAGE, 2 * PAGE) == 0);
  CHECK("file split: halves read their offsets",
        has_pattern_from(f, PAGE, 40, 0) && has_pattern_from(f + 3 * PAGE, PAGE, 40, 3 * PAGE));
  CHECK_FAULT("file split: hole", PROBE_READ, f + PAGE + 0x321, SIGSEGV, SEGV_MAPERR);
  munmap(f, 4 * PAGE);
}

int main(int argc, char **argv) {
  mem_init(argc, argv, NULL);
  test_validation();
  test_split();
  test_spanning();
  test_rounding();
  test_file();
  return finish();
}
