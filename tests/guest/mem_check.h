/*
 * Shared helpers for the memory-semantics programs (tests/guest/mem_*.c), on top of check.h:
 *
 * - mem_init(argc, argv): parses the one option these programs take, `--qemu`, which skips the checks that
 *   qemu-user 7.2 gets wrong (guard regions, /proc/self/maps permissions, brk shrink unmapping, …) and prints
 *   one "skipped under qemu: …" line for each instead. Without it every check runs: that is the mode the
 *   native x86_64 build and our runtime run in.
 * - probe_read/probe_write/probe_exec: touch one address and report whether it faulted, with the signal,
 *   si_code and si_addr the handler saw (SIGSEGV/SIGBUS caught with SA_SIGINFO, then siglongjmp back).
 * - CHECK_FAULT / CHECK_NO_FAULT: one deterministic line per probe.
 * - Constants newer than the C library headers (guard regions, …), defined here when missing.
 *
 * Nothing printed may depend on the architecture, the run or the runtime: the aarch64 build under our runtime
 * must print exactly what the x86_64 build prints natively.
 */
#ifndef GUEST_TEST_MEM_CHECK_H
#define GUEST_TEST_MEM_CHECK_H

#include "check.h"

#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* 4 KiB on both builds here (aarch64 Linux may use 16K/64K pages; our runtime and this host use 4K). */
#define PAGE 4096UL

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif
#ifndef MADV_FREE
#define MADV_FREE 8
#endif
#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif
#ifndef MADV_KEEPONFORK
#define MADV_KEEPONFORK 19
#endif
#ifndef MADV_COLD
#define MADV_COLD 20
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
/* Linux 6.13 (anonymous), 6.15 (file-backed): not in glibc 2.36's headers. */
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#ifndef MADV_GUARD_REMOVE
#define MADV_GUARD_REMOVE 103
#endif

static int under_qemu;

/*
 * Parses `--qemu` and the program's own flags (a NULL-terminated list, or NULL); anything else is a usage
 * error (exit 2), so a typo cannot silently run another mode. mem_flag() then says whether a flag was given.
 */
__attribute__((unused)) static void mem_init(int argc, char **argv, const char *const *extra_flags) {
  for (int i = 1; i < argc; i++) {
    int known = strcmp(argv[i], "--qemu") == 0;
    for (const char *const *flag = extra_flags; flag && *flag && !known; flag++) known = strcmp(argv[i], *flag) == 0;
    if (!known) {
      fprintf(stderr, "%s: unknown argument %s (flags: --qemu", argv[0], argv[i]);
      for (const char *const *flag = extra_flags; flag && *flag; flag++) fprintf(stderr, ", %s", *flag);
      fprintf(stderr, ")\n");
      exit(2);
    }
    if (strcmp(argv[i], "--qemu") == 0) under_qemu = 1;
  }
}

__attribute__((unused)) static int mem_flag(int argc, char **argv, const char *flag) {
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], flag) == 0) return 1;
  return 0;
}

/* True (after printing "skipped under qemu: <what>") when running with --qemu: the caller skips <what>. */
__attribute__((unused)) static int qemu_skips(const char *what) {
  if (!under_qemu) return 0;
  printf("skipped under qemu: %s\n", what);
  return 1;
}

/* ---- fault probes ---------------------------------------------------------------------------------- */

struct fault {
  int signo; /* 0 when the access did not fault */
  int code;
  uintptr_t addr;
};

static sigjmp_buf probe_jump;
static volatile sig_atomic_t probe_armed;
static struct fault probe_seen;
/* Where probe reads land, so the load cannot be optimised away. */
volatile unsigned char probe_sink;

static void probe_handler(int signo, siginfo_t *info, void *context) {
  (void)context;
  if (!probe_armed) {
    /* A fault outside a probe is a real crash: die of it, as the program would without the handler. */
    signal(signo, SIG_DFL);
    return; /* the access is retried and now kills the process */
  }
  probe_armed = 0;
  probe_seen.signo = signo;
  probe_seen.code = info->si_code;
  probe_seen.addr = (uintptr_t)info->si_addr;
  siglongjmp(probe_jump, 1);
}

/* Installs the probe handler for SIGSEGV, SIGBUS and SIGILL (again: a test may have replaced it). */
__attribute__((unused)) static void probe_install(void) {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_sigaction = probe_handler;
  action.sa_flags = SA_SIGINFO;
  sigemptyset(&action.sa_mask);
  sigaction(SIGSEGV, &action, NULL);
  sigaction(SIGBUS, &action, NULL);
  /* An exec probe that wrongly does not fault runs whatever bytes are there: report that, do not die of it. */
  sigaction(SIGILL, &action, NULL);
}

enum probe_kind { PROBE_READ, PROBE_WRITE, PROBE_EXEC };

/* Touches addr once (a 1-byte load or store, or a call) and returns what happened. */
__attribute__((noinline, unused)) static struct fault probe(enum probe_kind kind, uintptr_t addr) {
  probe_install();
  memset(&probe_seen, 0, sizeof probe_seen);
  if (sigsetjmp(probe_jump, 1) == 0) {
    probe_armed = 1;
    if (kind == PROBE_READ) {
      probe_sink = *(volatile unsigned char *)addr;
    } else if (kind == PROBE_WRITE) {
      *(volatile unsigned char *)addr = 0x5a;
    } else {
      ((void (*)(void))addr)();
    }
    probe_armed = 0;
  }
  return probe_seen;
}

__attribute__((unused)) static const char *signal_name(int signo) {
  switch (signo) {
  case 0: return "no signal";
  case SIGSEGV: return "SIGSEGV";
  case SIGBUS: return "SIGBUS";
  case SIGILL: return "SIGILL";
  default: return "another signal";
  }
}

__attribute__((unused)) static const char *fault_code_name(int signo, int code) {
  if (signo == SIGSEGV && code == SEGV_MAPERR) return "SEGV_MAPERR";
  if (signo == SIGSEGV && code == SEGV_ACCERR) return "SEGV_ACCERR";
  if (signo == SIGBUS && code == BUS_ADRERR) return "BUS_ADRERR";
  if (signo == SIGBUS && code == BUS_ADRALN) return "BUS_ADRALN";
  if (signo == SIGBUS && code == BUS_OBJERR) return "BUS_OBJERR";
  if (code == SI_KERNEL) return "SI_KERNEL";
  return "another si_code";
}

static const char *const probe_kind_names[] = {"read", "write", "exec"};

/*
 * CHECK_FAULT("what", PROBE_READ, addr, SIGSEGV, SEGV_MAPERR): the access must raise that signal with that
 * si_code and si_addr == addr exactly. Prints "what: read faults SIGSEGV SEGV_MAPERR ok".
 */
__attribute__((unused)) static void check_fault_impl(const char *what, enum probe_kind kind, uintptr_t addr, int signo,
                                                     int code, int line) {
  struct fault seen = probe(kind, addr);
  check_count++;
  if (seen.signo == signo && seen.code == code && seen.addr == addr) {
    printf("%s: %s faults %s %s ok\n", what, probe_kind_names[kind], signal_name(signo), fault_code_name(signo, code));
  } else {
    check_failures++;
    printf("FAIL %s: %s of %#lx gave %s %s at %#lx, want %s %s at the same address (line %d)\n", what,
           probe_kind_names[kind], (unsigned long)addr, signal_name(seen.signo), fault_code_name(seen.signo, seen.code),
           (unsigned long)seen.addr, signal_name(signo), fault_code_name(signo, code), line);
  }
}
#define CHECK_FAULT(what, kind, addr, signo, code) \
  check_fault_impl(what, kind, (uintptr_t)(addr), signo, code, __LINE__)

/* CHECK_NO_FAULT("what", PROBE_WRITE, addr): the access must complete. Prints "what: write ok". */
__attribute__((unused)) static void check_no_fault_impl(const char *what, enum probe_kind kind, uintptr_t addr,
                                                        int line) {
  struct fault seen = probe(kind, addr);
  check_count++;
  if (seen.signo == 0) {
    printf("%s: %s ok\n", what, probe_kind_names[kind]);
  } else {
    check_failures++;
    printf("FAIL %s: %s of %#lx gave %s %s at %#lx, want no fault (line %d)\n", what, probe_kind_names[kind],
           (unsigned long)addr, signal_name(seen.signo), fault_code_name(seen.signo, seen.code),
           (unsigned long)seen.addr, line);
  }
}
#define CHECK_NO_FAULT(what, kind, addr) check_no_fault_impl(what, kind, (uintptr_t)(addr), __LINE__)

/* ---- small memory helpers ------------------------------------------------------------------------- */

/* Fresh private anonymous mapping, or NULL (the caller's CHECK reports it). */
__attribute__((unused)) static unsigned char *map_anon(size_t len, int prot) {
  void *p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : (unsigned char *)p;
}

/*
 * An address range of `len` bytes that is free right now, with `guard_pages` free pages on each side (so
 * nothing the test maps there can merge with a neighbour): map it, then unmap it.
 */
__attribute__((unused)) static uintptr_t free_range(size_t len, size_t guard_pages) {
  size_t total = len + 2 * guard_pages * PAGE;
  void *p = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return 0;
  munmap(p, total);
  return (uintptr_t)p + guard_pages * PAGE;
}

__attribute__((unused)) static int all_bytes(const unsigned char *p, size_t n, unsigned char value) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != value) return 0;
  return 1;
}

/* Byte i of "page pattern" number `seed`: varies along the page and between pages, never all zero. */
__attribute__((unused)) static unsigned char pattern_byte(unsigned seed, size_t i) {
  return (unsigned char)((i * 131 + seed * 29 + (i >> 12) * 7 + 1) | 1);
}

__attribute__((unused)) static void fill_pattern(unsigned char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++) p[i] = pattern_byte(seed, i);
}

__attribute__((unused)) static int has_pattern(const unsigned char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != pattern_byte(seed, i)) return 0;
  return 1;
}

/* p[0..n) holds bytes first..first+n of pattern `seed` (a file mapped at offset `first`, say). */
__attribute__((unused)) static int has_pattern_from(const unsigned char *p, size_t n, unsigned seed, size_t first) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != pattern_byte(seed, first + i)) return 0;
  return 1;
}

/*
 * A temporary file holding `len` bytes of pattern `seed` (byte at file offset o is pattern_byte(seed, o)),
 * already unlinked; returns an fd opened with open_flags (O_RDWR, O_RDONLY, …), or -1.
 */
__attribute__((unused)) static int temp_file_opened(size_t len, unsigned seed, int open_flags) {
  char path[] = "/tmp/guest-mem-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return -1;
  unsigned char chunk[4096];
  for (size_t done = 0; done < len;) {
    size_t n = len - done < sizeof chunk ? len - done : sizeof chunk;
    for (size_t i = 0; i < n; i++) chunk[i] = pattern_byte(seed, done + i);
    if (write(fd, chunk, n) != (ssize_t)n) {
      close(fd);
      unlink(path);
      return -1;
    }
    done += n;
  }
  if ((open_flags & O_ACCMODE) != O_RDWR) {
    close(fd);
    fd = open(path, open_flags);
  }
  unlink(path);
  return fd;
}

__attribute__((unused)) static int temp_file(size_t len, unsigned seed) { return temp_file_opened(len, seed, O_RDWR); }

/* Does the file at fd hold pattern `seed` at [offset, offset+n)? */
__attribute__((unused)) static int file_has_pattern(int fd, off_t offset, size_t n, unsigned seed) {
  unsigned char chunk[4096];
  for (size_t done = 0; done < n;) {
    size_t want = n - done < sizeof chunk ? n - done : sizeof chunk;
    if (pread(fd, chunk, want, offset + (off_t)done) != (ssize_t)want) return 0;
    for (size_t i = 0; i < want; i++)
      if (chunk[i] != pattern_byte(seed, (size_t)offset + done + i)) return 0;
    done += want;
  }
  return 1;
}

#endif
