/*
 * Random memory-management histories inside a 1 MiB sandbox, printed so that two kernels can be compared line
 * for line: the native x86_64 build on this Linux host is the oracle for the aarch64 build under our runtime.
 *
 * usage: mm_fuzz SEED [STEPS [EVERY]]   (the state is printed every EVERY steps, 8 by default)
 *
 * Each step is one of mmap (MAP_FIXED / MAP_FIXED_NOREPLACE / a hint, private or shared), munmap, mprotect,
 * madvise (guard regions included), mremap (in place, MAYMOVE, MAYMOVE|FIXED, DONTUNMAP), mlock/munlock,
 * msync or mincore, on page ranges of the sandbox (now and then unaligned or empty). Every step prints its
 * result (an address as a sandbox offset, or "elsewhere" for one the kernel chose) or errno; every 8th step
 * (or EVERY) and the last print the sandbox's
 * /proc/self/maps lines and, per page, whether the kernel lets a syscall read it and write it (a pipe) and a
 * checksum of what it holds. Addresses outside the sandbox are never passed with MAP_FIXED, so the program's
 * own memory is safe whatever the history.
 */
// fixture: native
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "fuzz_rng.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#define MADV_GUARD_REMOVE 103
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

#define PAGE 4096UL
#define PAGES 256UL
#define SIZE (PAGES * PAGE)

static unsigned long below(unsigned long n) { return n ? (unsigned long)(next() % n) : 0; }

static char *sandbox;
static int probe[2];

/* A page range inside the sandbox; now and then an unaligned start, a zero or an odd length. */
static void range(char **start, size_t *length) {
  unsigned long first = below(PAGES);
  unsigned long count = 1 + below(next() % 4 == 0 ? PAGES - first : 16);
  if (first + count > PAGES) count = PAGES - first;
  *start = sandbox + first * PAGE;
  *length = count * PAGE;
  switch (below(16)) {
  case 0: *start += 1 + below(PAGE - 1); break;
  case 1: *length = 0; break;
  case 2: *length -= below(PAGE - 1); break;
  default: break;
  }
}

static int prot(void) {
  static const int choices[] = {PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE, PROT_READ | PROT_EXEC,
                                PROT_READ | PROT_WRITE | PROT_EXEC, PROT_WRITE, PROT_EXEC, 0x40};
  return choices[below(sizeof choices / sizeof choices[0])];
}

/*
 * Where the kernel put a mapping: at the requested address (an offset in the sandbox), or elsewhere. Where
 * "elsewhere" is depends on the rest of the process's layout, which differs between the two builds, so such a
 * mapping is only reported as moved and given back, which leaves both processes in the same state.
 */
static void print_address(const char *what, void *result, char *requested, size_t length) {
  if (result == MAP_FAILED) {
    printf("%s = -1 %s\n", what, strerror(errno));
  } else if ((char *)result == requested) {
    printf("%s = sandbox+0x%lx\n", what, (unsigned long)((char *)result - sandbox));
  } else {
    printf("%s = elsewhere\n", what);
    munmap(result, length);
  }
}

static void print_result(const char *what, long result) {
  if (result < 0) printf("%s = -1 %s\n", what, strerror(errno));
  else printf("%s = %ld\n", what, result);
}

/*
 * /proc/self/maps inside the sandbox, as offsets, with the inode column telling shared from private anonymous
 * memory. Adjacent lines with the same permissions and kind are joined: where Linux draws the boundaries
 * between such areas depends on how each came to be (anon_vma of pages written before two areas met, the
 * page offset an area keeps after mremap), which the runtime does not model; what each address is, is.
 */
static void print_maps(void) {
  FILE *maps = fopen("/proc/self/maps", "r");
  if (!maps) {
    printf("maps: cannot open\n");
    return;
  }
  char line[512];
  unsigned long run_start = 0, run_end = 0;
  char run_perms[8] = "";
  int run_shared = 0;
  while (fgets(line, sizeof line, maps)) {
    unsigned long start, end;
    char perms[8];
    if (sscanf(line, "%lx-%lx %7s", &start, &end, perms) != 3) continue;
    if (end <= (unsigned long)sandbox || start >= (unsigned long)sandbox + SIZE) continue;
    /* Clipped to the sandbox: what lies beside it differs between the two programs. */
    if (start < (unsigned long)sandbox) start = (unsigned long)sandbox;
    if (end > (unsigned long)sandbox + SIZE) end = (unsigned long)sandbox + SIZE;
    int shared = strstr(line, "/dev/zero") || strstr(line, "SYSV");
    if (run_end == start && run_shared == shared && strcmp(run_perms, perms) == 0) {
      run_end = end;
      continue;
    }
    if (run_end) printf("  map 0x%lx-0x%lx %s%s\n", run_start - (unsigned long)sandbox, run_end - (unsigned long)sandbox, run_perms, run_shared ? " shared" : "");
    run_start = start;
    run_end = end;
    run_shared = shared;
    strcpy(run_perms, perms);
  }
  if (run_end) printf("  map 0x%lx-0x%lx %s%s\n", run_start - (unsigned long)sandbox, run_end - (unsigned long)sandbox, run_perms, run_shared ? " shared" : "");
  fclose(maps);
}

/* Is `address` in a MAP_SHARED area? (see the mremap step) */
static int in_shared_area(char *address) {
  FILE *maps = fopen("/proc/self/maps", "r");
  if (!maps) return 0;
  char line[512];
  int shared = 0;
  while (fgets(line, sizeof line, maps)) {
    unsigned long start, end;
    char perms[8];
    if (sscanf(line, "%lx-%lx %7s", &start, &end, perms) != 3) continue;
    if ((unsigned long)address >= start && (unsigned long)address < end) shared = perms[3] == 's';
  }
  fclose(maps);
  return shared;
}

/* Per page: can a syscall read it (write() from it), write it (read() into it), and what it holds. */
static void print_pages(void) {
  char scratch[PAGE];
  printf("  pages:");
  for (unsigned long page = 0; page < PAGES; page++) {
    char *at = sandbox + page * PAGE;
    int readable = write(probe[1], at, 1) == 1;
    if (readable) (void)read(probe[0], scratch, 1);
    unsigned sum = 0;
    if (readable) {
      /* The kernel copies it out for us, so a page we may not touch directly is never touched. */
      for (unsigned long done = 0; done < PAGE;) {
        ssize_t n = write(probe[1], at + done, PAGE - done > 4096 ? 4096 : PAGE - done);
        if (n <= 0) break;
        ssize_t got = read(probe[0], scratch, (size_t)n);
        for (ssize_t i = 0; i < got; i++) sum = sum * 31 + (unsigned char)scratch[i];
        done += (unsigned long)n;
      }
    }
    printf(" %c%x", readable ? 'r' : '-', sum & 0xff);
  }
  printf("\n");
}

/* Fill some accessible pages with a pattern through the kernel (read() into them), so moves and discards show. */
static void scribble(void) {
  char *start;
  size_t length;
  range(&start, &length);
  start = sandbox + ((unsigned long)(start - sandbox) & ~(PAGE - 1));
  char pattern[64];
  for (unsigned i = 0; i < sizeof pattern; i++) pattern[i] = (char)(next() & 0xff);
  unsigned long written = 0;
  for (char *at = start; at < start + length; at += PAGE) {
    if (write(probe[1], pattern, sizeof pattern) != (ssize_t)sizeof pattern) break;
    ssize_t n = read(probe[0], at, sizeof pattern);
    if (n < 0) {
      /* EFAULT: drain what the failed read left in the pipe. */
      (void)read(probe[0], pattern, sizeof pattern);
      continue;
    }
    written++;
  }
  printf("scribble(+0x%lx, 0x%zx) = %lu pages\n", (unsigned long)(start - sandbox), length, written);
}

int main(int argc, char **argv) {
  seed_rng(argc > 1 ? argv[1] : NULL);
  long steps = argc > 2 ? atol(argv[2]) : 400;
  long every = argc > 3 ? atol(argv[3]) : 8;
  if (every < 1) every = 1;
  setvbuf(stdout, NULL, _IOFBF, 1 << 16);
  /* A reserved 1 MiB that nothing else will be placed in; PROT_NONE, like a runtime's heap reservation. */
  sandbox = mmap(NULL, SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (sandbox == MAP_FAILED || pipe2(probe, O_NONBLOCK) != 0) return 2;
  char what[160];
  for (long step = 0; step < steps; step++) {
    char *start;
    size_t length;
    range(&start, &length);
    unsigned long offset = (unsigned long)(start - sandbox);
    switch (below(12)) {
    case 0:
    case 1: {
      int p = prot();
      int shared = below(4) == 0;
      int how = (int)below(3);
      int flags = (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS |
                  (how == 0 ? MAP_FIXED : how == 1 ? MAP_FIXED_NOREPLACE : 0);
      snprintf(what, sizeof what, "mmap(+0x%lx, 0x%zx, %d, %s%s)", offset, length, p, shared ? "shared" : "private",
               how == 0 ? ", fixed" : how == 1 ? ", noreplace" : ", hint");
      print_address(what, mmap(start, length, p, flags, -1, 0), start, length);
      break;
    }
    case 2:
      snprintf(what, sizeof what, "munmap(+0x%lx, 0x%zx)", offset, length);
      print_result(what, munmap(start, length));
      break;
    case 3:
    case 4: {
      int p = prot();
      snprintf(what, sizeof what, "mprotect(+0x%lx, 0x%zx, %d)", offset, length, p);
      print_result(what, mprotect(start, length, p));
      break;
    }
    case 5:
    case 6: {
      static const int advice[] = {MADV_NORMAL,   MADV_RANDOM,   MADV_SEQUENTIAL,    MADV_WILLNEED,
                                   MADV_DONTNEED, MADV_FREE,     MADV_DONTFORK,      MADV_DOFORK,
                                   MADV_DONTDUMP, MADV_DODUMP,   MADV_WIPEONFORK,    MADV_KEEPONFORK,
                                   MADV_COLD,     23 /* POPULATE_WRITE */, 22 /* POPULATE_READ */,
                                   MADV_GUARD_INSTALL, MADV_GUARD_INSTALL, MADV_GUARD_REMOVE, 7 /* invalid */};
      int a = advice[below(sizeof advice / sizeof advice[0])];
      snprintf(what, sizeof what, "madvise(+0x%lx, 0x%zx, %d)", offset, length, a);
      print_result(what, madvise(start, length, a));
      /* What MADV_FREE pages read until they are written again is up to the kernel (old data or zeroes, as
         memory pressure decides): make it zeroes, so both kernels agree. */
      if (a == MADV_FREE) madvise(start, length, MADV_DONTNEED);
      break;
    }
    case 7: {
      size_t new_length = (1 + below(16)) * PAGE;
      int kind = (int)below(4);
      char *target = sandbox + below(PAGES) * PAGE;
      void *result;
      char *expected = start;
      /* Growing a shared area (or duplicating one, length 0) maps more of its object, up to and past the
         object's end (SIGBUS there): the runtime does not model that, so such calls are left out. */
      if ((length == 0 || (kind < 2 && new_length > length)) && in_shared_area(start)) goto skip_mremap;
      if (kind == 2 && (length == 0 || new_length > length) && in_shared_area(start)) goto skip_mremap;
      if (kind == 0) {
        snprintf(what, sizeof what, "mremap(+0x%lx, 0x%zx, 0x%zx, 0)", offset, length, new_length);
        result = mremap(start, length, new_length, 0);
      } else if (kind == 1) {
        snprintf(what, sizeof what, "mremap(+0x%lx, 0x%zx, 0x%zx, MAYMOVE)", offset, length, new_length);
        result = mremap(start, length, new_length, MREMAP_MAYMOVE);
      } else if (kind == 2) {
        if (target + new_length > sandbox + SIZE) new_length = (size_t)(sandbox + SIZE - target);
        snprintf(what, sizeof what, "mremap(+0x%lx, 0x%zx, 0x%zx, MAYMOVE|FIXED, +0x%lx)", offset, length,
                 new_length, (unsigned long)(target - sandbox));
        result = mremap(start, length, new_length, MREMAP_MAYMOVE | MREMAP_FIXED, target);
        expected = target;
      } else if (below(4) == 0) {
        /* DONTUNMAP to wherever the kernel likes: reported as "elsewhere" and given back. */
        snprintf(what, sizeof what, "mremap(+0x%lx, 0x%zx, 0x%zx, MAYMOVE|DONTUNMAP)", offset, length, length);
        /* The raw syscall: glibc versions differ in passing new_addr without MREMAP_FIXED. */
        result = (void *)syscall(SYS_mremap, start, length, length, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL);
        expected = NULL;
        new_length = length;
      } else {
        if (target + length > sandbox + SIZE) target = sandbox + SIZE - ((length + PAGE - 1) & ~(PAGE - 1));
        snprintf(what, sizeof what, "mremap(+0x%lx, 0x%zx, 0x%zx, MAYMOVE|FIXED|DONTUNMAP, +0x%lx)", offset,
                 length, length, (unsigned long)(target - sandbox));
        result = mremap(start, length, length, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, target);
        expected = target;
        new_length = length;
      }
      print_address(what, result, expected, new_length);
      break;
    skip_mremap:
      printf("mremap(+0x%lx, 0x%zx, ...): growing or duplicating a shared area is not compared\n", offset, length);
      break;
    }
    case 8:
      if (below(2)) {
        snprintf(what, sizeof what, "mlock(+0x%lx, 0x%zx)", offset, length);
        print_result(what, mlock(start, length));
      } else {
        snprintf(what, sizeof what, "munlock(+0x%lx, 0x%zx)", offset, length);
        print_result(what, munlock(start, length));
      }
      break;
    case 9: {
      int flags = below(3) == 0 ? MS_SYNC : below(2) ? MS_ASYNC : MS_INVALIDATE;
      snprintf(what, sizeof what, "msync(+0x%lx, 0x%zx, %d)", offset, length, flags);
      print_result(what, msync(start, length, flags));
      break;
    }
    case 10: {
      unsigned char vector[PAGES + 1];
      snprintf(what, sizeof what, "mincore(+0x%lx, 0x%zx)", offset, length);
      /* Residency itself differs by design (the runtime reports mapped pages resident): only the result. */
      print_result(what, mincore(start, length, vector));
      break;
    }
    default:
      scribble();
      break;
    }
    if (step % every == every - 1 || step == steps - 1) {
      print_maps();
      print_pages();
    }
  }
  printf("done after %ld steps\n", steps);
  return 0;
}
