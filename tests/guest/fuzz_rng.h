/* The fuzzers' random numbers: xorshift64, seeded from the command line so every run can be repeated. */
#ifndef FUZZ_RNG_H
#define FUZZ_RNG_H
#include <stdint.h>
#include <stdlib.h>

static uint64_t rng;

/* Seed n (1, 2, …) spread over the state; never 0, which xorshift cannot leave. */
static void seed_rng(const char *seed) { rng = (seed ? strtoull(seed, 0, 0) : 1) * 0x9e3779b97f4a7c15ULL + 1; }

static uint64_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}
#endif
