// fixture: native
/*
 * Threads in one process (issue 5, first increment): pthreads over clone(CLONE_VM|CLONE_THREAD|…), futex,
 * TLS and tids. Every check holds on Linux whatever the scheduling; the native x86_64 build proves it.
 * Threads that spin without any syscall must still let the others run (preemption by time slice).
 */
#include "check.h"

#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define THREADS 8
#define ROUNDS 20000

static long futex_call(atomic_int *word, int op, int value, const struct timespec *timeout) {
  return syscall(SYS_futex, word, op, value, timeout, NULL, 0);
}

/* A hand-written futex mutex (Drepper's "mutex2"): 0 free, 1 locked, 2 locked with waiters. */
static atomic_int futex_lock_word;
static void futex_lock(void) {
  int c = 0;
  if (atomic_compare_exchange_strong(&futex_lock_word, &c, 1)) return;
  if (c != 2) c = atomic_exchange(&futex_lock_word, 2);
  while (c != 0) {
    futex_call(&futex_lock_word, FUTEX_WAIT_PRIVATE, 2, NULL);
    c = atomic_exchange(&futex_lock_word, 2);
  }
}
static void futex_unlock(void) {
  if (atomic_fetch_sub(&futex_lock_word, 1) != 1) {
    atomic_store(&futex_lock_word, 0);
    futex_call(&futex_lock_word, FUTEX_WAKE_PRIVATE, 1, NULL);
  }
}

static long futex_counter, mutex_counter;
static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static __thread long tls_value = -1;
static pid_t tids[THREADS];

static void *increment(void *arg) {
  long id = (long)arg;
  if (tls_value != -1) return NULL; /* every thread starts with the initial TLS image */
  tls_value = id;
  tids[id] = (pid_t)syscall(SYS_gettid);
  for (int i = 0; i < ROUNDS; i++) {
    futex_lock();
    futex_counter++;
    futex_unlock();
    pthread_mutex_lock(&mutex);
    mutex_counter++;
    pthread_mutex_unlock(&mutex);
    if (i % 5000 == 0) sched_yield();
  }
  return (void *)(tls_value * 100 + 7);
}

static void counters(void) {
  pthread_t threads[THREADS];
  int created = 1;
  for (long i = 0; i < THREADS; i++) created &= pthread_create(&threads[i], NULL, increment, (void *)i) == 0;
  CHECK("8 threads created", created);
  int joined = 1, values = 1;
  for (long i = 0; i < THREADS; i++) {
    void *result = NULL;
    joined &= pthread_join(threads[i], &result) == 0;
    values &= (long)result == i * 100 + 7;
  }
  CHECK("all joined", joined);
  CHECK("each thread's return value came from its own TLS", values);
  CHECK("8 x 20000 increments under a hand-written futex mutex", futex_counter == THREADS * ROUNDS);
  CHECK("8 x 20000 increments under pthread_mutex", mutex_counter == THREADS * ROUNDS);
  int distinct = 1;
  for (int i = 0; i < THREADS; i++) {
    if (tids[i] <= 0 || tids[i] == getpid()) distinct = 0;
    for (int j = 0; j < i; j++) distinct &= tids[i] != tids[j];
  }
  CHECK("distinct tids, none the pid", distinct);
  CHECK("the main thread's tid is the pid", syscall(SYS_gettid) == getpid());
  CHECK("the main thread's TLS is its own", tls_value == -1);
}

static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int turn, exchanges;

static void *pong(void *unused) {
  (void)unused;
  for (int i = 0; i < 200; i++) {
    pthread_mutex_lock(&mutex);
    while (turn != 1) pthread_cond_wait(&cond, &mutex);
    turn = 0;
    exchanges++;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&mutex);
  }
  return NULL;
}

static void condition_variables(void) {
  pthread_t thread;
  pthread_create(&thread, NULL, pong, NULL);
  for (int i = 0; i < 200; i++) {
    pthread_mutex_lock(&mutex);
    turn = 1;
    pthread_cond_signal(&cond);
    while (turn != 0) pthread_cond_wait(&cond, &mutex);
    pthread_mutex_unlock(&mutex);
  }
  pthread_join(thread, NULL);
  CHECK("200 condition-variable round trips between two threads", exchanges == 200);
}

static pthread_barrier_t barrier;
static atomic_int phase_counts[3];
static atomic_int barrier_order_ok = 1;

static void *through_barriers(void *unused) {
  (void)unused;
  for (int phase = 0; phase < 3; phase++) {
    atomic_fetch_add(&phase_counts[phase], 1);
    pthread_barrier_wait(&barrier);
    /* Past the barrier, every thread has arrived at this phase. */
    if (atomic_load(&phase_counts[phase]) != 4) atomic_store(&barrier_order_ok, 0);
    pthread_barrier_wait(&barrier);
  }
  return NULL;
}

static void barriers(void) {
  pthread_barrier_init(&barrier, NULL, 4);
  pthread_t threads[3];
  for (int i = 0; i < 3; i++) pthread_create(&threads[i], NULL, through_barriers, NULL);
  through_barriers(NULL);
  for (int i = 0; i < 3; i++) pthread_join(threads[i], NULL);
  CHECK("4 threads through 6 barrier waits, none early", atomic_load(&barrier_order_ok) == 1);
}

static atomic_int sleeper_done;
static void *sleeper(void *unused) {
  (void)unused;
  struct timespec nap = {0, 30 * 1000 * 1000};
  nanosleep(&nap, NULL);
  atomic_store(&sleeper_done, 1);
  return NULL;
}

static void timeouts_and_sleeps(void) {
  atomic_int word = 0;
  struct timespec timeout = {0, 20 * 1000 * 1000};
  CHECK_ERRNO("FUTEX_WAIT times out", futex_call(&word, FUTEX_WAIT_PRIVATE, 0, &timeout), ETIMEDOUT);
  CHECK_ERRNO("FUTEX_WAIT on a changed value", futex_call(&word, FUTEX_WAIT_PRIVATE, 1, NULL), EAGAIN);
  CHECK("FUTEX_WAKE with no waiter wakes none", futex_call(&word, FUTEX_WAKE_PRIVATE, 1, NULL) == 0);
  pthread_t thread;
  pthread_create(&thread, NULL, sleeper, NULL);
  /* The main thread blocks on the sleeper's exit (clear_child_tid) while the sleeper sleeps. */
  pthread_join(thread, NULL);
  CHECK("a thread sleeping in nanosleep finishes; join waited for it", atomic_load(&sleeper_done) == 1);
}

static int reader_pipe[2];
static atomic_long workers_done;
static long seen_when_read;

static void *pipe_reader(void *unused) {
  (void)unused;
  char byte = 0;
  ssize_t n = read(reader_pipe[0], &byte, 1); /* blocks: nothing is written until the others are done */
  seen_when_read = atomic_load(&workers_done);
  return (void *)(long)(n == 1 && byte == 'r');
}

static void *worker(void *unused) {
  (void)unused;
  struct timespec nap = {0, 5 * 1000 * 1000};
  nanosleep(&nap, NULL);
  atomic_fetch_add(&workers_done, 1);
  return NULL;
}

/* A thread blocked in read() on an empty pipe does not stop the others. */
static void blocked_reader(void) {
  pipe(reader_pipe);
  pthread_t reader, workers[3];
  pthread_create(&reader, NULL, pipe_reader, NULL);
  for (int i = 0; i < 3; i++) pthread_create(&workers[i], NULL, worker, NULL);
  for (int i = 0; i < 3; i++) pthread_join(workers[i], NULL);
  CHECK("3 threads finished while another was blocked in read()", atomic_load(&workers_done) == 3);
  write(reader_pipe[1], "r", 1);
  void *ok = NULL;
  pthread_join(reader, &ok);
  CHECK("the reader then got its byte", (long)ok == 1 && seen_when_read == 3);
  close(reader_pipe[0]);
  close(reader_pipe[1]);
}

static atomic_int kill_flag;
static atomic_int handler_tid, target_tid;

static void on_usr1(int signo) {
  (void)signo;
  atomic_store(&handler_tid, (int)syscall(SYS_gettid));
  atomic_store(&kill_flag, 1); /* lets the target's wait end */
}

static void *signal_target(void *unused) {
  (void)unused;
  atomic_store(&target_tid, (int)syscall(SYS_gettid));
  while (atomic_load(&kill_flag) == 0) futex_call(&kill_flag, FUTEX_WAIT_PRIVATE, 0, NULL);
  return NULL;
}

/* pthread_kill reaches exactly the thread it names, even one blocked in a futex wait. */
static void thread_directed_signal(void) {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = on_usr1;
  sigaction(SIGUSR1, &action, NULL);
  pthread_t thread;
  pthread_create(&thread, NULL, signal_target, NULL);
  while (atomic_load(&target_tid) == 0) sched_yield();
  CHECK("pthread_kill(SIGUSR1) to a thread", pthread_kill(thread, SIGUSR1) == 0);
  pthread_join(thread, NULL);
  CHECK("its handler ran on that thread", atomic_load(&handler_tid) == atomic_load(&target_tid));
  signal(SIGUSR1, SIG_DFL);
}

static int stream[2];
static void *pipe_writer(void *unused) {
  (void)unused;
  char chunk[4096];
  for (int i = 0; i < 64; i++) { /* 256 KiB: far more than the pipe holds, in page-sized writes */
    memset(chunk, 'a' + i % 26, sizeof chunk);
    if (write(stream[1], chunk, sizeof chunk) != (ssize_t)sizeof chunk) return (void *)0;
  }
  close(stream[1]);
  return (void *)1;
}

/* Two threads of one process stream through a pipe: each blocks (full pipe, empty pipe) in turn. */
static void pipe_between_threads(void) {
  pipe(stream);
  pthread_t writer;
  pthread_create(&writer, NULL, pipe_writer, NULL);
  long total = 0, bad = 0;
  char buffer[3000];
  for (;;) {
    ssize_t n = read(stream[0], buffer, sizeof buffer);
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; i++) bad += buffer[i] != 'a' + (int)((total + i) / 4096) % 26;
    total += n;
  }
  void *ok = NULL;
  pthread_join(writer, &ok);
  close(stream[0]);
  CHECK("256 KiB streamed between two threads through a pipe", (long)ok == 1 && total == 64 * 4096 && bad == 0);
}

static atomic_flag spin_lock = ATOMIC_FLAG_INIT;
static long spin_counter;
static atomic_int go_flag;

static void *spin_increment(void *unused) {
  (void)unused;
  for (int i = 0; i < 50000; i++) {
    while (atomic_flag_test_and_set_explicit(&spin_lock, memory_order_acquire)) {
    }
    spin_counter++;
    atomic_flag_clear_explicit(&spin_lock, memory_order_release);
  }
  return NULL;
}

static void *spin_until_go(void *unused) {
  (void)unused;
  long spins = 0;
  while (atomic_load(&go_flag) == 0) spins++; /* no syscall: only preemption lets the setter run */
  return (void *)(long)(spins >= 0);
}

/* Busy-waiting threads (a spinlock, a flag loop) make progress: the others are scheduled in between. */
static void spinning(void) {
  pthread_t waiter, threads[4];
  pthread_create(&waiter, NULL, spin_until_go, NULL);
  for (int i = 0; i < 4; i++) pthread_create(&threads[i], NULL, spin_increment, NULL);
  for (int i = 0; i < 4; i++) pthread_join(threads[i], NULL);
  CHECK("4 x 50000 increments under a spinlock", spin_counter == 4 * 50000);
  atomic_store(&go_flag, 1);
  void *seen = NULL;
  pthread_join(waiter, &seen);
  CHECK("a thread spinning on a flag saw it set", (long)seen == 1);
}

int main(void) {
  counters();
  spinning();
  pipe_between_threads();
  thread_directed_signal();
  blocked_reader();
  condition_variables();
  barriers();
  timeouts_and_sleeps();
  return finish();
}
