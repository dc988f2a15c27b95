/*
 * fork and what the child gets: return values and pids, copy-on-write isolation of private memory (a global,
 * small and large malloc blocks, a MAP_PRIVATE|MAP_ANONYMOUS page, the stack, a MAP_PRIVATE file mapping)
 * in both directions, shared memory that stays shared (MAP_SHARED|MAP_ANONYMOUS, a MAP_SHARED file mapping),
 * the child's mprotect/munmap not touching the parent, MADV_WIPEONFORK/MADV_DONTFORK, cwd and umask
 * inherited (and the child's changes not leaking back), 200 fork/wait cycles, vfork + _exit, and clone()
 * without CLONE_VM behaving as fork. Children report through their exit status: 0, or the number of the first
 * thing they found wrong. Built natively too: every expectation is Linux's.
 */
// fixture: native
#include "proc_check.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif

#define PAGE 4096UL
#define BIG_HEAP (1UL << 20) /* above the mmap threshold: its own mapping */

static volatile int global_value = 1111;

static int exit_with(void *code) { return (int)(long)code; }

static void basics(void) {
  int pipefd[2];
  pipe(pipefd);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    pid_t self = getpid();
    write(pipefd[1], &self, sizeof self);
    int code = getppid() != parent ? 1 : self == parent ? 2 : getpgid(0) != getpgid(parent) ? 3
               : getsid(0) != getsid(parent) ? 4 : 0;
    _exit(code);
  }
  close(pipefd[1]);
  CHECK("fork returns a pid in the parent", pid > 0);
  pid_t child_self = 0;
  CHECK("the child's getpid is what fork returned", read_full(pipefd[0], &child_self, sizeof child_self) == 0 &&
                                                       child_self == pid);
  close(pipefd[0]);
  CHECK_STATUS("child: getppid is the parent, same group and session", pid, "exit 0");
  CHECK("the parent's pid is unchanged", getpid() == parent);
}

struct cow {
  int *small_heap;
  unsigned char *big_heap;
  unsigned char *private_anon;
  unsigned char *private_file;
  int file_fd;
  int to_child, from_child;
};

static int cow_child(void *arg) {
  struct cow *c = arg;
  volatile int stack_value = 3333;
  /* The child sees the parent's values as they were at fork. */
  if (global_value != 1111) return 1;
  if (c->small_heap[0] != 2222 || c->small_heap[99] != 2299) return 2;
  if (c->big_heap[0] != 0xa1 || c->big_heap[BIG_HEAP - 1] != 0xa2) return 3;
  if (c->private_anon[0] != 0xb1 || c->private_anon[PAGE - 1] != 0xb2) return 4;
  if (c->private_file[0] != 'f' || c->private_file[PAGE - 1] != 'F') return 5;
  /* Its writes are its own. */
  global_value = 5555;
  c->small_heap[0] = 6666;
  c->big_heap[0] = 0xc1;
  c->big_heap[BIG_HEAP - 1] = 0xc2;
  c->private_anon[0] = 0xd1;
  c->private_file[0] = 'x';
  stack_value = 7777;
  if (send_byte(c->from_child, 'w') != 0) return 6;
  /* The parent now writes too: the child must keep seeing its own values. */
  if (receive_byte(c->to_child) != 'p') return 7;
  if (global_value != 5555 || c->small_heap[0] != 6666 || c->small_heap[99] != 2299) return 8;
  if (c->big_heap[0] != 0xc1 || c->big_heap[BIG_HEAP - 1] != 0xc2 || c->big_heap[4096] != 0xa3) return 9;
  if (c->private_anon[0] != 0xd1 || c->private_anon[1] != 0) return 10;
  if (c->private_file[0] != 'x' || c->private_file[1] != 'f') return 11;
  if (stack_value != 7777) return 12;
  return 0;
}

static void copy_on_write(void) {
  struct cow c;
  c.small_heap = malloc(100 * sizeof(int));
  for (int i = 0; i < 100; i++) c.small_heap[i] = 2200 + i;
  c.small_heap[0] = 2222;
  c.big_heap = malloc(BIG_HEAP);
  memset(c.big_heap, 0xa3, BIG_HEAP);
  c.big_heap[0] = 0xa1;
  c.big_heap[BIG_HEAP - 1] = 0xa2;
  c.private_anon = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  c.private_anon[0] = 0xb1;
  c.private_anon[PAGE - 1] = 0xb2;
  char path[] = "/tmp/guest-proc-fork-XXXXXX";
  c.file_fd = mkstemp(path);
  unlink(path);
  char page[PAGE];
  memset(page, 'f', sizeof page);
  page[PAGE - 1] = 'F';
  write_full(c.file_fd, page, sizeof page);
  c.private_file = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, c.file_fd, 0);
  CHECK("set up private memory", c.small_heap && c.big_heap && c.private_anon != MAP_FAILED &&
                                     c.private_file != MAP_FAILED);
  volatile int stack_value = 3333;

  int down[2], up[2];
  pipe(down);
  pipe(up);
  c.to_child = down[0];
  c.from_child = up[1];
  pid_t pid = spawn(cow_child, &c);
  CHECK("child wrote its copies", receive_byte(up[0]) == 'w');
  CHECK("global unchanged in the parent", global_value == 1111);
  CHECK("small malloc block unchanged", c.small_heap[0] == 2222 && c.small_heap[99] == 2299);
  CHECK("1 MiB malloc block unchanged", c.big_heap[0] == 0xa1 && c.big_heap[BIG_HEAP - 1] == 0xa2);
  CHECK("MAP_PRIVATE|MAP_ANONYMOUS page unchanged", c.private_anon[0] == 0xb1 && c.private_anon[PAGE - 1] == 0xb2);
  CHECK("MAP_PRIVATE file page unchanged", c.private_file[0] == 'f');
  char first = 0;
  CHECK("the file itself unchanged", pread(c.file_fd, &first, 1, 0) == 1 && first == 'f');
  CHECK("stack unchanged", stack_value == 3333);
  /* Now the parent writes: the child keeps its own values. */
  global_value = 8888;
  c.small_heap[0] = 9999;
  c.big_heap[0] = 0xe1;
  c.private_anon[1] = 0xe2;
  c.private_file[1] = 'y';
  stack_value = 4444;
  send_byte(down[1], 'p');
  CHECK_STATUS("child kept its own values after the parent wrote", pid, "exit 0");
  CHECK("parent keeps its writes", global_value == 8888 && c.small_heap[0] == 9999 && c.big_heap[0] == 0xe1 &&
                                       c.private_anon[1] == 0xe2 && c.private_file[1] == 'y' && stack_value == 4444);
  close(down[0]);
  close(down[1]);
  close(up[0]);
  close(up[1]);
  munmap(c.private_file, PAGE);
  munmap(c.private_anon, PAGE);
  close(c.file_fd);
  free(c.big_heap);
  free(c.small_heap);
}

struct shared {
  volatile unsigned char *anon;
  volatile unsigned char *file;
  int to_child;
};

static int shared_child(void *arg) {
  struct shared *s = arg;
  if (s->anon[0] != 0x11 || s->file[0] != 's') return 1;
  /* Wait for the parent's post-fork writes: they must show through. */
  if (receive_byte(s->to_child) != 'p') return 2;
  if (s->anon[1] != 0x22 || s->file[1] != 't') return 3;
  s->anon[0] = 0x33;
  s->anon[PAGE - 1] = 0x44;
  s->anon[PAGE] = 0x55; /* second page, never touched by the parent before */
  s->file[0] = 'c';
  s->file[PAGE - 1] = 'C';
  return 0;
}

static void shared_memory(void) {
  struct shared s;
  s.anon = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  char path[] = "/tmp/guest-proc-fork-XXXXXX";
  int fd = mkstemp(path);
  unlink(path);
  char page[PAGE];
  memset(page, 's', sizeof page);
  write_full(fd, page, sizeof page);
  s.file = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  CHECK("set up shared memory", s.anon != MAP_FAILED && s.file != MAP_FAILED);
  s.anon[0] = 0x11;
  int down[2];
  pipe(down);
  s.to_child = down[0];
  pid_t pid = spawn(shared_child, &s);
  s.anon[1] = 0x22;
  s.file[1] = 't';
  send_byte(down[1], 'p');
  CHECK_STATUS("child saw the parent's writes to shared memory", pid, "exit 0");
  CHECK("MAP_SHARED|MAP_ANONYMOUS: the parent sees the child's writes",
        s.anon[0] == 0x33 && s.anon[PAGE - 1] == 0x44 && s.anon[PAGE] == 0x55 && s.anon[1] == 0x22);
  CHECK("MAP_SHARED file: the parent's mapping sees the child's writes", s.file[0] == 'c' && s.file[PAGE - 1] == 'C');
  char got[2] = {0};
  CHECK("MAP_SHARED file: so does the file", pread(fd, got, 1, 0) == 1 && pread(fd, got + 1, 1, PAGE - 1) == 1 &&
                                                  got[0] == 'c' && got[1] == 'C');
  close(down[0]);
  close(down[1]);
  munmap((void *)s.file, PAGE);
  munmap((void *)s.anon, 2 * PAGE);
  close(fd);
}

static unsigned char *protect_page;

static int unmap_and_protect(void *unused) {
  (void)unused;
  if (mprotect(protect_page, PAGE, PROT_NONE) != 0) return 1;
  if (munmap(protect_page + PAGE, PAGE) != 0) return 2;
  return 0;
}

static int wipe_child(void *arg) {
  unsigned char *wiped = arg;
  /* MADV_WIPEONFORK: the child gets zero-filled memory; the page after it was not marked and is copied. */
  if (wiped[0] != 0 || wiped[PAGE - 1] != 0) return 1;
  if (wiped[PAGE] != 0x77) return 2;
  return 0;
}

static int dontfork_child(void *arg) {
  /* MADV_DONTFORK: the range is not mapped in the child at all, so mapping it again must succeed there. */
  void *again = mmap(arg, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  return again == arg ? 0 : 1;
}

static void mapping_changes(void) {
  protect_page = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  protect_page[0] = 1;
  protect_page[PAGE] = 2;
  CHECK_STATUS("child mprotects and munmaps its copies", spawn(unmap_and_protect, NULL), "exit 0");
  CHECK("the parent's pages stay mapped and writable", (protect_page[0] = 3) == 3 && (protect_page[PAGE] = 4) == 4);
  munmap(protect_page, 2 * PAGE);

  if (!qemu_skips("MADV_WIPEONFORK and MADV_DONTFORK (qemu-user ignores them)")) {
    unsigned char *wiped = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(wiped, 0x77, 2 * PAGE);
    CHECK("madvise MADV_WIPEONFORK", madvise(wiped, PAGE, MADV_WIPEONFORK) == 0);
    CHECK_STATUS("MADV_WIPEONFORK: the child sees zeros", spawn(wipe_child, wiped), "exit 0");
    CHECK("the parent keeps its data", wiped[0] == 0x77 && wiped[PAGE - 1] == 0x77);
    munmap(wiped, 2 * PAGE);

    unsigned char *kept = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    kept[0] = 9;
    CHECK("madvise MADV_DONTFORK", madvise(kept, PAGE, MADV_DONTFORK) == 0);
    CHECK_STATUS("MADV_DONTFORK: not mapped in the child", spawn(dontfork_child, kept), "exit 0");
    CHECK("the parent keeps it", kept[0] == 9);
    munmap(kept, PAGE);
  }
}

static char start_cwd[PATH_MAX];

static int cwd_umask_child(void *dir) {
  char cwd[PATH_MAX];
  if (!getcwd(cwd, sizeof cwd) || strcmp(cwd, dir) != 0) return 1;
  if (umask(0) != 027) return 2;
  /* The child's changes are its own. */
  if (chdir("/") != 0) return 3;
  /* A relative path resolves against the inherited cwd. */
  return 0;
}

static int relative_open_child(void *unused) {
  (void)unused;
  int fd = open("marker", O_RDONLY);
  if (fd < 0) return 1;
  close(fd);
  return 0;
}

static void cwd_and_umask(void) {
  getcwd(start_cwd, sizeof start_cwd);
  char dir[] = "/tmp/guest-proc-cwd-XXXXXX";
  CHECK("mkdtemp", mkdtemp(dir) != NULL);
  CHECK("chdir into it", chdir(dir) == 0);
  char real[PATH_MAX];
  getcwd(real, sizeof real);
  close(open("marker", O_CREAT | O_WRONLY, 0600));
  mode_t old = umask(027);
  CHECK_STATUS("child inherits cwd and umask", spawn(cwd_umask_child, real), "exit 0");
  CHECK_STATUS("child opens a relative path in the inherited cwd", spawn(relative_open_child, NULL), "exit 0");
  char now[PATH_MAX];
  CHECK("the child's chdir did not move the parent", getcwd(now, sizeof now) && strcmp(now, real) == 0);
  CHECK("the child's umask did not change the parent's", umask(old) == 027);
  unlink("marker");
  chdir(start_cwd);
  CHECK("temporary directory removed", rmdir(dir) == 0);
}

static void many_cycles(void) {
  int bad = 0;
  for (int i = 0; i < 200 && bad == 0; i++) {
    pid_t pid = fork();
    if (pid == 0) _exit(i & 0xff);
    int status = -1;
    if (pid < 0 || wait_retry(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != (i & 0xff))
      bad = i + 1;
  }
  CHECK("200 fork/wait cycles, each child's exit code i & 0xff seen", bad == 0);
  CHECK_ERRNO("no child left behind", waitpid(-1, NULL, WNOHANG), ECHILD);
}

static void vfork_exit(void) {
  pid_t parent = getpid();
  pid_t pid = vfork();
  if (pid == 0) _exit(getppid() == parent ? 77 : 1);
  CHECK("vfork returns a pid", pid > 0);
  CHECK_STATUS("vfork child: getppid is the parent, _exit(77)", pid, "exit 77");
}

static void clone_without_vm(void) {
  /* clone(SIGCHLD) with no CLONE_VM is fork: the same argument order (flags, stack=0, …) on both machines. */
  global_value = 1234;
  long pid = syscall(SYS_clone, (long)SIGCHLD, 0L, 0L, 0L, 0L);
  if (pid == 0) {
    global_value = 4321;
    _exit(global_value == 4321 ? 21 : 1);
  }
  CHECK("clone(SIGCHLD) returns a pid", pid > 0);
  CHECK_STATUS("clone child exits with its own code", (pid_t)pid, "exit 21");
  CHECK("clone child's write stayed in the child", global_value == 1234);
}

int main(int argc, char **argv) {
  proc_init(argc, argv, 0, NULL);
  basics();
  copy_on_write();
  shared_memory();
  mapping_changes();
  cwd_and_umask();
  many_cycles();
  vfork_exit();
  clone_without_vm();
  CHECK_STATUS("a last child", spawn(exit_with, (void *)0L), "exit 0");
  return finish();
}
