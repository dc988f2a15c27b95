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
#define HOST_SYS_getpriority 140
#define HOST_SYS_setpriority 141
#define HOST_SYS_getcpu 309
#define HOST_SYS_ioprio_get 252
#define HOST_SYS_ppoll 271
#define HOST_SYS_pselect6 270
#elif defined(__aarch64__)
#define HOST_SYS_sched_getaffinity 123
#define HOST_SYS_getpriority 141
#define HOST_SYS_setpriority 140
#define HOST_SYS_getcpu 168
#define HOST_SYS_ioprio_get 31
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
