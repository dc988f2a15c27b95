/*
 * Random file-descriptor histories, printed so that two kernels can be compared line for line: the native
 * x86_64 build on this Linux host is the oracle for the aarch64 build under our runtime.
 *
 * usage: fd_fuzz SEED [STEPS]   (run in an empty scratch directory: it creates files "a" and "b")
 *
 * Steps: open/openat of two files with random flags, pipe2, dup, dup2, dup3, fcntl (F_DUPFD, F_DUPFD_CLOEXEC,
 * F_GETFD/F_SETFD, F_GETFL/F_SETFL), close, close_range (with CLOSE_RANGE_CLOEXEC too), read, write, pread,
 * pwrite, preadv, pwritev, preadv2, pwritev2, lseek, ftruncate, fstat, unlink, on fds 3..31, -1 and 1000 (0..2 are never touched). Each step prints its result;
 * every 4th step prints the table: for each open fd, FD_CLOEXEC and the access mode, O_APPEND and O_NONBLOCK
 * (the flag bits both architectures share), and for files the offset and size.
 */
// fixture: native
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include "fuzz_rng.h"

#define FIRST_FD 3
#define LAST_FD 31
#define SHARED_FLAGS (O_ACCMODE | O_APPEND | O_NONBLOCK)

static unsigned long below(unsigned long n) { return n ? (unsigned long)(next() % n) : 0; }
static int any_fd(void) { return below(8) == 0 ? (int)(below(2) ? -1 : 1000) : FIRST_FD + (int)below(LAST_FD - FIRST_FD + 1); }

static void result(const char *what, long r) {
  if (r < 0) printf("%s = -1 %s\n", what, strerror(errno));
  else printf("%s = %ld\n", what, r);
}

static void show_table(void) {
  printf("  fds:");
  for (int fd = FIRST_FD; fd <= LAST_FD; fd++) {
    int fdflags = fcntl(fd, F_GETFD);
    if (fdflags < 0) continue;
    int flags = fcntl(fd, F_GETFL);
    printf(" %d%s:%x", fd, fdflags & FD_CLOEXEC ? "e" : "", flags & SHARED_FLAGS);
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) printf("@%ld/%ld", (long)lseek(fd, 0, SEEK_CUR), (long)st.st_size);
  }
  printf("\n");
}

int main(int argc, char **argv) {
  seed_rng(argc > 1 ? argv[1] : NULL);
  long steps = argc > 2 ? atol(argv[2]) : 300;
  setvbuf(stdout, NULL, _IOFBF, 1 << 16);
  /* Nothing inherited beyond 0..2: the two runs must start from the same table. */
  for (int fd = FIRST_FD; fd < 1024; fd++) close(fd);
  char what[160];
  char buffer[64];
  for (long step = 0; step < steps; step++) {
    int fd = any_fd();
    switch (below(16)) {
    case 0:
    case 1: {
      static const int access_modes[] = {O_RDONLY, O_WRONLY, O_RDWR};
      int flags = access_modes[below(3)];
      if (below(2)) flags |= O_CREAT;
      if (below(4) == 0) flags |= O_TRUNC;
      if (below(4) == 0) flags |= O_APPEND;
      if (below(4) == 0) flags |= O_CLOEXEC;
      if (below(4) == 0) flags |= O_NONBLOCK;
      if (below(8) == 0) flags |= O_EXCL;
      const char *name = below(2) ? "a" : "b";
      snprintf(what, sizeof what, "open(%s, 0x%x)", name, flags & (O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NONBLOCK | O_EXCL));
      result(what, open(name, flags, 0644));
      break;
    }
    case 2: {
      int pair[2];
      /* Always non-blocking (F_SETFL below keeps it): a read of an empty pipe must not wait. */
      int flags = (below(2) ? O_CLOEXEC : 0) | O_NONBLOCK;
      snprintf(what, sizeof what, "pipe2(0x%x)", flags);
      long r = pipe2(pair, flags);
      result(what, r);
      if (r == 0) printf("  -> %d %d\n", pair[0], pair[1]);
      break;
    }
    case 3: {
      int target = any_fd();
      int how = (int)below(3);
      if (how == 0) {
        snprintf(what, sizeof what, "dup(%d)", fd);
        result(what, dup(fd));
      } else if (how == 1) {
        snprintf(what, sizeof what, "dup2(%d, %d)", fd, target);
        result(what, dup2(fd, target));
      } else {
        int flags = below(4) == 0 ? 0x1 : below(2) ? O_CLOEXEC : 0;
        snprintf(what, sizeof what, "dup3(%d, %d, 0x%x)", fd, target, flags);
        result(what, dup3(fd, target, flags));
      }
      break;
    }
    case 4: {
      static const int commands[] = {F_DUPFD, F_DUPFD_CLOEXEC, F_GETFD, F_SETFD, F_GETFL, F_SETFL};
      int command = commands[below(6)];
      long argument = command == F_SETFL ? (long)((below(2) ? O_APPEND : 0) | O_NONBLOCK)
                      : command == F_SETFD ? (long)below(2)
                                           : (long)(FIRST_FD + below(40));
      snprintf(what, sizeof what, "fcntl(%d, %d, %ld)", fd, command, argument);
      long r = fcntl(fd, command, argument);
      if (command == F_GETFL && r >= 0) r &= SHARED_FLAGS;
      result(what, r);
      break;
    }
    case 5:
    case 6:
      snprintf(what, sizeof what, "close(%d)", fd);
      result(what, close(fd));
      break;
    case 7: {
      unsigned first = FIRST_FD + (unsigned)below(30), last = first + (unsigned)below(8);
      unsigned flags = below(2) ? 4 /* CLOSE_RANGE_CLOEXEC */ : 0;
      snprintf(what, sizeof what, "close_range(%u, %u, %u)", first, last, flags);
      result(what, syscall(SYS_close_range, first, last, flags));
      break;
    }
    case 8: {
      size_t n = below(sizeof buffer);
      snprintf(what, sizeof what, "read(%d, %zu)", fd, n);
      long r = read(fd, buffer, n);
      result(what, r);
      break;
    }
    case 9: {
      size_t n = below(sizeof buffer);
      memset(buffer, 'a' + (int)below(26), n);
      snprintf(what, sizeof what, "write(%d, %zu)", fd, n);
      result(what, write(fd, buffer, n));
      break;
    }
    case 10: {
      long offset = (long)below(100) - 10;
      size_t n = below(sizeof buffer);
      struct iovec iov[2] = {{buffer, n / 2}, {buffer + n / 2, n - n / 2}};
      switch (below(6)) {
      case 0:
        snprintf(what, sizeof what, "pread(%d, %zu, %ld)", fd, n, offset);
        result(what, pread(fd, buffer, n, offset));
        break;
      case 1:
        snprintf(what, sizeof what, "pwrite(%d, %zu, %ld)", fd, n, offset);
        result(what, pwrite(fd, buffer, n, offset));
        break;
      case 2:
        snprintf(what, sizeof what, "preadv(%d, %zu, %ld)", fd, n, offset);
        result(what, preadv(fd, iov, 2, offset));
        break;
      case 3:
        snprintf(what, sizeof what, "pwritev(%d, %zu, %ld)", fd, n, offset);
        result(what, pwritev(fd, iov, 2, offset));
        break;
      case 4:
        offset = below(3) == 0 ? -1 : offset; /* -1: the file position */
        snprintf(what, sizeof what, "preadv2(%d, %zu, %ld)", fd, n, offset);
        result(what, preadv2(fd, iov, 2, offset, 0));
        break;
      default:
        offset = below(3) == 0 ? -1 : offset;
        snprintf(what, sizeof what, "pwritev2(%d, %zu, %ld)", fd, n, offset);
        result(what, pwritev2(fd, iov, 2, offset, 0));
        break;
      }
      break;
    }
    case 11: {
      long offset = (long)below(120) - 20;
      int whence = (int)below(4);
      snprintf(what, sizeof what, "lseek(%d, %ld, %d)", fd, offset, whence);
      result(what, lseek(fd, offset, whence));
      break;
    }
    case 12: {
      long length = (long)below(100) - 5;
      snprintf(what, sizeof what, "ftruncate(%d, %ld)", fd, length);
      result(what, ftruncate(fd, length));
      break;
    }
    case 13: {
      struct stat st;
      snprintf(what, sizeof what, "fstat(%d)", fd);
      long r = fstat(fd, &st);
      result(what, r);
      if (r == 0) printf("  %s size %ld\n", S_ISREG(st.st_mode) ? "file" : S_ISFIFO(st.st_mode) ? "fifo" : "other", S_ISREG(st.st_mode) ? (long)st.st_size : 0L);
      break;
    }
    case 14: {
      const char *name = below(2) ? "a" : "b";
      snprintf(what, sizeof what, "unlink(%s)", name);
      result(what, unlink(name));
      break;
    }
    default: {
      const char *name = below(2) ? "a" : ".";
      int flags = O_RDONLY | (below(2) ? O_CLOEXEC : 0);
      snprintf(what, sizeof what, "openat(cwd, %s, 0x%x)", name, flags & O_CLOEXEC);
      result(what, openat(AT_FDCWD, name, flags));
      break;
    }
    }
    if (step % 4 == 3) show_table();
  }
  unlink("a");
  unlink("b");
  printf("done after %ld steps\n", steps);
  return 0;
}
