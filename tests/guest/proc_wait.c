/*
 * Reaping children: exit statuses (WIFEXITED/WEXITSTATUS), deaths by signal (SIGKILL and SIGTERM sent by the
 * parent, SIGSEGV from the child's own bad access, SIGABRT from abort(); WCOREDUMP is 0 because the child
 * makes itself undumpable first), ECHILD, WNOHANG, waitpid(-1)/waitpid(0), stop/continue reporting
 * (WUNTRACED, WCONTINUED), waitid (P_PID, P_ALL, P_PGID, WNOWAIT, WNOHANG, siginfo fields) and wait4 with a
 * rusage pointer. Built natively too: every expectation is Linux's.
 */
// fixture: native
#include "proc_check.h"

#include <sys/mman.h>

static int exit_with(void *code) { return (int)(long)code; }

static int wait_forever(void *unused) {
  (void)unused;
  for (;;) pause();
  return 0;
}

static int segfault(void *unused) {
  (void)unused;
  no_core_dump();
  volatile int *volatile bad = (volatile int *)16; /* page zero is never mapped */
  *bad = 1;
  return 100;
}

static int aborts(void *unused) {
  (void)unused;
  no_core_dump();
  abort();
}

/* Blocks until the parent writes a byte (or closes the pipe), then exits 3. */
static int wait_for_go(void *fd) {
  return receive_byte((int)(long)fd) == 'g' ? 3 : 4;
}

/* Moves itself to its own process group, waits for the parent's byte, exits 9. */
static int own_group_then_exit(void *fd) {
  if (setpgid(0, 0) != 0) return 1;
  return receive_byte((int)(long)fd) == 'g' ? 9 : 2;
}

static void exit_codes(void) {
  static const int codes[] = {0, 1, 2, 42, 127, 128, 255};
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    char what[32];
    snprintf(what, sizeof what, "exit(%d)", codes[i]);
    char want[32];
    snprintf(want, sizeof want, "exit %d", codes[i]);
    CHECK_STATUS(what, spawn(exit_with, (void *)(long)codes[i]), want);
  }
  /* Only the low 8 bits of the exit code reach the parent. */
  CHECK_STATUS("exit(256) is 0", spawn(exit_with, (void *)256L), "exit 0");
  CHECK_STATUS("exit(-1) is 255", spawn(exit_with, (void *)-1L), "exit 255");

  pid_t pid = spawn(exit_with, (void *)7L);
  int status = -1;
  CHECK("raw status of exit(7) is 0x700", wait_retry(pid, &status, 0) == pid && status == 0x700);
}

static void signal_deaths(void) {
  pid_t pid = spawn(wait_forever, NULL);
  CHECK("kill SIGKILL", kill(pid, SIGKILL) == 0);
  CHECK_STATUS("killed by SIGKILL", pid, "signal SIGKILL");

  pid = spawn(wait_forever, NULL);
  CHECK("kill SIGTERM", kill(pid, SIGTERM) == 0);
  CHECK_STATUS("killed by SIGTERM", pid, "signal SIGTERM");

  CHECK_STATUS("own bad access", spawn(segfault, NULL), "signal SIGSEGV");
  CHECK_STATUS("abort()", spawn(aborts, NULL), "signal SIGABRT");

  pid = spawn(segfault, NULL);
  int status = -1;
  CHECK("raw status of a SIGSEGV death is 11", wait_retry(pid, &status, 0) == pid && status == SIGSEGV);
}

static void echild(void) {
  int status;
  CHECK_ERRNO("wait with no children", wait(&status), ECHILD);
  CHECK_ERRNO("waitpid(-1) with no children", waitpid(-1, &status, 0), ECHILD);
  CHECK_ERRNO("waitpid(-1, WNOHANG) with no children", waitpid(-1, &status, WNOHANG), ECHILD);
  CHECK_ERRNO("waitpid on the parent", waitpid(getppid(), &status, 0), ECHILD);
  CHECK_ERRNO("waitpid on itself", waitpid(getpid(), &status, 0), ECHILD);
  siginfo_t info;
  CHECK_ERRNO("waitid(P_ALL) with no children", waitid(P_ALL, 0, &info, WEXITED), ECHILD);
  CHECK_ERRNO("waitid without WEXITED/WSTOPPED/WCONTINUED", waitid(P_ALL, 0, &info, WNOHANG), EINVAL);
  CHECK_ERRNO("waitpid with an unknown option", waitpid(-1, &status, 0x40000), EINVAL);

  /* A grandchild is not a child. */
  int report[2], release[2];
  pipe(report);
  pipe(release);
  pid_t child = fork();
  if (child == 0) {
    alarm(CHILD_ALARM_SECONDS);
    close(report[0]);
    close(release[1]);
    pid_t grandchild = fork();
    if (grandchild == 0) {
      alarm(CHILD_ALARM_SECONDS);
      close(report[1]);
      receive_byte(release[0]); /* EOF once the parent closes its end */
      _exit(0);
    }
    close(release[0]);
    write_full(report[1], &grandchild, sizeof grandchild);
    close(report[1]);
    _exit(wait_retry(grandchild, NULL, 0) == grandchild ? 0 : 1);
  }
  close(report[1]);
  close(release[0]);
  pid_t grandchild = -1;
  CHECK("grandchild pid received", read_full(report[0], &grandchild, sizeof grandchild) == 0);
  CHECK_ERRNO("waitpid on a grandchild", waitpid(grandchild, &status, WNOHANG), ECHILD);
  close(report[0]);
  close(release[1]);
  CHECK_STATUS("child reaped its own child", child, "exit 0");
}

static void wnohang(void) {
  int go[2];
  pipe(go);
  pid_t pid = spawn(wait_for_go, (void *)(long)go[0]);
  close(go[0]);
  int status = -1;
  CHECK("WNOHANG returns 0 while the child runs", waitpid(pid, &status, WNOHANG) == 0);
  CHECK("WNOHANG on any child returns 0 too", waitpid(-1, &status, WNOHANG) == 0);
  siginfo_t info;
  memset(&info, 0xff, sizeof info);
  CHECK("waitid WNOHANG returns 0 with si_pid 0",
        waitid(P_PID, pid, &info, WEXITED | WNOHANG) == 0 && info.si_pid == 0);
  send_byte(go[1], 'g');
  close(go[1]);
  CHECK_STATUS("then the child exits", pid, "exit 3");
}

static void any_child(void) {
  pid_t pids[3];
  for (int i = 0; i < 3; i++) pids[i] = spawn(exit_with, (void *)(long)(10 + i));
  int seen = 0, ok = 1;
  for (int n = 0; n < 3; n++) {
    int status = -1;
    pid_t got = wait_retry(-1, &status, 0);
    int i = 0;
    while (i < 3 && pids[i] != got) i++;
    if (i == 3 || !WIFEXITED(status) || WEXITSTATUS(status) != 10 + i) ok = 0;
    else seen |= 1 << i;
  }
  CHECK("waitpid(-1) reaps each of three children once with its own status", ok && seen == 7);
  CHECK_ERRNO("and then there are none", waitpid(-1, NULL, WNOHANG), ECHILD);

  /* waitpid(0): a child in our process group; one moved to its own group is not waited for. */
  int go[2];
  pipe(go);
  pid_t own_group = spawn(wait_for_go, (void *)(long)go[0]);
  setpgid(own_group, own_group);
  pid_t same_group = spawn(exit_with, (void *)5L);
  int status = -1;
  CHECK("waitpid(0) reaps the child in our group", wait_retry(0, &status, 0) == same_group &&
                                                       WIFEXITED(status) && WEXITSTATUS(status) == 5);
  CHECK_ERRNO("waitpid(0) ignores the child in another group", waitpid(0, &status, 0), ECHILD);
  CHECK("waitpid(-pgid) sees it", waitpid(-own_group, &status, WNOHANG) == 0);
  send_byte(go[1], 'g');
  close(go[0]);
  close(go[1]);
  CHECK("waitpid(-pgid) reaps it", wait_retry(-own_group, &status, 0) == own_group && WIFEXITED(status) &&
                                       WEXITSTATUS(status) == 3);
}

static void stop_continue(void) {
  pid_t pid = spawn(wait_forever, NULL);
  int status = -1;
  CHECK("kill SIGSTOP", kill(pid, SIGSTOP) == 0);
  CHECK("WUNTRACED reports the stop",
        wait_retry(pid, &status, WUNTRACED) == pid && strcmp(status_text(status), "stopped SIGSTOP") == 0);
  CHECK("raw status of a SIGSTOP stop is 0x137f", status == 0x137f);
  CHECK("the stop is reported once", waitpid(pid, &status, WUNTRACED | WNOHANG) == 0);
  CHECK("kill SIGCONT", kill(pid, SIGCONT) == 0);
  CHECK("WCONTINUED reports the continue",
        wait_retry(pid, &status, WCONTINUED) == pid && WIFCONTINUED(status) && status == 0xffff);
  CHECK("kill SIGSTOP again", kill(pid, SIGSTOP) == 0);
  siginfo_t info;
  memset(&info, 0, sizeof info);
  CHECK("waitid WSTOPPED: CLD_STOPPED SIGSTOP",
        waitid(P_PID, pid, &info, WSTOPPED) == 0 && info.si_code == CLD_STOPPED && info.si_status == SIGSTOP &&
            info.si_pid == pid);
  kill(pid, SIGCONT);
  memset(&info, 0, sizeof info);
  CHECK("waitid WCONTINUED: CLD_CONTINUED",
        waitid(P_PID, pid, &info, WCONTINUED) == 0 && info.si_code == CLD_CONTINUED && info.si_status == SIGCONT);
  kill(pid, SIGKILL);
  CHECK_STATUS("stopped-and-continued child killed", pid, "signal SIGKILL");
}

static void waitid_cases(void) {
  pid_t pid = spawn(exit_with, (void *)7L);
  siginfo_t info;
  memset(&info, 0, sizeof info);
  CHECK("waitid(P_PID, WEXITED|WNOWAIT)", waitid(P_PID, pid, &info, WEXITED | WNOWAIT) == 0);
  CHECK("si_signo is SIGCHLD", info.si_signo == SIGCHLD);
  CHECK("si_code is CLD_EXITED", info.si_code == CLD_EXITED);
  CHECK("si_status is the exit code", info.si_status == 7);
  CHECK("si_pid is the child", info.si_pid == pid);
  CHECK("si_uid is ours", info.si_uid == getuid());
  CHECK("a zombie still exists for kill(pid, 0)", kill(pid, 0) == 0);
  memset(&info, 0, sizeof info);
  CHECK("WNOWAIT left it waitable: waitid again",
        waitid(P_PID, pid, &info, WEXITED) == 0 && info.si_pid == pid && info.si_code == CLD_EXITED &&
            info.si_status == 7);
  CHECK_ERRNO("now it is reaped", waitpid(pid, NULL, WNOHANG), ECHILD);

  pid = spawn(wait_forever, NULL);
  kill(pid, SIGKILL);
  memset(&info, 0, sizeof info);
  CHECK("waitid(P_ALL) on a killed child", waitid(P_ALL, 0, &info, WEXITED) == 0 && info.si_pid == pid);
  CHECK("si_code is CLD_KILLED", info.si_code == CLD_KILLED);
  CHECK("si_status is SIGKILL", info.si_status == SIGKILL);

  pid = spawn(segfault, NULL);
  memset(&info, 0, sizeof info);
  CHECK("waitid on a SIGSEGV death", waitid(P_PID, pid, &info, WEXITED) == 0);
  /* Not dumpable: killed, not dumped. */
  CHECK("si_code is CLD_KILLED, si_status SIGSEGV", info.si_code == CLD_KILLED && info.si_status == SIGSEGV);

  int go[2];
  pipe(go);
  pid = spawn(own_group_then_exit, (void *)(long)go[0]);
  close(go[0]);
  setpgid(pid, pid); /* both sides set it: whichever runs first, the group exists before we wait */
  memset(&info, 0xff, sizeof info);
  CHECK("waitid(P_PGID, WNOHANG) while it runs", waitid(P_PGID, pid, &info, WEXITED | WNOHANG) == 0 &&
                                                      info.si_pid == 0);
  CHECK_ERRNO("waitid(P_PGID) of our own group finds no child", waitid(P_PGID, getpgid(0), &info, WEXITED),
              ECHILD);
  send_byte(go[1], 'g');
  close(go[1]);
  memset(&info, 0, sizeof info);
  CHECK("waitid(P_PGID) reaps it", waitid(P_PGID, pid, &info, WEXITED) == 0 && info.si_pid == pid &&
                                       info.si_code == CLD_EXITED && info.si_status == 9);

  CHECK_ERRNO("waitid on a non-child", waitid(P_PID, getppid(), &info, WEXITED), ECHILD);
}

static void wait4_rusage(void) {
  pid_t pid = spawn(exit_with, (void *)33L);
  struct rusage usage;
  memset(&usage, 0xff, sizeof usage);
  int status = -1;
  CHECK("wait4 with a rusage pointer", wait4(pid, &status, 0, &usage) == pid && WIFEXITED(status) &&
                                           WEXITSTATUS(status) == 33);
  CHECK("rusage was filled in", usage.ru_utime.tv_usec >= 0 && usage.ru_utime.tv_usec < 1000000 &&
                                    usage.ru_stime.tv_usec >= 0 && usage.ru_stime.tv_usec < 1000000 &&
                                    usage.ru_maxrss >= 0);
  pid = spawn(exit_with, (void *)34L);
  CHECK("wait4 with a NULL status", wait4(pid, NULL, 0, NULL) == pid);
  pid = spawn(exit_with, (void *)35L);
  /* Let it exit first, so the EFAULT comes from copying the result out. */
  siginfo_t info;
  waitid(P_PID, pid, &info, WEXITED | WNOWAIT);
  CHECK_ERRNO("wait4 writing the status to a bad pointer", wait4(pid, (int *)16, 0, NULL), EFAULT);
  CHECK_ERRNO("the child was reaped anyway", waitpid(pid, NULL, WNOHANG), ECHILD);
}

int main(int argc, char **argv) {
  proc_init(argc, argv, 0, NULL);
  exit_codes();
  signal_deaths();
  echild();
  wnohang();
  any_child();
  stop_continue();
  waitid_cases();
  wait4_rusage();
  return finish();
}
