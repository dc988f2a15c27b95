/*
 * 8 threads × N lock/increment/unlock of a hand-written futex mutex (Drepper's three-state mutex, "Futexes Are
 * Tricky", mutex 2): cost per lock/unlock pair, and how many futex syscalls it took.
 *   uncontended: each thread has its OWN mutex and counter (no contention: no futex syscall expected);
 *   contended:   all 8 threads on ONE mutex and one shared counter.
 * Prints "<ns> ns/op (...) futex waits W wakes K"; exits 1 if the counter(s) do not add up to 8 × N.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "common.h"

#define THREADS 8

/* Mutex word: 0 unlocked, 1 locked, 2 locked with (possible) waiters. */
enum { UNLOCKED = 0, LOCKED = 1, CONTENDED = 2 };

static long futex_waits, futex_wakes;

static void futex_wait(int *word, int expected) {
  __atomic_fetch_add(&futex_waits, 1, __ATOMIC_RELAXED);
  /* EAGAIN (the word changed already) and EINTR both just mean: look again. */
  syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

static void futex_wake_one(int *word) {
  __atomic_fetch_add(&futex_wakes, 1, __ATOMIC_RELAXED);
  syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void mutex_lock(int *word) {
  int state = UNLOCKED;
  if (__atomic_compare_exchange_n(word, &state, LOCKED, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return;
  /* Someone holds it: mark it contended (so the holder wakes us) and sleep until we take it as contended. */
  if (state != CONTENDED) state = __atomic_exchange_n(word, CONTENDED, __ATOMIC_ACQUIRE);
  while (state != UNLOCKED) {
    futex_wait(word, CONTENDED);
    state = __atomic_exchange_n(word, CONTENDED, __ATOMIC_ACQUIRE);
  }
}

static void mutex_unlock(int *word) {
  if (__atomic_exchange_n(word, UNLOCKED, __ATOMIC_RELEASE) == CONTENDED) futex_wake_one(word);
}

/* One cache line per lock + counter, so that uncontended threads share nothing. */
struct slot {
  int word;
  long counter;
} __attribute__((aligned(64)));

static struct slot slots[THREADS];
static long rounds;
static int contended;

static void *work(void *arg) {
  struct slot *slot = contended ? &slots[0] : (struct slot *)arg;
  for (long i = 0; i < rounds; i++) {
    mutex_lock(&slot->word);
    slot->counter++;
    mutex_unlock(&slot->word);
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 2 || (strcmp(argv[1], "uncontended") != 0 && strcmp(argv[1], "contended") != 0)) {
    fprintf(stderr, "usage: %s uncontended|contended [rounds per thread]\n", argv[0]);
    return 2;
  }
  contended = strcmp(argv[1], "contended") == 0;
  rounds = argc > 2 ? atol(argv[2]) : (contended ? 500000 : 1000000);
  pthread_t threads[THREADS];
  double start = now_ns();
  for (int i = 0; i < THREADS; i++)
    if (pthread_create(&threads[i], NULL, work, &slots[i]) != 0) return 1;
  for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
  double ns = now_ns() - start;
  long total = 0;
  for (int i = 0; i < THREADS; i++) {
    if (slots[i].word != UNLOCKED) return 1;
    total += slots[i].counter;
  }
  if (total != THREADS * rounds) return 1;
  printf("%.1f ns/op (%d threads x %ld lock/unlock pairs, %s) futex waits %ld wakes %ld\n",
         ns / (double)(THREADS * rounds), THREADS, rounds, argv[1], futex_waits, futex_wakes);
  return 0;
}
