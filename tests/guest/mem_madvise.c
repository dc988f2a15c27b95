/*
 * madvise (memory-semantics.md §3): MADV_DONTNEED zero-fills private anonymous pages at once and re-reads
 * private file pages (shared pages keep their contents); MADV_FREE only on private anonymous memory; unknown
 * advice → EINVAL; unmapped range → ENOMEM; the no-op hints are accepted. Built for x86_64 too and run
 * natively: every expectation is Linux's.
 */
// fixture: native
#include "mem_check.h"

static void test_dontneed(void) {
  unsigned char *p = map_anon(8 * PAGE, PROT_READ | PROT_WRITE);
  CHECK("mmap 8 pages", p != NULL);
  if (!p) return;
  fill_pattern(p, 8 * PAGE, 140);
  CHECK("MADV_DONTNEED on pages 2-4", madvise(p + 2 * PAGE, 3 * PAGE, MADV_DONTNEED) == 0);
  CHECK("DONTNEED private anonymous: zero at once", all_bytes(p + 2 * PAGE, 3 * PAGE, 0));
  CHECK("DONTNEED: pages outside the range kept",
        has_pattern(p, 2 * PAGE, 140) && has_pattern_from(p + 5 * PAGE, 3 * PAGE, 140, 5 * PAGE));
  CHECK_NO_FAULT("DONTNEED: the pages stay mapped and writable", PROBE_WRITE, p + 3 * PAGE);
  /* On a read-only mapping too: DONTNEED does not need write permission. */
  mprotect(p, 8 * PAGE, PROT_READ);
  CHECK("MADV_DONTNEED on read-only pages", madvise(p, 8 * PAGE, MADV_DONTNEED) == 0);
  CHECK("DONTNEED read-only: zero", all_bytes(p, 8 * PAGE, 0));
  CHECK_ERRNO("MADV_DONTNEED unaligned", madvise(p + 1, PAGE, MADV_DONTNEED), EINVAL);
  CHECK("MADV_DONTNEED len 0", madvise(p, 0, MADV_DONTNEED) == 0);
  munmap(p, 8 * PAGE);

  /* Private file mapping: the written (copied) pages are dropped, the file's contents show again. */
  int fd = temp_file(4 * PAGE, 141);
  unsigned char *f = fd < 0 ? MAP_FAILED : mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  CHECK("mmap a file MAP_PRIVATE", f != MAP_FAILED);
  if (f != MAP_FAILED) {
    memset(f, 0xcc, 4 * PAGE);
    CHECK("MADV_DONTNEED on a private file mapping", madvise(f, 4 * PAGE, MADV_DONTNEED) == 0);
    CHECK("DONTNEED private file: the file's contents again", has_pattern(f, 4 * PAGE, 141));
    munmap(f, 4 * PAGE);
  }

  /* Shared mappings keep their contents: the pages live in the file / shared memory, not the mapping. */
  unsigned char *s = fd < 0 ? MAP_FAILED : mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  CHECK("mmap a file MAP_SHARED", s != MAP_FAILED);
  if (s != MAP_FAILED) {
    memset(s + PAGE, 0xcd, PAGE);
    CHECK("MADV_DONTNEED on a shared file mapping", madvise(s, 4 * PAGE, MADV_DONTNEED) == 0);
    CHECK("DONTNEED shared file: the writes are kept",
          has_pattern(s, PAGE, 141) && all_bytes(s + PAGE, PAGE, 0xcd) &&
              has_pattern_from(s + 2 * PAGE, 2 * PAGE, 141, 2 * PAGE));
    munmap(s, 4 * PAGE);
  }
  if (fd >= 0) close(fd);
  unsigned char *shm = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK("mmap shared anonymous", shm != MAP_FAILED);
  if (shm != MAP_FAILED) {
    memset(shm, 0x44, 2 * PAGE);
    CHECK("MADV_DONTNEED on shared anonymous memory", madvise(shm, 2 * PAGE, MADV_DONTNEED) == 0);
    CHECK("DONTNEED shared anonymous: contents kept", all_bytes(shm, 2 * PAGE, 0x44));
    munmap(shm, 2 * PAGE);
  }
}

static void test_free(void) {
  unsigned char *p = map_anon(4 * PAGE, PROT_READ | PROT_WRITE);
  CHECK("mmap 4 pages", p != NULL);
  if (!p) return;
  memset(p, 0x21, 4 * PAGE);
  /* The contents after MADV_FREE depend on memory pressure (kept, or zero once reclaimed): not checked. */
  CHECK("MADV_FREE on private anonymous memory", madvise(p, 4 * PAGE, MADV_FREE) == 0);
  CHECK_NO_FAULT("MADV_FREE: still mapped and writable", PROBE_WRITE, p + PAGE);
  munmap(p, 4 * PAGE);

  /* qemu 7.2 accepts any madvise. */
  if (qemu_skips("MADV_FREE on shared or file mappings")) return;
  unsigned char *shm = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK_ERRNO("MADV_FREE on shared anonymous memory", madvise(shm, PAGE, MADV_FREE), EINVAL);
  munmap(shm, PAGE);
  int fd = temp_file(PAGE, 142);
  unsigned char *fp = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  unsigned char *fs = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  CHECK_ERRNO("MADV_FREE on a private file mapping", madvise(fp, PAGE, MADV_FREE), EINVAL);
  CHECK_ERRNO("MADV_FREE on a shared file mapping", madvise(fs, PAGE, MADV_FREE), EINVAL);
  munmap(fp, PAGE);
  munmap(fs, PAGE);
}

static void test_errors(void) {
  unsigned char *p = map_anon(2 * PAGE, PROT_READ | PROT_WRITE);
  CHECK("mmap 2 pages", p != NULL);
  if (!p) return;
  /* qemu 7.2 accepts any advice and any range. */
  if (!qemu_skips("madvise errors")) {
    CHECK_ERRNO("madvise unknown advice 999", madvise(p, PAGE, 999), EINVAL);
    CHECK_ERRNO("madvise unknown advice 5", madvise(p, PAGE, 5), EINVAL);
    uintptr_t nothing = free_range(2 * PAGE, 1);
    CHECK_ERRNO("madvise an unmapped range", madvise((void *)nothing, 2 * PAGE, MADV_DONTNEED), ENOMEM);
    CHECK_ERRNO("madvise a no-op hint on an unmapped range", madvise((void *)nothing, 2 * PAGE, MADV_NORMAL), ENOMEM);

    /* [A][hole][B]: Linux applies the advice to what is mapped and then reports ENOMEM. */
    uintptr_t base = free_range(3 * PAGE, 2);
    unsigned char *a = mmap((void *)base, PAGE, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    unsigned char *b = mmap((void *)(base + 2 * PAGE), PAGE, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (a == (void *)base && b == (void *)(base + 2 * PAGE)) {
      memset(a, 1, PAGE);
      memset(b, 2, PAGE);
      CHECK_ERRNO("MADV_DONTNEED across a hole", madvise(a, 3 * PAGE, MADV_DONTNEED), ENOMEM);
      CHECK("DONTNEED across a hole: both mapped parts were zapped (Linux)",
            all_bytes(a, PAGE, 0) && all_bytes(b, PAGE, 0));
    } else {
      CHECK("mmap two pages with a hole between", 0);
    }
    munmap((void *)base, 3 * PAGE);

    /* Locked pages cannot be dropped. */
    unsigned char *locked = map_anon(PAGE, PROT_READ | PROT_WRITE);
    if (locked && mlock(locked, PAGE) == 0) {
      locked[0] = 9;
      CHECK_ERRNO("MADV_DONTNEED on mlocked memory", madvise(locked, PAGE, MADV_DONTNEED), EINVAL);
      CHECK("mlocked memory kept", locked[0] == 9);
      munlock(locked, PAGE);
    } else {
      CHECK("mlock a page", 0);
    }
    if (locked) munmap(locked, PAGE);
  }
  munmap(p, 2 * PAGE);
}

static void test_hints(void) {
  static const struct {
    const char *name;
    int advice;
  } hints[] = {
      {"MADV_NORMAL", MADV_NORMAL},         {"MADV_RANDOM", MADV_RANDOM},         {"MADV_SEQUENTIAL", MADV_SEQUENTIAL},
      {"MADV_WILLNEED", MADV_WILLNEED},     {"MADV_HUGEPAGE", MADV_HUGEPAGE},     {"MADV_NOHUGEPAGE", MADV_NOHUGEPAGE},
      {"MADV_COLD", MADV_COLD},             {"MADV_PAGEOUT", MADV_PAGEOUT},       {"MADV_DONTFORK", MADV_DONTFORK},
      {"MADV_DOFORK", MADV_DOFORK},         {"MADV_DONTDUMP", MADV_DONTDUMP},     {"MADV_DODUMP", MADV_DODUMP},
      {"MADV_WIPEONFORK", MADV_WIPEONFORK}, {"MADV_KEEPONFORK", MADV_KEEPONFORK},
  };
  unsigned char *p = map_anon(4 * PAGE, PROT_READ | PROT_WRITE);
  CHECK("mmap 4 pages", p != NULL);
  if (!p) return;
  fill_pattern(p, 4 * PAGE, 143);
  char what[64];
  for (size_t i = 0; i < sizeof hints / sizeof hints[0]; i++) {
    snprintf(what, sizeof what, "%s on private anonymous memory", hints[i].name);
    CHECK(what, madvise(p, 4 * PAGE, hints[i].advice) == 0);
  }
  /* PAGEOUT may have pushed them out (there is no swap here, so it cannot): either way they read back. */
  CHECK("the hints kept the contents", has_pattern(p, 4 * PAGE, 143));
  munmap(p, 4 * PAGE);

  /* WIPEONFORK is only for private anonymous memory. */
  if (qemu_skips("MADV_WIPEONFORK on a file mapping")) return;
  int fd = temp_file(PAGE, 144);
  unsigned char *f = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  CHECK_ERRNO("MADV_WIPEONFORK on a file mapping", madvise(f, PAGE, MADV_WIPEONFORK), EINVAL);
  CHECK("MADV_WILLNEED on a file mapping", madvise(f, PAGE, MADV_WILLNEED) == 0);
  munmap(f, PAGE);
}

/* madvise works area by area (madvise_walk_vmas): an area it refuses stops it, after the ones before changed. */
static void test_walk_order(void) {
  /* qemu 7.2 checks nothing of this: it answers 0 without looking at the areas. */
  if (qemu_skips("madvise area by area, MADV_POPULATE_* errors")) return;
  unsigned char *p = map_anon(4 * PAGE, PROT_READ | PROT_WRITE);
  CHECK("mmap 4 pages", p != NULL);
  if (!p) return;
  fill_pattern(p, 4 * PAGE, 150);
  CHECK("mlock the last 2", mlock(p + 2 * PAGE, 2 * PAGE) == 0);
  CHECK_ERRNO("MADV_DONTNEED reaching an mlock'ed area", madvise(p, 4 * PAGE, MADV_DONTNEED), EINVAL);
  CHECK("... the area before it was zapped", all_bytes(p, 2 * PAGE, 0));
  CHECK("... the locked one kept its contents", has_pattern_from(p + 2 * PAGE, 2 * PAGE, 150, 2 * PAGE));
  munlock(p + 2 * PAGE, 2 * PAGE);

  /* MADV_POPULATE_READ/WRITE need the permission itself (VM_READ / VM_WRITE): EINVAL; a guard page: EFAULT. */
  CHECK("PROT_READ on page 1", mprotect(p + PAGE, PAGE, PROT_READ) == 0);
  CHECK("MADV_POPULATE_WRITE on read-write memory", madvise(p, PAGE, MADV_POPULATE_WRITE) == 0);
  CHECK_ERRNO("MADV_POPULATE_WRITE on a read-only area", madvise(p, 2 * PAGE, MADV_POPULATE_WRITE), EINVAL);
  CHECK("MADV_POPULATE_READ on it", madvise(p, 2 * PAGE, MADV_POPULATE_READ) == 0);
  CHECK("PROT_NONE on page 1", mprotect(p + PAGE, PAGE, PROT_NONE) == 0);
  CHECK_ERRNO("MADV_POPULATE_READ on a PROT_NONE area", madvise(p, 2 * PAGE, MADV_POPULATE_READ), EINVAL);
  CHECK("a guard on page 3", madvise(p + 3 * PAGE, PAGE, MADV_GUARD_INSTALL) == 0);
  CHECK_ERRNO("MADV_POPULATE_READ over a guard page", madvise(p + 2 * PAGE, 2 * PAGE, MADV_POPULATE_READ), EFAULT);
  munmap(p + 2 * PAGE, PAGE);
  CHECK_ERRNO("MADV_POPULATE_READ over a hole", madvise(p, PAGE * 3, MADV_POPULATE_READ), EINVAL);
  CHECK_ERRNO("... starting past the PROT_NONE page", madvise(p + 2 * PAGE, PAGE * 2, MADV_POPULATE_READ), ENOMEM);

  /* mlock of a PROT_NONE area: the lock is applied, populating it fails (ENOMEM); msync(MS_INVALIDATE) of a
     locked area is EBUSY, which shows the lock. */
  CHECK_ERRNO("mlock of a PROT_NONE area", mlock(p + PAGE, PAGE), ENOMEM);
  CHECK_ERRNO("... it is locked all the same", msync(p + PAGE, PAGE, MS_INVALIDATE), EBUSY);
  CHECK("munlock it", munlock(p + PAGE, PAGE) == 0);
  CHECK("... and msync(MS_INVALIDATE) works again", msync(p + PAGE, PAGE, MS_INVALIDATE) == 0);
  CHECK("MLOCK_ONFAULT does not populate, so no error", mlock2(p + PAGE, PAGE, MLOCK_ONFAULT) == 0);
  munlock(p + PAGE, PAGE);
  munmap(p, 4 * PAGE);
}

int main(int argc, char **argv) {
  mem_init(argc, argv, NULL);
  test_dontneed();
  test_free();
  test_errors();
  test_hints();
  test_walk_order();
  return finish();
}
