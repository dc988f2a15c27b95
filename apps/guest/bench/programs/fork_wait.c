/* N × (fork, child _exit(0), waitpid): the latency of one fork+exit+wait cycle. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include "common.h"

int main(int argc, char **argv) {
  long cycles = argc > 1 ? atol(argv[1]) : 200;
  double start = now_ns();
  for (long i = 0; i < cycles; i++) {
    pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid == 0) _exit(0);
    int status;
    if (waitpid(pid, &status, 0) != pid || status != 0) return 1;
  }
  double ns = now_ns() - start;
  printf("%.1f ns/op (%ld fork+exit+wait cycles)\n", ns / (double)cycles, cycles);
  return 0;
}
