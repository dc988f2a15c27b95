/* Shared by the benchmark programs: a monotonic clock in nanoseconds. */
#include <time.h>
static inline double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}
