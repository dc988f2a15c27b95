/*
 * File and descriptor syscalls, exercised in a fresh directory under /tmp that the test creates and removes.
 * Also built for x86_64 and run natively: every expectation here is Linux's, not an emulator's.
 */
// fixture: native
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "check.h"

#ifndef SYS_faccessat2
#define SYS_faccessat2 439 /* same number on aarch64 and x86_64 */
#endif

/* The kernel's struct linux_dirent64, read through the raw syscall. */
struct linux_dirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

static int compare_strings(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void test_read_write(int dir) {
  int fd = openat(dir, "data.txt", O_CREAT | O_RDWR | O_TRUNC, 0644);
  CHECK("openat create", fd >= 0);
  CHECK("write", write(fd, "hello world\n", 12) == 12);
  CHECK("lseek cur after write", lseek(fd, 0, SEEK_CUR) == 12);
  CHECK("lseek set", lseek(fd, 0, SEEK_SET) == 0);
  char buf[64] = {0};
  CHECK("read", read(fd, buf, sizeof buf) == 12 && memcmp(buf, "hello world\n", 12) == 0);
  CHECK("read at eof returns 0", read(fd, buf, sizeof buf) == 0);
  CHECK("lseek end", lseek(fd, 0, SEEK_END) == 12);
  CHECK_ERRNO("lseek negative", lseek(fd, -100, SEEK_SET), EINVAL);
  CHECK_ERRNO("lseek bad whence", lseek(fd, 0, 12345), EINVAL);

  memset(buf, 0, sizeof buf);
  CHECK("pread64", pread(fd, buf, 5, 6) == 5 && memcmp(buf, "world", 5) == 0);
  CHECK("pread keeps offset", lseek(fd, 0, SEEK_CUR) == 12);
  CHECK("pwrite64", pwrite(fd, "WORLD", 5, 6) == 5);
  CHECK("pwrite keeps offset", lseek(fd, 0, SEEK_CUR) == 12);
  CHECK_ERRNO("pread negative offset", pread(fd, buf, 1, -1), EINVAL);

  struct iovec out[3] = {{"ab", 2}, {"", 0}, {"cde\n", 4}};
  CHECK("writev", writev(fd, out, 3) == 6);
  lseek(fd, 0, SEEK_SET);
  char a[6] = {0}, b[100] = {0};
  struct iovec in[2] = {{a, 5}, {b, sizeof b}};
  CHECK("readv", readv(fd, in, 2) == 18);
  CHECK("readv contents", memcmp(a, "hello", 5) == 0 && memcmp(b, " WORLD\nabcde\n", 13) == 0);

  struct stat st;
  CHECK("fstat", fstat(fd, &st) == 0);
  CHECK("fstat size 18", st.st_size == 18);
  CHECK("fstat regular", S_ISREG(st.st_mode));
  CHECK("fstat nlink 1", st.st_nlink == 1);
  CHECK("fstat blksize", st.st_blksize > 0);

  /* Growing with a hole: pwrite past the end, the gap reads as zeros. */
  CHECK("pwrite past end", pwrite(fd, "Z", 1, 100) == 1);
  char hole[4] = {1, 1, 1, 1};
  CHECK("hole reads zero", pread(fd, hole, 4, 50) == 4 && hole[0] == 0 && hole[3] == 0);
  CHECK("ftruncate", ftruncate(fd, 3) == 0 && fstat(fd, &st) == 0 && st.st_size == 3);
  CHECK("close", close(fd) == 0);
  CHECK_ERRNO("close twice", close(fd), EBADF);
}

static void test_stat_family(int dir) {
  struct stat st;
  CHECK("newfstatat", fstatat(dir, "data.txt", &st, 0) == 0 && st.st_size == 3 && S_ISREG(st.st_mode));
  CHECK("symlinkat", symlinkat("data.txt", dir, "link") == 0);
  CHECK("newfstatat follows link", fstatat(dir, "link", &st, 0) == 0 && S_ISREG(st.st_mode));
  CHECK("newfstatat nofollow", fstatat(dir, "link", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode));
  CHECK("newfstatat empty path", fstatat(dir, "", &st, AT_EMPTY_PATH) == 0 && S_ISDIR(st.st_mode));
  CHECK_ERRNO("newfstatat missing", fstatat(dir, "missing", &st, 0), ENOENT);

  struct statx stx;
  memset(&stx, 0, sizeof stx);
  CHECK("statx", statx(dir, "data.txt", 0, STATX_BASIC_STATS, &stx) == 0);
  CHECK("statx size 3", stx.stx_size == 3);
  CHECK("statx regular", S_ISREG(stx.stx_mode));
  CHECK("statx mask has size", (stx.stx_mask & STATX_SIZE) != 0);
  CHECK("statx agrees with stat", fstatat(dir, "data.txt", &st, 0) == 0 && stx.stx_ino == st.st_ino);
  CHECK_ERRNO("statx missing", statx(dir, "missing", 0, STATX_BASIC_STATS, &stx), ENOENT);

  char target[64] = {0};
  CHECK("readlinkat", readlinkat(dir, "link", target, sizeof target) == 8 && memcmp(target, "data.txt", 8) == 0);
  CHECK("readlinkat truncates", readlinkat(dir, "link", target, 4) == 4);
  CHECK_ERRNO("readlinkat not a link", readlinkat(dir, "data.txt", target, sizeof target), EINVAL);

  CHECK("faccessat exists", faccessat(dir, "data.txt", F_OK, 0) == 0);
  CHECK("faccessat read", faccessat(dir, "data.txt", R_OK, 0) == 0);
  CHECK_ERRNO("faccessat missing", faccessat(dir, "missing", F_OK, 0), ENOENT);
  CHECK("faccessat2", syscall(SYS_faccessat2, dir, "data.txt", R_OK | W_OK, 0) == 0);
  CHECK("faccessat2 nofollow", syscall(SYS_faccessat2, dir, "link", F_OK, AT_SYMLINK_NOFOLLOW) == 0);
  CHECK_ERRNO("faccessat2 bad flags", syscall(SYS_faccessat2, dir, "data.txt", F_OK, 0x40000000), EINVAL);
}

static void test_directories(int dir) {
  CHECK("mkdirat", mkdirat(dir, "sub", 0755) == 0);
  CHECK_ERRNO("mkdirat existing", mkdirat(dir, "sub", 0755), EEXIST);
  CHECK_ERRNO("openat excl existing", openat(dir, "data.txt", O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
  CHECK_ERRNO("openat through file", openat(dir, "data.txt/x", O_RDONLY), ENOTDIR);
  CHECK_ERRNO("openat directory flag on file", openat(dir, "data.txt", O_RDONLY | O_DIRECTORY), ENOTDIR);
  CHECK_ERRNO("openat missing", openat(dir, "missing", O_RDONLY), ENOENT);
  CHECK_ERRNO("openat write a directory", openat(dir, "sub", O_WRONLY), EISDIR);
  int fd = openat(dir, "sub/inner", O_CREAT | O_WRONLY, 0600);
  CHECK("create in subdir", fd >= 0);
  close(fd);

  CHECK("renameat2", renameat2(dir, "sub/inner", dir, "moved", 0) == 0);
  CHECK_ERRNO("renameat2 noreplace", renameat2(dir, "moved", dir, "data.txt", RENAME_NOREPLACE), EEXIST);
  CHECK("renameat2 exchange", renameat2(dir, "moved", dir, "link", RENAME_EXCHANGE) == 0);
  struct stat st;
  CHECK("exchange swapped", fstatat(dir, "moved", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode));
  CHECK_ERRNO("renameat missing", renameat(dir, "missing", dir, "x"), ENOENT);

  /* getdents64: read the whole directory, sort the names, check d_type of each. */
  int dfd = openat(dir, ".", O_RDONLY | O_DIRECTORY);
  CHECK("open directory", dfd >= 0);
  char buf[4096];
  char *names[32];
  int count = 0, types_ok = 1;
  for (;;) {
    long n = syscall(SYS_getdents64, dfd, buf, sizeof buf);
    if (n <= 0) {
      CHECK("getdents64 end", n == 0);
      break;
    }
    for (long off = 0; off < n;) {
      struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + off);
      if (count < 32) names[count++] = strdup(d->d_name);
      unsigned char want = strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0 || strcmp(d->d_name, "sub") == 0
                               ? DT_DIR
                           : strcmp(d->d_name, "moved") == 0 ? DT_LNK
                                                             : DT_REG;
      if (d->d_type != want && d->d_type != DT_UNKNOWN) types_ok = 0;
      off += d->d_reclen;
    }
  }
  qsort(names, count, sizeof *names, compare_strings);
  printf("getdents64 names:");
  for (int i = 0; i < count; i++) {
    printf(" %s", names[i]);
    free(names[i]);
  }
  printf("\n");
  CHECK("getdents64 count 6", count == 6);
  CHECK("getdents64 d_type", types_ok);
  CHECK_ERRNO("getdents64 on a file", syscall(SYS_getdents64, openat(dir, "data.txt", O_RDONLY), buf, sizeof buf), ENOTDIR);
  close(dfd);

  /* opendir/readdir through libc agree with the raw syscall. */
  DIR *d = fdopendir(openat(dir, ".", O_RDONLY | O_DIRECTORY));
  int libc_count = 0;
  while (d && readdir(d)) libc_count++;
  if (d) closedir(d);
  CHECK("readdir count 6", libc_count == 6);

  CHECK_ERRNO("unlinkat directory without flag", unlinkat(dir, "sub", 0), EISDIR);
  CHECK_ERRNO("unlinkat missing", unlinkat(dir, "missing", 0), ENOENT);
  int sub_fd = openat(dir, "sub/keep", O_CREAT | O_WRONLY, 0600);
  close(sub_fd);
  CHECK_ERRNO("rmdir non-empty", unlinkat(dir, "sub", AT_REMOVEDIR), ENOTEMPTY);
  CHECK("unlinkat file", unlinkat(dir, "sub/keep", 0) == 0);
  CHECK("unlinkat dir", unlinkat(dir, "sub", AT_REMOVEDIR) == 0);
}

static void test_descriptors(int dir) {
  int fd = openat(dir, "data.txt", O_RDWR | O_APPEND | O_CLOEXEC);
  CHECK("open append cloexec", fd >= 0);
  CHECK("F_GETFD cloexec", fcntl(fd, F_GETFD) == FD_CLOEXEC);
  CHECK("F_SETFD clear", fcntl(fd, F_SETFD, 0) == 0 && fcntl(fd, F_GETFD) == 0);
  int fl = fcntl(fd, F_GETFL);
  CHECK("F_GETFL accmode rdwr", (fl & O_ACCMODE) == O_RDWR);
  CHECK("F_GETFL append", (fl & O_APPEND) != 0);
  CHECK("F_SETFL nonblock", fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0 && (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
  CHECK("append writes at end", write(fd, "xy", 2) == 2 && lseek(fd, 0, SEEK_CUR) == 5);

  int dup_fd = fcntl(fd, F_DUPFD, 100);
  CHECK("F_DUPFD lowest >= 100", dup_fd == 100);
  CHECK("F_DUPFD no cloexec", fcntl(dup_fd, F_GETFD) == 0);
  int dup_cloexec = fcntl(fd, F_DUPFD_CLOEXEC, 100);
  CHECK("F_DUPFD_CLOEXEC", dup_cloexec == 101 && fcntl(dup_cloexec, F_GETFD) == FD_CLOEXEC);
  CHECK("dup shares offset", lseek(dup_fd, 1, SEEK_SET) == 1 && lseek(fd, 0, SEEK_CUR) == 1);

  int low = dup(fd);
  CHECK("dup", low >= 0 && low < 100);
  CHECK("dup3", dup3(fd, 150, O_CLOEXEC) == 150 && fcntl(150, F_GETFD) == FD_CLOEXEC);
  CHECK_ERRNO("dup3 same fd", dup3(fd, fd, 0), EINVAL);
  CHECK_ERRNO("dup3 bad flags", dup3(fd, 151, 0x1), EINVAL);
  CHECK("dup2 same fd", dup2(fd, fd) == fd);
  close(low);
  close(dup_fd);
  close(dup_cloexec);
  close(150);
  close(fd);

  CHECK_ERRNO("read bad fd", read(12345, NULL, 0), EBADF);
  CHECK_ERRNO("write bad fd", write(-1, "x", 1), EBADF);
  CHECK_ERRNO("fcntl bad fd", fcntl(12345, F_GETFD), EBADF);
  CHECK_ERRNO("dup bad fd", dup(12345), EBADF);
  CHECK_ERRNO("fstat bad fd", fstat(-5, &(struct stat){0}), EBADF);

  /* A bad buffer pointer is an error return, never a crash. */
  void *volatile bad = (void *)1; /* volatile: keeps the compiler from flagging (or folding) the bad pointer */
  int wfd = openat(dir, "efault", O_CREAT | O_RDWR | O_TRUNC, 0600);
  CHECK_ERRNO("write bad buffer", write(wfd, bad, 10), EFAULT);
  CHECK("write after efault", write(wfd, "abc", 3) == 3 && lseek(wfd, 0, SEEK_SET) == 0);
  CHECK_ERRNO("read bad buffer", read(wfd, bad, 3), EFAULT);
  CHECK_ERRNO("openat bad path pointer", openat(dir, (const char *)bad, O_RDONLY), EFAULT);
  CHECK_ERRNO("fstat bad struct pointer", fstat(wfd, (struct stat *)bad), EFAULT);
  close(wfd);
  unlinkat(dir, "efault", 0);

  int p[2];
  CHECK("pipe2", pipe2(p, O_CLOEXEC) == 0);
  CHECK("pipe2 cloexec", fcntl(p[0], F_GETFD) == FD_CLOEXEC && fcntl(p[1], F_GETFD) == FD_CLOEXEC);
  CHECK("pipe write", write(p[1], "ping", 4) == 4);
  char buf[8] = {0};
  CHECK("pipe read", read(p[0], buf, sizeof buf) == 4 && memcmp(buf, "ping", 4) == 0);
  CHECK_ERRNO("pipe lseek", lseek(p[0], 0, SEEK_SET), ESPIPE);
  CHECK("pipe2 nonblock", fcntl(p[0], F_SETFL, O_NONBLOCK) == 0);
  CHECK_ERRNO("empty pipe nonblock read", read(p[0], buf, 1), EAGAIN);
  close(p[1]);
  CHECK("pipe eof", read(p[0], buf, 1) == 0);
  close(p[0]);
  CHECK_ERRNO("pipe2 bad flags", pipe2(p, 0x7fffffff), EINVAL);
}

static void test_cwd_umask(const char *path, int dir) {
  char before[PATH_MAX], now[PATH_MAX];
  CHECK("getcwd", getcwd(before, sizeof before) != NULL);
  CHECK("chdir", chdir(path) == 0);
  CHECK("getcwd after chdir", getcwd(now, sizeof now) != NULL && strcmp(now, path) == 0);
  CHECK_ERRNO("getcwd small buffer", syscall(SYS_getcwd, now, 2), ERANGE);
  CHECK("relative open after chdir", faccessat(AT_FDCWD, "data.txt", F_OK, 0) == 0);
  CHECK_ERRNO("chdir missing", chdir("missing"), ENOENT);
  CHECK_ERRNO("chdir to file", chdir("data.txt"), ENOTDIR);
  CHECK("fchdir back", fchdir(dir) == 0 && chdir(before) == 0);

  mode_t old = umask(077);
  CHECK("umask round trip", umask(old) == 077);
  umask(077);
  int fd = openat(dir, "masked", O_CREAT | O_WRONLY, 0666);
  struct stat st;
  CHECK("umask applies", fd >= 0 && fstat(fd, &st) == 0 && (st.st_mode & 0777) == 0600);
  umask(old);
  close(fd);
  unlinkat(dir, "masked", 0);
  CHECK("mkdirat mode", mkdirat(dir, "modes", 0700) == 0 && fstatat(dir, "modes", &st, 0) == 0 &&
                            (st.st_mode & 0777) == (0700 & ~old));
  CHECK("fchmodat", fchmodat(dir, "modes", 0750, 0) == 0 && fstatat(dir, "modes", &st, 0) == 0 &&
                        (st.st_mode & 0777) == 0750);
  unlinkat(dir, "modes", AT_REMOVEDIR);
}

static void test_proc_self_exe(const char *argv0) {
  char exe[PATH_MAX] = {0};
  ssize_t n = readlinkat(AT_FDCWD, "/proc/self/exe", exe, sizeof exe - 1);
  CHECK("readlink /proc/self/exe", n > 0);
  const char *base = strrchr(argv0, '/');
  base = base ? base + 1 : argv0;
  size_t base_len = strlen(base);
  CHECK("/proc/self/exe absolute", exe[0] == '/');
  CHECK("/proc/self/exe ends with program name",
        n >= (ssize_t)base_len && strcmp(exe + n - base_len, base) == 0 && exe[n - base_len - 1] == '/');
}

int main(int argc, char **argv) {
  (void)argc;
  char path[] = "/tmp/guest-fileio-XXXXXX";
  CHECK("mkdtemp", mkdtemp(path) != NULL);
  int dir = open(path, O_RDONLY | O_DIRECTORY);
  CHECK("open temp dir", dir >= 0);

  test_read_write(dir);
  test_stat_family(dir);
  test_directories(dir);
  test_descriptors(dir);
  test_cwd_umask(path, dir);
  test_proc_self_exe(argv[0]);

  /* Clean up everything the test made, then check the directory is gone. */
  unlinkat(dir, "data.txt", 0);
  unlinkat(dir, "link", 0);
  unlinkat(dir, "moved", 0);
  close(dir);
  CHECK("rmdir temp dir", rmdir(path) == 0);
  CHECK_ERRNO("temp dir gone", access(path, F_OK), ENOENT);
  return finish();
}
