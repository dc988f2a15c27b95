/*
 * Basic memory syscalls: brk, anonymous and file mmap, munmap, mprotect, mremap, madvise(DONTNEED), and
 * EFAULT when the kernel is handed memory the process may not use that way. Faulting accesses (SIGSEGV)
 * belong to the memory suite, not here. Also built for x86_64 and run natively: every expectation is Linux's.
 */
// fixture: native
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"

#define PAGE 4096UL

static int all_bytes(const unsigned char *p, size_t n, unsigned char value) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != value) return 0;
  return 1;
}

static uintptr_t raw_brk(uintptr_t addr) { return (uintptr_t)syscall(SYS_brk, addr); }

static void test_brk(void) {
  /*
   * Raw brk only, and the break is put back exactly where it was, so malloc's own heap is untouched. Nothing
   * may print (stdio may malloc, and malloc may move the break) until the break is restored: results are
   * collected first and reported after.
   */
  uintptr_t start = raw_brk(0);
  int query_ok = start != 0 && start != (uintptr_t)-1;
  int stable = raw_brk(0) == start;
  int grow = raw_brk(start + 16 * PAGE) == start + 16 * PAGE;
  unsigned char *heap = (unsigned char *)start;
  /* Fresh pages are zero; the partial page the break started in (if unaligned) belongs to the old heap. */
  uintptr_t first_full = (start + PAGE - 1) & ~(PAGE - 1);
  size_t fresh_len = start + 16 * PAGE - first_full;
  int zero_filled = grow && all_bytes((unsigned char *)first_full, fresh_len, 0);
  int writable = 0;
  if (grow) {
    memset(heap, 0x5a, 16 * PAGE);
    writable = all_bytes(heap, 16 * PAGE, 0x5a);
  }
  int unaligned = raw_brk(start + 3 * PAGE + 10) == start + 3 * PAGE + 10;
  int shrink = raw_brk(start) == start;
  int regrow = raw_brk(start + 16 * PAGE) == start + 16 * PAGE;
  /* Shrinking released the pages; growing again must hand out fresh zeroed memory. */
  int regrown_zero = regrow && all_bytes((unsigned char *)first_full, fresh_len, 0);
  int below_refused = raw_brk(start - 64 * PAGE) == start + 16 * PAGE;
  int huge_refused = raw_brk(start + (1UL << 46)) == start + 16 * PAGE;
  int restored = raw_brk(start) == start;

  CHECK("brk query", query_ok);
  CHECK("brk query is stable", stable);
  CHECK("brk grow", grow);
  CHECK("brk memory zero-filled", zero_filled);
  CHECK("brk memory writable", writable);
  CHECK("brk unaligned value returned as asked", unaligned);
  CHECK("brk shrink", shrink);
  CHECK("brk regrow", regrow);
  CHECK("brk regrown memory zeroed", regrown_zero);
  CHECK("brk below start refused", below_refused);
  CHECK("brk huge refused", huge_refused);
  CHECK("brk restore", restored);
  void *from_malloc = malloc(100000);
  CHECK("malloc still works", from_malloc != NULL);
  memset(from_malloc, 1, 100000);
  free(from_malloc);
}

static void test_anonymous(void) {
  size_t len = 1 << 20;
  unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK("mmap anonymous", p != MAP_FAILED);
  CHECK("mmap page aligned", ((uintptr_t)p & (PAGE - 1)) == 0);
  CHECK("mmap zero-filled", all_bytes(p, len, 0));
  memset(p, 0xa5, len);
  CHECK("mmap writable", all_bytes(p, len, 0xa5));

  CHECK("madvise dontneed", madvise(p + PAGE, 2 * PAGE, MADV_DONTNEED) == 0);
  CHECK("madvise dontneed zeroes", all_bytes(p + PAGE, 2 * PAGE, 0));
  CHECK("madvise dontneed leaves the rest", all_bytes(p, PAGE, 0xa5) && all_bytes(p + 3 * PAGE, len - 3 * PAGE, 0xa5));
  CHECK("madvise willneed", madvise(p, len, MADV_WILLNEED) == 0);
  CHECK_ERRNO("madvise unaligned", madvise(p + 1, PAGE, MADV_DONTNEED), EINVAL);
#ifndef __aarch64__
  /* Linux says EINVAL; qemu-aarch64 7.2 accepts any advice, so only the native build checks this. */
  CHECK_ERRNO("madvise bad advice", madvise(p, PAGE, 12345), EINVAL);
#endif

  CHECK("mprotect read-only", mprotect(p, PAGE, PROT_READ) == 0);
  CHECK("read after mprotect", p[0] == 0xa5 && p[PAGE - 1] == 0xa5);
  CHECK("mprotect back to rw", mprotect(p, PAGE, PROT_READ | PROT_WRITE) == 0);
  p[0] = 1;
  CHECK("write after mprotect rw", p[0] == 1);
  CHECK_ERRNO("mprotect unaligned", mprotect(p + 1, PAGE, PROT_READ), EINVAL);
  CHECK_ERRNO("mprotect bad prot", mprotect(p, PAGE, 0x100), EINVAL);

  /* MAP_FIXED over part of a live mapping replaces it with fresh zero pages. */
  unsigned char *fixed = mmap(p + 4 * PAGE, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  CHECK("mmap fixed", fixed == p + 4 * PAGE);
  CHECK("mmap fixed zeroes", all_bytes(fixed, PAGE, 0) && p[5 * PAGE] == 0xa5);

  /* Unmapping a hole, then mprotect across it fails with ENOMEM. */
  CHECK("munmap middle page", munmap(p + 8 * PAGE, PAGE) == 0);
  CHECK_ERRNO("mprotect across hole", mprotect(p + 7 * PAGE, 3 * PAGE, PROT_READ), ENOMEM);
  CHECK("munmap already unmapped", munmap(p + 8 * PAGE, PAGE) == 0);

  CHECK("munmap", munmap(p, len) == 0);

  unsigned char *r = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  memset(r, 0x3c, 4 * PAGE);
  unsigned char *q = mremap(r, 4 * PAGE, 32 * PAGE, MREMAP_MAYMOVE);
  CHECK("mremap grow", q != MAP_FAILED);
  if (q != MAP_FAILED) {
    CHECK("mremap keeps contents", all_bytes(q, 4 * PAGE, 0x3c));
    CHECK("mremap new part zeroed", all_bytes(q + 4 * PAGE, 28 * PAGE, 0));
    CHECK("mremap shrink in place", mremap(q, 32 * PAGE, 2 * PAGE, 0) == q);
    CHECK_ERRNO("mremap bad flags", mremap(q, 2 * PAGE, 4 * PAGE, 0x80), EINVAL);
    CHECK("munmap after mremap", munmap(q, 2 * PAGE) == 0);
  }
  CHECK_ERRNO("mremap unaligned", mremap((void *)(uintptr_t)(PAGE + 1), PAGE, 2 * PAGE, MREMAP_MAYMOVE), EINVAL);

  CHECK_ERRNO("mmap zero length", mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), EINVAL);
  CHECK_ERRNO("mmap neither private nor shared", mmap(NULL, PAGE, PROT_READ, MAP_ANONYMOUS, -1, 0), EINVAL);
  CHECK_ERRNO("mmap fixed unaligned", mmap((void *)(uintptr_t)(PAGE + 1), PAGE, PROT_READ,
                                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0),
              EINVAL);
  CHECK_ERRNO("mmap bad fd", mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, 12345, 0), EBADF);
  CHECK_ERRNO("munmap unaligned", munmap((void *)(uintptr_t)(PAGE + 1), PAGE), EINVAL);
  CHECK_ERRNO("munmap zero length", munmap((void *)(uintptr_t)(PAGE * 16), 0), EINVAL);

  unsigned char *shared = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK("mmap shared anonymous", shared != MAP_FAILED && all_bytes(shared, 2 * PAGE, 0));
  munmap(shared, 2 * PAGE);
}

static void test_file_mapping(void) {
  char path[] = "/tmp/guest-mem-XXXXXX";
  int fd = mkstemp(path);
  CHECK("mkstemp", fd >= 0);
  unlink(path);
  unsigned char content[PAGE + 100];
  for (size_t i = 0; i < sizeof content; i++) content[i] = (unsigned char)(i * 7);
  CHECK("write file", write(fd, content, sizeof content) == (ssize_t)sizeof content);

  unsigned char *m = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  CHECK("mmap file private", m != MAP_FAILED);
  CHECK("file contents mapped", memcmp(m, content, sizeof content) == 0);
  CHECK("tail of last page zero", all_bytes(m + sizeof content, 2 * PAGE - sizeof content, 0));
  m[0] ^= 0xff;
  unsigned char first;
  CHECK("private write not in file", pread(fd, &first, 1, 0) == 1 && first == content[0]);
  munmap(m, 2 * PAGE);

  unsigned char *at_offset = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, PAGE);
  CHECK("mmap file at offset", at_offset != MAP_FAILED && memcmp(at_offset, content + PAGE, 100) == 0);
  munmap(at_offset, PAGE);
  CHECK_ERRNO("mmap file unaligned offset", mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 100), EINVAL);

  unsigned char *sh = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  CHECK("mmap file shared", sh != MAP_FAILED);
  sh[1] = 0x42;
  CHECK("shared write reaches file", pread(fd, &first, 1, 1) == 1 && first == 0x42);
  munmap(sh, PAGE);

  /* The kernel refuses to write into memory the process cannot write, or read from memory it cannot read. */
  unsigned char *ro = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  lseek(fd, 0, SEEK_SET);
  CHECK_ERRNO("read into read-only memory", read(fd, ro, 16), EFAULT);
  CHECK("read-only memory untouched", all_bytes(ro, PAGE, 0));
  unsigned char *none = mmap(NULL, PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK_ERRNO("write from PROT_NONE memory", write(fd, none, 16), EFAULT);
  munmap(none, PAGE);
  CHECK_ERRNO("write from unmapped memory", write(fd, none, 16), EFAULT);
  munmap(ro, PAGE);
  close(fd);
}

int main(void) {
  test_brk();
  test_anonymous();
  test_file_mapping();
  return finish();
}
