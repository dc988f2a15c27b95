/* Times N raw getpid syscalls from inside the guest and prints ns per call (excludes start-up). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline long raw_getpid(void) {
  register long x8 __asm__("x8") = 172; /* __NR_getpid */
  register long x0 __asm__("x0");
  __asm__ volatile("svc #0" : "=r"(x0) : "r"(x8) : "memory");
  return x0;
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 1000000;
  struct timespec start, end;
  long sum = 0;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (long i = 0; i < n; i++) sum += raw_getpid();
  clock_gettime(CLOCK_MONOTONIC, &end);
  double ns = (double)(end.tv_sec - start.tv_sec) * 1e9 + (double)(end.tv_nsec - start.tv_nsec);
  printf("%.1f ns/call (%ld calls, checksum %ld)\n", ns / (double)n, n, sum == 0 ? 0L : 1L);
  return 0;
}
