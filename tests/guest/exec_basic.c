/*
 * execve/execveat in place: errno cases checked before the point of no return (ENOENT, ENOTDIR, EACCES,
 * ENOEXEC, E2BIG, EFAULT, EINVAL, ELOOP), then an exec of this same program that must see what Linux keeps
 * (pid, cwd, umask, blocked mask, pending signals, SIG_IGN, fds without O_CLOEXEC, argv/envp as given) and
 * what it resets (handlers to SIG_DFL, the alternate stack, O_CLOEXEC fds, comm, AT_EXECFN), then a second
 * exec through execveat(fd, "", AT_EMPTY_PATH). The counts travel in argv so the last image prints the total.
 * Built for x86_64 too and run natively: every expectation is Linux's (qemu-user cannot be the oracle: it
 * would exec the aarch64 program on the host).
 *
 * With EXEC_PRINT=1 in the environment it only prints its argv, comm and /proc/self/exe's basename (tests/
 * exec.test.ts uses it as a #! interpreter); `exec_basic --exec PATH ARGV0 ARGS…` execs PATH with that argv
 * and EXEC_PRINT=1 added to the environment, printing the errno name if it fails.
 */
// fixture: native
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"

extern char **environ;

#define KEEP_FD 20
#define CLOEXEC_FD 21
#define EXEC_FD 22

static char self[PATH_MAX];

static const char *base_name(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

static void on_signal(int sig) { (void)sig; }

static int print_mode(int argc, char **argv) {
  char comm[17] = {0};
  char exe[PATH_MAX] = {0};
  prctl(PR_GET_NAME, comm);
  if (readlink("/proc/self/exe", exe, sizeof exe - 1) < 0) strcpy(exe, "?");
  printf("argc %d\n", argc);
  for (int i = 0; i < argc; i++) printf("argv[%d] [%s]\n", i, argv[i]);
  printf("comm [%s]\nexe [%s]\n", comm, base_name(exe));
  return 0;
}

static int exec_mode(int argc, char **argv) {
  if (argc < 4) return 2;
  size_t n = 0;
  while (environ[n]) n++;
  char **envp = calloc(n + 2, sizeof *envp);
  for (size_t i = 0; i < n; i++) envp[i] = environ[i];
  envp[n] = "EXEC_PRINT=1";
  execve(argv[2], argv + 3, envp);
  printf("execve %s\n", errno_name(errno));
  return 1;
}

static int write_file(const char *dir, const char *name, const char *content, size_t length, mode_t mode,
                      char *path) {
  snprintf(path, PATH_MAX, "%s/%s", dir, name);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
  if (fd < 0) return -1;
  int ok = write(fd, content, length) == (ssize_t)length;
  close(fd);
  chmod(path, mode);
  return ok ? 0 : -1;
}

static void errno_cases(const char *dir) {
  char *const args[] = {"x", NULL};
  char *const env[] = {NULL};
  char path[PATH_MAX];

  CHECK_ERRNO("missing file", execve("/nonexistent-exec-test/prog", args, env), ENOENT);
  CHECK_ERRNO("empty path", execve("", args, env), ENOENT);
  CHECK_ERRNO("component not a directory", execve("/proc/self/status/x", args, env), ENOTDIR);
  CHECK_ERRNO("a directory", execve(dir, args, env), EACCES);
  CHECK_ERRNO("/dev/null", execve("/dev/null", args, env), EACCES);

  CHECK("write not executable", write_file(dir, "plain", "#!/bin/sh\n", strlen("#!/bin/sh\n"), 0644, path) == 0);
  CHECK_ERRNO("not executable", execve(path, args, env), EACCES);
  int plain = open(path, O_RDONLY);
  CHECK_ERRNO("AT_EMPTY_PATH not executable", syscall(SYS_execveat, plain, "", args, env, AT_EMPTY_PATH),
              EACCES);
  close(plain);

  CHECK("write text", write_file(dir, "text", "echo hello\n", strlen("echo hello\n"), 0755, path) == 0);
  CHECK_ERRNO("text without #!", execve(path, args, env), ENOEXEC);
  CHECK("write empty", write_file(dir, "empty", "", strlen(""), 0755, path) == 0);
  CHECK_ERRNO("empty file", execve(path, args, env), ENOEXEC);
  CHECK("write bare #!", write_file(dir, "bare", "#!\n", strlen("#!\n"), 0755, path) == 0);
  CHECK_ERRNO("#! without interpreter", execve(path, args, env), ENOEXEC);
  CHECK("write blank #!", write_file(dir, "blank", "#!   \t \n", strlen("#!   \t \n"), 0755, path) == 0);
  CHECK_ERRNO("#! with only blanks", execve(path, args, env), ENOEXEC);
  char truncated[300] = "#!/";
  memset(truncated + 3, 'a', sizeof truncated - 3);
  CHECK("write truncated #!", write_file(dir, "truncated", truncated, sizeof truncated, 0755, path) == 0);
  CHECK_ERRNO("#! interpreter path longer than 256 bytes", execve(path, args, env), ENOEXEC);
  CHECK("write missing interpreter", write_file(dir, "nointerp", "#!/nonexistent-exec-test/sh\n", strlen("#!/nonexistent-exec-test/sh\n"), 0755, path) == 0);
  CHECK_ERRNO("#! interpreter missing", execve(path, args, env), ENOENT);
  CHECK("write text interpreter", write_file(dir, "textinterp", "#!/dev/null\n", strlen("#!/dev/null\n"), 0755, path) == 0);
  CHECK_ERRNO("#! interpreter not executable", execve(path, args, env), EACCES);

  /* Six nested scripts: exec_binprm gives up past depth 5. */
  char script[PATH_MAX + 16], next[PATH_MAX];
  snprintf(next, sizeof next, "%s", self);
  for (int i = 6; i >= 1; i--) {
    char name[16];
    snprintf(name, sizeof name, "nest%d", i);
    int n = snprintf(script, sizeof script, "#!%s\n", next);
    write_file(dir, name, script, n, 0755, path);
    snprintf(next, sizeof next, "%s", path);
  }
  CHECK_ERRNO("six nested #! levels", execve(next, args, env), ELOOP);

  /* E2BIG: one string longer than MAX_ARG_STRLEN; then 7 MiB of strings (above any stack-derived limit). */
  size_t big = 200000;
  char *long_arg = malloc(big + 1);
  memset(long_arg, 'x', big);
  long_arg[big] = 0;
  char *const one_long[] = {"x", long_arg, NULL};
  CHECK_ERRNO("argument longer than MAX_ARG_STRLEN", execve(self, one_long, env), E2BIG);
  char *const env_long[] = {long_arg, NULL};
  CHECK_ERRNO("environment string longer than MAX_ARG_STRLEN", execve(self, args, env_long), E2BIG);
  long_arg[100000] = 0;
  char *many[72];
  many[0] = "x";
  for (int i = 1; i < 71; i++) many[i] = long_arg;
  many[71] = NULL;
  CHECK_ERRNO("7 MiB of arguments", execve(self, many, env), E2BIG);
  free(long_arg);

  /* EFAULT: the path, the array, one of its strings. */
  CHECK_ERRNO("bad path pointer", syscall(SYS_execve, (const char *)8, args, env), EFAULT);
  CHECK_ERRNO("bad argv pointer", syscall(SYS_execve, self, (char *const *)8, env), EFAULT);
  char *const bad_string[] = {"x", (char *)8, NULL};
  CHECK_ERRNO("bad argv string", execve(self, bad_string, env), EFAULT);
  CHECK_ERRNO("bad envp string", execve(self, args, bad_string), EFAULT);

  /* execveat: unknown flags, AT_SYMLINK_NOFOLLOW on a symlink, a bad dirfd. */
  CHECK_ERRNO("execveat unknown flag", syscall(SYS_execveat, AT_FDCWD, self, args, env, 0x4), EINVAL);
  snprintf(path, sizeof path, "%s/link", dir);
  CHECK("symlink", symlink(self, path) == 0);
  CHECK_ERRNO("execveat AT_SYMLINK_NOFOLLOW", syscall(SYS_execveat, AT_FDCWD, path, args, env, AT_SYMLINK_NOFOLLOW),
              ELOOP);
  CHECK_ERRNO("execveat bad dirfd", syscall(SYS_execveat, 999, "prog", args, env, 0), EBADF);
}

/* Stage 2 runs in <dir>/exec-cwd: remove everything the parent made. */
static void cleanup(void) {
  static const char *const files[] = {"plain", "text", "empty", "bare", "blank", "truncated", "nointerp",
                                      "textinterp", "nest1", "nest2", "nest3", "nest4", "nest5", "nest6", "link"};
  unlink("exec-link");
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    char path[64];
    snprintf(path, sizeof path, "../%s", files[i]);
    unlink(path);
  }
  char cwd[PATH_MAX];
  if (!getcwd(cwd, sizeof cwd)) return;
  chdir("..");
  rmdir(cwd);
  char *slash = strrchr(cwd, '/');
  if (slash) *slash = 0;
  CHECK("temporary files removed", rmdir(cwd) == 0);
}

/* Stage 1: the first exec'd image checks what survived, then execs itself again through a file descriptor. */
static int child_stage1(char **argv) {
  CHECK("argv[0] as given", strcmp(argv[0], "renamed-argv0") == 0);
  CHECK("argument with spaces", strcmp(argv[6], "two words") == 0);
  CHECK("empty argument", argv[7] != NULL && argv[7][0] == 0 && argv[8] == NULL);
  CHECK("environment as given", strcmp(getenv("EXEC_TEST") ?: "", "hello world") == 0 && environ[1] != NULL &&
                                    strcmp(environ[1], "SECOND=2") == 0 && environ[2] == NULL);
  CHECK("same pid", getpid() == atoi(argv[4]));
  CHECK("AT_EXECFN is the path as given", strcmp((const char *)getauxval(AT_EXECFN), argv[5]) == 0);
  char exe[PATH_MAX] = {0};
  CHECK("/proc/self/exe", readlink("/proc/self/exe", exe, sizeof exe - 1) > 0 && strcmp(exe, self) == 0);
  char comm[17] = {0};
  prctl(PR_GET_NAME, comm);
  CHECK("comm is the basename of the path", strcmp(comm, base_name(argv[5])) == 0);
  char cwd[PATH_MAX];
  CHECK("cwd kept", getcwd(cwd, sizeof cwd) && strcmp(base_name(cwd), "exec-cwd") == 0);
  mode_t old = umask(0);
  CHECK("umask kept", old == 027);
  CHECK("fd without O_CLOEXEC kept", fcntl(KEEP_FD, F_GETFD) == 0);
  CHECK_ERRNO("O_CLOEXEC fd closed", fcntl(CLOEXEC_FD, F_GETFD), EBADF);
  struct sigaction action;
  sigaction(SIGUSR1, NULL, &action);
  CHECK("SIG_IGN survives", action.sa_handler == SIG_IGN);
  sigaction(SIGUSR2, NULL, &action);
  CHECK("handler reset to SIG_DFL", action.sa_handler == SIG_DFL && action.sa_flags == 0);
  sigaction(SIGTERM, NULL, &action);
  CHECK("SA_ONSTACK handler reset", action.sa_handler == SIG_DFL && action.sa_flags == 0);
  sigset_t set;
  sigprocmask(SIG_BLOCK, NULL, &set);
  CHECK("blocked mask kept", sigismember(&set, SIGHUP) && sigismember(&set, SIGWINCH) && !sigismember(&set, SIGUSR2));
  sigpending(&set);
  CHECK("pending signal kept", sigismember(&set, SIGHUP));
  stack_t stack;
  CHECK("alternate stack reset", sigaltstack(NULL, &stack) == 0 && stack.ss_flags == SS_DISABLE);

  int fd = open(self, O_PATH | O_CLOEXEC);
  if (fd != EXEC_FD) {
    dup2(fd, EXEC_FD);
    close(fd);
  }
  fcntl(EXEC_FD, F_SETFD, FD_CLOEXEC);
  char count[16], failures[16], fdname[32];
  snprintf(count, sizeof count, "%d", check_count);
  snprintf(failures, sizeof failures, "%d", check_failures);
  snprintf(fdname, sizeof fdname, "/dev/fd/%d", EXEC_FD);
  char *const next[] = {"stage2", "--child2", count, failures, fdname, NULL};
  char *const env[] = {"STAGE=2", NULL};
  fflush(stdout);
  syscall(SYS_execveat, EXEC_FD, "", next, env, AT_EMPTY_PATH);
  CHECK("execveat AT_EMPTY_PATH", 0);
  return finish();
}

static int child_stage2(char **argv) {
  CHECK("execveat argv", strcmp(argv[0], "stage2") == 0 && argv[5] == NULL);
  CHECK("execveat envp", strcmp(getenv("STAGE") ?: "", "2") == 0 && environ[1] == NULL);
  CHECK("execveat AT_EXECFN is /dev/fd/N", strcmp((const char *)getauxval(AT_EXECFN), argv[4]) == 0);
  CHECK_ERRNO("O_CLOEXEC exec fd closed", fcntl(EXEC_FD, F_GETFD), EBADF);
  CHECK("fd without O_CLOEXEC still kept", fcntl(KEEP_FD, F_GETFD) == 0);
  sigset_t set;
  sigpending(&set);
  CHECK("pending signal still kept", sigismember(&set, SIGHUP));
  cleanup();
  return finish();
}

static int parent(void) {
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  CHECK("readlink /proc/self/exe", n > 0);
  char dir[] = "/tmp/exec-test-XXXXXX";
  CHECK("mkdtemp", mkdtemp(dir) != NULL);
  errno_cases(dir);

  /* State the exec must keep or reset. */
  char cwd[PATH_MAX];
  snprintf(cwd, sizeof cwd, "%s/exec-cwd", dir);
  CHECK("mkdir", mkdir(cwd, 0755) == 0);
  CHECK("chdir", chdir(cwd) == 0);
  umask(027);
  int keep = open("/dev/null", O_RDONLY);
  CHECK("keep fd", dup2(keep, KEEP_FD) == KEEP_FD);
  CHECK("cloexec fd", dup3(keep, CLOEXEC_FD, O_CLOEXEC) == CLOEXEC_FD);
  close(keep);
  signal(SIGUSR1, SIG_IGN);
  struct sigaction action = {.sa_handler = on_signal, .sa_flags = SA_RESTART};
  sigaction(SIGUSR2, &action, NULL);
  static char altstack[65536];
  stack_t stack = {.ss_sp = altstack, .ss_size = sizeof altstack};
  CHECK("sigaltstack", sigaltstack(&stack, NULL) == 0);
  action.sa_flags = SA_ONSTACK;
  sigaction(SIGTERM, &action, NULL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGWINCH);
  sigprocmask(SIG_BLOCK, &set, NULL);
  raise(SIGHUP);
  prctl(PR_SET_NAME, "before-exec");

  /* Exec through a relative path (with a symlink: AT_EXECFN and comm are the name as given). */
  char link[PATH_MAX + 16];
  snprintf(link, sizeof link, "%s/exec-link", cwd);
  CHECK("symlink to self", symlink(self, link) == 0);
  char count[16], failures[16], pid[16];
  snprintf(count, sizeof count, "%d", check_count);
  snprintf(failures, sizeof failures, "%d", check_failures);
  snprintf(pid, sizeof pid, "%d", getpid());
  char *const argv[] = {"renamed-argv0", "--child1", count, failures, pid, "./exec-link", "two words", "", NULL};
  char *const envp[] = {"EXEC_TEST=hello world", "SECOND=2", NULL};
  execve("./exec-link", argv, envp);
  CHECK("execve returned", 0);
  return finish();
}

int main(int argc, char **argv) {
  if (getenv("EXEC_PRINT")) return print_mode(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "--exec") == 0) return exec_mode(argc, argv);
  if (argc >= 4 && (strcmp(argv[1], "--child1") == 0 || strcmp(argv[1], "--child2") == 0)) {
    check_count = atoi(argv[2]);
    check_failures = atoi(argv[3]);
    if (readlink("/proc/self/exe", self, sizeof self - 1) < 0) self[0] = 0;
    return argv[1][7] == '1' ? child_stage1(argv) : child_stage2(argv);
  }
  return parent();
}
