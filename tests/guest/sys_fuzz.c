/*
 * Random arguments to harmless syscalls: whatever the guest passes, the runtime must answer (a result or
 * -errno, -EFAULT for a bad pointer), never fail itself ("guest: internal error"). Prints "done" at the end.
 *
 * usage: sys_fuzz SEED [CALLS]
 *
 * Only calls whose worst outcome stays inside this process are made (no kill, exec, clone, blocking waits,
 * MAP_FIXED or MAP_POPULATE, fallocate, signal handlers, files created or changed by path, limits lowered), and
 * the fds passed are the program's own (a non-blocking pipe, an eventfd, an epoll fd, a memfd, /proc/self/maps) or bad ones.
 * Pointers are into an 8 KiB buffer, at its end, near the top of the address space, NULL or unrepresentable.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "fuzz_rng.h"


static unsigned char *buffer;
static int fds[8];
static int fd_count;

static long fd_argument(void) {
  switch (next() % 4) {
  case 0: return -1;
  case 1: return 1000;
  default: return fds[next() % (uint64_t)fd_count];
  }
}

static long argument(void) {
  switch (next() % 12) {
  case 0: return 0;
  case 1: return -1;
  case 2: return (long)(next() % 16);
  case 3: return (long)(buffer + next() % 8192);
  case 4: return (long)buffer;
  case 5: return (long)next();
  case 6: return 0x7fffffff;
  case 7: return (long)(next() % 65536);
  case 8: return -(long)(next() % 200);
  case 9: return (long)0xfffffffffffff000ULL;
  case 10: return (long)(buffer + 8192 - next() % 64);
  default: return 1L << (next() % 64);
  }
}

/* Calls that take an fd first; the rest get plain random arguments. */
static const long fd_calls[] = {
    SYS_dup,       SYS_epoll_ctl, SYS_ioctl,     SYS_flock,   SYS_fstatfs,  SYS_getdents64, SYS_lseek,
    SYS_read,      SYS_write,     SYS_readv,     SYS_writev,  SYS_pread64,  SYS_pwrite64,   SYS_fstat,
    SYS_fsync,     SYS_fdatasync, SYS_ftruncate, SYS_newfstatat, SYS_readlinkat, SYS_faccessat,
    SYS_getsockopt, SYS_setsockopt, SYS_getsockname, SYS_statx, SYS_sync_file_range,
};
static const long plain_calls[] = {
    SYS_getcwd,      SYS_eventfd2,     SYS_epoll_create1, SYS_inotify_init1, SYS_statfs,    SYS_pipe2,
    SYS_times,       SYS_uname,        SYS_getrlimit,     SYS_getrusage,     SYS_umask,     SYS_getcpu,
    SYS_gettimeofday, SYS_getpid,      SYS_getppid,       SYS_getuid,        SYS_geteuid,   SYS_getgid,
    SYS_getegid,     SYS_gettid,       SYS_sysinfo,       SYS_clock_gettime, SYS_clock_getres,
    SYS_sched_getaffinity, SYS_sched_yield, SYS_sched_getparam, SYS_sched_getscheduler,
    SYS_sched_get_priority_max, SYS_sched_get_priority_min, SYS_sched_rr_get_interval, SYS_getgroups,
    SYS_getpgid,     SYS_getsid,       SYS_getpriority,   SYS_rt_sigprocmask, SYS_sigaltstack,
    SYS_rt_sigpending, SYS_mincore,    SYS_getrandom,     SYS_memfd_create,  SYS_membarrier, SYS_socketpair,
    SYS_socket,      SYS_getresuid,    SYS_getresgid,     SYS_set_tid_address, SYS_get_robust_list,
    SYS_pidfd_open,  SYS_capget,       SYS_personality,   SYS_mmap,          SYS_close_range,
    SYS_timerfd_create, SYS_signalfd4, SYS_uname,         SYS_getitimer,     SYS_clock_nanosleep,
    999, 460, -1, /* unknown numbers */
};

int main(int argc, char **argv) {
  seed_rng(argc > 1 ? argv[1] : NULL);
  long calls = argc > 2 ? atol(argv[2]) : 20000;
  buffer = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (buffer == MAP_FAILED) return 2;
  signal(SIGPIPE, SIG_IGN);
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_NONBLOCK) != 0) return 2;
  fds[fd_count++] = pipe_fds[0];
  fds[fd_count++] = pipe_fds[1];
  fds[fd_count++] = eventfd(0, EFD_NONBLOCK);
  fds[fd_count++] = epoll_create1(0);
  fds[fd_count++] = (int)syscall(SYS_memfd_create, "fuzz", 0);
  fds[fd_count++] = open("/proc/self/maps", O_RDONLY | O_NONBLOCK);
  const long plain = (long)(sizeof plain_calls / sizeof plain_calls[0]);
  const long with_fd = (long)(sizeof fd_calls / sizeof fd_calls[0]);
  for (long i = 0; i < calls; i++) {
    long pick = (long)(next() % (uint64_t)(plain + with_fd));
    long number = pick < plain ? plain_calls[pick] : fd_calls[pick - plain];
    long a[6];
    for (int k = 0; k < 6; k++) a[k] = argument();
    if (pick >= plain) a[0] = fd_argument();
    switch (number) {
    case SYS_mmap:
      /* Never over this program's own memory, and never gigabytes made real at once. */
      a[3] &= ~(long)(MAP_FIXED | MAP_FIXED_NOREPLACE | MAP_POPULATE | MAP_LOCKED);
      break;
    case SYS_clock_nanosleep:
      a[1] &= ~1L;               /* relative only */
      a[2] = (long)"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"; /* a zero timespec: returns at once */
      break;
    case SYS_rt_sigprocmask:
      a[1] = 0;                  /* read the mask only: a blocked SIGSEGV would turn a fault into a hang */
      break;
    case SYS_flock:
      a[1] |= 4;                 /* LOCK_NB: another description of the same file may hold the lock */
      break;
    case SYS_personality:
      a[0] = 0xffffffff;         /* query only */
      break;
    case SYS_close_range:
      a[0] = 1000 + (long)(next() % 100); /* above every fd in use */
      break;
    case SYS_set_tid_address:
      a[0] = (long)(buffer + 4096); /* glibc's own word stays untouched otherwise */
      break;
    case SYS_read: case SYS_readv: case SYS_pread64:
      if (a[0] == pipe_fds[1] || a[0] == fds[2]) a[0] = -1; /* nothing that could block */
      break;
    default:
      break;
    }
    if (getenv("FUZZ_LOG")) fprintf(stderr, "%ld: %ld(%lx, %lx, %lx, %lx, %lx, %lx)\n", i, number, a[0], a[1], a[2], a[3], a[4], a[5]);
    syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]);
  }
  printf("done\n");
  return 0;
}
