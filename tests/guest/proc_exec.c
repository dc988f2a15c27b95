/*
 * fork + execve and vfork + execve of another guest program, tests/guest/proc_exec_child.c, whose path is
 * the first argument (`proc_exec [--qemu] CHILD`: the native build must run the native child, the aarch64
 * build the aarch64 one). Checks: argv and envp arrive exactly (the child prints them), pid and parent pid
 * survive exec, fds without O_CLOEXEC survive (sharing the open file description: the child's write moves
 * the parent's offset) and O_CLOEXEC ones are closed (including a pipe end, whose EOF tells the parent the
 * exec happened), setpgid on a child that has exec'd is EACCES, an execve that fails in the child leaves it
 * to _exit(127), and a text file without #! is ENOEXEC. qemu-user cannot execve an aarch64 program without
 * binfmt_misc, so with --qemu the parts that exec the child are skipped.
 * Built natively too: every expectation is Linux's.
 */
// fixture: native
#include "proc_check.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

extern char **environ;

static const char *child_path;

static pid_t fork_exec(char *const argv[], char *const envp[]) {
  pid_t pid = fork();
  if (pid == 0) {
    execve(child_path, argv, envp ? envp : environ);
    _exit(127);
  }
  return pid;
}

static void argv_and_envp(void) {
  char *const argv[] = {"custom-argv0", "args", "two words", "", "last", NULL};
  char *const envp[] = {"A=1", "B=two words", "EMPTY=", "LANG=C", NULL};
  /* The child prints 5 arguments and 4 environment strings, then exits 40 + argc. */
  CHECK_STATUS("fork + execve: argv and envp exactly as given", fork_exec(argv, envp), "exit 45");
  char *const no_env[] = {NULL};
  char *const two_args[] = {"only", "args", NULL};
  /* The child prints its two arguments and "child env count 0", then exits 42. */
  CHECK_STATUS("fork + execve with an empty environment", fork_exec(two_args, no_env), "exit 42");
}

static void pids(void) {
  char parent[32];
  snprintf(parent, sizeof parent, "%ld", (long)getpid());
  char *const ppid_argv[] = {"child", "ppid", parent, NULL};
  CHECK_STATUS("getppid after exec is the parent", fork_exec(ppid_argv, NULL), "exit 0");

  int p[2];
  pipe(p);
  char fd[16];
  snprintf(fd, sizeof fd, "%d", p[1]);
  char *const pid_argv[] = {"child", "pid", fd, NULL};
  pid_t pid = fork_exec(pid_argv, NULL);
  close(p[1]);
  pid_t reported = 0;
  CHECK("the exec'd child keeps the pid fork returned", read_full(p[0], &reported, sizeof reported) == 0 &&
                                                            reported == pid);
  close(p[0]);
  CHECK_STATUS("pid child", pid, "exit 0");
}

static void descriptors(void) {
  char path[] = "/tmp/guest-proc-exec-XXXXXX";
  int file = mkstemp(path);
  unlink(path);
  write_full(file, "abc", 3);
  CHECK("fd 20 without O_CLOEXEC", dup2(file, 20) == 20);
  CHECK("fd 21 with O_CLOEXEC", dup3(file, 21, O_CLOEXEC) == 21);
  CHECK("fd 22 by F_DUPFD_CLOEXEC", fcntl(file, F_DUPFD_CLOEXEC, 22) == 22);
  int opened = open("/dev/null", O_RDONLY | O_CLOEXEC);
  CHECK("fd 23 opened with O_CLOEXEC", dup3(opened, 23, O_CLOEXEC) == 23);
  close(opened);
  char *const fds_argv[] = {"child", "fds", "20:open", "21:closed", "22:closed", "23:closed", NULL};
  CHECK_STATUS("across exec: O_CLOEXEC fds closed, others open", fork_exec(fds_argv, NULL), "exit 0");
  CHECK("the parent's O_CLOEXEC fds are still open", fcntl(21, F_GETFD) == FD_CLOEXEC && fcntl(23, F_GETFD) == FD_CLOEXEC);

  char *const write_argv[] = {"child", "write", "20", "defg", NULL};
  CHECK_STATUS("child writes through the inherited fd", fork_exec(write_argv, NULL), "exit 0");
  CHECK("that moved the parent's offset", lseek(file, 0, SEEK_CUR) == 7);
  char contents[8] = {0};
  CHECK("and appended after the parent's bytes", pread(file, contents, 7, 0) == 7 && strcmp(contents, "abcdefg") == 0);
  close(20);
  close(21);
  close(22);
  close(23);
  close(file);
}

static void setpgid_after_exec(void) {
  int exec_seen[2], release[2];
  pipe2(exec_seen, O_CLOEXEC);
  pipe(release);
  fcntl(release[1], F_SETFD, FD_CLOEXEC); /* only our copy of the write end: closing it releases the child */
  char fd[16];
  snprintf(fd, sizeof fd, "%d", release[0]);
  char *const wait_argv[] = {"child", "wait", fd, NULL};
  pid_t pid = fork_exec(wait_argv, NULL);
  close(exec_seen[1]);
  close(release[0]);
  char c;
  /* The O_CLOEXEC write end closes at exec: EOF here means the child now runs the new program. */
  CHECK("the O_CLOEXEC pipe end closed at exec", read(exec_seen[0], &c, 1) == 0);
  CHECK_ERRNO("setpgid of a child that has exec'd", setpgid(pid, pid), EACCES);
  close(release[1]);
  CHECK_STATUS("the waiting child", pid, "exit 0");
  close(exec_seen[0]);
}

static void vfork_exec(void) {
  pid_t pid = vfork();
  if (pid == 0) {
    char *const argv[] = {"vforked", "exit", "7", NULL};
    execve(child_path, argv, environ);
    _exit(127);
  }
  CHECK_STATUS("vfork + execve", pid, "exit 7");
}

static void failures(void) {
  char *const argv[] = {"x", NULL};
  pid_t pid = vfork();
  if (pid == 0) {
    execve("/nonexistent-proc-exec/prog", argv, environ);
    _exit(127);
  }
  CHECK_STATUS("vfork + failing execve + _exit(127)", pid, "exit 127");

  char dir[] = "/tmp/guest-proc-exec-XXXXXX";
  mkdtemp(dir);
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/text", dir);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0755);
  write_full(fd, "echo hello\n", 11);
  close(fd);
  chmod(path, 0755);
  CHECK_ERRNO("execve of a text file without #!", execve(path, argv, environ), ENOEXEC);
  pid = fork();
  if (pid == 0) {
    execve(path, argv, environ);
    _exit(errno == ENOEXEC ? 8 : 9);
  }
  CHECK_STATUS("the same in a forked child", pid, "exit 8");
  unlink(path);
  CHECK("temporary files removed", rmdir(dir) == 0);
}

int main(int argc, char **argv) {
  proc_init(argc, argv, 1, "PATH-OF-proc_exec_child");
  child_path = proc_argv[0];
  if (!qemu_skips("fork + execve of the child program (qemu-user cannot exec an aarch64 program)")) {
    argv_and_envp();
    pids();
    descriptors();
    setpgid_after_exec();
    vfork_exec();
  }
  failures();
  return finish();
}
