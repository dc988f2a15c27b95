/*
 * Shared helpers for the process programs (tests/guest/proc_*.c), on top of check.h:
 *
 * - proc_init(argc, argv, operands, usage): parses `--qemu` (skips the checks qemu-user cannot do, printing
 *   one "skipped under qemu: …" line for each; e.g. it cannot execve an aarch64 program without binfmt_misc),
 *   requires exactly `operands` further arguments (left in proc_argc/proc_argv; usage names them) and arms
 *   alarm(20), so a hang kills the program instead of CI.
 * - spawn(fn, arg): fork a child that runs fn and _exit()s with its result. Children never print: they report
 *   through their exit status (0, or the number of the first thing that went wrong), which the parent checks,
 *   so output and check counts stay in the parent and in order.
 * - status_text(status): "exit 3", "signal SIGTERM", "signal SIGSEGV core", "stopped SIGSTOP", "continued".
 * - CHECK_STATUS("what", pid, "exit 0"): reap pid and compare its status text; prints "what: exit 0 ok".
 *
 * Nothing printed may depend on the architecture, the run or the runtime (no pids, addresses or times): the
 * aarch64 build under our runtime must print exactly what the x86_64 build prints natively.
 */
#ifndef GUEST_TEST_PROC_CHECK_H
#define GUEST_TEST_PROC_CHECK_H

#include "check.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* Each program's own timeout; children that may block arm their own (alarms are not inherited by fork). */
#define PROC_ALARM_SECONDS 20
#define CHILD_ALARM_SECONDS 25

static int under_qemu;
static int proc_argc; /* arguments after the flags */
static char **proc_argv;

__attribute__((unused)) static void proc_init(int argc, char **argv, int operands, const char *usage) {
  int i = 1;
  for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
    if (strcmp(argv[i], "--qemu") == 0) {
      under_qemu = 1;
    } else {
      fprintf(stderr, "%s: unknown flag %s (flags: --qemu)\n", argv[0], argv[i]);
      exit(2);
    }
  }
  proc_argc = argc - i;
  proc_argv = argv + i;
  if (proc_argc != operands) {
    fprintf(stderr, "usage: %s [--qemu]%s%s\n", argv[0], usage ? " " : "", usage ? usage : "");
    exit(2);
  }
  alarm(PROC_ALARM_SECONDS);
}

/* True (after printing "skipped under qemu: <what>") when running with --qemu: the caller skips <what>. */
__attribute__((unused)) static int qemu_skips(const char *what) {
  if (!under_qemu) return 0;
  printf("skipped under qemu: %s\n", what);
  return 1;
}

__attribute__((unused)) static const char *signal_abbrev(int signo) {
  const char *name = sigabbrev_np(signo);
  static char buffer[32];
  snprintf(buffer, sizeof buffer, "SIG%s", name ? name : "?");
  return buffer;
}

/* The wait status as words (one static buffer: use before the next call). */
__attribute__((unused)) static const char *status_text(int status) {
  static char text[64];
  if (WIFEXITED(status)) {
    snprintf(text, sizeof text, "exit %d", WEXITSTATUS(status));
  } else if (WIFSIGNALED(status)) {
    snprintf(text, sizeof text, "signal %s%s", signal_abbrev(WTERMSIG(status)), WCOREDUMP(status) ? " core" : "");
  } else if (WIFSTOPPED(status)) {
    snprintf(text, sizeof text, "stopped %s", signal_abbrev(WSTOPSIG(status)));
  } else if (WIFCONTINUED(status)) {
    snprintf(text, sizeof text, "continued");
  } else {
    snprintf(text, sizeof text, "status %#x", status);
  }
  return text;
}

/* waitpid, retried on EINTR (a SIGCHLD handler may interrupt it). */
__attribute__((unused)) static pid_t wait_retry(pid_t pid, int *status, int options) {
  pid_t got;
  do got = waitpid(pid, status, options);
  while (got < 0 && errno == EINTR);
  return got;
}

/* Fork a child running fn(arg); the child _exit()s with fn's result. Returns the pid (or -1). */
__attribute__((unused)) static pid_t spawn(int (*fn)(void *), void *arg) {
  pid_t pid = fork();
  if (pid == 0) {
    alarm(CHILD_ALARM_SECONDS);
    _exit(fn(arg));
  }
  return pid;
}

/* A child that crashes on purpose must not write a core file, and its status must not depend on the host's
 * core_pattern: not dumpable means no dump is even attempted, so WCOREDUMP is 0 everywhere. */
__attribute__((unused)) static void no_core_dump(void) {
  struct rlimit none = {0, 0};
  setrlimit(RLIMIT_CORE, &none);
  prctl(PR_SET_DUMPABLE, 0);
}

__attribute__((unused)) static void check_status_impl(const char *what, pid_t pid, const char *want, int line) {
  int status = 0;
  check_count++;
  errno = 0;
  pid_t got = pid > 0 ? wait_retry(pid, &status, 0) : -1;
  if (got == pid && strcmp(status_text(status), want) == 0) {
    printf("%s: %s ok\n", what, want);
  } else {
    check_failures++;
    if (got == pid) {
      printf("FAIL %s: got %s, want %s (line %d)\n", what, status_text(status), want, line);
    } else {
      printf("FAIL %s: waitpid failed (errno %s), want %s (line %d)\n", what, errno_name(errno), want, line);
    }
  }
}
/* Reap pid and require its status to read `want` ("exit 0", "signal SIGKILL", …). */
#define CHECK_STATUS(what, pid, want) check_status_impl(what, pid, want, __LINE__)

/* Reads/writes exactly n bytes (retrying short transfers and EINTR); 0 on success. */
__attribute__((unused)) static int read_full(int fd, void *buffer, size_t n) {
  size_t done = 0;
  while (done < n) {
    ssize_t got = read(fd, (char *)buffer + done, n - done);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return -1;
    done += (size_t)got;
  }
  return 0;
}

__attribute__((unused)) static int write_full(int fd, const void *buffer, size_t n) {
  size_t done = 0;
  while (done < n) {
    ssize_t put = write(fd, (const char *)buffer + done, n - done);
    if (put < 0 && errno == EINTR) continue;
    if (put <= 0) return -1;
    done += (size_t)put;
  }
  return 0;
}

/* One byte through a pipe: the simplest way for parent and child to take turns. */
__attribute__((unused)) static int send_byte(int fd, char c) { return write_full(fd, &c, 1); }
__attribute__((unused)) static int receive_byte(int fd) {
  char c;
  return read_full(fd, &c, 1) == 0 ? (unsigned char)c : -1;
}

#endif
