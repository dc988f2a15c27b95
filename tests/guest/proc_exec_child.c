/*
 * The program tests/guest/proc_exec.c runs with fork + execve and vfork + execve. It never runs on its own:
 * `proc_exec_child MODE ARGS…` (argv[0] is whatever the parent chose) does one thing and reports through its
 * exit status, sometimes printing deterministic lines too (the parent waits for it, so they land in order):
 *
 *   args            print argc, every argv string and every environment string; exit 40 + argc
 *   exit N          exit N
 *   ppid PID        exit 0 if getppid() == PID
 *   pid FD          write getpid() (binary pid_t) to FD; exit 0 if that worked
 *   fds FD:STATE…   STATE is open or closed; print "child fd N STATE"; exit 0 if every fd is as expected
 *   write FD TEXT   write TEXT to FD (through the inherited open file description); exit 0 if all written
 *   wait FD         read FD until a byte or EOF; exit 0
 */
// fixture: native
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  alarm(25);
  if (argc < 2) {
    fprintf(stderr, "usage: proc_exec_child MODE ARGS… (run by proc_exec)\n");
    return 2;
  }
  const char *mode = argv[1];
  if (strcmp(mode, "args") == 0) {
    printf("child argc %d\n", argc);
    for (int i = 0; i < argc; i++) printf("child argv[%d] [%s]\n", i, argv[i]);
    int n = 0;
    for (char **env = environ; *env; env++, n++) printf("child env[%d] [%s]\n", n, *env);
    printf("child env count %d\n", n);
    return 40 + argc;
  }
  if (strcmp(mode, "exit") == 0 && argc == 3) return atoi(argv[2]);
  if (strcmp(mode, "ppid") == 0 && argc == 3) return getppid() == (pid_t)atol(argv[2]) ? 0 : 1;
  if (strcmp(mode, "pid") == 0 && argc == 3) {
    pid_t self = getpid();
    return write(atoi(argv[2]), &self, sizeof self) == (ssize_t)sizeof self ? 0 : 1;
  }
  if (strcmp(mode, "fds") == 0) {
    int wrong = 0;
    for (int i = 2; i < argc; i++) {
      int fd = atoi(argv[i]);
      const char *want = strchr(argv[i], ':');
      const char *state = fcntl(fd, F_GETFD) >= 0 ? "open" : "closed";
      printf("child fd %d %s\n", fd, state);
      if (!want || strcmp(want + 1, state) != 0) wrong = 1;
    }
    return wrong;
  }
  if (strcmp(mode, "write") == 0 && argc == 4) {
    size_t n = strlen(argv[3]);
    return write(atoi(argv[2]), argv[3], n) == (ssize_t)n ? 0 : 1;
  }
  if (strcmp(mode, "wait") == 0 && argc == 3) {
    char c;
    read(atoi(argv[2]), &c, 1);
    return 0;
  }
  fprintf(stderr, "proc_exec_child: bad mode or arguments: %s\n", mode);
  return 2;
}
