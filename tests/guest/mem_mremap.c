/*
 * mremap (memory-semantics.md §3): grow and shrink in place, MREMAP_MAYMOVE, MREMAP_FIXED, MREMAP_DONTUNMAP,
 * validation (EFAULT for a bad old address, EINVAL for bad flag combinations), and contents and prot moving
 * with the pages. Built for x86_64 too and run natively: every expectation is Linux's.
 */
// fixture: native
#include "mem_check.h"

/* The raw syscall: glibc 2.36's mremap passes new_addr only with MREMAP_FIXED (later ones with DONTUNMAP too),
   and the kernel reads it for DONTUNMAP as well. */
static void *remap(void *old, size_t old_len, size_t new_len, int flags, void *new_addr) {
  return (void *)syscall(SYS_mremap, old, old_len, new_len, flags, new_addr);
}

static void test_in_place(void) {
  /* 2 pages with 6 free pages after them (4 free pages of margin each side). */
  uintptr_t base = free_range(8 * PAGE, 4);
  unsigned char *p = mmap((void *)base, 2 * PAGE, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  CHECK("mmap 2 pages with room after", p == (void *)base);
  if (p != (void *)base) return;
  fill_pattern(p, 2 * PAGE, 80);
  CHECK("mremap grow in place", remap(p, 2 * PAGE, 6 * PAGE, 0, NULL) == p);
  CHECK("grown: old contents kept", has_pattern(p, 2 * PAGE, 80));
  CHECK("grown: new pages zero-filled", all_bytes(p + 2 * PAGE, 4 * PAGE, 0));
  CHECK_NO_FAULT("grown: new pages writable", PROBE_WRITE, p + 6 * PAGE - 1);
  fill_pattern(p, 6 * PAGE, 81);

  CHECK("mremap shrink in place", remap(p, 6 * PAGE, 3 * PAGE, 0, NULL) == p);
  CHECK("shrunk: contents kept", has_pattern(p, 3 * PAGE, 81));
  CHECK_FAULT("shrunk: released tail", PROBE_READ, p + 3 * PAGE + 0x123, SIGSEGV, SEGV_MAPERR);
  CHECK_FAULT("shrunk: released tail end", PROBE_READ, p + 6 * PAGE - 1, SIGSEGV, SEGV_MAPERR);

  /* Growing into an existing mapping without MREMAP_MAYMOVE fails and changes nothing. */
  unsigned char *blocker =
      mmap(p + 4 * PAGE, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  CHECK("mmap a blocker after the region", blocker == p + 4 * PAGE);
  CHECK_ERRNO("mremap grow into a mapping without MAYMOVE", (long)remap(p, 3 * PAGE, 6 * PAGE, 0, NULL), ENOMEM);
  CHECK("refused growth: contents kept", has_pattern(p, 3 * PAGE, 81));
  CHECK_FAULT("refused growth: nothing was added", PROBE_READ, p + 3 * PAGE + 8, SIGSEGV, SEGV_MAPERR);
  CHECK("mremap grow up to the blocker", remap(p, 3 * PAGE, 4 * PAGE, 0, NULL) == p);
  CHECK("grown up to the blocker: contents", has_pattern(p, 3 * PAGE, 81) && all_bytes(p + 3 * PAGE, PAGE, 0));
  munmap(p, 5 * PAGE);
}

static void test_maymove(void) {
  uintptr_t base = free_range(4 * PAGE, 2);
  unsigned char *p = mmap((void *)base, 2 * PAGE, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  unsigned char *blocker = mmap((void *)(base + 2 * PAGE), PAGE, PROT_NONE,
                                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  CHECK("mmap a region with a blocker right after", p == (void *)base && blocker == (void *)(base + 2 * PAGE));
  if (p != (void *)base) return;
  fill_pattern(p, 2 * PAGE, 90);
  unsigned char *moved = remap(p, 2 * PAGE, 64 * PAGE, MREMAP_MAYMOVE, NULL);
  CHECK("mremap MAYMOVE grows by moving", moved != MAP_FAILED && moved != p);
  if (moved == MAP_FAILED) return;
  CHECK("moved: contents moved with the pages", has_pattern(moved, 2 * PAGE, 90));
  CHECK("moved: the grown part is zero-filled", all_bytes(moved + 2 * PAGE, 62 * PAGE, 0));
  CHECK_FAULT("moved: the old range is unmapped", PROBE_READ, p + 0x123, SIGSEGV, SEGV_MAPERR);
  CHECK_NO_FAULT("moved: still writable", PROBE_WRITE, moved + 63 * PAGE);
  munmap(blocker, PAGE);

  /* Prot moves too: a read-only region stays read-only at its new place. */
  unsigned char *ro = map_anon(3 * PAGE, PROT_READ | PROT_WRITE);
  CHECK("mmap 3 pages", ro != NULL);
  if (!ro) return;
  fill_pattern(ro, 3 * PAGE, 91);
  mprotect(ro, 3 * PAGE, PROT_READ);
  unsigned char *target = (unsigned char *)free_range(3 * PAGE, 2);
  unsigned char *ro_moved = remap(ro, 3 * PAGE, 3 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, target);
  CHECK("mremap MAYMOVE|FIXED a read-only region", ro_moved == target);
  CHECK("read-only moved: contents", has_pattern(target, 3 * PAGE, 91));
  CHECK_FAULT("read-only moved: still read-only", PROBE_WRITE, target + PAGE + 0x10, SIGSEGV, SEGV_ACCERR);
  CHECK_FAULT("read-only moved: old range unmapped", PROBE_READ, ro + 0x10, SIGSEGV, SEGV_MAPERR);
  munmap(target, 3 * PAGE);
  munmap(moved, 64 * PAGE);
}

static void test_fixed(void) {
  unsigned char *p = map_anon(4 * PAGE, PROT_READ | PROT_WRITE);
  unsigned char *dest = map_anon(6 * PAGE, PROT_READ | PROT_WRITE);
  CHECK("mmap source and destination", p != NULL && dest != NULL);
  if (!p || !dest) return;
  fill_pattern(p, 4 * PAGE, 100);
  memset(dest, 0xdd, 6 * PAGE);
  CHECK_ERRNO("mremap FIXED without MAYMOVE", (long)remap(p, 4 * PAGE, 4 * PAGE, MREMAP_FIXED, dest + PAGE), EINVAL);
  CHECK_ERRNO("mremap FIXED to an unaligned address",
              (long)remap(p, 4 * PAGE, 4 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, dest + 1), EINVAL);
  CHECK_ERRNO("mremap FIXED onto itself (overlap)",
              (long)remap(p, 4 * PAGE, 4 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, p + PAGE), EINVAL);
  /* FIXED replaces whatever is mapped at the destination, like MAP_FIXED. */
  unsigned char *moved = remap(p, 4 * PAGE, 4 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, dest + PAGE);
  CHECK("mremap MAYMOVE|FIXED over a mapping", moved == dest + PAGE);
  CHECK("FIXED: contents arrived", has_pattern(dest + PAGE, 4 * PAGE, 100));
  CHECK("FIXED: the destination's neighbours kept",
        all_bytes(dest, PAGE, 0xdd) && all_bytes(dest + 5 * PAGE, PAGE, 0xdd));
  CHECK_FAULT("FIXED: the source is unmapped", PROBE_READ, p + 3 * PAGE + 0x123, SIGSEGV, SEGV_MAPERR);
  /* FIXED with a different size: shrink while moving. */
  unsigned char *target = (unsigned char *)free_range(2 * PAGE, 2);
  CHECK("mremap FIXED and shrink",
        remap(dest + PAGE, 4 * PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, target) == target);
  CHECK("FIXED and shrink: contents", has_pattern(target, 2 * PAGE, 100));
  CHECK_FAULT("FIXED and shrink: old range gone", PROBE_READ, dest + 4 * PAGE, SIGSEGV, SEGV_MAPERR);
  munmap(target, 2 * PAGE);
  munmap(dest, 6 * PAGE);
}

static void test_dontunmap(void) {
  unsigned char *p = map_anon(4 * PAGE, PROT_READ | PROT_WRITE);
  CHECK("mmap 4 pages", p != NULL);
  if (!p) return;
  fill_pattern(p, 4 * PAGE, 110);
  CHECK_ERRNO("mremap DONTUNMAP without MAYMOVE", (long)remap(p, 4 * PAGE, 4 * PAGE, MREMAP_DONTUNMAP, NULL), EINVAL);
  CHECK_ERRNO("mremap DONTUNMAP with a new size",
              (long)remap(p, 4 * PAGE, 8 * PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL), EINVAL);
  unsigned char *moved = remap(p, 4 * PAGE, 4 * PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL);
  CHECK("mremap MAYMOVE|DONTUNMAP", moved != MAP_FAILED && moved != p);
  if (moved == MAP_FAILED) return;
  CHECK("DONTUNMAP: the contents moved", has_pattern(moved, 4 * PAGE, 110));
  CHECK_NO_FAULT("DONTUNMAP: the old range stays mapped", PROBE_READ, p + 3 * PAGE + 0x10);
  CHECK("DONTUNMAP: the old private anonymous range reads zero", all_bytes(p, 4 * PAGE, 0));
  CHECK_NO_FAULT("DONTUNMAP: the old range is still writable", PROBE_WRITE, p + 0x10);
  CHECK("DONTUNMAP: writes to the old range do not reach the new", has_pattern(moved, 4 * PAGE, 110));
  /* The new address is a hint for DONTUNMAP without FIXED (and must be aligned). qemu 7.2 ignores it. */
  unsigned char *hint = (unsigned char *)free_range(4 * PAGE, 2);
  if (!qemu_skips("DONTUNMAP with a hint")) {
    CHECK_ERRNO("DONTUNMAP with an unaligned hint",
                (long)remap(moved, 4 * PAGE, 4 * PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, (void *)0x1234), EINVAL);
    unsigned char *again = remap(moved, 4 * PAGE, 4 * PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, hint);
    CHECK("DONTUNMAP takes a free hint", again == hint);
    CHECK("... with the contents", again == hint && has_pattern(hint, 4 * PAGE, 110));
    if (again != MAP_FAILED) munmap(again, 4 * PAGE);
  }
  munmap(moved, 4 * PAGE);
  munmap(p, 4 * PAGE);
}

/* Three areas side by side: pages [0,2) and [4,8) read-write, [2,4) read-only (one mmap, split by mprotect). */
static unsigned char *three_areas(void) {
  unsigned char *p = (unsigned char *)free_range(8 * PAGE, 4);
  p = mmap(p, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (p == MAP_FAILED) return NULL;
  fill_pattern(p, 8 * PAGE, 130);
  if (mprotect(p + 2 * PAGE, 2 * PAGE, PROT_READ) != 0) return NULL;
  return p;
}

/* Linux 6.18 (checked natively): which mremaps may span several areas. */
static void test_across_areas(void) {
  unsigned char *p = three_areas();
  CHECK("three areas", p != NULL);
  if (!p) return;
  /* In place, shrinking or the same size: only an area at the address is needed. */
  CHECK("in place shrink across areas", remap(p + PAGE, 4 * PAGE, 2 * PAGE, 0, NULL) == p + PAGE);
  CHECK_FAULT("... the tail is gone", PROBE_READ, p + 3 * PAGE, SIGSEGV, SEGV_MAPERR);
  CHECK_NO_FAULT("... what is kept stays", PROBE_READ, p + 2 * PAGE);
  munmap(p, 8 * PAGE);
  p = three_areas();
  if (!p) return;
  CHECK("in place, same size, across areas", remap(p + PAGE, 4 * PAGE, 4 * PAGE, 0, NULL) == p + PAGE);
  /* qemu 7.2 moves it somewhere else. */
  if (!qemu_skips("MAYMOVE, same size, across areas: stays"))
    CHECK("MAYMOVE, same size, across areas: stays",
          remap(p + PAGE, 4 * PAGE, 4 * PAGE, MREMAP_MAYMOVE, NULL) == p + PAGE);
  /* Growing needs the old range inside one area. */
  CHECK_ERRNO("MAYMOVE growing across areas", (long)remap(p + PAGE, 4 * PAGE, 6 * PAGE, MREMAP_MAYMOVE, NULL), EFAULT);
  /* qemu 7.2 moves it. */
  if (!qemu_skips("MAYMOVE|DONTUNMAP across areas, no FIXED"))
    CHECK_ERRNO("MAYMOVE|DONTUNMAP across areas, no FIXED",
                (long)remap(p + PAGE, 4 * PAGE, 4 * PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL), EFAULT);
  unsigned char *target = (unsigned char *)free_range(8 * PAGE, 4);
  /* A shrinking move keeps the part in the first area, and that part must lie in it. */
  CHECK_ERRNO("FIXED shrink, kept part across areas",
              (long)remap(p + PAGE, 6 * PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, target), EFAULT);
  /* qemu 7.2 (Linux 6.17's remap_move came later) moves only within one area. */
  if (!qemu_skips("same-size moves across areas")) {
    /* A pure move takes every area along, holes stay holes, and only what lands is replaced. */
    CHECK("hole in the range", munmap(p + 5 * PAGE, PAGE) == 0);
    unsigned char *sitter = mmap(target + 4 * PAGE, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    CHECK("a mapping where the hole lands", sitter == target + 4 * PAGE);
    CHECK("FIXED same-size move of areas and a hole",
          remap(p + PAGE, 6 * PAGE, 6 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, target) == target);
    CHECK("... each area at its offset, with its contents", has_pattern_from(target, 3 * PAGE, 130, PAGE));
    CHECK_FAULT("... read-only still", PROBE_WRITE, target + 2 * PAGE, SIGSEGV, SEGV_ACCERR);
    CHECK_NO_FAULT("... the mapping under the hole stays", PROBE_READ, sitter);
    CHECK_FAULT("... the old range is gone", PROBE_READ, p + 2 * PAGE, SIGSEGV, SEGV_MAPERR);
    munmap(target, 8 * PAGE);
  }
  munmap(p, 8 * PAGE);
}

/* MREMAP_DONTUNMAP of a shared area: old and new range map the same object (Linux 5.13+). */
static void test_dontunmap_shared(void) {
  /* qemu 7.2 refuses DONTUNMAP for shared mappings (EINVAL), as Linux did before 5.13. */
  if (qemu_skips("DONTUNMAP of a shared area")) return;
  unsigned char *p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK("mmap shared anonymous", p != MAP_FAILED);
  if (p == MAP_FAILED) return;
  fill_pattern(p, 2 * PAGE, 140);
  unsigned char *moved = remap(p, 2 * PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL);
  CHECK("mremap DONTUNMAP of a shared area", moved != MAP_FAILED && moved != p);
  if (moved == MAP_FAILED) return;
  CHECK("the new range has the contents", has_pattern(moved, 2 * PAGE, 140));
  CHECK("the old range still shows the object", has_pattern(p, 2 * PAGE, 140));
  moved[5] = 0x5a;
  CHECK("a store through the new range shows in the old", p[5] == 0x5a);
  munmap(moved, 2 * PAGE);
  munmap(p, 2 * PAGE);
}

static void test_validation(void) {
  uintptr_t nothing = free_range(4 * PAGE, 1);
  CHECK_ERRNO("mremap of an unmapped old address", (long)remap((void *)nothing, PAGE, 2 * PAGE, MREMAP_MAYMOVE, NULL),
              EFAULT);
  /* Alone, with free pages around it: a neighbour could merge with it and make the "past the mapping" case valid. */
  uintptr_t alone = free_range(2 * PAGE, 4);
  unsigned char *p = mmap((void *)alone, 2 * PAGE, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  CHECK("mmap 2 pages", p == (void *)alone);
  if (p != (void *)alone) return;
  CHECK_ERRNO("mremap unaligned old address", (long)remap(p + 1, PAGE, 2 * PAGE, MREMAP_MAYMOVE, NULL), EINVAL);
  /* qemu 7.2 says ENOMEM. */
  if (!qemu_skips("mremap new size 0"))
    CHECK_ERRNO("mremap new size 0", (long)remap(p, PAGE, 0, MREMAP_MAYMOVE, NULL), EINVAL);
  CHECK_ERRNO("mremap unknown flag", (long)remap(p, PAGE, 2 * PAGE, 0x80, NULL), EINVAL);
  /* The old range must lie within one mapping. */
  CHECK_ERRNO("mremap old range running past the mapping",
              (long)remap(p, 4 * PAGE, 8 * PAGE, MREMAP_MAYMOVE, NULL), EFAULT);
  CHECK("failed mremaps left the mapping", p[0] == 0 && munmap(p, 2 * PAGE) == 0);
}

static void test_file(void) {
  /* A moved file mapping still reads the file at its offset, and can grow within the file. */
  int fd = temp_file(6 * PAGE, 120);
  unsigned char *f = fd < 0 ? MAP_FAILED : mmap(NULL, 2 * PAGE, PROT_READ, MAP_PRIVATE, fd, 2 * PAGE);
  CHECK("mmap a file at offset 2 pages", f != MAP_FAILED);
  if (f == MAP_FAILED) return;
  close(fd);
  unsigned char *target = (unsigned char *)free_range(4 * PAGE, 2);
  unsigned char *moved = remap(f, 2 * PAGE, 4 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, target);
  CHECK("mremap a file mapping, growing", moved == target);
  CHECK("moved file mapping: reads the file at its offset", has_pattern_from(target, 4 * PAGE, 120, 2 * PAGE));
  munmap(target, 4 * PAGE);
}

int main(int argc, char **argv) {
  mem_init(argc, argv, NULL);
  test_in_place();
  test_maymove();
  test_fixed();
  test_dontunmap();
  test_across_areas();
  test_dontunmap_shared();
  test_validation();
  test_file();
  return finish();
}
