/*
 * Clocks and sleeps: monotonic never goes back, realtime agrees with time() and gettimeofday(), resolutions
 * are sane, sleeps last at least what was asked, bad arguments are EINVAL. Never prints a time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static int64_t ns(const struct timespec *t) { return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec; }

static int64_t monotonic_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return ns(&t);
}

int main(void) {
  struct timespec a, b;
  int non_decreasing = 1, valid = 1;
  CHECK("clock_gettime monotonic", clock_gettime(CLOCK_MONOTONIC, &a) == 0);
  for (int i = 0; i < 1000; i++) {
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (b.tv_nsec < 0 || b.tv_nsec >= 1000000000) valid = 0;
    if (ns(&b) < ns(&a)) non_decreasing = 0;
    a = b;
  }
  CHECK("monotonic non-decreasing", non_decreasing);
  CHECK("monotonic nsec in range", valid);
  CHECK("raw clock_gettime monotonic", syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &b) == 0 && ns(&b) >= ns(&a));

  struct timespec real;
  CHECK("clock_gettime realtime", clock_gettime(CLOCK_REALTIME, &real) == 0);
  time_t now = time(NULL);
  CHECK("realtime near time()", real.tv_sec >= now - 2 && real.tv_sec <= now + 2);
  CHECK("realtime after 2020", real.tv_sec > 1577836800);
  struct timeval tv;
  CHECK("gettimeofday", gettimeofday(&tv, NULL) == 0);
  CHECK("gettimeofday usec in range", tv.tv_usec >= 0 && tv.tv_usec < 1000000);
  CHECK("gettimeofday near realtime", tv.tv_sec >= real.tv_sec - 2 && tv.tv_sec <= real.tv_sec + 2);

  static const clockid_t clocks[] = {CLOCK_REALTIME,       CLOCK_MONOTONIC,        CLOCK_PROCESS_CPUTIME_ID,
                                     CLOCK_THREAD_CPUTIME_ID, CLOCK_MONOTONIC_RAW, CLOCK_BOOTTIME};
  int all_readable = 1;
  for (size_t i = 0; i < sizeof clocks / sizeof clocks[0]; i++)
    if (clock_gettime(clocks[i], &b) != 0 || b.tv_sec < 0) all_readable = 0;
  CHECK("all clocks readable", all_readable);
  struct timespec boot, mono;
  clock_gettime(CLOCK_MONOTONIC, &mono);
  clock_gettime(CLOCK_BOOTTIME, &boot);
  CHECK("boottime >= monotonic", ns(&boot) >= ns(&mono));
  CHECK_ERRNO("clock_gettime bad clock", clock_gettime((clockid_t)12345, &b), EINVAL);
  CHECK_ERRNO("clock_gettime bad pointer", syscall(SYS_clock_gettime, CLOCK_MONOTONIC, (void *)1), EFAULT);

  struct timespec res;
  CHECK("clock_getres monotonic", clock_getres(CLOCK_MONOTONIC, &res) == 0);
  CHECK("monotonic res sane", res.tv_sec == 0 && res.tv_nsec > 0 && res.tv_nsec <= 10000000);
  CHECK("clock_getres realtime", clock_getres(CLOCK_REALTIME, &res) == 0 && res.tv_sec == 0 && res.tv_nsec > 0);
  CHECK("clock_getres null", clock_getres(CLOCK_MONOTONIC, NULL) == 0);
  CHECK_ERRNO("clock_getres bad clock", clock_getres((clockid_t)12345, &res), EINVAL);

  int64_t start = monotonic_ns();
  struct timespec one_ms = {0, 1000000};
  CHECK("nanosleep 1ms", nanosleep(&one_ms, NULL) == 0);
  CHECK("nanosleep slept >= 1ms", monotonic_ns() - start >= 1000000);
  start = monotonic_ns();
  CHECK("clock_nanosleep relative", clock_nanosleep(CLOCK_MONOTONIC, 0, &one_ms, NULL) == 0);
  CHECK("clock_nanosleep slept >= 1ms", monotonic_ns() - start >= 1000000);
  struct timespec deadline;
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_nsec += 2000000;
  if (deadline.tv_nsec >= 1000000000) {
    deadline.tv_sec++;
    deadline.tv_nsec -= 1000000000;
  }
  CHECK("clock_nanosleep absolute", clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL) == 0);
  CHECK("absolute deadline reached", monotonic_ns() >= ns(&deadline));
  struct timespec past = {0, 0};
  CHECK("clock_nanosleep past deadline", clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &past, NULL) == 0);
  struct timespec zero = {0, 0};
  CHECK("nanosleep zero", nanosleep(&zero, NULL) == 0);

  struct timespec bad = {0, 1000000000};
  CHECK_ERRNO("nanosleep nsec too big", nanosleep(&bad, NULL), EINVAL);
  struct timespec negative = {-1, 0};
  CHECK_ERRNO("nanosleep negative", nanosleep(&negative, NULL), EINVAL);
  /* clock_nanosleep returns the error number instead of setting errno. */
  CHECK("clock_nanosleep nsec too big", clock_nanosleep(CLOCK_MONOTONIC, 0, &bad, NULL) == EINVAL);
  CHECK("clock_nanosleep bad clock", clock_nanosleep((clockid_t)12345, 0, &one_ms, NULL) == EINVAL);
  CHECK("clock_nanosleep thread cputime", clock_nanosleep(CLOCK_THREAD_CPUTIME_ID, 0, &one_ms, NULL) == EINVAL);
  /* Not checked: nanosleep with a bad pointer is EFAULT on Linux but EINVAL under qemu-aarch64 7.2. */
  return finish();
}
