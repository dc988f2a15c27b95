/* 100,000 × (mmap 64 KiB anonymous, touch each page, munmap). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include "common.h"

int main(int argc, char **argv) {
  long cycles = argc > 1 ? atol(argv[1]) : 100000;
  size_t size = 64UL << 10;
  long sum = 0;
  double start = now_ns();
  for (long i = 0; i < cycles; i++) {
    unsigned char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 1;
    for (size_t j = 0; j < size; j += 4096) sum += p[j]++;
    if (munmap(p, size) != 0) return 1;
  }
  double ns = now_ns() - start;
  printf("%.1f ns/op (%ld cycles, checksum %ld)\n", ns / (double)cycles, cycles, sum);
  return 0;
}
