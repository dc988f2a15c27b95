/*
 * Process-level syscalls: identity, uname, limits, scheduling, randomness, signal masks and actions,
 * ioctl on a non-terminal, and an unknown syscall number. Prints facts, never the values that vary.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <termios.h>
#include <unistd.h>

#include "check.h"

static volatile sig_atomic_t usr1_count;
static void on_usr1(int sig) { (void)sig; usr1_count++; }
static void on_usr2(int sig) { (void)sig; }

static void test_identity(void) {
  pid_t pid = getpid();
  CHECK("getpid", pid > 0);
  CHECK("getppid", getppid() > 0 && getppid() != pid);
  CHECK("gettid is pid when single-threaded", gettid() == pid);
  CHECK("raw getpid agrees", syscall(SYS_getpid) == pid);
  CHECK("getuid is geteuid", getuid() == geteuid());
  CHECK("getgid is getegid", getgid() == getegid());
  uid_t r, e, s;
  CHECK("getresuid", getresuid(&r, &e, &s) == 0 && r == getuid() && e == geteuid() && s == geteuid());
  gid_t gr, ge, gs;
  CHECK("getresgid", getresgid(&gr, &ge, &gs) == 0 && gr == getgid() && ge == getegid() && gs == getegid());
  /* 0 is legitimate when the group or session leader lives outside our pid namespace (containers). */
  CHECK("getpgid", getpgid(0) >= 0);
  CHECK("getsid", getsid(0) >= 0);
  CHECK_ERRNO("getpgid of no such process", getpgid(0x3fffffff), ESRCH);
  CHECK("getgroups", getgroups(0, NULL) >= 0);
  int tid_word = 0;
  CHECK("set_tid_address returns tid", syscall(SYS_set_tid_address, &tid_word) == gettid());
}

static void test_uname(void) {
  struct utsname u;
  CHECK("uname", uname(&u) == 0);
  printf("uname sysname %s\n", u.sysname);
  printf("uname machine %s\n", u.machine);
  CHECK("uname release starts 6.", strncmp(u.release, "6.", 2) == 0);
  CHECK("uname nodename set", u.nodename[0] != '\0');
  CHECK("uname version set", u.version[0] != '\0');
  CHECK_ERRNO("uname bad pointer", syscall(SYS_uname, (void *)1), EFAULT);
}

static void test_limits(void) {
  struct rlimit lim, via_prlimit;
  CHECK("getrlimit nofile", getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur > 0 && lim.rlim_cur <= lim.rlim_max);
  CHECK("prlimit64 read", prlimit(0, RLIMIT_NOFILE, NULL, &via_prlimit) == 0);
  CHECK("prlimit64 agrees", via_prlimit.rlim_cur == lim.rlim_cur && via_prlimit.rlim_max == lim.rlim_max);
  struct rlimit lower = {lim.rlim_cur > 64 ? 64 : lim.rlim_cur, lim.rlim_max}, old;
  CHECK("prlimit64 set", prlimit(0, RLIMIT_NOFILE, &lower, &old) == 0 && old.rlim_cur == lim.rlim_cur);
  CHECK("prlimit64 set visible", getrlimit(RLIMIT_NOFILE, &via_prlimit) == 0 && via_prlimit.rlim_cur == lower.rlim_cur);
  CHECK("setrlimit restore", setrlimit(RLIMIT_NOFILE, &lim) == 0);
  struct rlimit bad = {10, 5};
  CHECK_ERRNO("setrlimit cur > max", setrlimit(RLIMIT_NOFILE, &bad), EINVAL);
  CHECK_ERRNO("getrlimit bad resource", syscall(SYS_prlimit64, 0, 999, NULL, &old), EINVAL);
  CHECK("getrlimit stack", getrlimit(RLIMIT_STACK, &lim) == 0 && lim.rlim_cur > 0);
  CHECK("getrlimit as", getrlimit(RLIMIT_AS, &lim) == 0);

  struct sysinfo info;
  CHECK("sysinfo", sysinfo(&info) == 0);
  CHECK("sysinfo totalram", info.totalram > 0 && info.mem_unit > 0);
  CHECK("sysinfo freeram <= totalram", info.freeram <= info.totalram);
  CHECK("sysinfo procs", info.procs >= 1);
}

static void test_sched_random(void) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CHECK("sched_getaffinity", sched_getaffinity(0, sizeof set, &set) == 0);
  CHECK("sched_getaffinity has a cpu", CPU_COUNT(&set) >= 1);
  CHECK("raw sched_getaffinity size", syscall(SYS_sched_getaffinity, 0, sizeof set, &set) > 0);
  CHECK_ERRNO("sched_getaffinity tiny mask", syscall(SYS_sched_getaffinity, 0, 1, &set), EINVAL);
  CHECK("sched_yield", sched_yield() == 0);
  CHECK("sched_getscheduler other", sched_getscheduler(0) == SCHED_OTHER);
  CHECK("nproc", sysconf(_SC_NPROCESSORS_ONLN) >= 1);

  unsigned char a[32], b[32];
  memset(a, 0, sizeof a);
  memset(b, 0, sizeof b);
  CHECK("getrandom fills", getrandom(a, sizeof a, 0) == (ssize_t)sizeof a);
  CHECK("getrandom nonblock", getrandom(b, sizeof b, GRND_NONBLOCK) == (ssize_t)sizeof b);
  CHECK("getrandom differs", memcmp(a, b, sizeof a) != 0);
  int nonzero = 0;
  for (size_t i = 0; i < sizeof a; i++) nonzero |= a[i];
  CHECK("getrandom nonzero", nonzero);
  CHECK("getrandom zero length", getrandom(a, 0, 0) == 0);
  CHECK_ERRNO("getrandom bad flags", getrandom(a, sizeof a, 0x80), EINVAL);
  CHECK_ERRNO("getrandom bad buffer", syscall(SYS_getrandom, (void *)1, 16, 0), EFAULT);
}

static void test_signals(void) {
  struct sigaction act, old;
  memset(&act, 0, sizeof act);
  act.sa_handler = on_usr1;
  sigemptyset(&act.sa_mask);
  sigaddset(&act.sa_mask, SIGUSR2);
  act.sa_flags = SA_RESTART;
  CHECK("sigaction install", sigaction(SIGUSR1, &act, &old) == 0);
  CHECK("sigaction old default", old.sa_handler == SIG_DFL);
  struct sigaction back;
  CHECK("sigaction read back", sigaction(SIGUSR1, NULL, &back) == 0);
  CHECK("sigaction handler kept", back.sa_handler == on_usr1);
  CHECK("sigaction flags kept", (back.sa_flags & SA_RESTART) != 0 && (back.sa_flags & SA_SIGINFO) == 0);
  CHECK("sigaction mask kept", sigismember(&back.sa_mask, SIGUSR2) == 1 && sigismember(&back.sa_mask, SIGINT) == 0);
  act.sa_handler = on_usr2;
  act.sa_flags = 0;
  CHECK("sigaction replace returns previous", sigaction(SIGUSR1, &act, &old) == 0 && old.sa_handler == on_usr1);
  act.sa_handler = SIG_IGN;
  CHECK("sigaction ignore", sigaction(SIGUSR2, &act, NULL) == 0 && sigaction(SIGUSR2, NULL, &back) == 0 &&
                                back.sa_handler == SIG_IGN);
  act.sa_handler = SIG_DFL;
  sigaction(SIGUSR2, &act, NULL);
  CHECK_ERRNO("sigaction SIGKILL", sigaction(SIGKILL, &act, NULL), EINVAL);
  CHECK_ERRNO("sigaction SIGSTOP", sigaction(SIGSTOP, &act, NULL), EINVAL);
  CHECK_ERRNO("sigaction signal 0", syscall(SYS_rt_sigaction, 0, NULL, &old, 8), EINVAL);
  CHECK_ERRNO("sigaction signal 65", syscall(SYS_rt_sigaction, 65, NULL, &old, 8), EINVAL);
  CHECK_ERRNO("rt_sigaction bad sigsetsize", syscall(SYS_rt_sigaction, SIGUSR1, NULL, &old, 4), EINVAL);
  CHECK("sigaction read only", sigaction(SIGUSR1, NULL, &old) == 0 && old.sa_handler == on_usr2);
  act.sa_handler = SIG_DFL;
  sigaction(SIGUSR1, &act, NULL);

  sigset_t block, previous, current;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  sigaddset(&block, SIGKILL); /* cannot be blocked: silently dropped */
  sigaddset(&block, SIGSTOP);
  CHECK("sigprocmask block", sigprocmask(SIG_BLOCK, &block, &previous) == 0);
  CHECK("sigprocmask old empty", sigismember(&previous, SIGUSR1) == 0);
  CHECK("sigprocmask query", sigprocmask(SIG_SETMASK, NULL, &current) == 0);
  CHECK("sigprocmask usr1 blocked", sigismember(&current, SIGUSR1) == 1);
  CHECK("sigprocmask kill not blocked", sigismember(&current, SIGKILL) == 0 && sigismember(&current, SIGSTOP) == 0);
  sigemptyset(&block);
  sigaddset(&block, SIGUSR2);
  CHECK("sigprocmask setmask", sigprocmask(SIG_SETMASK, &block, &previous) == 0 && sigismember(&previous, SIGUSR1) == 1);
  CHECK("sigprocmask unblock", sigprocmask(SIG_UNBLOCK, &block, &previous) == 0 && sigismember(&previous, SIGUSR2) == 1);
  CHECK("sigprocmask empty again", sigprocmask(SIG_SETMASK, NULL, &current) == 0 && sigismember(&current, SIGUSR2) == 0);
  CHECK_ERRNO("sigprocmask bad how", syscall(SYS_rt_sigprocmask, 99, &block, NULL, 8), EINVAL);
  CHECK_ERRNO("rt_sigprocmask bad sigsetsize", syscall(SYS_rt_sigprocmask, SIG_BLOCK, &block, NULL, 4), EINVAL);
  sigset_t pending;
  CHECK("sigpending none", sigpending(&pending) == 0 && sigismember(&pending, SIGUSR1) == 0);
}

static void test_misc(void) {
  int p[2];
  CHECK("pipe", pipe(p) == 0);
  struct termios t;
  CHECK_ERRNO("ioctl TCGETS on pipe", ioctl(p[0], TCGETS, &t), ENOTTY);
  CHECK("isatty pipe false", isatty(p[1]) == 0);
  CHECK_ERRNO("ioctl bad fd", ioctl(12345, TCGETS, &t), EBADF);
  close(p[0]);
  close(p[1]);
  CHECK_ERRNO("syscall 999", syscall(999), ENOSYS);
  CHECK_ERRNO("syscall 1000", syscall(1000, 1, 2, 3), ENOSYS);
}

int main(void) {
  test_identity();
  test_uname();
  test_limits();
  test_sched_random();
  test_signals();
  test_misc();
  return finish();
}
