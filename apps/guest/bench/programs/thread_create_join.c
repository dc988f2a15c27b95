/* N × (pthread_create of a thread that returns at once, pthread_join): thread create+join latency. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include "common.h"

static void *nothing(void *arg) { return arg; }

int main(int argc, char **argv) {
  long cycles = argc > 1 ? atol(argv[1]) : 2000;
  double start = now_ns();
  for (long i = 0; i < cycles; i++) {
    pthread_t thread;
    void *result;
    if (pthread_create(&thread, NULL, nothing, (void *)i) != 0 || pthread_join(thread, &result) != 0) return 1;
    if ((long)result != i) return 1;
  }
  double ns = now_ns() - start;
  printf("%.1f ns/op (%ld create+join cycles)\n", ns / (double)cycles, cycles);
  return 0;
}
