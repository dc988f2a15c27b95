/*
 * File descriptors across fork, and pipes between processes: an inherited fd shares the open file
 * description (the child's writes and lseeks move the parent's offset; status flags such as O_APPEND are
 * shared, FD_CLOEXEC is not; the child's close is its own), dup/dup2/dup3, EOF only once every write end is
 * closed, a 1 MiB round trip through a child (parent → child → parent over two pipes, interleaved with poll so
 * it cannot deadlock, checked byte by byte and by checksum), and writes to a pipe with no readers: EPIPE with
 * SIGPIPE ignored or blocked, death by SIGPIPE by default. Children report through their exit status.
 * Built natively too: every expectation is Linux's.
 */
// fixture: native
#include "proc_check.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>

#define ROUND_TRIP_BYTES (1UL << 20)

static int temp_fd(void) {
  char path[] = "/tmp/guest-proc-pipe-XXXXXX";
  int fd = mkstemp(path);
  unlink(path);
  return fd;
}

struct shared_fd {
  int fd;
  int to_child, from_child;
};

static int shared_offset_child(void *arg) {
  struct shared_fd *s = arg;
  if (lseek(s->fd, 0, SEEK_CUR) != 3) return 1; /* the parent wrote 3 bytes before fork */
  if (write_full(s->fd, "hello", 5) != 0) return 2;
  send_byte(s->from_child, '1');
  if (receive_byte(s->to_child) != '2') return 3;
  if (lseek(s->fd, 0, SEEK_CUR) != 12) return 4; /* the parent wrote 4 more after the child's 5 */
  if (lseek(s->fd, 100, SEEK_SET) != 100) return 5;
  if (write_full(10, "via10", 5) != 0) return 6; /* the dup2 copy: same description, offset 100 → 105 */
  if (fcntl(s->fd, F_SETFL, O_APPEND) != 0) return 7;
  if (fcntl(s->fd, F_SETFD, FD_CLOEXEC) != 0) return 8;
  close(s->fd);
  send_byte(s->from_child, '3');
  return 0;
}

static void shared_description(void) {
  struct shared_fd s;
  s.fd = temp_fd();
  CHECK("write before fork", write_full(s.fd, "abc", 3) == 0);
  CHECK("dup2 to fd 10", dup2(s.fd, 10) == 10);
  int down[2], up[2];
  pipe(down);
  pipe(up);
  s.to_child = down[0];
  s.from_child = up[1];
  pid_t pid = spawn(shared_offset_child, &s);
  CHECK("child wrote", receive_byte(up[0]) == '1');
  CHECK("the child's write moved the parent's offset", lseek(s.fd, 0, SEEK_CUR) == 8);
  CHECK("parent writes after it", write_full(s.fd, "more", 4) == 0);
  send_byte(down[1], '2');
  CHECK("child lseeked and wrote through the dup", receive_byte(up[0]) == '3');
  CHECK("the child's lseek and dup2 write moved the parent's offset", lseek(s.fd, 0, SEEK_CUR) == 105);
  CHECK("fd 10 shares that offset", lseek(10, 0, SEEK_CUR) == 105);
  CHECK("O_APPEND set by the child is shared", (fcntl(s.fd, F_GETFL) & O_APPEND) != 0);
  CHECK("FD_CLOEXEC set by the child is not", fcntl(s.fd, F_GETFD) == 0);
  CHECK("the child's close did not close the parent's fd", fcntl(s.fd, F_GETFD) >= 0);
  char contents[16] = {0};
  CHECK("the file holds both processes' writes in order",
        pread(s.fd, contents, 12, 0) == 12 && memcmp(contents, "abchellomore", 12) == 0);
  char tail[6] = {0};
  CHECK("and the write through fd 10 at offset 100", pread(s.fd, tail, 5, 100) == 5 && strcmp(tail, "via10") == 0);
  CHECK_STATUS("child", pid, "exit 0");
  close(10);
  close(s.fd);
  close(down[0]);
  close(down[1]);
  close(up[0]);
  close(up[1]);
}

static void dups(void) {
  int fd = temp_fd();
  CHECK("dup2 onto itself returns it", dup2(fd, fd) == fd);
  CHECK_ERRNO("dup2 of a closed fd", dup2(200, 201), EBADF);
  CHECK_ERRNO("dup2 to a negative fd", dup2(fd, -1), EBADF);
  CHECK_ERRNO("dup3 onto itself", dup3(fd, fd, 0), EINVAL);
  CHECK_ERRNO("dup3 with an unknown flag", dup3(fd, 11, O_NONBLOCK), EINVAL);
  CHECK("dup3 O_CLOEXEC", dup3(fd, 11, O_CLOEXEC) == 11 && fcntl(11, F_GETFD) == FD_CLOEXEC);
  CHECK("dup2 clears FD_CLOEXEC", dup2(fd, 11) == 11 && fcntl(11, F_GETFD) == 0);
  int other = temp_fd();
  write_full(other, "xyz", 3);
  CHECK("dup2 over an open fd replaces it", dup2(fd, other) == other && lseek(other, 0, SEEK_CUR) == 0);
  write_full(fd, "12345", 5);
  CHECK("the copies share one offset", lseek(other, 0, SEEK_CUR) == 5 && lseek(11, 0, SEEK_CUR) == 5);
  int low = dup(fd);
  CHECK("dup takes the lowest free fd", low > fd && fcntl(low, F_GETFD) == 0);
  CHECK("F_DUPFD_CLOEXEC at or above 30", fcntl(fd, F_DUPFD_CLOEXEC, 30) == 30 && fcntl(30, F_GETFD) == FD_CLOEXEC);
  close(30);
  close(low);
  close(other);
  close(11);
  close(fd);
}

/* Holds the write end open until told, then exits. */
static int hold_write_end(void *fds) {
  int *p = fds;
  close(p[0]); /* our copy of the read end of the pipe being tested */
  return receive_byte(p[2]) == 'x' ? 0 : 1;
}

static void end_of_file(void) {
  int p[2], go[2];
  pipe2(p, O_NONBLOCK);
  pipe(go);
  int fds[3] = {p[0], p[1], go[0]};
  pid_t pid = spawn(hold_write_end, fds);
  close(p[1]);
  char c;
  CHECK_ERRNO("no EOF while the child holds a write end", read(p[0], &c, 1), EAGAIN);
  send_byte(go[1], 'x');
  CHECK_STATUS("writer child", pid, "exit 0");
  CHECK("EOF once every write end is closed", read(p[0], &c, 1) == 0);
  close(p[0]);
  close(go[0]);
  close(go[1]);
}

static unsigned char pattern(size_t i) { return (unsigned char)(i * 7 + (i >> 9) * 13 + 5); }

static int echo_child(void *fds) {
  int *p = fds; /* to_child read end, from_child write end, and the two ends the child must close */
  close(p[2]);
  close(p[3]);
  static unsigned char buffer[65536];
  for (;;) {
    ssize_t got = read(p[0], buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return 1;
    if (got == 0) break;
    if (write_full(p[1], buffer, (size_t)got) != 0) return 2;
  }
  close(p[1]);
  return 0;
}

static uint64_t fnv1a(uint64_t hash, const unsigned char *data, size_t n) {
  for (size_t i = 0; i < n; i++) hash = (hash ^ data[i]) * 0x100000001b3ULL;
  return hash;
}

static void round_trip(void) {
  int down[2], up[2];
  pipe(down);
  pipe(up);
  int fds[4] = {down[0], up[1], down[1], up[0]};
  pid_t pid = spawn(echo_child, fds);
  close(down[0]);
  close(up[1]);
  fcntl(down[1], F_SETFL, O_NONBLOCK);

  static unsigned char out[ROUND_TRIP_BYTES];
  static unsigned char in[ROUND_TRIP_BYTES];
  for (size_t i = 0; i < sizeof out; i++) out[i] = pattern(i);
  size_t sent = 0, received = 0;
  int ok = 1, writer_open = 1;
  while (ok) {
    struct pollfd polls[2] = {{.fd = up[0], .events = POLLIN}, {.fd = writer_open ? down[1] : -1, .events = POLLOUT}};
    if (poll(polls, 2, -1) < 0) {
      if (errno == EINTR) continue;
      ok = 0;
      break;
    }
    if (writer_open && (polls[1].revents & (POLLOUT | POLLERR))) {
      ssize_t put = write(down[1], out + sent, sizeof out - sent > 65536 ? 65536 : sizeof out - sent);
      if (put > 0) sent += (size_t)put;
      else if (put < 0 && errno != EAGAIN && errno != EINTR) ok = 0;
      if (sent == sizeof out) {
        close(down[1]);
        writer_open = 0;
      }
    }
    if (polls[0].revents & (POLLIN | POLLHUP)) {
      ssize_t got = read(up[0], in + received, sizeof in - received < 65536 ? sizeof in - received : 65536);
      if (got == 0) break;
      if (got > 0) received += (size_t)got;
      else if (errno != EINTR) ok = 0;
      if (received > sizeof in) ok = 0;
    }
  }
  if (writer_open) close(down[1]);
  close(up[0]);
  CHECK("1 MiB sent and the same count echoed back", ok && sent == sizeof out && received == sizeof in);
  CHECK("checksums match", fnv1a(0xcbf29ce484222325ULL, in, received) == fnv1a(0xcbf29ce484222325ULL, out, sent));
  CHECK("every byte came back in order", memcmp(in, out, sizeof in) == 0);
  CHECK_STATUS("echo child", pid, "exit 0");
}

static int write_to_closed_pipe(void *mode) {
  int p[2];
  if (pipe(p) != 0) return 1;
  close(p[0]);
  if (strcmp(mode, "ignore") == 0) {
    signal(SIGPIPE, SIG_IGN);
    return write(p[1], "x", 1) == -1 && errno == EPIPE ? 0 : 2;
  }
  if (strcmp(mode, "block") == 0) {
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigprocmask(SIG_BLOCK, &set, NULL);
    if (!(write(p[1], "x", 1) == -1 && errno == EPIPE)) return 3;
    sigpending(&pending);
    return sigismember(&pending, SIGPIPE) ? 0 : 4;
  }
  signal(SIGPIPE, SIG_DFL);
  write(p[1], "x", 1);
  return 5; /* still alive: SIGPIPE was not delivered */
}

/* Keeps the read end of the parent's pipe open until told to go. */
static int hold_read_end(void *fds) {
  int *p = fds;
  close(p[1]);
  return receive_byte(p[2]) == 'x' ? 0 : 1;
}

static void broken_pipes(void) {
  CHECK_STATUS("SIGPIPE ignored: write gets EPIPE", spawn(write_to_closed_pipe, "ignore"), "exit 0");
  CHECK_STATUS("SIGPIPE blocked: EPIPE and SIGPIPE pending", spawn(write_to_closed_pipe, "block"), "exit 0");
  CHECK_STATUS("SIGPIPE default: the writer dies of it", spawn(write_to_closed_pipe, "default"), "signal SIGPIPE");

  /* The read end lives on in a child: writing works until that child exits too. */
  int p[2], go[2];
  pipe(p);
  pipe(go);
  int fds[3] = {p[0], p[1], go[0]};
  pid_t pid = spawn(hold_read_end, fds);
  close(p[0]);
  signal(SIGPIPE, SIG_IGN);
  CHECK("write works while a child holds the read end", write(p[1], "x", 1) == 1);
  send_byte(go[1], 'x');
  CHECK_STATUS("reader child", pid, "exit 0");
  CHECK_ERRNO("write with the read end closed everywhere", write(p[1], "x", 1), EPIPE);
  signal(SIGPIPE, SIG_DFL);
  close(p[1]);
  close(go[0]);
  close(go[1]);
}

/* /proc/self/fd lists exactly this process's fds (its own directory fd included); /dev/fd/N reopens fd N. */
static void fd_directory(void) {
  if (qemu_skips("/proc/self/fd and /dev/fd (qemu-user lists its own fds)")) return;
  int fds[2];
  pipe(fds);
  int extra = dup2(fds[0], 40);
  /* Whatever else this process inherited is open too: the listing must equal what fcntl says is open. */
  static unsigned char open_fds[1024], seen[1024];
  for (int fd = 0; fd < 1024; fd++) open_fds[fd] = fcntl(fd, F_GETFD) != -1;
  DIR *dir = opendir("/proc/self/fd");
  CHECK("opendir /proc/self/fd", dir != NULL);
  if (dir) open_fds[dirfd(dir)] = 1;
  struct dirent *entry;
  while (dir && (entry = readdir(dir)) != NULL) {
    int fd = atoi(entry->d_name);
    if (entry->d_name[0] != '.' && fd >= 0 && fd < 1024) seen[fd] = 1;
  }
  if (dir) closedir(dir);
  CHECK("it lists exactly the open fds (the pipe, the dup2 copy and its own fd among them)",
        memcmp(seen, open_fds, sizeof seen) == 0 && seen[40] && seen[fds[0]] && seen[fds[1]]);
  char link[64], target[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fds[0]);
  ssize_t n = readlink(link, target, sizeof target - 1);
  CHECK("readlink /proc/self/fd/N names the pipe", n > 5 && strncmp(target, "pipe:[", 6) == 0);
  write(fds[1], "z", 1);
  snprintf(link, sizeof link, "/dev/fd/%d", fds[0]);
  int again = open(link, O_RDONLY);
  char byte = 0;
  CHECK("open /dev/fd/N reopens the guest's fd N", again >= 0 && read(again, &byte, 1) == 1 && byte == 'z');
  close(again);
  close(extra);
  close(fds[0]);
  close(fds[1]);
}

int main(int argc, char **argv) {
  proc_init(argc, argv, 0, NULL);
  fd_directory();
  shared_description();
  dups();
  end_of_file();
  round_trip();
  broken_pipes();
  return finish();
}
