/* 100,000 mprotect(PROT_READ|PROT_WRITE) of a populated 64 MiB read-write range: the same-prot fast path. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include "common.h"

int main(int argc, char **argv) {
  long calls = argc > 1 ? atol(argv[1]) : 100000;
  size_t size = 64UL << 20;
  unsigned char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return 1;
  for (size_t i = 0; i < size; i += 4096) p[i] = 1; /* populated */
  long failures = 0;
  double start = now_ns();
  for (long i = 0; i < calls; i++) failures += mprotect(p, size, PROT_READ | PROT_WRITE) != 0;
  double ns = now_ns() - start;
  printf("%.1f ns/op (%ld mprotect calls, %ld failed)\n", ns / (double)calls, calls, failures);
  return failures != 0;
}
