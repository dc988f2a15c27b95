/* N × (fork, child execve of a small static program that exits 0, waitpid). argv[1]: that program. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include "common.h"

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: fork_exec PROGRAM [cycles]\n");
    return 2;
  }
  long cycles = argc > 2 ? atol(argv[2]) : 50;
  char *child_argv[] = {argv[1], NULL};
  char *child_envp[] = {NULL};
  double start = now_ns();
  for (long i = 0; i < cycles; i++) {
    pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid == 0) {
      execve(argv[1], child_argv, child_envp);
      _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || status != 0) return 1;
  }
  double ns = now_ns() - start;
  printf("%.1f ns/op (%ld fork+execve+wait cycles)\n", ns / (double)cycles, cycles);
  return 0;
}
