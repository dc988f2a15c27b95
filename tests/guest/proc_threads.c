// fixture: native
/*
 * Threads and signals (the threads issue, second increment): asynchronous delivery to code that makes no
 * syscalls, process- vs thread-directed signals, per-thread
 * masks and alternate stacks, rt_sigtimedwait, robust mutexes whose owner dies (a thread, and a process
 * sharing the mutex), sched_setaffinity per thread, futex_waitv, and blocking calls that must block only
 * their own thread (ppoll, pselect6, sigsuspend, wait4, read with an SA_RESTART handler).
 * With --qemu, futex_waitv is skipped too (qemu-user 7.2 does not implement it).
 * Every check holds on Linux whatever the scheduling; the native x86_64 build proves it. With --qemu the
 * robust-list checks are skipped (qemu-user answers set_robust_list with ENOSYS, so an owner's death is never
 * seen and the next lock would hang).
 */
#include "proc_check.h"

#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>

static pid_t gettid_(void) { return (pid_t)syscall(SYS_gettid); }

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

/* A loop that makes progress without syscalls: only preemption lets other threads run meanwhile. */
static atomic_long spin_progress;
static void spin_for(long rounds) {
  for (long i = 0; i < rounds; i++) atomic_fetch_add(&spin_progress, 1);
}

/* ---- asynchronous delivery to code that makes no syscalls ---- */

static volatile sig_atomic_t alarm_fired;
static void on_alarm(int sig) {
  (void)sig;
  alarm_fired = 1;
}

static volatile sig_atomic_t usr2_fired;
static void on_usr2(int sig) {
  (void)sig;
  usr2_fired = 1;
}

static void asynchronous_delivery(void) {
  signal(SIGALRM, on_alarm);
  struct itimerval once = {{0, 0}, {0, 30000}};
  setitimer(ITIMER_REAL, &once, NULL);
  while (!alarm_fired) {
  }
  CHECK("a timer's handler runs while the only thread spins without syscalls", alarm_fired == 1);
  signal(SIGALRM, SIG_DFL);
  alarm(PROC_ALARM_SECONDS); /* setitimer replaced the program's watchdog */

  /* Another process's signal reaches a spinning thread too. */
  signal(SIGUSR2, on_usr2);
  pid_t child = fork();
  if (child == 0) {
    sleep_ms(30);
    kill(getppid(), SIGUSR2);
    _exit(0);
  }
  while (!usr2_fired) {
  }
  CHECK("another process's signal interrupts a spinning thread", usr2_fired == 1);
  waitpid(child, NULL, 0);
  signal(SIGUSR2, SIG_DFL);
}

/* ---- a wait interrupted by a signal that runs no handler goes on for the time it had left ---- */

static double seconds_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void restarted_waits(void) {
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  sigprocmask(SIG_BLOCK, &usr1, NULL);
  /* A blocked signal every 5 ms for about 2 s: each one interrupts the wait inside the kernel, which restarts
     it; a wait that started over each time would last until the signals stop. */
  pid_t child = fork();
  if (child == 0) {
    for (int i = 0; i < 400; i++) {
      kill(getppid(), SIGUSR1);
      sleep_ms(5);
    }
    _exit(0);
  }
  sleep_ms(20);
  double start = seconds_now();
  struct timespec sleep_for = {0, 200 * 1000000};
  nanosleep(&sleep_for, NULL);
  CHECK("nanosleep under a stream of blocked signals ends on time (well under 1 s)", seconds_now() - start < 1.0);
  start = seconds_now();
  clock_nanosleep(CLOCK_MONOTONIC, 0, &sleep_for, NULL);
  CHECK("clock_nanosleep likewise", seconds_now() - start < 1.0);
  static atomic_int never;
  start = seconds_now();
  long timed_out = syscall(SYS_futex, &never, FUTEX_WAIT_PRIVATE, 0, &sleep_for, NULL, 0);
  int wait_errno = errno;
  CHECK("a FUTEX_WAIT timeout likewise", timed_out == -1 && wait_errno == ETIMEDOUT && seconds_now() - start < 1.0);
  kill(child, SIGKILL);
  waitpid(child, NULL, 0);
  sigset_t pending;
  sigpending(&pending);
  if (sigismember(&pending, SIGUSR1)) {
    struct timespec zero = {0, 0};
    sigtimedwait(&usr1, NULL, &zero);
  }
  sigprocmask(SIG_UNBLOCK, &usr1, NULL);
}

/* ---- process-directed vs thread-directed signals ---- */

static atomic_int handled_tid;
static atomic_int handled_count;
static void record_handler(int sig) {
  (void)sig;
  atomic_store(&handled_tid, gettid_());
  atomic_fetch_add(&handled_count, 1);
}

static atomic_int worker_tid;
static atomic_int stop_worker;
static void *unblocked_worker(void *unused) {
  (void)unused;
  sigset_t none;
  sigemptyset(&none);
  pthread_sigmask(SIG_SETMASK, &none, NULL);
  atomic_store(&worker_tid, gettid_());
  while (!atomic_load(&stop_worker)) sleep_ms(1);
  return NULL;
}

static void process_directed(void) {
  signal(SIGUSR1, record_handler);
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &usr1, NULL); /* the worker unblocks it for itself */
  pthread_t worker;
  pthread_create(&worker, NULL, unblocked_worker, NULL);
  while (atomic_load(&worker_tid) == 0) sleep_ms(1);
  kill(getpid(), SIGUSR1);
  for (int i = 0; i < 2000 && atomic_load(&handled_count) == 0; i++) sleep_ms(1);
  CHECK("kill to the process runs the handler on the thread that does not block it",
        atomic_load(&handled_count) == 1 && atomic_load(&handled_tid) == atomic_load(&worker_tid));
  sigset_t pending;
  sigpending(&pending);
  CHECK("and it is no longer pending", !sigismember(&pending, SIGUSR1));
  atomic_store(&stop_worker, 1);
  pthread_join(worker, NULL);

  /* Blocked everywhere: it stays pending for the process, rt_sigpending shows it. */
  kill(getpid(), SIGUSR1);
  sigpending(&pending);
  CHECK("a process signal every thread blocks stays pending", sigismember(&pending, SIGUSR1));
  atomic_store(&handled_count, 0);
  pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
  CHECK("unblocking delivers it to the unblocking thread",
        atomic_load(&handled_count) == 1 && atomic_load(&handled_tid) == gettid_());
  signal(SIGUSR1, SIG_DFL);
}

/* ---- rt_sigtimedwait ---- */

static atomic_int waiter_got;
static atomic_int waiter_code;
static atomic_int waiter_ready;
static void *sigwait_thread(void *unused) {
  (void)unused;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR2);
  siginfo_t info;
  atomic_store(&waiter_ready, 1);
  /* The raw call: glibc's sigwaitinfo folds the kernel's SI_TKILL into SI_USER. */
  int got = (int)syscall(SYS_rt_sigtimedwait, &set, &info, NULL, 8);
  atomic_store(&waiter_code, info.si_code);
  atomic_store(&waiter_got, got);
  return NULL;
}

static void timed_waits(void) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &set, NULL);

  struct timespec zero = {0, 0};
  siginfo_t info;
  CHECK_ERRNO("sigtimedwait with nothing pending and a zero timeout", sigtimedwait(&set, &info, &zero), EAGAIN);
  struct timespec short_wait = {0, 30 * 1000000};
  CHECK_ERRNO("sigtimedwait times out", sigtimedwait(&set, &info, &short_wait), EAGAIN);

  kill(getpid(), SIGUSR2);
  memset(&info, 0, sizeof info);
  int got = sigtimedwait(&set, &info, &zero);
  CHECK("sigtimedwait takes a pending process signal with its siginfo",
        got == SIGUSR2 && info.si_signo == SIGUSR2 && info.si_code == SI_USER && info.si_pid == getpid());
  sigset_t pending;
  sigpending(&pending);
  CHECK("and it is no longer pending", !sigismember(&pending, SIGUSR2));

  CHECK_ERRNO("sigtimedwait with a bad sigset size", syscall(SYS_rt_sigtimedwait, &set, &info, &zero, 4), EINVAL);
  struct timespec bad = {0, 1000000000};
  CHECK_ERRNO("sigtimedwait with a bad timeout", sigtimedwait(&set, &info, &bad), EINVAL);

  /* A thread waiting in sigwaitinfo while this one keeps running gets a thread-directed signal. */
  pthread_t waiter;
  pthread_create(&waiter, NULL, sigwait_thread, NULL);
  while (!atomic_load(&waiter_ready)) sleep_ms(1);
  sleep_ms(20);
  spin_for(2000000);
  pthread_kill(waiter, SIGUSR2);
  pthread_join(waiter, NULL);
  CHECK("rt_sigtimedwait in a thread takes pthread_kill's signal (SI_TKILL)",
        atomic_load(&waiter_got) == SIGUSR2 && atomic_load(&waiter_code) == SI_TKILL);

  /* And a process-directed one (every thread blocks it). */
  atomic_store(&waiter_ready, 0);
  atomic_store(&waiter_got, 0);
  pthread_create(&waiter, NULL, sigwait_thread, NULL);
  while (!atomic_load(&waiter_ready)) sleep_ms(1);
  sleep_ms(20);
  kill(getpid(), SIGUSR2);
  pthread_join(waiter, NULL);
  CHECK("rt_sigtimedwait in a thread takes a kill to the process (SI_USER)",
        atomic_load(&waiter_got) == SIGUSR2 && atomic_load(&waiter_code) == SI_USER);
  pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

/* ---- sigaltstack per thread ---- */

static char main_alt[65536], thread_alt[65536];
static atomic_int on_stack; /* 1: main's alt stack, 2: the thread's, 3: neither */
static void where_handler(int sig) {
  (void)sig;
  char here;
  uintptr_t at = (uintptr_t)&here;
  if (at >= (uintptr_t)main_alt && at < (uintptr_t)main_alt + sizeof main_alt) atomic_store(&on_stack, 1);
  else if (at >= (uintptr_t)thread_alt && at < (uintptr_t)thread_alt + sizeof thread_alt)
    atomic_store(&on_stack, 2);
  else atomic_store(&on_stack, 3);
}

static atomic_int alt_initially_disabled;
static void *altstack_thread(void *unused) {
  (void)unused;
  stack_t current;
  sigaltstack(NULL, &current);
  atomic_store(&alt_initially_disabled, (current.ss_flags & SS_DISABLE) != 0);
  stack_t mine = {.ss_sp = thread_alt, .ss_size = sizeof thread_alt, .ss_flags = 0};
  sigaltstack(&mine, NULL);
  atomic_store(&on_stack, 0);
  raise(SIGUSR1);
  return (void *)(long)atomic_load(&on_stack);
}

static void alternate_stacks(void) {
  struct sigaction action = {0};
  action.sa_handler = where_handler;
  action.sa_flags = SA_ONSTACK;
  sigaction(SIGUSR1, &action, NULL);
  stack_t mine = {.ss_sp = main_alt, .ss_size = sizeof main_alt, .ss_flags = 0};
  sigaltstack(&mine, NULL);
  pthread_t thread;
  void *seen = NULL;
  pthread_create(&thread, NULL, altstack_thread, NULL);
  pthread_join(thread, &seen);
  CHECK("a new thread starts without an alternate stack", atomic_load(&alt_initially_disabled) == 1);
  CHECK("a thread's handler runs on that thread's own alternate stack", (long)seen == 2);
  atomic_store(&on_stack, 0);
  raise(SIGUSR1);
  CHECK("the main thread's handler runs on the main thread's alternate stack", atomic_load(&on_stack) == 1);
  stack_t current;
  sigaltstack(NULL, &current);
  CHECK("the main thread's alternate stack is unchanged by the thread's",
        current.ss_sp == main_alt && current.ss_size == sizeof main_alt);
  stack_t off = {.ss_flags = SS_DISABLE};
  sigaltstack(&off, NULL);
  signal(SIGUSR1, SIG_DFL);
}

/* ---- robust mutexes ---- */

static pthread_mutex_t robust;
static atomic_int robust_locked;
static void *lock_and_die(void *delay) {
  pthread_mutex_lock(&robust);
  atomic_store(&robust_locked, 1);
  sleep_ms((long)delay);
  return NULL; /* exits holding the mutex */
}

static void robust_mutexes(void) {
  if (qemu_skips("robust mutexes (set_robust_list is ENOSYS)")) return;
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(&robust, &attr);

  pthread_t owner;
  pthread_create(&owner, NULL, lock_and_die, (void *)0L);
  pthread_join(owner, NULL);
  CHECK("locking a robust mutex whose owner thread exited gives EOWNERDEAD",
        pthread_mutex_lock(&robust) == EOWNERDEAD);
  CHECK("pthread_mutex_consistent makes it usable", pthread_mutex_consistent(&robust) == 0);
  pthread_mutex_unlock(&robust);
  CHECK("and it locks normally afterwards", pthread_mutex_lock(&robust) == 0);
  pthread_mutex_unlock(&robust);

  /* A waiter already blocked in the lock is woken by the owner's death. */
  atomic_store(&robust_locked, 0);
  pthread_create(&owner, NULL, lock_and_die, (void *)100L);
  while (!atomic_load(&robust_locked)) sleep_ms(1);
  CHECK("a waiter blocked in the lock wakes with EOWNERDEAD when the owner exits",
        pthread_mutex_lock(&robust) == EOWNERDEAD);
  pthread_mutex_consistent(&robust);
  pthread_mutex_unlock(&robust);
  pthread_join(owner, NULL);

  /* Process-shared, in shared memory: a child process locks it and exits. */
  pthread_mutex_t *shared =
      mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  pthread_mutex_init(shared, &attr);
  pid_t child = fork();
  if (child == 0) {
    pthread_mutex_lock(shared);
    _exit(0);
  }
  waitpid(child, NULL, 0);
  CHECK("a process-shared robust mutex whose owner process died gives EOWNERDEAD",
        pthread_mutex_lock(shared) == EOWNERDEAD);
  pthread_mutex_consistent(shared);
  pthread_mutex_unlock(shared);
  munmap(shared, 4096);
}

/* ---- sched_setaffinity per thread ---- */

static int cpu_count(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return -1;
  return CPU_COUNT(&set);
}

static int lowest_cpu(void) {
  cpu_set_t set;
  sched_getaffinity(0, sizeof set, &set);
  for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
    if (CPU_ISSET(cpu, &set)) return cpu;
  return -1;
}

static atomic_int thread_cpus;
static void *affinity_thread(void *unused) {
  (void)unused;
  atomic_store(&thread_cpus, cpu_count());
  return NULL;
}

static void affinity(void) {
  int all = cpu_count();
  int first = lowest_cpu();
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(first, &one);
  CHECK("sched_setaffinity to one CPU", sched_setaffinity(0, sizeof one, &one) == 0);
  CHECK("sched_getaffinity reads it back", cpu_count() == 1 && lowest_cpu() == first);
  CHECK("the thread runs on that CPU", sched_getcpu() == first);
  pthread_t thread;
  pthread_create(&thread, NULL, affinity_thread, NULL);
  pthread_join(thread, NULL);
  CHECK("a new thread inherits its creator's affinity", atomic_load(&thread_cpus) == 1);
  cpu_set_t none;
  CPU_ZERO(&none);
  CHECK_ERRNO("an empty mask", sched_setaffinity(0, sizeof none, &none), EINVAL);
  CHECK_ERRNO("a bad mask pointer", syscall(SYS_sched_setaffinity, 0, sizeof one, (void *)8), EFAULT);
  cpu_set_t every;
  CPU_ZERO(&every);
  for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) CPU_SET(cpu, &every);
  CHECK("a mask of every CPU gives back the CPUs there are",
        sched_setaffinity(0, sizeof every, &every) == 0 && cpu_count() == all);
}

/* ---- futex_waitv ---- */

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif
struct waitv {
  uint64_t val;
  uint64_t uaddr;
  uint32_t flags;
  uint32_t reserved;
};
#define WAITV_U32_PRIVATE (0x02 | 128)

static atomic_int word_a, word_b;
static atomic_long waitv_result = -100;
static void *waitv_thread(void *unused) {
  (void)unused;
  struct waitv waiters[2] = {
      {.val = 0, .uaddr = (uintptr_t)&word_a, .flags = WAITV_U32_PRIVATE},
      {.val = 0, .uaddr = (uintptr_t)&word_b, .flags = WAITV_U32_PRIVATE},
  };
  atomic_store(&waitv_result, syscall(SYS_futex_waitv, waiters, 2, 0, NULL, 0));
  return NULL;
}

static void futex_waitv(void) {
  if (qemu_skips("futex_waitv (ENOSYS)")) return;
  struct waitv one = {.val = 1, .uaddr = (uintptr_t)&word_a, .flags = WAITV_U32_PRIVATE};
  CHECK_ERRNO("futex_waitv with a value that no longer holds", syscall(SYS_futex_waitv, &one, 1, 0, NULL, 0),
              EAGAIN);
  one.val = 0;
  struct timespec at;
  clock_gettime(CLOCK_MONOTONIC, &at);
  at.tv_nsec += 20 * 1000000;
  if (at.tv_nsec >= 1000000000) {
    at.tv_sec++;
    at.tv_nsec -= 1000000000;
  }
  CHECK_ERRNO("futex_waitv times out at an absolute time",
              syscall(SYS_futex_waitv, &one, 1, 0, &at, CLOCK_MONOTONIC), ETIMEDOUT);
  CHECK_ERRNO("futex_waitv with flags", syscall(SYS_futex_waitv, &one, 1, 1, NULL, 0), EINVAL);
  CHECK_ERRNO("futex_waitv with no futexes", syscall(SYS_futex_waitv, &one, 0, 0, NULL, 0), EINVAL);
  struct waitv wide = {.val = 0, .uaddr = (uintptr_t)&word_a, .flags = 0x03};
  CHECK_ERRNO("futex_waitv on a 64-bit futex", syscall(SYS_futex_waitv, &wide, 1, 0, NULL, 0), EINVAL);
  CHECK_ERRNO("futex_waitv with a bad clock", syscall(SYS_futex_waitv, &one, 1, 0, &at, CLOCK_PROCESS_CPUTIME_ID),
              EINVAL);

  pthread_t thread;
  pthread_create(&thread, NULL, waitv_thread, NULL);
  long woken = 0;
  for (int i = 0; i < 2000 && woken == 0; i++) {
    sleep_ms(1);
    woken = syscall(SYS_futex, &word_b, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
  }
  pthread_join(thread, NULL);
  CHECK("a FUTEX_WAKE of the second word ends futex_waitv with index 1",
        woken == 1 && atomic_load(&waitv_result) == 1);

  /* Requeued from its first word to another, a futex_waitv waiter is woken there and names the first. */
  static atomic_int word_c;
  atomic_store(&waitv_result, -100);
  pthread_create(&thread, NULL, waitv_thread, NULL);
  long moved = 0;
  for (int i = 0; i < 2000 && moved == 0; i++) {
    sleep_ms(1);
    moved = syscall(SYS_futex, &word_a, FUTEX_CMP_REQUEUE_PRIVATE, 0, 1, &word_c, 0);
  }
  long rewoken = syscall(SYS_futex, &word_c, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
  pthread_join(thread, NULL);
  CHECK("FUTEX_CMP_REQUEUE moves a futex_waitv waiter; woken there it returns index 0",
        moved == 1 && rewoken == 1 && atomic_load(&waitv_result) == 0);
}

/* ---- blocking calls block only their own thread ---- */

static int pipe_fds[2];
static atomic_int poll_result = -100;
static atomic_int poll_revents;
static void *ppoll_thread(void *unused) {
  (void)unused;
  struct pollfd fd = {.fd = pipe_fds[0], .events = POLLIN};
  int ready = poll(&fd, 1, 5000);
  atomic_store(&poll_revents, fd.revents);
  atomic_store(&poll_result, ready);
  return NULL;
}

static atomic_int select_result = -100;
static atomic_int select_still_set = -1;
static atomic_long select_left_ns = -1;
static void *pselect_thread(void *unused) {
  (void)unused;
  fd_set readable;
  FD_ZERO(&readable);
  FD_SET(pipe_fds[0], &readable);
  struct timespec timeout = {0, 50 * 1000000};
  int ready = (int)syscall(SYS_pselect6, pipe_fds[0] + 1, &readable, NULL, NULL, &timeout, NULL);
  atomic_store(&select_still_set, FD_ISSET(pipe_fds[0], &readable));
  atomic_store(&select_left_ns, timeout.tv_sec * 1000000000L + timeout.tv_nsec);
  atomic_store(&select_result, ready);
  return NULL;
}

static void usr1_noop(int sig) { (void)sig; }

static atomic_int suspend_result = -100;
static atomic_int suspend_ready;
static void *sigsuspend_thread(void *unused) {
  (void)unused;
  sigset_t wait_mask;
  sigfillset(&wait_mask);
  sigdelset(&wait_mask, SIGUSR1);
  atomic_store(&suspend_ready, 1);
  int result = sigsuspend(&wait_mask);
  atomic_store(&suspend_result, result == -1 ? -errno : result);
  return NULL;
}

static atomic_int wait_status = -1;
static atomic_int wait_pid;
static void *wait4_thread(void *child) {
  int status = 0;
  atomic_store(&wait_pid, wait4((pid_t)(long)child, &status, 0, NULL));
  atomic_store(&wait_status, status);
  return NULL;
}

static atomic_long read_result = -100;
static atomic_int reader_ready;
static void *restarting_reader(void *unused) {
  (void)unused;
  char buffer[8];
  atomic_store(&reader_ready, 1);
  atomic_store(&read_result, read(pipe_fds[0], buffer, sizeof buffer));
  return NULL;
}

/* One write() far larger than a pipe holds, read by another thread of the same process. */
#define BIG_WRITE (1 << 20)
static unsigned char big_out[BIG_WRITE];
static atomic_long big_written = -100;
static int big_gather;
static void *big_writer(void *fd) {
  if (!big_gather) {
    atomic_store(&big_written, write((int)(long)fd, big_out, sizeof big_out));
    return NULL;
  }
  struct iovec halves[3] = {
      {big_out, 1000}, {big_out + 1000, BIG_WRITE / 2 - 1000}, {big_out + BIG_WRITE / 2, BIG_WRITE / 2}};
  atomic_store(&big_written, writev((int)(long)fd, halves, 3));
  return NULL;
}

static int big_round_trip(int gather) {
  int fds[2];
  pipe(fds);
  for (int i = 0; i < BIG_WRITE; i++) big_out[i] = (unsigned char)(i * 7 + (i >> 12) + gather);
  big_gather = gather;
  atomic_store(&big_written, -100);
  pthread_t writer;
  pthread_create(&writer, NULL, big_writer, (void *)(long)fds[1]);
  static unsigned char in[BIG_WRITE];
  long got = 0;
  while (got < BIG_WRITE) {
    long n = read(fds[0], in + got, BIG_WRITE - got);
    if (n <= 0) break;
    got += n;
  }
  pthread_join(writer, NULL);
  close(fds[0]);
  close(fds[1]);
  return atomic_load(&big_written) == BIG_WRITE && got == BIG_WRITE && memcmp(in, big_out, BIG_WRITE) == 0;
}

static void big_pipe_write(void) {
  CHECK("a 1 MiB write() to a pipe completes while a thread of the same process reads it", big_round_trip(0));
  CHECK("a 1 MiB writev() likewise", big_round_trip(1));
}

static void blocking_alone(void) {
  pipe(pipe_fds);
  pthread_t thread;

  /* poll: the main thread keeps computing while the thread waits, then wakes it. */
  pthread_create(&thread, NULL, ppoll_thread, NULL);
  sleep_ms(20);
  atomic_store(&spin_progress, 0);
  spin_for(3000000);
  CHECK("the main thread runs while a thread waits in poll", atomic_load(&spin_progress) == 3000000);
  write(pipe_fds[1], "x", 1);
  pthread_join(thread, NULL);
  CHECK("poll in a thread wakes when the pipe becomes readable",
        atomic_load(&poll_result) == 1 && (atomic_load(&poll_revents) & POLLIN));
  char drain;
  read(pipe_fds[0], &drain, 1);

  /* pselect6 times out in a thread: nothing left set, no time left. */
  pthread_create(&thread, NULL, pselect_thread, NULL);
  spin_for(1000000);
  pthread_join(thread, NULL);
  CHECK("pselect6 in a thread times out with its set cleared and its timeout used up",
        atomic_load(&select_result) == 0 && atomic_load(&select_still_set) == 0 && atomic_load(&select_left_ns) == 0);

  /* sigsuspend in a thread: only its signal ends it. */
  struct sigaction action = {0};
  action.sa_handler = usr1_noop;
  sigaction(SIGUSR1, &action, NULL);
  pthread_create(&thread, NULL, sigsuspend_thread, NULL);
  while (!atomic_load(&suspend_ready)) sleep_ms(1);
  sleep_ms(20);
  spin_for(1000000);
  pthread_kill(thread, SIGUSR1);
  pthread_join(thread, NULL);
  CHECK("sigsuspend in a thread ends with EINTR after its handler", atomic_load(&suspend_result) == -EINTR);

  /* wait4 in a thread while the main thread goes on. */
  pid_t child = fork();
  if (child == 0) {
    sleep_ms(80);
    _exit(7);
  }
  pthread_create(&thread, NULL, wait4_thread, (void *)(long)child);
  atomic_store(&spin_progress, 0);
  spin_for(2000000);
  CHECK("the main thread runs while a thread waits in wait4", atomic_load(&spin_progress) == 2000000);
  pthread_join(thread, NULL);
  CHECK("wait4 in a thread reaps the child with its status",
        atomic_load(&wait_pid) == child && WIFEXITED(atomic_load(&wait_status)) &&
            WEXITSTATUS(atomic_load(&wait_status)) == 7);

  /* read in a thread, interrupted by a handler with SA_RESTART: the read goes on and gets the data. */
  action.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &action, NULL);
  pthread_create(&thread, NULL, restarting_reader, NULL);
  while (!atomic_load(&reader_ready)) sleep_ms(1);
  sleep_ms(20);
  pthread_kill(thread, SIGUSR1);
  sleep_ms(20);
  write(pipe_fds[1], "data", 4);
  pthread_join(thread, NULL);
  CHECK("a read in a thread restarts after an SA_RESTART handler", atomic_load(&read_result) == 4);
  signal(SIGUSR1, SIG_DFL);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
}

int main(int argc, char **argv) {
  proc_init(argc, argv, 0, NULL);
  asynchronous_delivery();
  restarted_waits();
  process_directed();
  timed_waits();
  alternate_stacks();
  robust_mutexes();
  affinity();
  futex_waitv();
  blocking_alone();
  big_pipe_write();
  return finish();
}
