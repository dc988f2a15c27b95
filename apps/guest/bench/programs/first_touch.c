/* 262,144 first-touch page faults: write one byte to each page of a fresh 1 GiB anonymous mapping. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include "common.h"

int main(int argc, char **argv) {
  long pages = argc > 1 ? atol(argv[1]) : 262144;
  unsigned char *p = mmap(NULL, (size_t)pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return 1;
  double start = now_ns();
  for (long i = 0; i < pages; i++) p[(size_t)i * 4096] = (unsigned char)i;
  double ns = now_ns() - start;
  long sum = 0;
  for (long i = 0; i < pages; i += 4096) sum += p[(size_t)i * 4096];
  printf("%.1f ns/op (%ld pages, checksum %ld)\n", ns / (double)pages, pages, sum);
  return 0;
}
