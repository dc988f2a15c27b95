/*
 * Host side of the syscall layer, compiled at start-up by Bun's built-in C compiler (bun:ffi `cc`).
 *
 * Contract of every function here: thin wrapper around one host libc call, returning the Linux
 * convention — the result (>= 0) or -errno. Pointers are host addresses: guest buffers arrive as
 * slab base + guest address, so reads and writes land straight in guest memory. Structures come back
 * in their Linux 64-bit layout (struct statx, timespec, sysinfo, rusage, kernel termios, winsize); a
 * non-Linux host must synthesise those layouts here, and map its errno values (see ffi.ts).
 *
 * Only <stdint.h>/<stdbool.h>: the libc prototypes we need are declared by hand.
 */
#include <stdint.h>
#include <stdbool.h>

typedef long ssize_t_;
typedef unsigned long size_t_;

#ifdef __APPLE__
int *__error(void);
#define HOST_ERRNO (*__error())
#else
int *__errno_location(void);
#define HOST_ERRNO (*__errno_location())
#endif

/* A function, not a macro: the argument (the libc call) must be evaluated exactly once. */
static long RET(long result) { return result < 0 ? -(long)HOST_ERRNO : result; }

ssize_t_ read(int, void *, size_t_);
ssize_t_ write(int, const void *, size_t_);
ssize_t_ pread(int, void *, size_t_, long);
ssize_t_ pwrite(int, const void *, size_t_, long);
ssize_t_ readv(int, const void *, int);
ssize_t_ writev(int, const void *, int);
int openat(int, const char *, int, ...);
int close(int);
long lseek(int, long, int);
int statx(int, const char *, int, unsigned int, void *);
ssize_t_ getdents64(int, void *, size_t_);
ssize_t_ readlinkat(int, const char *, char *, size_t_);
ssize_t_ readlink(const char *, char *, size_t_);
int faccessat(int, const char *, int, int);
int fcntl(int, int, ...);
int pipe2(int *, int);
int ioctl(int, unsigned long, ...);
int mkdirat(int, const char *, unsigned int);
int unlinkat(int, const char *, int);
int renameat2(int, const char *, int, const char *, unsigned int);
int symlinkat(const char *, int, const char *);
int linkat(int, const char *, int, const char *, int);
int fchmodat(int, const char *, unsigned int, int);
int fchmod(int, unsigned int);
int fchownat(int, const char *, unsigned int, unsigned int, int);
int fchown(int, unsigned int, unsigned int);
int utimensat(int, const char *, const void *, int);
int ftruncate(int, long);
int fsync(int);
int fdatasync(int);
int gethostname(char *, size_t_);
int clock_gettime(int, void *);
int clock_getres(int, void *);
int clock_nanosleep(int, int, const void *, void *);
int nanosleep(const void *, void *);
int gettimeofday(void *, void *);
ssize_t_ getrandom(void *, size_t_, unsigned int);
int sysinfo(void *);
int getrusage(int, void *);
int getpid(void);
int getppid(void);
unsigned int getuid(void);
unsigned int geteuid(void);
unsigned int getgid(void);
unsigned int getegid(void);
unsigned int umask(unsigned int);
int sched_yield(void);
int isatty(int);
long syscall(long, ...);
int snprintf(char *, size_t_, const char *, ...);
int getpgid(int);
int getsid(int);
int getgroups(int, unsigned int *);
int getresuid(unsigned int *, unsigned int *, unsigned int *);
int getresgid(unsigned int *, unsigned int *, unsigned int *);
long times(void *);
int fstatfs(int, void *);
ssize_t_ sendfile(int, int, long *, size_t_);
void sync(void);
int syncfs(int);
int flock(int, int);

/* Host numbers that differ between host OSes/arches (Linux x86_64 and arm64 share the generic ioctls). */
#define HOST_F_DUPFD_CLOEXEC 1030
#define HOST_O_CLOEXEC 02000000
#define HOST_TCGETS 0x5401
#define HOST_TCSETS 0x5402
#define HOST_TIOCGWINSZ 0x5413
#define HOST_TIOCGPGRP 0x540f
#define HOST_FIONREAD 0x541b
#if defined(__x86_64__)
#define HOST_SYS_sched_getaffinity 204
#define HOST_SYS_sched_setaffinity 203
#define HOST_SYS_getpriority 140
#define HOST_SYS_setpriority 141
#define HOST_SYS_getcpu 309
#define HOST_SYS_ioprio_get 252
#define HOST_SYS_ioprio_set 251
#define HOST_SYS_ppoll 271
#define HOST_SYS_pselect6 270
#elif defined(__aarch64__)
#define HOST_SYS_sched_getaffinity 123
#define HOST_SYS_sched_setaffinity 122
#define HOST_SYS_getpriority 141
#define HOST_SYS_setpriority 140
#define HOST_SYS_getcpu 168
#define HOST_SYS_ioprio_get 31
#define HOST_SYS_ioprio_set 30
#define HOST_SYS_ppoll 73
#define HOST_SYS_pselect6 72
#endif

/* Scratch space for structures built or parsed in JS (host iovec arrays, path strings, fd pairs). */
static uint8_t scratch[1 << 17];
void *host_scratch(void) { return scratch; }
long host_scratch_size(void) { return sizeof scratch; }

long host_read(int fd, void *buf, size_t_ len) { return RET(read(fd, buf, len)); }
long host_write(int fd, const void *buf, size_t_ len) { return RET(write(fd, buf, len)); }
long host_pread(int fd, void *buf, size_t_ len, long off) { return RET(pread(fd, buf, len, off)); }
long host_pwrite(int fd, const void *buf, size_t_ len, long off) { return RET(pwrite(fd, buf, len, off)); }
long host_readv(int fd, const void *iov, int cnt) { return RET(readv(fd, iov, cnt)); }
long host_writev(int fd, const void *iov, int cnt) { return RET(writev(fd, iov, cnt)); }
/* preadv2/pwritev2 (preadv/pwritev are the flags-0 case); offset -1: the file position, as readv/writev. */
#ifdef __APPLE__
ssize_t_ preadv(int, const void *, int, long);
ssize_t_ pwritev(int, const void *, int, long);
long host_preadv2(int fd, const void *iov, int cnt, long off, int flags) {
  if (flags) return -45; /* EOPNOTSUPP: no RWF_* flags on macOS */
  return RET(off == -1 ? readv(fd, iov, cnt) : preadv(fd, iov, cnt, off));
}
long host_pwritev2(int fd, const void *iov, int cnt, long off, int flags) {
  if (flags) return -45;
  return RET(off == -1 ? writev(fd, iov, cnt) : pwritev(fd, iov, cnt, off));
}
#else
ssize_t_ preadv2(int, const void *, int, long, int);
ssize_t_ pwritev2(int, const void *, int, long, int);
long host_preadv2(int fd, const void *iov, int cnt, long off, int flags) {
  return RET(preadv2(fd, iov, cnt, off, flags));
}
long host_pwritev2(int fd, const void *iov, int cnt, long off, int flags) {
  return RET(pwritev2(fd, iov, cnt, off, flags));
}
#endif

/* Every host fd the guest owns is close-on-exec on the host: the guest's own FD_CLOEXEC lives in the fd table. */
long host_openat(int dirfd, const char *path, int flags, unsigned int mode) {
  return RET(openat(dirfd, path, flags | HOST_O_CLOEXEC, mode));
}
long host_close(int fd) { return RET(close(fd)); }
long host_lseek(int fd, long off, int whence) { return RET(lseek(fd, off, whence)); }
long host_statx(int dirfd, const char *path, int flags, unsigned int mask, void *buf) {
  return RET(statx(dirfd, path, flags, mask, buf));
}
long host_getdents64(int fd, void *buf, size_t_ len) { return RET(getdents64(fd, buf, len)); }
long host_readlinkat(int dirfd, const char *path, char *buf, size_t_ len) { return RET(readlinkat(dirfd, path, buf, len)); }
long host_faccessat(int dirfd, const char *path, int mode, int flags) { return RET(faccessat(dirfd, path, mode, flags)); }
long host_fcntl(int fd, int cmd, long arg) { return RET(fcntl(fd, cmd, arg)); }
long host_dup_min(int fd, int min) { return RET(fcntl(fd, HOST_F_DUPFD_CLOEXEC, min)); }
long host_pipe2(int *fds, int flags) { return RET(pipe2(fds, flags | HOST_O_CLOEXEC)); }

long host_tcgets(int fd, void *termios) { return RET(ioctl(fd, HOST_TCGETS, termios)); }
long host_tcsets(int fd, int action, const void *termios) { return RET(ioctl(fd, HOST_TCSETS + action, termios)); }
long host_tiocgwinsz(int fd, void *winsize) { return RET(ioctl(fd, HOST_TIOCGWINSZ, winsize)); }
long host_tiocgpgrp(int fd, int *pgrp) { return RET(ioctl(fd, HOST_TIOCGPGRP, pgrp)); }
long host_fionread(int fd, int *count) { return RET(ioctl(fd, HOST_FIONREAD, count)); }
long host_isatty(int fd) { return isatty(fd); }

long host_mkdirat(int dirfd, const char *path, unsigned int mode) { return RET(mkdirat(dirfd, path, mode)); }
long host_unlinkat(int dirfd, const char *path, int flags) { return RET(unlinkat(dirfd, path, flags)); }
long host_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags) {
  return RET(renameat2(olddirfd, oldpath, newdirfd, newpath, flags));
}
long host_symlinkat(const char *target, int dirfd, const char *path) { return RET(symlinkat(target, dirfd, path)); }
long host_linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, int flags) {
  return RET(linkat(olddirfd, oldpath, newdirfd, newpath, flags));
}
long host_fchmodat(int dirfd, const char *path, unsigned int mode, int flags) { return RET(fchmodat(dirfd, path, mode, flags)); }
long host_fchmod(int fd, unsigned int mode) { return RET(fchmod(fd, mode)); }
long host_fchownat(int dirfd, const char *path, unsigned int uid, unsigned int gid, int flags) {
  return RET(fchownat(dirfd, path, uid, gid, flags));
}
long host_fchown(int fd, unsigned int uid, unsigned int gid) { return RET(fchown(fd, uid, gid)); }
long host_utimensat(int dirfd, const char *path, const void *times, int flags) {
  return RET(utimensat(dirfd, path, times, flags));
}
long host_ftruncate(int fd, long length) { return RET(ftruncate(fd, length)); }
long host_fsync(int fd) { return RET(fsync(fd)); }
long host_fdatasync(int fd) { return RET(fdatasync(fd)); }

/* The absolute path a host fd refers to (Linux: the /proc/self/fd symlink). Not NUL-terminated. */
long host_fd_path(int fd, char *buf, size_t_ len) {
  char link[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  return RET(readlink(link, buf, len));
}

long host_gethostname(char *buf, size_t_ len) { return RET(gethostname(buf, len)); }
long host_clock_gettime(int clock, void *ts) { return RET(clock_gettime(clock, ts)); }
long host_clock_getres(int clock, void *ts) { return RET(clock_getres(clock, ts)); }
/* clock_nanosleep returns the error number itself, not -1/errno. */
long host_clock_nanosleep(int clock, int flags, const void *req, void *rem) {
  return -(long)clock_nanosleep(clock, flags, req, rem);
}
long host_nanosleep(const void *req, void *rem) { return RET(nanosleep(req, rem)); }
long host_gettimeofday(void *tv) { return RET(gettimeofday(tv, 0)); }
long host_getrandom(void *buf, size_t_ len, unsigned int flags) { return RET(getrandom(buf, len, flags)); }
long host_sysinfo(void *info) { return RET(sysinfo(info)); }
long host_getrusage(int who, void *usage) { return RET(getrusage(who, usage)); }
/* The raw syscall: it returns the size of the kernel cpumask it copied, which glibc's wrapper hides. */
long host_sched_getaffinity(int pid, size_t_ len, void *mask) {
  return RET(syscall(HOST_SYS_sched_getaffinity, pid, len, mask));
}
long host_sched_setaffinity(int pid, size_t_ len, const void *mask) {
  return RET(syscall(HOST_SYS_sched_setaffinity, pid, len, mask));
}
long host_sched_yield(void) { return RET(sched_yield()); }
long host_getpid(void) { return getpid(); }
long host_getppid(void) { return getppid(); }
long host_getuid(void) { return getuid(); }
long host_geteuid(void) { return geteuid(); }
long host_getgid(void) { return getgid(); }
long host_getegid(void) { return getegid(); }
long host_umask(unsigned int mask) { return umask(mask); }

long host_getpgid(int pid) { return RET(getpgid(pid)); }
long host_getsid(int pid) { return RET(getsid(pid)); }
long host_getgroups(int size, unsigned int *list) { return RET(getgroups(size, list)); }
/* Three u32 (real, effective, saved) at `ids`. */
long host_getresuid(unsigned int *ids) { return RET(getresuid(ids, ids + 1, ids + 2)); }
long host_getresgid(unsigned int *ids) { return RET(getresgid(ids, ids + 1, ids + 2)); }
/* times() returns clock ticks, which may legitimately look negative: errors only come with a bad pointer. */
long host_times(void *tms) { return times(tms); }
long host_fstatfs(int fd, void *buf) { return RET(fstatfs(fd, buf)); }
long host_sendfile(int out_fd, int in_fd, long *offset, size_t_ count) { return RET(sendfile(out_fd, in_fd, offset, count)); }
long host_sync(void) { sync(); return 0; }
long host_syncfs(int fd) { return RET(syncfs(fd)); }
long host_flock(int fd, int op) { return RET(flock(fd, op)); }
/* The raw syscalls: the kernel's getpriority returns 20 - nice (1..40), which glibc's wrapper hides. */
long host_getpriority(int which, int who) { return RET(syscall(HOST_SYS_getpriority, which, who)); }
long host_setpriority(int which, int who, int nice) { return RET(syscall(HOST_SYS_setpriority, which, who, nice)); }
/* Two u32 (cpu, node) at `out`. */
long host_getcpu(unsigned int *out) { return RET(syscall(HOST_SYS_getcpu, out, out + 1, 0)); }
long host_ioprio_get(int which, int who) { return RET(syscall(HOST_SYS_ioprio_get, which, who)); }
long host_ioprio_set(int which, int who, int ioprio) { return RET(syscall(HOST_SYS_ioprio_set, which, who, ioprio)); }
/* Scheduling policy of the calling host thread (the guest's task): param is one int (sched_priority). */
#ifdef __APPLE__
long host_sched_setscheduler(int pid, int policy, const void *param) { (void)pid, (void)policy, (void)param; return -78; }
long host_sched_getscheduler(int pid) { (void)pid; return 0; }
long host_sched_getparam(int pid, void *param) { (void)pid; *(int *)param = 0; return 0; }
long host_sched_rr_get_interval(int pid, void *ts) { (void)pid; ((long *)ts)[0] = 0; ((long *)ts)[1] = 0; return 0; }
#else
int sched_setscheduler(int, int, const void *);
int sched_getscheduler(int);
int sched_getparam(int, void *);
int sched_rr_get_interval(int, void *);
long host_sched_setscheduler(int pid, int policy, const void *param) { return RET(sched_setscheduler(pid, policy, param)); }
long host_sched_getscheduler(int pid) { return RET(sched_getscheduler(pid)); }
long host_sched_getparam(int pid, void *param) { return RET(sched_getparam(pid, param)); }
long host_sched_rr_get_interval(int pid, void *ts) { return RET(sched_rr_get_interval(pid, ts)); }
#endif
/*
 * The raw ppoll syscall (no signal mask: the guest's mask is the runtime's business): unlike glibc's poll,
 * it writes the remaining time back into `timeout` (NULL blocks without limit). struct pollfd and
 * struct timespec have the same layout on every Linux arch.
 */
long host_ppoll(void *fds, unsigned long nfds, void *timeout) {
  return RET(syscall(HOST_SYS_ppoll, fds, nfds, timeout, 0, 8));
}
/* The raw pselect6 syscall, no signal mask, remaining time written back into `timeout`. The fd_sets are
 * the host's bit arrays of n bits (longs), built by the caller from the guest's sets. */
long host_pselect(int n, void *in, void *out, void *ex, void *timeout) {
  return RET(syscall(HOST_SYS_pselect6, n, in, out, ex, timeout, 0));
}

/* ---------------------------------------------------------------------------------------------------------
 * Processes: fork, wait, kill, groups, death by signal.
 * A guest process is a host process (guest pid == host pid): fork is the host's fork of the whole runtime, so
 * guest memory (a private mapping in this process) is copied on write by the host kernel for free, and every
 * host fd — hence every open file description — is shared the way Linux shares it with a child.
 */
int fork(void);
int madvise(void *, size_t_, int);
int kill(int, int);
int setpgid(int, int);
int setsid(void);
void _exit(int);
int setrlimit(int, const void *);
int sigaction(int, const void *, void *);
int sigprocmask(int, const void *, void *);
int pthread_sigmask(int, const void *, void *);
int wait4(int, int *, int, void *);

#define HOST_MADV_DOFORK 11
#define HOST_TIOCSPGRP 0x5410
#define HOST_RLIMIT_CORE 4
#define HOST_SIG_BLOCK 0
#define HOST_SIG_UNBLOCK 1
#define HOST_SIG_SETMASK 2
#define HOST_SA_SIGINFO 4
#define HOST_SA_ONSTACK 0x08000000
#if defined(__x86_64__)
#define HOST_SYS_waitid 247
#define HOST_SYS_gettid 186
#define HOST_SYS_tgkill 234
#define HOST_SYS_exit_group 231
#elif defined(__aarch64__)
#define HOST_SYS_waitid 95
#define HOST_SYS_gettid 178
#define HOST_SYS_tgkill 131
#define HOST_SYS_exit_group 94
#endif

/*
 * Bun (JavaScriptCore) marks its big reservations MADV_DONTFORK (VmFlags "dc" in smaps): a child would lose
 * its JIT code and heap and crash at once. Undo that on every such mapping before the first fork; the
 * advice sticks (children inherit it), so the 1 ms smaps walk happens once per process tree.
 */
static int dontfork_undone;
/* Lower-case hex digits at `text` into *value; returns how many there were. */
static int parse_hex(const char *text, unsigned long *value) {
  int k = 0;
  *value = 0;
  while ((text[k] >= '0' && text[k] <= '9') || (text[k] >= 'a' && text[k] <= 'f')) {
    *value = *value * 16 + (unsigned long)(text[k] <= '9' ? text[k] - '0' : text[k] - 'a' + 10);
    k++;
  }
  return k;
}
static int undo_dontfork(void) {
  int fd = openat(-100, "/proc/self/smaps", HOST_O_CLOEXEC);
  if (fd < 0) return -(int)HOST_ERRNO;
  static char buf[1 << 16];
  char line[512];
  unsigned long start = 0, end = 0;
  int used = 0, n = 0, fixed = 0;
  for (;;) {
    ssize_t_ got = read(fd, buf, sizeof buf);
    if (got <= 0) break;
    for (ssize_t_ i = 0; i < got; i++) {
      char ch = buf[i];
      if (ch != '\n') {
        if (used < (int)sizeof line - 1) line[used++] = ch;
        continue;
      }
      line[used] = 0;
      used = 0;
      /* "start-end perms ..." opens a mapping; "VmFlags: ... dc ..." closes it. */
      unsigned long s = 0, e = 0;
      int k = parse_hex(line, &s), ok = 0;
      if (k > 0 && line[k] == '-') {
        int digits = parse_hex(line + k + 1, &e);
        ok = digits > 0 && line[k + 1 + digits] == ' ';
      }
      if (ok) {
        start = s;
        end = e;
        n++;
        continue;
      }
      if (line[0] == 'V' && line[1] == 'm' && line[2] == 'F' && line[3] == 'l') {
        for (int j = 8; line[j] && line[j + 1]; j++) {
          if (line[j] == ' ' && line[j + 1] == 'd' && line[j + 2] == 'c' && (line[j + 3] == ' ' || line[j + 3] == 0)) {
            if (madvise((void *)start, end - start, HOST_MADV_DOFORK) == 0) fixed++;
            break;
          }
        }
      }
    }
  }
  close(fd);
  return n > 0 ? fixed : -5 /* EIO: smaps unreadable */;
}

long host_wait4(int pid, int *status, int options, void *rusage) { return RET(wait4(pid, status, options, rusage)); }
/* The raw syscall: glibc's waitid has no rusage argument. */
long host_waitid(int idtype, int id, void *info, int options, void *rusage) {
  return RET(syscall(HOST_SYS_waitid, idtype, id, info, options, rusage));
}
long host_kill(int pid, int sig) { return RET(kill(pid, sig)); }
long host_setpgid(int pid, int pgid) { return RET(setpgid(pid, pgid)); }
long host_setsid(void) { return RET(setsid()); }
long host_tiocspgrp(int fd, const int *pgrp) { return RET(ioctl(fd, HOST_TIOCSPGRP, pgrp)); }
/*
 * _exit, as the raw exit_group: every forked child ends here, and calling libc's _exit there first would bind
 * its lazy PLT slot in each child anew (a symbol lookup touching a dozen copy-on-write pages per fork).
 */
long host_exit(int status) {
#if defined(__linux__)
  syscall(HOST_SYS_exit_group, status);
#endif
  _exit(status);
  return 0;
}

/* glibc's struct sigaction on Linux (x86_64 and arm64 alike). */
struct host_sigaction {
  void *handler;
  uint64_t mask[16];
  int flags;
  int pad;
  void *restorer;
};

/* A struct sigaction with `handler` (0 = SIG_DFL, 1 = SIG_IGN), `flags`, and `mask` as the first 64 signals. */
static void make_action(struct host_sigaction *action, void *handler, int flags, uint64_t mask) {
  for (int i = 0; i < 16; i++) action->mask[i] = 0;
  action->mask[0] = mask;
  action->handler = handler;
  action->flags = flags;
  action->pad = 0;
  action->restorer = 0;
}

/*
 * Die of `sig` for real, so the parent's wait status (and a shell's message) is exactly Linux's: default
 * disposition, unblocked, no core file (as qemu-user does it), then the signal. _exit only if it survived.
 */
long host_die_by_signal(int sig) {
  uint64_t no_core[2] = {0, 0};
  setrlimit(HOST_RLIMIT_CORE, no_core);
  struct host_sigaction dfl;
  make_action(&dfl, 0, 0, 0);
  sigaction(sig, &dfl, 0);
  uint64_t set[16];
  for (int i = 0; i < 16; i++) set[i] = 0;
  set[0] = 1ULL << (sig - 1);
  sigprocmask(HOST_SIG_UNBLOCK, set, 0);
  kill(getpid(), sig);
  _exit(128 + sig);
  return 0;
}

/* ---------------------------------------------------------------------------------------------------------
 * Host signals → guest signals. Signals sent to the runtime (kill from another guest process, SIGCHLD, a
 * terminal's SIGINT/SIGTSTP) are caught here and recorded; the runtime turns them into guest signals at the
 * next syscall return or run-loop exit; one whose guest action is the default "terminate" or "stop" acts at
 * once. Installed without SA_RESTART, the bridge interrupts a blocking host call with EINTR, which the
 * runtime resolves as Linux would.
 */
struct signal_record {
  int32_t pid, uid, code, status;
};
static volatile int32_t signal_flag;                 /* nonzero: something recorded (read by JS in place) */
static volatile uint64_t signal_pending;             /* bit n-1: signal n recorded */
static struct signal_record signal_info[65];
/* Signals that end (or stop) the process the moment they arrive: the guest's action is the default one and
 * it does not block them. Kept current by the runtime (HostSignalBridge.updateImmediate). A guest running
 * code that makes no syscalls is thus still killed or stopped at once; handlers wait for its next syscall
 * (Unicorn cannot be stopped safely from a signal handler: an instruction may run twice). */
static volatile uint64_t immediate[2]; /* [0]: terminate at once, [1]: stop at once (bit n-1: signal n) */
static long main_thread;                             /* the thread that runs the guest */
static uint64_t caught_set[16];
static struct host_sigaction previous_actions[65];

static volatile uint64_t signal_forwarded;           /* bit n-1: re-sent to the guest's thread by another */

long host_die_by_signal(int sig);
static int timer_expired(int sig, const int32_t *si);
/*
 * The vCPU's interrupt word (Vcpu.interruptWord): set when a signal is recorded, so a guest running code
 * without syscalls stops at its next block boundary and the runtime delivers the signal (0: none given).
 */
static volatile uint64_t *kick_word;
long host_signals_kick_word(uint64_t address) {
  kick_word = (volatile uint64_t *)address;
  return 0;
}
static void kick_vcpu(void) {
  if (kick_word) *kick_word = 1;
}

static void bridge_handler(int sig, void *info, void *context) {
  (void)context;
  if (timer_expired(sig, info)) { /* a guest POSIX timer's expiry (see host_timer_create) */
    kick_vcpu();
    return;
  }
  uint64_t bit = 1ULL << (sig - 1);
  if (immediate[0] & bit) host_die_by_signal(sig);
  if (immediate[1] & bit) {
    kill(getpid(), 19 /* SIGSTOP */);
    return;
  }
  int on_main = syscall(HOST_SYS_gettid) == main_thread;
  if (on_main && (signal_forwarded & bit)) {
    signal_forwarded &= ~bit; /* our own re-send: the record already names the real sender */
  } else {
    int32_t *si = info;
    /* siginfo: signo 0, errno 4, code 8, then pid 16, uid 20, status 24 (SIGCHLD) */
    signal_info[sig].code = si[2];
    signal_info[sig].pid = si[4];
    signal_info[sig].uid = si[5];
    signal_info[sig].status = si[6];
  }
  signal_pending |= bit;
  signal_flag = 1;
  kick_vcpu();
  if (!on_main) {
    /* One of Bun's own threads took it: re-send it to the guest's thread so a blocking call there returns
       EINTR (and the vCPU is kicked from that thread). */
    signal_forwarded |= bit;
    syscall(HOST_SYS_tgkill, getpid(), main_thread, sig);
  }
}

/*
 * Catch every signal in `set` (bit n-1 for signal n) with the bridge; 0 or -errno. Every caught signal is
 * masked while the bridge runs, so records never interleave.
 */
long host_signals_install(const uint64_t *set) {
  main_thread = syscall(HOST_SYS_gettid);
  caught_set[0] = set[0];
  struct host_sigaction action;
  make_action(&action, (void *)bridge_handler, HOST_SA_SIGINFO | HOST_SA_ONSTACK, set[0]);
  for (int sig = 1; sig <= 64; sig++) {
    if (!(set[0] & (1ULL << (sig - 1)))) continue;
    if (sigaction(sig, &action, &previous_actions[sig]) != 0) return -(long)HOST_ERRNO;
  }
  return 0;
}

static uint64_t host_timers_keep_caught(void);
/* Give the host process its own dispositions back (a runtime inside a longer-lived process, e.g. tests). */
long host_signals_uninstall(void) {
  immediate[0] = 0;
  immediate[1] = 0;
  uint64_t keep = host_timers_keep_caught();
  for (int sig = 1; sig <= 64; sig++) {
    if (!(caught_set[0] & ~keep & (1ULL << (sig - 1)))) continue;
    sigaction(sig, &previous_actions[sig], 0);
  }
  caught_set[0] &= keep;
  return 0;
}
/*
 * fork(2) of the whole runtime: the child returns 0 here, the parent the child's pid (or -errno). Caught
 * signals are blocked across it, so the child starts with no records of the parent's and nothing sent to it
 * early is lost: it stays pending in the kernel until the child's bridge is bound to the child's thread.
 */
long host_fork(void) {
  if (!dontfork_undone) {
    int r = undo_dontfork();
    if (r < 0) return r;
    dontfork_undone = 1;
  }
  uint64_t old[16];
  pthread_sigmask(HOST_SIG_BLOCK, caught_set, old);
  int pid = fork();
  long result = RET(pid);
  if (pid == 0) {
    main_thread = syscall(HOST_SYS_gettid);
    signal_pending = 0;
    signal_forwarded = 0;
    signal_flag = 0;
  }
  pthread_sigmask(HOST_SIG_SETMASK, old, 0);
  return result;
}
/*
 * SIGCHLD on the host follows the guest's disposition where the kernel acts on it: SIG_IGN (children are
 * reaped by the kernel, no zombies, no signal) and SA_NOCLDWAIT (reaped, signal still sent). Otherwise the
 * bridge catches it.
 */
#define HOST_SIGCHLD 17
#define HOST_SA_NOCLDWAIT 2
long host_signals_child_mode(int ignore, int nocldwait) {
  struct host_sigaction action;
  if (ignore) make_action(&action, (void *)1 /* SIG_IGN */, 0, caught_set[0]);
  else make_action(&action, (void *)bridge_handler, HOST_SA_SIGINFO | HOST_SA_ONSTACK | (nocldwait ? HOST_SA_NOCLDWAIT : 0), caught_set[0]);
  return RET(sigaction(HOST_SIGCHLD, &action, 0));
}
/* Where the runtime keeps the two immediate masks (read by the bridge). */
void *host_signals_immediate(void) { return (void *)immediate; }
void *host_signals_flag(void) { return (void *)&signal_flag; }

/*
 * Move the recorded signals out: their mask into out[0], and for each signal n recorded, its record (pid,
 * uid, code, status as i32) at out + 8 + 16*(n-1)... only for recorded ones. Caught signals are blocked
 * meanwhile so no record is torn. Returns the number of signals taken.
 */
long host_signals_take(uint8_t *out) {
  uint64_t old[16];
  pthread_sigmask(HOST_SIG_BLOCK, caught_set, old);
  uint64_t pending = signal_pending;
  signal_pending = 0;
  signal_flag = 0;
  *(uint64_t *)out = pending;
  long n = 0;
  for (int sig = 1; sig <= 64; sig++) {
    if (!(pending & (1ULL << (sig - 1)))) continue;
    int32_t *record = (int32_t *)(out + 8 + 16 * (sig - 1));
    record[0] = signal_info[sig].pid;
    record[1] = signal_info[sig].uid;
    record[2] = signal_info[sig].code;
    record[3] = signal_info[sig].status;
    n++;
  }
  pthread_sigmask(HOST_SIG_SETMASK, old, 0);
  return n;
}

/*
 * Sleep until a caught signal arrives or `timeout` (a struct timespec; NULL: none) passes, without the race
 * between "nothing recorded" and going to sleep: caught signals are blocked, the flag checked, then ppoll with
 * no fds and a signal mask unblocks them and sleeps atomically (sigsuspend with a limit). Returns 0; the
 * caller checks whether something was recorded.
 */
long host_signals_wait_timeout(void *timeout) {
  uint64_t old[16];
  pthread_sigmask(HOST_SIG_BLOCK, caught_set, old);
  if (!signal_flag) {
    uint64_t during[16];
    for (int i = 0; i < 16; i++) during[i] = old[i];
    during[0] &= ~caught_set[0];
    syscall(HOST_SYS_ppoll, 0, 0, timeout, during, 8);
  }
  pthread_sigmask(HOST_SIG_SETMASK, old, 0);
  return 0;
}
long host_signals_wait(void) { return host_signals_wait_timeout(0); }

#if defined(__x86_64__)
#define HOST_SYS_futex 202
#elif defined(__aarch64__)
#define HOST_SYS_futex 98
#endif
/* The raw futex syscall on host addresses: guest memory is this process's memory (and a MAP_SHARED guest
 * mapping is the host's shared mapping), so a guest futex word is a host futex word. */
long host_futex(void *uaddr, int op, unsigned int val, void *timeout_or_val2, void *uaddr2, unsigned int val3) {
  return RET(syscall(HOST_SYS_futex, uaddr, op, val, timeout_or_val2, uaddr2, val3));
}

#if defined(__x86_64__) || defined(__aarch64__)
#define HOST_SYS_futex_waitv 449
#endif
/* futex_waitv on host addresses: `waiters` is an array of struct futex_waitv whose uaddr fields are host
 * addresses (built by the caller). */
long host_futex_waitv(void *waiters, unsigned int count, unsigned int flags, void *timeout, int clockid) {
  return RET(syscall(HOST_SYS_futex_waitv, waiters, count, flags, timeout, clockid));
}

int memfd_create(const char *, unsigned int);
/* A shmem object of `size` bytes for MAP_SHARED|MAP_ANONYMOUS guest memory (what Linux gives such a mapping),
 * so the memory stays shared with forked children: the fd, or -errno. */
long host_memfd(unsigned long size) {
  int fd = memfd_create("guest-shared-anon", 1 /* MFD_CLOEXEC */);
  if (fd < 0) return -(long)HOST_ERRNO;
  if (ftruncate(fd, (long)size) != 0) {
    long error = -(long)HOST_ERRNO;
    close(fd);
    return error;
  }
  return fd;
}

int munmap(void *, size_t_);
void *mmap(void *, size_t_, int, int, int, long);
/*
 * One page shared by every process of a guest process tree (a MAP_SHARED mapping survives fork): slot
 * pid % 1024 holds the pid of a forked child once it has exec'd. Linux answers setpgid on such a child with
 * EACCES; the host kernel cannot tell (our exec happens inside the process), so the parent looks here.
 */
static uint32_t *exec_marks;
void *host_exec_marks(void) {
  if (!exec_marks) {
    void *p = mmap(0, 4096, 3 /* PROT_READ|PROT_WRITE */, 0x21 /* MAP_SHARED|MAP_ANONYMOUS */, -1, 0);
    if (p == (void *)-1) return 0;
    exec_marks = p;
  }
  return exec_marks;
}

int getrlimit(int, void *);
/* The host process's own limits (struct rlimit: two u64, the same on every LP64 Linux): what a guest inherits. */
long host_getrlimit(int resource, void *limit) { return RET(getrlimit(resource, limit)); }

int setitimer(int, const void *, void *);
int getitimer(int, void *);
/* Interval timers are the host process's own: SIGALRM/SIGVTALRM/SIGPROF reach the guest through the signal
 * bridge. struct itimerval (two timevals of two longs) is the same on every LP64 Linux. */
long host_setitimer(int which, const void *value, void *old) { return RET(setitimer(which, value, old)); }
long host_getitimer(int which, void *value) { return RET(getitimer(which, value)); }

int epoll_create1(int);
int epoll_ctl(int, int, int, void *);
int epoll_wait(int, void *, int, int);
#define HOST_EPOLL_CLOEXEC 02000000
/* struct epoll_event is packed (12 bytes) on x86_64 and 16 bytes (u32, pad, u64) on arm64: built byte-wise. */
#if defined(__x86_64__)
#define HOST_EPOLL_EVENT_SIZE 12
#define HOST_EPOLL_DATA_OFFSET 4
#else
#define HOST_EPOLL_EVENT_SIZE 16
#define HOST_EPOLL_DATA_OFFSET 8
#endif
long host_epoll_create1(int flags) { return RET(epoll_create1(flags | HOST_EPOLL_CLOEXEC)); }
long host_epoll_ctl(int epfd, int op, int fd, unsigned int events, uint64_t data) {
  uint8_t event[16];
  for (int i = 0; i < 16; i++) event[i] = 0;
  *(uint32_t *)event = events;
  uint8_t *d = event + HOST_EPOLL_DATA_OFFSET;
  for (int i = 0; i < 8; i++) d[i] = (uint8_t)(data >> (8 * i));
  return RET(epoll_ctl(epfd, op, fd, event));
}
/* epoll_wait into the guest's array of arm64 struct epoll_event (16 bytes each); at most 1024 at a time. */
static uint8_t epoll_buffer[1024 * 16];
long host_epoll_wait(int epfd, uint8_t *out, int max, int timeout_ms) {
  if (max > 1024) max = 1024;
  int n = epoll_wait(epfd, epoll_buffer, max, timeout_ms);
  if (n < 0) return -(long)HOST_ERRNO;
  for (int i = 0; i < n; i++) {
    uint8_t *from = epoll_buffer + i * HOST_EPOLL_EVENT_SIZE;
    uint8_t *to = out + i * 16;
    for (int k = 0; k < 4; k++) to[k] = from[k];
    for (int k = 4; k < 8; k++) to[k] = 0;
    for (int k = 0; k < 8; k++) to[8 + k] = from[HOST_EPOLL_DATA_OFFSET + k];
  }
  return n;
}

int eventfd(unsigned int, int);
int timerfd_create(int, int);
int timerfd_settime(int, int, const void *, void *);
int timerfd_gettime(int, void *);
/* eventfd and timerfd are the host's (struct itimerspec is the same on every LP64 Linux); always close-on-exec
 * on the host like every guest fd (EFD_CLOEXEC and TFD_CLOEXEC are O_CLOEXEC). */
long host_eventfd(unsigned int initval, int flags) { return RET(eventfd(initval, flags | HOST_O_CLOEXEC)); }
long host_timerfd_create(int clock, int flags) { return RET(timerfd_create(clock, flags | HOST_O_CLOEXEC)); }
long host_timerfd_settime(int fd, int flags, const void *value, void *old) {
  return RET(timerfd_settime(fd, flags, value, old));
}
long host_timerfd_gettime(int fd, void *value) { return RET(timerfd_gettime(fd, value)); }

/* ---------------------------------------------------------------------------------------------------------
 * Guest POSIX timers (timer_create & co.): one host POSIX timer per guest timer, on the same clock id (a CPU
 * clock thus measures this whole runtime process, or its guest-running thread). A guest timer that signals
 * gets a host timer that sends TIMER_SIGNAL to the thread running the guest (SIGEV_THREAD_ID, so a blocking
 * host call there is interrupted with EINTR like the guest's would be), its sigev_value carrying TIMER_TAG
 * and the guest timer's slot. The bridge counts expiries per slot (1 + the host's si_overrun); the runtime
 * takes the counts and raises the guest's own signal with the guest's siginfo. A SIGEV_NONE guest timer gets a
 * SIGEV_NONE host timer (it only keeps time). Host timers are not inherited by fork and die with execve of
 * the host process, exactly as the guest's must; a guest execve (inside this process) deletes them itself.
 */
#if defined(__x86_64__)
#define HOST_SYS_timer_create 222
#define HOST_SYS_timer_settime 223
#define HOST_SYS_timer_gettime 224
#define HOST_SYS_timer_getoverrun 225
#define HOST_SYS_timer_delete 226
#elif defined(__aarch64__)
#define HOST_SYS_timer_create 107
#define HOST_SYS_timer_gettime 108
#define HOST_SYS_timer_getoverrun 109
#define HOST_SYS_timer_settime 110
#define HOST_SYS_timer_delete 111
#endif
#define TIMER_SIGNAL 64 /* SIGRTMAX: neither glibc nor Bun uses it; other senders' 64 is told apart by si_code */
#define TIMER_BIT (1ULL << (TIMER_SIGNAL - 1))
#define TIMER_TAG 0x47544d52ULL /* "GTMR", in the high half of sigev_value */
#define HOST_SI_TIMER (-2)
#define HOST_SIGEV_NONE 1
#define HOST_SIGEV_THREAD_ID 4
#define TIMER_SLOTS 1024

static volatile uint32_t timer_counts[TIMER_SLOTS];      /* expiries not yet taken, by slot */
static volatile uint64_t timer_pending[TIMER_SLOTS / 64]; /* bit: that slot's count is nonzero */
static volatile int32_t timer_signal_of[TIMER_SLOTS];     /* the guest signal of the slot's timer (0: none) */
static int timers_enabled;

static uint64_t host_timers_keep_caught(void) { return timers_enabled ? TIMER_BIT : 0; }

/* Called first by the bridge: 1 if this is one of our timers' expiries (then counted), else 0. */
static int timer_expired(int sig, const int32_t *si) {
  if (sig != TIMER_SIGNAL || si[2] != HOST_SI_TIMER) return 0;
  uint64_t value = (uint64_t)(uint32_t)si[6] | ((uint64_t)(uint32_t)si[7] << 32);
  if ((value >> 32) != TIMER_TAG) return 0;
  uint32_t slot = (uint32_t)value;
  if (slot >= TIMER_SLOTS) return 1;
  int guest_signal = timer_signal_of[slot];
  if (guest_signal <= 0) return 1; /* disarmed or deleted meanwhile */
  /* A guest signal whose action is the default "terminate"/"stop" acts at once, as in the bridge. */
  uint64_t bit = 1ULL << (guest_signal - 1);
  if (immediate[0] & bit) host_die_by_signal(guest_signal);
  if (immediate[1] & bit) {
    kill(getpid(), 19 /* SIGSTOP */);
    return 1;
  }
  timer_counts[slot] += 1 + (uint32_t)(si[5] > 0 ? si[5] : 0);
  timer_pending[slot / 64] |= 1ULL << (slot % 64);
  signal_flag = 1;
  return 1;
}

/*
 * Make sure TIMER_SIGNAL reaches the bridge even when the runtime does not catch host signals (a runtime
 * inside a test process): its handler is installed once and stays (uninstall keeps it: a timer may still be
 * armed). 0 or -errno.
 */
long host_timers_enable(void) {
  if (!main_thread) main_thread = syscall(HOST_SYS_gettid);
  if (!(caught_set[0] & TIMER_BIT)) {
    struct host_sigaction action;
    make_action(&action, (void *)bridge_handler, HOST_SA_SIGINFO | HOST_SA_ONSTACK, caught_set[0] | TIMER_BIT);
    if (sigaction(TIMER_SIGNAL, &action, &previous_actions[TIMER_SIGNAL]) != 0) return -(long)HOST_ERRNO;
    caught_set[0] |= TIMER_BIT;
  }
  timers_enabled = 1;
  return 0;
}

/* A host timer on `clock` for guest timer `slot`: signalling `guest_signal` (0: SIGEV_NONE). Its id or -errno. */
long host_timer_create(int clock, int slot, int guest_signal) {
  if (slot < 0 || slot >= TIMER_SLOTS) return -22; /* EINVAL */
  uint8_t event[64];
  for (int i = 0; i < 64; i++) event[i] = 0;
  if (guest_signal > 0) {
    *(uint64_t *)event = (TIMER_TAG << 32) | (uint32_t)slot; /* sigev_value */
    *(int32_t *)(event + 8) = TIMER_SIGNAL;                  /* sigev_signo */
    *(int32_t *)(event + 12) = HOST_SIGEV_THREAD_ID;         /* sigev_notify */
    *(int32_t *)(event + 16) = (int32_t)main_thread;         /* sigev_notify_thread_id */
  } else {
    *(int32_t *)(event + 12) = HOST_SIGEV_NONE;
  }
  int id = -1;
  if (syscall(HOST_SYS_timer_create, clock, event, &id) != 0) return -(long)HOST_ERRNO;
  timer_signal_of[slot] = guest_signal;
  return id;
}
/* (Re-)arm or disarm the host timer of `slot`: the slot's untaken expiries are dropped first, with the timer
 * signal blocked so that nothing of the old arming slips in (the kernel drops the old arming's own pending
 * signal) and nothing of the new one is lost (it may expire at once). */
long host_timer_settime(int id, int slot, int flags, const void *value, void *old) {
  if (slot < 0 || slot >= TIMER_SLOTS) return -22;
  uint64_t mask[16];
  pthread_sigmask(HOST_SIG_BLOCK, caught_set, mask);
  timer_counts[slot] = 0;
  timer_pending[slot / 64] &= ~(1ULL << (slot % 64));
  long result = RET(syscall(HOST_SYS_timer_settime, id, flags, value, old));
  pthread_sigmask(HOST_SIG_SETMASK, mask, 0);
  return result;
}
long host_timer_gettime(int id, void *value) { return RET(syscall(HOST_SYS_timer_gettime, id, value)); }
long host_timer_delete(int id) { return RET(syscall(HOST_SYS_timer_delete, id)); }

/* A deleted timer's slot: its untaken expiries are dropped and it signals nothing any more. */
long host_timer_forget(int slot) {
  if (slot < 0 || slot >= TIMER_SLOTS) return -22;
  uint64_t old[16];
  pthread_sigmask(HOST_SIG_BLOCK, caught_set, old);
  timer_counts[slot] = 0;
  timer_pending[slot / 64] &= ~(1ULL << (slot % 64));
  timer_signal_of[slot] = 0;
  pthread_sigmask(HOST_SIG_SETMASK, old, 0);
  return 0;
}

/* A forked child: its parent's timers are not its own (the host's were not inherited either). */
long host_timers_reset(void) {
  uint64_t old[16];
  pthread_sigmask(HOST_SIG_BLOCK, caught_set, old);
  for (int i = 0; i < TIMER_SLOTS; i++) {
    timer_counts[i] = 0;
    timer_signal_of[i] = 0;
  }
  for (int i = 0; i < TIMER_SLOTS / 64; i++) timer_pending[i] = 0;
  pthread_sigmask(HOST_SIG_SETMASK, old, 0);
  return 0;
}

/* Move the expiry counts out as (u32 slot, u32 count) pairs, at most `max`; returns how many. */
long host_timers_take(uint32_t *out, int max) {
  uint64_t old[16];
  pthread_sigmask(HOST_SIG_BLOCK, caught_set, old);
  long n = 0;
  for (int word = 0; word < TIMER_SLOTS / 64 && n < max; word++) {
    for (int bit = 0; bit < 64 && timer_pending[word] && n < max; bit++) {
      if (!(timer_pending[word] & (1ULL << bit))) continue;
      int slot = word * 64 + bit;
      out[2 * n] = (uint32_t)slot;
      out[2 * n + 1] = timer_counts[slot];
      timer_counts[slot] = 0;
      timer_pending[word] &= ~(1ULL << bit);
      n++;
    }
  }
  pthread_sigmask(HOST_SIG_SETMASK, old, 0);
  return n;
}
