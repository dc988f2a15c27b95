/*
 * N × a 1 MiB round trip through a child: the parent sends 1 MiB down one pipe in 64 KiB chunks, the child
 * echoes every byte back up another, the parent reads each chunk back before sending the next (so neither
 * side can block the other) and checks the bytes. One child serves every round.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "common.h"

#define CHUNK (64 * 1024)
#define TOTAL (1024 * 1024)

static int read_full(int fd, unsigned char *buf, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = read(fd, buf + done, len - done);
    if (n <= 0) return -1;
    done += (size_t)n;
  }
  return 0;
}

static int write_full(int fd, const unsigned char *buf, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = write(fd, buf + done, len - done);
    if (n <= 0) return -1;
    done += (size_t)n;
  }
  return 0;
}

int main(int argc, char **argv) {
  long rounds = argc > 1 ? atol(argv[1]) : 50;
  int down[2], up[2];
  if (pipe(down) || pipe(up)) return 1;
  pid_t pid = fork();
  if (pid == 0) {
    close(down[1]);
    close(up[0]);
    static unsigned char echo[CHUNK];
    for (;;) {
      ssize_t n = read(down[0], echo, sizeof echo);
      if (n <= 0) _exit(n == 0 ? 0 : 1);
      if (write_full(up[1], echo, (size_t)n)) _exit(1);
    }
  }
  close(down[0]);
  close(up[1]);
  static unsigned char out[CHUNK], back[CHUNK];
  for (size_t i = 0; i < CHUNK; i++) out[i] = (unsigned char)(i * 31 + 7);
  double start = now_ns();
  for (long r = 0; r < rounds; r++) {
    for (size_t sent = 0; sent < TOTAL; sent += CHUNK) {
      out[0] = (unsigned char)(r + sent);
      if (write_full(down[1], out, CHUNK) || read_full(up[0], back, CHUNK)) return 1;
      if (memcmp(out, back, CHUNK) != 0) return 1;
    }
  }
  double ns = now_ns() - start;
  close(down[1]);
  int status;
  if (waitpid(pid, &status, 0) != pid || status != 0) return 1;
  printf("%.1f ns/op (%ld round trips of 1 MiB)\n", ns / (double)rounds, rounds);
  return 0;
}
