// fixture: native
/*
 * POSIX per-process timers (timer_create/settime/gettime/getoverrun/delete), one line per check; native-proven.
 * Raw syscalls throughout: glibc's timer_t hides the kernel's timer id, which si_timerid reports. Never prints
 * a time: waits are for signals, and time-dependent facts are printed as booleans with wide margins.
 */
#include "check.h"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SIGEV_THREAD_ID
#define SIGEV_THREAD_ID 4
#endif

static long k_create(clockid_t clock, struct sigevent *event, int *id) {
  return syscall(SYS_timer_create, clock, event, id);
}
static long k_settime(int id, int flags, const struct itimerspec *value, struct itimerspec *old) {
  return syscall(SYS_timer_settime, id, flags, value, old);
}
static long k_gettime(int id, struct itimerspec *value) { return syscall(SYS_timer_gettime, id, value); }
static long k_getoverrun(int id) { return syscall(SYS_timer_getoverrun, id); }
static long k_delete(int id) { return syscall(SYS_timer_delete, id); }

static int64_t ns(const struct timespec *t) { return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec; }
static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return ns(&t);
}
static struct itimerspec period_ms(long value, long interval) {
  struct itimerspec spec = {{interval / 1000, (interval % 1000) * 1000000}, {value / 1000, (value % 1000) * 1000000}};
  return spec;
}
static const struct itimerspec DISARM;

/* What the SA_SIGINFO handler saw. */
static volatile int got;
static volatile int got_signo, got_code, got_timerid, got_overrun, got_value;
static volatile pid_t got_tid;
static volatile int disarm_in_handler = -1;
static volatile long got_getoverrun = -1;

static void on_timer(int signo, siginfo_t *info, void *context) {
  (void)context;
  got_signo = signo;
  got_code = info->si_code;
  got_timerid = info->si_timerid;
  got_overrun = info->si_overrun;
  got_value = info->si_value.sival_int;
  got_tid = (pid_t)syscall(SYS_gettid);
  if (disarm_in_handler >= 0) {
    got_getoverrun = k_getoverrun(disarm_in_handler);
    k_settime(disarm_in_handler, 0, &DISARM, NULL);
    disarm_in_handler = -1;
  }
  got++;
}

static void handle(int signo, int flags) {
  struct sigaction action = {0};
  action.sa_sigaction = on_timer;
  action.sa_flags = SA_SIGINFO | flags;
  sigemptyset(&action.sa_mask);
  sigaction(signo, &action, NULL);
}

/* Wait (in sigsuspend, with everything unblocked) until the handler has run `count` times in all. */
static void wait_for(int count) {
  sigset_t none;
  sigemptyset(&none);
  int64_t give_up = now_ns() + 10 * 1000000000LL;
  while (got < count && now_ns() < give_up) sigsuspend(&none);
}

static void busy_wait_ms(long ms) {
  int64_t until = now_ns() + ms * 1000000;
  while (now_ns() < until) {
  }
}

static void creation(void) {
  int id = -1;
  CHECK("the first timer of a process is id 0", k_create(CLOCK_MONOTONIC, NULL, &id) == 0 && id == 0);
  int second = -1;
  CHECK("the next one is id 1", k_create(CLOCK_REALTIME, NULL, &second) == 0 && second == 1);
  struct itimerspec value;
  memset(&value, 0xff, sizeof value);
  CHECK("a new timer is disarmed", k_gettime(id, &value) == 0 && value.it_value.tv_sec == 0 &&
                                       value.it_value.tv_nsec == 0 && value.it_interval.tv_sec == 0 &&
                                       value.it_interval.tv_nsec == 0);
  CHECK("a new timer has no overrun", k_getoverrun(id) == 0);
  int t = -1;
  CHECK("CLOCK_BOOTTIME", k_create(CLOCK_BOOTTIME, NULL, &t) == 0 && k_delete(t) == 0);
  CHECK("CLOCK_PROCESS_CPUTIME_ID", k_create(CLOCK_PROCESS_CPUTIME_ID, NULL, &t) == 0 && k_delete(t) == 0);
  CHECK("CLOCK_THREAD_CPUTIME_ID", k_create(CLOCK_THREAD_CPUTIME_ID, NULL, &t) == 0 && k_delete(t) == 0);
  CHECK_ERRNO("an unknown clock", k_create(12345, NULL, &t), EINVAL);
  CHECK_ERRNO("CLOCK_MONOTONIC_RAW has no timers", k_create(CLOCK_MONOTONIC_RAW, NULL, &t), EOPNOTSUPP);
  CHECK_ERRNO("CLOCK_REALTIME_COARSE has no timers", k_create(CLOCK_REALTIME_COARSE, NULL, &t), EOPNOTSUPP);
  struct sigevent event = {0};
  event.sigev_notify = 3;
  CHECK_ERRNO("an unknown sigev_notify", k_create(CLOCK_MONOTONIC, &event, &t), EINVAL);
  event.sigev_notify = SIGEV_SIGNAL;
  event.sigev_signo = 0;
  CHECK_ERRNO("signal 0", k_create(CLOCK_MONOTONIC, &event, &t), EINVAL);
  event.sigev_signo = 65;
  CHECK_ERRNO("signal 65", k_create(CLOCK_MONOTONIC, &event, &t), EINVAL);
  event.sigev_notify = SIGEV_THREAD_ID;
  event.sigev_signo = SIGUSR1;
  event._sigev_un._tid = getppid();
  CHECK_ERRNO("SIGEV_THREAD_ID naming another process", k_create(CLOCK_MONOTONIC, &event, &t), EINVAL);
  event.sigev_notify = SIGEV_THREAD_ID | SIGEV_NONE;
  event._sigev_un._tid = (pid_t)syscall(SYS_gettid);
  CHECK_ERRNO("SIGEV_THREAD_ID|SIGEV_NONE", k_create(CLOCK_MONOTONIC, &event, &t), EINVAL);
  event.sigev_notify = SIGEV_THREAD; /* the kernel takes it as SIGEV_SIGNAL: glibc builds threads on top */
  CHECK("SIGEV_THREAD is accepted by the kernel", k_create(CLOCK_MONOTONIC, &event, &t) == 0 && k_delete(t) == 0);
  CHECK_ERRNO("a bad sigevent pointer", k_create(CLOCK_MONOTONIC, (struct sigevent *)8, &t), EFAULT);
  CHECK_ERRNO("a bad timer id pointer", k_create(CLOCK_MONOTONIC, NULL, (int *)8), EFAULT);
  int next = -1;
  CHECK("ids keep counting up after deletes and failures", k_create(CLOCK_MONOTONIC, NULL, &next) == 0 && next > 1);
  CHECK("delete", k_delete(next) == 0 && k_delete(id) == 0 && k_delete(second) == 0);
}

static void bad_arguments(void) {
  int id = -1;
  k_create(CLOCK_MONOTONIC, NULL, &id);
  struct itimerspec spec = period_ms(0, 0);
  spec.it_value.tv_nsec = 1000000000;
  CHECK_ERRNO("settime nsec of 1e9", k_settime(id, 0, &spec, NULL), EINVAL);
  spec = period_ms(1000, 0);
  spec.it_value.tv_sec = -1;
  CHECK_ERRNO("settime negative seconds", k_settime(id, 0, &spec, NULL), EINVAL);
  spec = period_ms(1000, 0);
  spec.it_interval.tv_nsec = -1;
  CHECK_ERRNO("settime bad interval", k_settime(id, 0, &spec, NULL), EINVAL);
  CHECK_ERRNO("settime bad value pointer", k_settime(id, 0, (struct itimerspec *)8, NULL), EFAULT);
  CHECK_ERRNO("settime NULL value", k_settime(id, 0, NULL, NULL), EINVAL);
  spec = period_ms(60000, 0);
  CHECK_ERRNO("settime bad old pointer", k_settime(id, 0, &spec, (struct itimerspec *)8), EFAULT);
  struct itimerspec now;
  CHECK("... but the timer was armed all the same", k_gettime(id, &now) == 0 && now.it_value.tv_sec > 50);
  CHECK_ERRNO("gettime bad pointer", k_gettime(id, (struct itimerspec *)8), EFAULT);
  CHECK_ERRNO("settime unknown id", k_settime(9999, 0, &spec, NULL), EINVAL);
  CHECK_ERRNO("gettime unknown id", k_gettime(9999, &now), EINVAL);
  CHECK_ERRNO("getoverrun unknown id", k_getoverrun(9999), EINVAL);
  CHECK_ERRNO("delete unknown id", k_delete(9999), EINVAL);
  CHECK_ERRNO("gettime negative id", k_gettime(-1, &now), EINVAL);
  CHECK("delete", k_delete(id) == 0);
  CHECK_ERRNO("delete again", k_delete(id), EINVAL);
  CHECK_ERRNO("gettime after delete", k_gettime(id, &now), EINVAL);
  CHECK_ERRNO("settime after delete", k_settime(id, 0, &spec, NULL), EINVAL);
}

static void signal_delivery(void) {
  handle(SIGUSR1, 0);
  struct sigevent event = {0};
  event.sigev_notify = SIGEV_SIGNAL;
  event.sigev_signo = SIGUSR1;
  event.sigev_value.sival_int = 1234;
  int id = -1;
  CHECK("create SIGEV_SIGNAL SIGUSR1", k_create(CLOCK_MONOTONIC, &event, &id) == 0);
  struct itimerspec spec = period_ms(20, 0);
  got = 0;
  CHECK("arm 20 ms one-shot", k_settime(id, 0, &spec, NULL) == 0);
  wait_for(1);
  CHECK("the handler ran once", got == 1);
  CHECK("si_signo SIGUSR1", got_signo == SIGUSR1);
  CHECK("si_code SI_TIMER", got_code == SI_TIMER);
  CHECK("si_value is sigev_value", got_value == 1234);
  CHECK("si_timerid is the timer's id", got_timerid == id);
  CHECK("si_overrun 0", got_overrun == 0);
  struct itimerspec left;
  CHECK("an expired one-shot timer is disarmed", k_gettime(id, &left) == 0 && ns(&left.it_value) == 0);

  /* periodic */
  got = 0;
  spec = period_ms(5, 5);
  CHECK("arm 5 ms periodic", k_settime(id, 0, &spec, NULL) == 0);
  wait_for(5);
  struct itimerspec old;
  CHECK("disarm returns the interval", k_settime(id, 0, &DISARM, &old) == 0 && ns(&old.it_interval) == 5000000 &&
                                           ns(&old.it_value) > 0 && ns(&old.it_value) <= 5000000);
  CHECK("a periodic timer expired 5 times", got >= 5);

  /* overrun: blocked across several periods, the signal is queued once and the rest counted */
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  sigprocmask(SIG_BLOCK, &usr1, NULL);
  got = 0;
  disarm_in_handler = id;
  spec = period_ms(5, 5);
  k_settime(id, 0, &spec, NULL);
  busy_wait_ms(80);
  sigset_t pending;
  sigpending(&pending);
  CHECK("blocked, the timer signal is pending", sigismember(&pending, SIGUSR1) == 1);
  sigprocmask(SIG_UNBLOCK, &usr1, NULL);
  CHECK("unblocked, it is delivered once", got == 1);
  CHECK("si_overrun counts the periods missed", got_overrun >= 3);
  CHECK("timer_getoverrun in the handler agrees", got_getoverrun == got_overrun);
  CHECK("settime resets the overrun", k_getoverrun(id) == 0);
  CHECK("delete", k_delete(id) == 0);
}

/* A periodic timer whose signal is blocked and taken with sigwaitinfo (with and without a siginfo). */
static void waited_for(void) {
  struct sigevent event = {0};
  event.sigev_notify = SIGEV_SIGNAL;
  event.sigev_signo = SIGRTMIN + 2;
  event.sigev_value.sival_int = 55;
  int id = -1;
  k_create(CLOCK_MONOTONIC, &event, &id);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGRTMIN + 2);
  sigprocmask(SIG_BLOCK, &set, NULL);
  struct itimerspec spec = period_ms(2, 2);
  k_settime(id, 0, &spec, NULL);
  int taken = 0;
  for (int i = 0; i < 3; i++)
    if (sigwaitinfo(&set, NULL) == SIGRTMIN + 2) taken++;
  siginfo_t info;
  int good = 0;
  for (int i = 0; i < 3; i++)
    if (sigwaitinfo(&set, &info) == SIGRTMIN + 2 && info.si_code == SI_TIMER && info.si_value.sival_int == 55 &&
        info.si_timerid == id && info.si_overrun >= 0)
      good++;
  CHECK("sigwaitinfo takes a blocked periodic timer's signals", taken == 3);
  CHECK("sigwaitinfo siginfo: SI_TIMER, si_value, si_timerid", good == 3);
  k_delete(id);
  sigprocmask(SIG_UNBLOCK, &set, NULL);
}

static void absolute_and_remaining(void) {
  handle(SIGUSR1, 0);
  struct sigevent event = {0};
  event.sigev_notify = SIGEV_SIGNAL;
  event.sigev_signo = SIGUSR1;
  int id = -1;
  k_create(CLOCK_MONOTONIC, &event, &id);
  struct itimerspec spec = period_ms(10000, 0), a, b, old;
  k_settime(id, 0, &spec, NULL);
  CHECK("gettime: remaining time below the value", k_gettime(id, &a) == 0 && ns(&a.it_value) > 5000000000LL &&
                                                       ns(&a.it_value) <= 10000000000LL && ns(&a.it_interval) == 0);
  busy_wait_ms(2);
  CHECK("gettime: remaining time decreases", k_gettime(id, &b) == 0 && ns(&b.it_value) < ns(&a.it_value));
  CHECK("settime returns the old remaining time",
        k_settime(id, 0, &DISARM, &old) == 0 && ns(&old.it_value) > 0 && ns(&old.it_value) <= ns(&b.it_value));
  CHECK("gettime after disarm: zero", k_gettime(id, &b) == 0 && ns(&b.it_value) == 0 && ns(&b.it_interval) == 0);

  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  spec = period_ms(0, 0);
  spec.it_value.tv_sec = now.tv_sec + 20;
  spec.it_value.tv_nsec = now.tv_nsec;
  CHECK("TIMER_ABSTIME 20 s ahead", k_settime(id, TIMER_ABSTIME, &spec, NULL) == 0);
  CHECK("gettime of an absolute timer is relative",
        k_gettime(id, &a) == 0 && ns(&a.it_value) > 15000000000LL && ns(&a.it_value) <= 20000000000LL);
  got = 0;
  int64_t at = now_ns() + 20000000;
  spec.it_value.tv_sec = at / 1000000000;
  spec.it_value.tv_nsec = at % 1000000000;
  CHECK("TIMER_ABSTIME 20 ms ahead", k_settime(id, TIMER_ABSTIME, &spec, NULL) == 0);
  wait_for(1);
  CHECK("the absolute timer fired", got == 1 && now_ns() >= at);
  got = 0;
  spec.it_value.tv_sec = 1;
  spec.it_value.tv_nsec = 0;
  CHECK("TIMER_ABSTIME in the past", k_settime(id, TIMER_ABSTIME, &spec, NULL) == 0);
  wait_for(1);
  CHECK("fires at once", got == 1);
  CHECK("delete", k_delete(id) == 0);
}

static void notify_none(void) {
  handle(SIGUSR1, 0);
  struct sigevent event = {0};
  event.sigev_notify = SIGEV_NONE;
  event.sigev_signo = SIGUSR1;
  int id = -1;
  CHECK("create SIGEV_NONE", k_create(CLOCK_MONOTONIC, &event, &id) == 0);
  got = 0;
  struct itimerspec spec = period_ms(5, 5), left;
  k_settime(id, 0, &spec, NULL);
  struct timespec pause = {0, 30000000};
  nanosleep(&pause, NULL);
  CHECK("SIGEV_NONE sends no signal", got == 0);
  CHECK("SIGEV_NONE gettime: within the period", k_gettime(id, &left) == 0 && ns(&left.it_value) > 0 &&
                                                      ns(&left.it_value) <= 5000000 &&
                                                      ns(&left.it_interval) == 5000000);
  spec = period_ms(1, 0);
  k_settime(id, 0, &spec, NULL);
  nanosleep(&pause, NULL);
  CHECK("SIGEV_NONE one-shot expired: zero", k_gettime(id, &left) == 0 && ns(&left.it_value) == 0);
  CHECK("delete", k_delete(id) == 0);
}

static volatile pid_t target_tid;
static volatile int release_target;
static void *target_thread(void *arg) {
  (void)arg;
  target_tid = (pid_t)syscall(SYS_gettid);
  sigset_t none;
  sigemptyset(&none);
  while (!release_target) {
    struct timespec pause = {0, 2000000};
    nanosleep(&pause, NULL);
  }
  return NULL;
}

static void thread_id(void) {
  handle(SIGUSR2, 0);
  pthread_t thread;
  release_target = 0;
  target_tid = 0;
  pthread_create(&thread, NULL, target_thread, NULL);
  while (target_tid == 0) sched_yield();
  struct sigevent event = {0};
  event.sigev_notify = SIGEV_THREAD_ID;
  event.sigev_signo = SIGUSR2;
  event._sigev_un._tid = target_tid;
  int id = -1;
  CHECK("create SIGEV_THREAD_ID for another thread", k_create(CLOCK_MONOTONIC, &event, &id) == 0);
  /* This thread blocks SIGUSR2: only the target thread could take it anyway. */
  sigset_t usr2;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  sigprocmask(SIG_BLOCK, &usr2, NULL);
  got = 0;
  got_tid = 0;
  struct itimerspec spec = period_ms(10, 0);
  k_settime(id, 0, &spec, NULL);
  int64_t give_up = now_ns() + 10 * 1000000000LL;
  while (got == 0 && now_ns() < give_up) {
    struct timespec pause = {0, 2000000};
    nanosleep(&pause, NULL);
  }
  release_target = 1;
  pthread_join(thread, NULL);
  sigprocmask(SIG_UNBLOCK, &usr2, NULL);
  CHECK("the handler ran on the target thread", got == 1 && got_tid == target_tid);
  CHECK("si_code SI_TIMER on the thread", got_code == SI_TIMER && got_signo == SIGUSR2);
  CHECK("delete", k_delete(id) == 0);
  event._sigev_un._tid = target_tid; /* joined: no longer a thread of ours */
  int t;
  CHECK_ERRNO("SIGEV_THREAD_ID naming an exited thread", k_create(CLOCK_MONOTONIC, &event, &t), EINVAL);
}

static void interrupts_read(void) {
  /* NULL sigevent: SIGALRM to the process, si_value = the timer id. No SA_RESTART: read fails with EINTR. */
  handle(SIGALRM, 0);
  int id = -1;
  k_create(CLOCK_MONOTONIC, NULL, &id);
  int fds[2];
  CHECK("pipe", pipe(fds) == 0);
  got = 0;
  struct itimerspec spec = period_ms(20, 0);
  k_settime(id, 0, &spec, NULL);
  char byte;
  CHECK_ERRNO("a blocking read is interrupted", read(fds[0], &byte, 1), EINTR);
  CHECK("the SIGALRM handler ran", got == 1 && got_signo == SIGALRM && got_code == SI_TIMER);
  CHECK("NULL sigevent: si_value is the timer id", got_value == id && got_timerid == id);
  close(fds[0]);
  close(fds[1]);
  CHECK("delete", k_delete(id) == 0);
}

/* glibc's SIGEV_THREAD: a helper thread waits for SIGEV_THREAD_ID signals and runs the callback in a thread. */
static volatile int callback_runs, callback_value;
static void callback(union sigval value) {
  callback_value = value.sival_int;
  callback_runs++;
}
static void glibc_thread(void) {
  struct sigevent event = {0};
  event.sigev_notify = SIGEV_THREAD;
  event.sigev_notify_function = callback;
  event.sigev_value.sival_int = 77;
  timer_t timer;
  CHECK("glibc timer_create with SIGEV_THREAD", timer_create(CLOCK_MONOTONIC, &event, &timer) == 0);
  struct itimerspec spec = period_ms(10, 0);
  CHECK("glibc timer_settime", timer_settime(timer, 0, &spec, NULL) == 0);
  int64_t give_up = now_ns() + 10 * 1000000000LL;
  while (callback_runs == 0 && now_ns() < give_up) {
    struct timespec pause = {0, 2000000};
    nanosleep(&pause, NULL);
  }
  CHECK("the SIGEV_THREAD callback ran with sigev_value", callback_runs == 1 && callback_value == 77);
  CHECK("glibc timer_delete", timer_delete(timer) == 0);
}

static void fork_and_exec(const char *self) {
  int id = -1;
  k_create(CLOCK_MONOTONIC, NULL, &id);
  struct itimerspec spec = period_ms(60000, 0);
  k_settime(id, 0, &spec, NULL);
  pid_t child = fork();
  if (child == 0) {
    struct itimerspec value;
    int first = -1;
    int ok = k_gettime(id, &value) == -1 && errno == EINVAL;
    ok = ok && k_create(CLOCK_MONOTONIC, NULL, &first) == 0 && first == 0;
    k_settime(first, 0, &spec, NULL);
    char arg[16];
    snprintf(arg, sizeof arg, "%d", first);
    if (!ok) _exit(1);
    execl(self, self, "after-exec", arg, (char *)NULL);
    _exit(2);
  }
  int status = -1;
  waitpid(child, &status, 0);
  CHECK("fork: the child has none of the parent's timers, its first is id 0; exec drops its timers",
        WIFEXITED(status) && WEXITSTATUS(status) == 0);
  struct itimerspec value;
  CHECK("the parent's timer still runs", k_gettime(id, &value) == 0 && ns(&value.it_value) > 0);
  CHECK("delete", k_delete(id) == 0);
}

/* The exec'd image of the fork child: the timer it armed before execve is gone. */
static int after_exec(int id) {
  struct itimerspec value;
  int gone = k_gettime(id, &value) == -1 && errno == EINVAL;
  return gone ? 0 : 3;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "after-exec") == 0) return after_exec(atoi(argv[2]));
  creation();
  bad_arguments();
  signal_delivery();
  waited_for();
  absolute_and_remaining();
  notify_none();
  thread_id();
  interrupts_read();
  glibc_thread();
  fork_and_exec(argv[0]);
  return finish();
}
