/*
 * Guard regions, MADV_GUARD_INSTALL (102) / MADV_GUARD_REMOVE (103) (memory-semantics.md §4): any access to a
 * guard page raises SIGSEGV at that address; they cost no region (/proc/self/maps is unchanged); installing
 * zaps populated pages; guards survive MADV_DONTNEED, MADV_FREE and mprotect; REMOVE clears only the markers;
 * munmap clears them, mremap moves them; mlocked ranges → EINVAL, unmapped → ENOMEM, unaligned → EINVAL; a
 * syscall reading or writing a guard page fails with EFAULT. Built for x86_64 too and run natively.
 *
 * Not in memory-semantics.md, observed on Linux 6.18 (both architectures deliver it the same way): a guard
 * hit is SIGSEGV with si_code SEGV_MAPERR (the fault handler returns VM_FAULT_SIGSEGV, which the arch code
 * reports as "nothing mapped"), even though the page is inside a mapping.
 *
 * qemu-user 7.2 accepts the advice and ignores it: under --qemu every check is skipped.
 */
// fixture: native
#include "mem_check.h"

static int guard(void *addr, size_t len) { return madvise(addr, len, MADV_GUARD_INSTALL); }
static int unguard(void *addr, size_t len) { return madvise(addr, len, MADV_GUARD_REMOVE); }

/* /proc/self/maps read with raw syscalls into a static buffer (no allocation between two reads). */
static char maps_before[1 << 16], maps_after[1 << 16];
static long read_maps(char *buffer, size_t size) {
  int fd = open("/proc/self/maps", O_RDONLY);
  if (fd < 0) return -1;
  long total = 0;
  for (;;) {
    ssize_t n = read(fd, buffer + total, size - 1 - (size_t)total);
    if (n <= 0) break;
    total += n;
  }
  close(fd);
  buffer[total] = 0;
  return total;
}
static int count_lines(const char *text) {
  int lines = 0;
  for (; *text; text++) lines += *text == '\n';
  return lines;
}

static void test_access(void) {
  unsigned char *p = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK("mmap 4 pages rwx", p != MAP_FAILED);
  if (p == MAP_FAILED) return;
  memset(p, 0x11, 4 * PAGE);
  CHECK("MADV_GUARD_INSTALL on page 1", guard(p + PAGE, PAGE) == 0);
  CHECK_FAULT("guard page", PROBE_READ, p + PAGE + 0x123, SIGSEGV, SEGV_MAPERR);
  CHECK_FAULT("guard page", PROBE_WRITE, p + 2 * PAGE - 1, SIGSEGV, SEGV_MAPERR);
  CHECK_FAULT("guard page", PROBE_EXEC, p + PAGE, SIGSEGV, SEGV_MAPERR);
  CHECK_NO_FAULT("the page before the guard", PROBE_WRITE, p + PAGE - 1);
  CHECK_NO_FAULT("the page after the guard", PROBE_WRITE, p + 2 * PAGE);
  CHECK("neighbours keep their contents",
        all_bytes(p, PAGE - 1, 0x11) && all_bytes(p + 2 * PAGE + 1, 2 * PAGE - 1, 0x11));
  munmap(p, 4 * PAGE);
}

static void test_no_region_cost(void) {
  unsigned char *p = map_anon(8 * PAGE, PROT_READ | PROT_WRITE);
  CHECK("mmap 8 pages", p != NULL);
  if (!p) return;
  long before = read_maps(maps_before, sizeof maps_before);
  int installed = guard(p + 2 * PAGE, PAGE) == 0 && guard(p + 5 * PAGE, 2 * PAGE) == 0;
  long after = read_maps(maps_after, sizeof maps_after);
  CHECK("install guards on two ranges in the middle", installed);
  CHECK("/proc/self/maps readable", before > 0 && after > 0);
  CHECK("guards add no /proc/self/maps line", count_lines(maps_before) == count_lines(maps_after));
  CHECK("guards leave /proc/self/maps exactly as it was", strcmp(maps_before, maps_after) == 0);
  int removed = unguard(p, 8 * PAGE) == 0;
  read_maps(maps_after, sizeof maps_after);
  CHECK("removing guards leaves /proc/self/maps as it was", removed && strcmp(maps_before, maps_after) == 0);
  munmap(p, 8 * PAGE);
}

static void test_zap_and_remove(void) {
  unsigned char *p = map_anon(4 * PAGE, PROT_READ | PROT_WRITE);
  CHECK("mmap 4 pages", p != NULL);
  if (!p) return;
  fill_pattern(p, 4 * PAGE, 150);
  /* Guards on pages 1 and 3; pages 0 and 2 stay populated. */
  CHECK("install guards on pages 1 and 3", guard(p + PAGE, PAGE) == 0 && guard(p + 3 * PAGE, PAGE) == 0);
  CHECK("installing twice is fine (no nesting)", guard(p + PAGE, PAGE) == 0);
  CHECK("MADV_GUARD_REMOVE over all 4 pages", unguard(p, 4 * PAGE) == 0);
  CHECK("REMOVE leaves unguarded pages untouched",
        has_pattern(p, PAGE, 150) && has_pattern_from(p + 2 * PAGE, PAGE, 150, 2 * PAGE));
  CHECK("installing zapped the guarded pages: they read back zero",
        all_bytes(p + PAGE, PAGE, 0) && all_bytes(p + 3 * PAGE, PAGE, 0));
  CHECK_NO_FAULT("a removed guard page is writable again", PROBE_WRITE, p + PAGE + 8);
  CHECK("REMOVE where there are no guards", unguard(p, 4 * PAGE) == 0);
  munmap(p, 4 * PAGE);
}

static void test_survival(void) {
  unsigned char *p = map_anon(3 * PAGE, PROT_READ | PROT_WRITE);
  CHECK("mmap 3 pages", p != NULL);
  if (!p) return;
  CHECK("install a guard on page 1", guard(p + PAGE, PAGE) == 0);
  CHECK("MADV_DONTNEED over the guard", madvise(p, 3 * PAGE, MADV_DONTNEED) == 0);
  CHECK_FAULT("guard survives DONTNEED", PROBE_READ, p + PAGE + 0x10, SIGSEGV, SEGV_MAPERR);
  CHECK("MADV_FREE over the guard", madvise(p, 3 * PAGE, MADV_FREE) == 0);
  CHECK_FAULT("guard survives FREE", PROBE_READ, p + PAGE + 0x20, SIGSEGV, SEGV_MAPERR);
  CHECK("mprotect read-only over the guard", mprotect(p, 3 * PAGE, PROT_READ) == 0);
  CHECK_FAULT("guard survives mprotect", PROBE_READ, p + PAGE + 0x30, SIGSEGV, SEGV_MAPERR);
  CHECK("mprotect read-write again", mprotect(p, 3 * PAGE, PROT_READ | PROT_WRITE) == 0);
  CHECK_FAULT("guard survives mprotect back", PROBE_WRITE, p + PAGE + 0x40, SIGSEGV, SEGV_MAPERR);
  CHECK_NO_FAULT("the rest is read-write again", PROBE_WRITE, p + 2 * PAGE);
  munmap(p, 3 * PAGE);
}

static void test_unmap_and_move(void) {
  unsigned char *p = map_anon(3 * PAGE, PROT_READ | PROT_WRITE);
  CHECK("mmap 3 pages", p != NULL);
  if (!p) return;
  CHECK("install a guard on page 1", guard(p + PAGE, PAGE) == 0);
  munmap(p, 3 * PAGE);
  void *again = mmap(p, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  CHECK("map the same place again", again == p);
  CHECK_NO_FAULT("munmap cleared the guard", PROBE_READ, p + PAGE + 0x10);
  CHECK("and the page is zero", all_bytes(p + PAGE, PAGE, 0));

  fill_pattern(p, 3 * PAGE, 151);
  CHECK("install a guard on page 1 again", guard(p + PAGE, PAGE) == 0);
  unsigned char *target = (unsigned char *)free_range(3 * PAGE, 2);
  unsigned char *moved = mremap(p, 3 * PAGE, 3 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, target);
  CHECK("mremap the guarded range", moved == target);
  CHECK_FAULT("mremap moved the guard", PROBE_READ, target + PAGE + 0x10, SIGSEGV, SEGV_MAPERR);
  CHECK("mremap moved the other pages' contents",
        has_pattern(target, PAGE, 151) && has_pattern_from(target + 2 * PAGE, PAGE, 151, 2 * PAGE));
  CHECK_FAULT("the old range is gone", PROBE_READ, p + PAGE + 0x10, SIGSEGV, SEGV_MAPERR);
  munmap(target, 3 * PAGE);
}

static void test_file_backed(void) {
  int fd = temp_file(3 * PAGE, 152);
  unsigned char *f = fd < 0 ? MAP_FAILED : mmap(NULL, 3 * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
  unsigned char *s = fd < 0 ? MAP_FAILED : mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (fd >= 0) close(fd);
  CHECK("mmap a file read-only private and read-write shared", f != MAP_FAILED && s != MAP_FAILED);
  if (f == MAP_FAILED || s == MAP_FAILED) return;
  CHECK("install a guard in a read-only private file mapping", guard(f + PAGE, PAGE) == 0);
  CHECK_FAULT("file guard", PROBE_READ, f + PAGE + 0x123, SIGSEGV, SEGV_MAPERR);
  CHECK("REMOVE the file guard", unguard(f + PAGE, PAGE) == 0);
  CHECK("a removed file guard shows the file again", has_pattern(f, 3 * PAGE, 152));

  s[2 * PAGE] = 0x99;
  CHECK("install a guard in a shared file mapping", guard(s + 2 * PAGE, PAGE) == 0);
  CHECK_FAULT("shared file guard", PROBE_WRITE, s + 2 * PAGE + 1, SIGSEGV, SEGV_MAPERR);
  CHECK("REMOVE the shared file guard", unguard(s, 3 * PAGE) == 0);
  CHECK("shared: the write is in the file, so it shows again", s[2 * PAGE] == 0x99);
  munmap(f, 3 * PAGE);
  munmap(s, 3 * PAGE);
}

static void test_errors(void) {
  unsigned char *p = map_anon(2 * PAGE, PROT_READ | PROT_WRITE);
  CHECK("mmap 2 pages", p != NULL);
  if (!p) return;
  CHECK_ERRNO("MADV_GUARD_INSTALL unaligned", guard(p + 1, PAGE), EINVAL);
  CHECK_ERRNO("MADV_GUARD_REMOVE unaligned", unguard(p + 1, PAGE), EINVAL);
  uintptr_t nothing = free_range(2 * PAGE, 1);
  CHECK_ERRNO("MADV_GUARD_INSTALL on an unmapped range", guard((void *)nothing, 2 * PAGE), ENOMEM);
  CHECK_ERRNO("MADV_GUARD_REMOVE on an unmapped range", unguard((void *)nothing, 2 * PAGE), ENOMEM);
  if (mlock(p, 2 * PAGE) == 0) {
    p[0] = 5;
    CHECK_ERRNO("MADV_GUARD_INSTALL on mlocked memory", guard(p, PAGE), EINVAL);
    CHECK("the mlocked page is untouched", p[0] == 5);
    munlock(p, 2 * PAGE);
    CHECK("after munlock, MADV_GUARD_INSTALL works", guard(p, PAGE) == 0);
  } else {
    CHECK("mlock 2 pages", 0);
  }
  munmap(p, 2 * PAGE);

  /* [A][hole]: the mapped part gets its guard, then ENOMEM for the hole (Linux walks the range). */
  uintptr_t base = free_range(2 * PAGE, 2);
  unsigned char *a = mmap((void *)base, PAGE, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  CHECK("mmap a page with a hole after it", a == (void *)base);
  if (a == (void *)base) {
    CHECK_ERRNO("MADV_GUARD_INSTALL over a page and a hole", guard(a, 2 * PAGE), ENOMEM);
    CHECK_FAULT("the mapped part was guarded (Linux)", PROBE_READ, a + 0x10, SIGSEGV, SEGV_MAPERR);
    munmap(a, PAGE);
  }
}

static void test_syscall_access(void) {
  unsigned char *p = map_anon(2 * PAGE, PROT_READ | PROT_WRITE);
  CHECK("mmap 2 pages", p != NULL);
  if (!p) return;
  CHECK("install a guard on page 1", guard(p + PAGE, PAGE) == 0);
  int fd = temp_file(PAGE, 153);
  CHECK("temp file", fd >= 0);
  CHECK_ERRNO("pread into a guard page", pread(fd, p + PAGE, 100, 0), EFAULT);
  CHECK_ERRNO("pwrite from a guard page", pwrite(fd, p + PAGE, 100, 0), EFAULT);
  CHECK("the file is untouched", file_has_pattern(fd, 0, PAGE, 153));
  /* A buffer that starts before the guard page and runs into it: only the part before is transferred. */
  CHECK("pread running into a guard page stops at it", pread(fd, p + PAGE - 10, 100, 0) == 10);
  CHECK("pread delivered the bytes before the guard", has_pattern(p + PAGE - 10, 10, 153));
  close(fd);
  munmap(p, 2 * PAGE);
}

int main(int argc, char **argv) {
  mem_init(argc, argv, NULL);
  if (qemu_skips("guard regions (qemu-user accepts MADV_GUARD_INSTALL and ignores it)")) return finish();
  test_access();
  test_no_region_cost();
  test_zap_and_remove();
  test_survival();
  test_unmap_and_move();
  test_file_backed();
  test_errors();
  test_syscall_access();
  return finish();
}
