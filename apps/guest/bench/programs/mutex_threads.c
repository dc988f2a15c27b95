/* 8 threads × N pthread_mutex lock/increment/unlock of one counter: cost per locked increment. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include "common.h"

static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static long counter, rounds;

static void *work(void *unused) {
  (void)unused;
  for (long i = 0; i < rounds; i++) {
    pthread_mutex_lock(&mutex);
    counter++;
    pthread_mutex_unlock(&mutex);
  }
  return NULL;
}

int main(int argc, char **argv) {
  rounds = argc > 1 ? atol(argv[1]) : 200000;
  pthread_t threads[8];
  double start = now_ns();
  for (int i = 0; i < 8; i++) pthread_create(&threads[i], NULL, work, NULL);
  for (int i = 0; i < 8; i++) pthread_join(threads[i], NULL);
  double ns = now_ns() - start;
  if (counter != 8 * rounds) return 1;
  printf("%.1f ns/op (8 threads x %ld locked increments)\n", ns / (double)(8 * rounds), rounds);
  return 0;
}
