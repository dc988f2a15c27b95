/*
 * mmap (memory-semantics.md §3): argument validation, hints, zero fill, file mappings at an offset, private
 * vs shared write-back, and the faults an access raises (PROT_NONE → SEGV_ACCERR, nothing mapped →
 * SEGV_MAPERR, both with the exact si_addr). Built for x86_64 too and run natively: every expectation is
 * Linux's. `--qemu` skips what qemu-user 7.2 gets wrong.
 */
// fixture: native
#include "mem_check.h"

static void test_fixed_noreplace(uintptr_t free_at) {
  unsigned char *existing = map_anon(4 * PAGE, PROT_READ | PROT_WRITE);
  CHECK("mmap a mapping to collide with", existing != NULL);
  existing[0] = 7;
  /* qemu 7.2 treats MAP_FIXED_NOREPLACE over a mapping as a hint and maps elsewhere. */
  if (!qemu_skips("MAP_FIXED_NOREPLACE over a mapping gives EEXIST")) {
    CHECK_ERRNO("mmap MAP_FIXED_NOREPLACE over a mapping",
                (long)mmap(existing + PAGE, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0),
                EEXIST);
    CHECK_ERRNO("mmap MAP_FIXED_NOREPLACE overlapping the start of a mapping",
                (long)mmap(existing - PAGE, 2 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                           -1, 0),
                EEXIST);
  }
  CHECK("the collided mapping is untouched", existing[0] == 7);
  munmap(existing, 4 * PAGE);
  void *placed = mmap((void *)free_at, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  CHECK("mmap MAP_FIXED_NOREPLACE on a free range lands there", placed == (void *)free_at);
  munmap(placed, PAGE);
}

static void test_shared_validate(int fd) {
  /* qemu 7.2 refuses MAP_SHARED_VALIDATE altogether (EINVAL). */
  if (qemu_skips("MAP_SHARED_VALIDATE")) return;
  /* 0x200000 is no flag Linux knows; MAP_SYNC is known but only allowed on DAX files. */
  CHECK_ERRNO("mmap MAP_SHARED_VALIDATE with an unknown flag",
              (long)mmap(NULL, PAGE, PROT_READ, MAP_SHARED_VALIDATE | 0x200000, fd, 0), EOPNOTSUPP);
  CHECK_ERRNO("mmap MAP_SHARED_VALIDATE with MAP_SYNC on a plain file",
              (long)mmap(NULL, PAGE, PROT_READ, MAP_SHARED_VALIDATE | MAP_SYNC, fd, 0), EOPNOTSUPP);
  void *validated = mmap(NULL, PAGE, PROT_READ, MAP_SHARED_VALIDATE, fd, 0);
  CHECK("mmap MAP_SHARED_VALIDATE with known flags reads the file",
        validated != MAP_FAILED && has_pattern_from(validated, PAGE, 1, 0));
  if (validated != MAP_FAILED) munmap(validated, PAGE);
}

static void test_validation(void) {
  int fd = temp_file(4 * PAGE, 1);
  CHECK("temp file", fd >= 0);

  CHECK_ERRNO("mmap len 0", (long)mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), EINVAL);
  uintptr_t free_at = free_range(4 * PAGE, 1);
  CHECK_ERRNO("mmap MAP_FIXED unaligned address",
              (long)mmap((void *)(free_at + 100), PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0),
              EINVAL);
  CHECK_ERRNO("mmap file with fd -1", (long)mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, -1, 0), EBADF);
  CHECK_ERRNO("mmap file with a closed fd", (long)mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, 999, 0), EBADF);
  CHECK_ERRNO("mmap file offset not page aligned", (long)mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 100), EINVAL);
  CHECK_ERRNO("mmap neither private nor shared", (long)mmap(NULL, PAGE, PROT_READ, MAP_ANONYMOUS, -1, 0), EINVAL);
  /* do_mmap never validates prot (mprotect does): an unknown bit is dropped. qemu 7.2 refuses it (EINVAL). */
  if (!qemu_skips("mmap ignores unknown prot bits")) {
    void *odd = mmap(NULL, PAGE, PROT_READ | PROT_WRITE | 0x40, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK("mmap with an unknown prot bit maps", odd != MAP_FAILED);
    if (odd != MAP_FAILED) {
      ((volatile char *)odd)[0] = 1;
      CHECK("... and the mapping is plain read-write", ((volatile char *)odd)[0] == 1);
      CHECK_ERRNO("mprotect with that bit is EINVAL", mprotect(odd, PAGE, PROT_READ | 0x40), EINVAL);
      munmap(odd, PAGE);
    }
  }

  test_fixed_noreplace(free_at);
  test_shared_validate(fd);
  /* A shared writable mapping needs a writable fd. */
  int read_only = temp_file_opened(PAGE, 1, O_RDONLY);
  CHECK_ERRNO("mmap MAP_SHARED PROT_WRITE of a read-only fd",
              (long)mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, read_only, 0), EACCES);
  void *private_rw = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, read_only, 0);
  CHECK("mmap MAP_PRIVATE PROT_WRITE of a read-only fd works", private_rw != MAP_FAILED);
  if (private_rw != MAP_FAILED) munmap(private_rw, PAGE);
  close(read_only);
  close(fd);
}

static void test_hint(void) {
  uintptr_t hint = free_range(8 * PAGE, 4);
  void *p = mmap((void *)hint, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK("mmap hint is used when the range is free", p == (void *)hint);
  if (p != MAP_FAILED) {
    /* A hint over an existing mapping is not an error: the kernel picks another place and keeps the old one. */
    ((unsigned char *)p)[0] = 9;
    void *q = mmap((void *)hint, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK("mmap hint over a mapping goes elsewhere", q != MAP_FAILED && q != p);
    CHECK("mmap hint over a mapping leaves it alone", ((unsigned char *)p)[0] == 9);
    if (q != MAP_FAILED) munmap(q, PAGE);
    munmap(p, 8 * PAGE);
  }
  /* An unaligned hint without MAP_FIXED is rounded down, not refused. */
  void *r = mmap((void *)(hint + 123), PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK("mmap unaligned hint is rounded down", r == (void *)hint);
  if (r != MAP_FAILED) munmap(r, PAGE);
}

static void test_anonymous(void) {
  size_t len = 64 * PAGE;
  unsigned char *p = map_anon(len, PROT_READ | PROT_WRITE);
  CHECK("mmap anonymous", p != NULL);
  if (!p) return;
  CHECK("mmap result is page aligned", ((uintptr_t)p & (PAGE - 1)) == 0);
  CHECK("anonymous memory is zero-filled", all_bytes(p, len, 0));
  fill_pattern(p, len, 2);
  CHECK("anonymous memory keeps what was written", has_pattern(p, len, 2));
  /* A length that is not a page multiple maps whole pages. */
  unsigned char *odd = map_anon(PAGE + 1, PROT_READ | PROT_WRITE);
  CHECK("mmap of PAGE+1 bytes", odd != NULL);
  if (odd) {
    CHECK_NO_FAULT("mmap of PAGE+1 bytes maps the whole second page", PROBE_WRITE, odd + 2 * PAGE - 1);
    munmap(odd, 2 * PAGE);
  }
  /* MAP_FIXED replaces what was there with fresh zeroed memory. */
  void *again = mmap(p + PAGE, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  CHECK("mmap MAP_FIXED over a mapping", again == p + PAGE);
  CHECK("MAP_FIXED replacement is zero-filled", all_bytes(p + PAGE, PAGE, 0));
  CHECK("MAP_FIXED leaves the neighbours alone",
        has_pattern(p, PAGE, 2) && has_pattern_from(p + 2 * PAGE, len - 2 * PAGE, 2, 2 * PAGE));
  munmap(p, len);
}

static void test_file(void) {
  /* 3 pages and 100 bytes of pattern 3. */
  size_t size = 3 * PAGE + 100;
  int fd = temp_file(size, 3);
  CHECK("temp file for mapping", fd >= 0);
  if (fd < 0) return;
  unsigned char *at1 = mmap(NULL, 2 * PAGE, PROT_READ, MAP_PRIVATE, fd, PAGE);
  CHECK("mmap file at offset PAGE", at1 != MAP_FAILED);
  if (at1 != MAP_FAILED) {
    CHECK("file mapping reads the file at the offset", has_pattern_from(at1, 2 * PAGE, 3, PAGE));
    munmap(at1, 2 * PAGE);
  }
  unsigned char *tail = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 3 * PAGE);
  CHECK("mmap the file's last partial page", tail != MAP_FAILED);
  if (tail != MAP_FAILED) {
    CHECK("last page: the file's bytes", has_pattern_from(tail, 100, 3, 3 * PAGE));
    CHECK("last page: zeroes past end of file", all_bytes(tail + 100, PAGE - 100, 0));
    munmap(tail, PAGE);
  }

  unsigned char *priv = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  CHECK("mmap file MAP_PRIVATE writable", priv != MAP_FAILED);
  if (priv != MAP_FAILED) {
    memset(priv + 10, 0xee, 5000);
    CHECK("MAP_PRIVATE write is visible in the mapping", all_bytes(priv + 10, 5000, 0xee));
    CHECK("MAP_PRIVATE write does not reach the file", file_has_pattern(fd, 0, size, 3));
    munmap(priv, 2 * PAGE);
    CHECK("MAP_PRIVATE write still not in the file after munmap", file_has_pattern(fd, 0, size, 3));
  }

  unsigned char *shared = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, PAGE);
  CHECK("mmap file MAP_SHARED writable", shared != MAP_FAILED);
  if (shared != MAP_FAILED) {
    memset(shared + 1000, 0xab, 4000);
    CHECK("msync MS_SYNC", msync(shared, 2 * PAGE, MS_SYNC) == 0);
    unsigned char back[4000];
    CHECK("MAP_SHARED write reaches the file",
          pread(fd, back, sizeof back, PAGE + 1000) == (ssize_t)sizeof back && all_bytes(back, sizeof back, 0xab));
    CHECK("MAP_SHARED write leaves the rest of the file", file_has_pattern(fd, PAGE + 5000, size - PAGE - 5000, 3) &&
                                                               file_has_pattern(fd, 0, PAGE + 1000, 3));
    /* And the other way round: a write to the file shows in the shared mapping. */
    unsigned char seven[16];
    memset(seven, 7, sizeof seven);
    CHECK("pwrite into a mapped file", pwrite(fd, seven, sizeof seven, PAGE + 64) == (ssize_t)sizeof seven);
    CHECK("the file write shows in the MAP_SHARED mapping", all_bytes(shared + 64, sizeof seven, 7));
    munmap(shared, 2 * PAGE);
  }
  close(fd);

  /* A MAP_PRIVATE page follows the file until it is written (Linux; POSIX leaves it open); truncation takes even
     written pages away (SIGBUS past the new end), and a regrown file reads zeroes there. */
  int fd3 = temp_file(2 * PAGE, 5);
  unsigned char *follow = fd3 < 0 ? MAP_FAILED : mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd3, 0);
  CHECK("mmap a file MAP_PRIVATE to watch it", follow != MAP_FAILED);
  if (follow != MAP_FAILED) {
    unsigned char nine[8];
    memset(nine, 9, sizeof nine);
    follow[PAGE + 100] = 0x5a; /* page 1 becomes the mapping's own copy */
    CHECK("pwrite into the file", pwrite(fd3, nine, sizeof nine, 16) == (ssize_t)sizeof nine &&
                                      pwrite(fd3, nine, sizeof nine, PAGE + 16) == (ssize_t)sizeof nine);
    CHECK("an unwritten MAP_PRIVATE page shows the file's later write", all_bytes(follow + 16, sizeof nine, 9));
    CHECK("a written one keeps its copy", !all_bytes(follow + PAGE + 16, sizeof nine, 9));
    CHECK("truncate the file to 100 bytes", ftruncate(fd3, 100) == 0);
    CHECK_FAULT("MAP_PRIVATE page past the new end", PROBE_READ, follow + PAGE + 8, SIGBUS, BUS_ADRERR);
    CHECK("regrow the file", ftruncate(fd3, 2 * PAGE) == 0);
    CHECK("the regrown part reads zeroes through the mapping", all_bytes(follow + PAGE, PAGE, 0));
    munmap(follow, 2 * PAGE);
  }
  if (fd3 >= 0) close(fd3);

  int fd2 = temp_file(2 * PAGE, 4);
  unsigned char *after_close = mmap(NULL, 2 * PAGE, PROT_READ, MAP_PRIVATE, fd2, 0);
  close(fd2);
  CHECK("a file mapping outlives its fd", after_close != MAP_FAILED && has_pattern(after_close, 2 * PAGE, 4));
  if (after_close != MAP_FAILED) munmap(after_close, 2 * PAGE);
}

static void test_faults(void) {
  unsigned char *none = map_anon(2 * PAGE, PROT_NONE);
  CHECK("mmap PROT_NONE", none != NULL);
  if (none) {
    CHECK_FAULT("PROT_NONE", PROBE_READ, none + 0x123, SIGSEGV, SEGV_ACCERR);
    CHECK_FAULT("PROT_NONE", PROBE_WRITE, none + PAGE + 0x7ff, SIGSEGV, SEGV_ACCERR);
    munmap(none, 2 * PAGE);
  }
  unsigned char *ro = map_anon(PAGE, PROT_READ);
  CHECK("mmap PROT_READ", ro != NULL);
  if (ro) {
    CHECK_NO_FAULT("PROT_READ", PROBE_READ, ro + 5);
    CHECK("PROT_READ anonymous reads zero", ro[5] == 0);
    CHECK_FAULT("PROT_READ", PROBE_WRITE, ro + 0x123, SIGSEGV, SEGV_ACCERR);
    munmap(ro, PAGE);
  }
  uintptr_t hole = free_range(PAGE, 1);
  CHECK_FAULT("unmapped", PROBE_READ, hole + 0x123, SIGSEGV, SEGV_MAPERR);
  CHECK_FAULT("unmapped", PROBE_WRITE, hole + 0xfff, SIGSEGV, SEGV_MAPERR);
}

int main(int argc, char **argv) {
  mem_init(argc, argv, NULL);
  test_validation();
  test_hint();
  test_anonymous();
  test_file();
  test_faults();
  return finish();
}
