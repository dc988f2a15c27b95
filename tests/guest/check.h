/*
 * Tiny check helpers shared by the guest test programs.
 *
 * Every check prints one deterministic line ("<what> ok" or "FAIL <what>: …") so that the output of a
 * program under qemu-aarch64-static and under our runtime can be compared byte for byte, and a failing
 * check names itself. finish() prints a summary line and returns the exit status (0 only if all passed).
 * Never print values that differ between runs (pids, times, addresses, host limits).
 */
#ifndef GUEST_TEST_CHECK_H
#define GUEST_TEST_CHECK_H

#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>

static int check_count;
static int check_failures;

/* Line-buffered stdout: if a run dies half-way, every line printed so far has already reached the pipe. */
__attribute__((constructor)) static void check_init(void) { setvbuf(stdout, NULL, _IOLBF, 0); }

__attribute__((unused)) static const char *errno_name(int e) {
  const char *name = e == 0 ? "0" : strerrorname_np(e);
  return name ? name : "E?";
}

__attribute__((unused)) static void check_impl(int ok, const char *what, const char *expr, int line, int saved_errno) {
  check_count++;
  if (ok) {
    printf("%s ok\n", what);
  } else {
    check_failures++;
    printf("FAIL %s: %s (line %d, errno %s)\n", what, expr, line, errno_name(saved_errno));
  }
}

__attribute__((unused)) static void check_errno_impl(long result, int got, int want, const char *what, const char *expr, int line) {
  check_count++;
  if (result == -1 && got == want) {
    printf("%s %s ok\n", what, errno_name(want));
  } else {
    check_failures++;
    printf("FAIL %s: %s returned %ld errno %s, want -1 %s (line %d)\n", what, expr, result, errno_name(got),
           errno_name(want), line);
  }
}

/* CHECK("name", condition): prints "name ok" when the condition holds. */
#define CHECK(what, cond)                         \
  do {                                            \
    errno = 0;                                    \
    int check_ok_ = !!(cond);                     \
    check_impl(check_ok_, what, #cond, __LINE__, errno); \
  } while (0)

/* CHECK_ERRNO("name", call, EXXX): the call must return -1 with errno EXXX; prints "name EXXX ok". */
#define CHECK_ERRNO(what, call, want)                                     \
  do {                                                                    \
    errno = 0;                                                            \
    long check_result_ = (long)(call);                                    \
    check_errno_impl(check_result_, errno, want, what, #call, __LINE__);  \
  } while (0)

__attribute__((unused)) static int finish(void) {
  printf("%d checks, %d failed\n", check_count, check_failures);
  return check_failures == 0 ? 0 : 1;
}

#endif
