/*
 * Random futex calls of one thread, printed so that two kernels can be compared line for line: the native
 * x86_64 build on this Linux host is the oracle for the aarch64 build under our runtime.
 *
 * usage: futex_fuzz SEED [STEPS]
 *
 * Every operation the runtime implements (WAIT, WAKE, REQUEUE, CMP_REQUEUE, WAKE_OP, WAIT_BITSET, WAKE_BITSET;
 * the PI family is ENOSYS there) and an unknown one, with or without FUTEX_PRIVATE_FLAG and FUTEX_CLOCK_REALTIME, on four futex
 * words, an unaligned address or an unmapped one, with random values. Nothing can block: a wait either finds
 * another value (EAGAIN) or has a zero timeout (ETIMEDOUT), and there is no other thread to wait for. Each call
 * prints its result and the four words afterwards (this thread's tid shown as "tid", so the PI lines compare).
 */
// fixture: native
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "fuzz_rng.h"

static unsigned long below(unsigned long n) { return n ? (unsigned long)(next() % n) : 0; }

static uint32_t *words;
static unsigned char *unmapped;
static uint32_t tid;

static uint32_t *address(void) {
  switch (below(10)) {
  case 0: return (uint32_t *)((char *)words + 1 + below(3)); /* unaligned */
  case 1: return (uint32_t *)unmapped;
  default: return &words[below(4)];
  }
}

/* Never derived from the tid: FUTEX_WAKE_OP's arithmetic on such a word would print numbers that differ. */
static uint32_t value(void) {
  switch (below(4)) {
  case 0: return words[below(4)];
  case 1: return 0;
  case 2: return FUTEX_WAITERS | (uint32_t)below(4);
  default: return (uint32_t)below(4);
  }
}

static void show_word(uint32_t w) {
  if ((w & FUTEX_TID_MASK) == tid && tid != 0) printf(" tid%s%s", w & FUTEX_WAITERS ? "|waiters" : "", w & FUTEX_OWNER_DIED ? "|died" : "");
  else printf(" %u", w);
}

int main(int argc, char **argv) {
  seed_rng(argc > 1 ? argv[1] : NULL);
  long steps = argc > 2 ? atol(argv[2]) : 400;
  setvbuf(stdout, NULL, _IOFBF, 1 << 16);
  tid = (uint32_t)syscall(SYS_gettid);
  words = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  unmapped = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (words == MAP_FAILED || unmapped == MAP_FAILED) return 2;
  /* The PI commands are left out: the runtime answers ENOSYS for them (see packages/syscalls README). */
  static const int ops[] = {FUTEX_WAIT,    FUTEX_WAKE,        FUTEX_REQUEUE,     FUTEX_CMP_REQUEUE,
                            FUTEX_WAKE_OP, FUTEX_WAIT_BITSET, FUTEX_WAKE_BITSET, 15 /* unknown */};
  for (long step = 0; step < steps; step++) {
    int op = ops[below(sizeof ops / sizeof ops[0])];
    int flags = (below(2) ? FUTEX_PRIVATE_FLAG : 0) | (below(5) == 0 ? FUTEX_CLOCK_REALTIME : 0);
    uint32_t *uaddr = address();
    uint32_t *uaddr2 = address();
    uint32_t val = value();
    uint32_t val3 = below(3) == 0 ? 0 : below(2) ? FUTEX_BITSET_MATCH_ANY : (uint32_t)below(16);
    if (op == FUTEX_WAKE_OP) {
      /* FUTEX_OP(op, oparg, cmp, cmparg), sometimes with an invalid op or cmp. */
      val3 = ((uint32_t)below(6) << 28) | ((uint32_t)below(7) << 24) | ((uint32_t)below(16) << 12) | (uint32_t)below(16);
    }
    /* Waits never wait: a zero timeout (absolute ones in the past). */
    struct timespec zero = {0, 0};
    long arg4 = (long)&zero;
    const char *arg4_kind = "zero timeout";
    if (op == FUTEX_WAIT && below(6) == 0) { arg4 = 0; arg4_kind = "no timeout"; }
    if (op == FUTEX_REQUEUE || op == FUTEX_CMP_REQUEUE || op == FUTEX_WAKE_OP) { arg4 = (long)below(3); arg4_kind = "val2"; }
    /* A wait without a timeout blocks if the value matches: make sure it does not. */
    int aligned_word = uaddr != (uint32_t *)unmapped && ((uintptr_t)uaddr & 3) == 0;
    if (arg4 == 0 && op == FUTEX_WAIT && aligned_word && *uaddr == val) val ^= 1;
    errno = 0;
    long r = syscall(SYS_futex, uaddr, op | flags, val, arg4, uaddr2, val3);
    const char *which = uaddr == (uint32_t *)unmapped ? "unmapped" : ((uintptr_t)uaddr & 3) ? "unaligned" : "word";
    printf("futex(%s, %d|0x%x, ", which, op, (unsigned)flags);
    show_word(val);
    printf(", %s %ld, val3 0x%x) = %ld %s;", arg4_kind, arg4_kind[0] == 'v' ? arg4 : 0L, val3, r, r < 0 ? strerror(errno) : "");
    for (int i = 0; i < 4; i++) show_word(words[i]);
    printf("\n");
    /* Now and then the words are set directly, as a program's lock code would. */
    if (below(4) == 0) words[below(4)] = value();
  }
  printf("done after %ld steps\n", steps);
  return 0;
}
