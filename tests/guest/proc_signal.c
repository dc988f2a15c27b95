/*
 * Signals between processes, process groups and sessions: SIGCHLD to the parent (an SA_SIGINFO handler counts
 * deliveries, sigsuspend waits for them; si_code/si_status/si_pid; SA_NOCLDSTOP; SIGCHLD ignored means
 * children are reaped automatically and wait fails with ECHILD), kill from parent to child (caught with
 * si_code SI_USER and si_pid of the sender, kill(pid, 0) existence checks, ESRCH once reaped, EINVAL for a bad
 * signal), setpgid/getpgid, setsid/getsid (and their EPERM/ESRCH/EINVAL cases), kill(-pgid, SIGTERM) reaching
 * a whole group, kill(0, …) staying within the sender's group, and what fork passes on: SIG_IGN stays ignored,
 * a handler stays installed (with its flags), the blocked mask is kept, pending signals and alarms are not.
 * Children report through their exit status. Built natively too: every expectation is Linux's.
 */
// fixture: native
#include "proc_check.h"

#include <sys/time.h>

static volatile sig_atomic_t chld_count;
static volatile sig_atomic_t chld_code, chld_status;
static volatile pid_t chld_pid;

static void on_sigchld(int signo, siginfo_t *info, void *context) {
  (void)signo;
  (void)context;
  chld_count++;
  chld_code = info->si_code;
  chld_status = info->si_status;
  chld_pid = info->si_pid;
}

static int exit_with(void *code) { return (int)(long)code; }

static int wait_forever(void *unused) {
  (void)unused;
  for (;;) pause();
  return 0;
}

static void block(int signo, int how) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, signo);
  sigprocmask(how, &set, NULL);
}

static int is_pending(int signo) {
  sigset_t pending;
  sigpending(&pending);
  return sigismember(&pending, signo);
}

/* Waits (in sigsuspend, everything unblocked) until the SIGCHLD handler has run `count` times in all. */
static void await_sigchld(int count) {
  sigset_t none;
  sigemptyset(&none);
  while (chld_count < count) sigsuspend(&none);
}

static void sigchld(void) {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_sigaction = on_sigchld;
  action.sa_flags = SA_SIGINFO;
  sigemptyset(&action.sa_mask);
  CHECK("install a SIGCHLD handler", sigaction(SIGCHLD, &action, NULL) == 0);

  block(SIGCHLD, SIG_BLOCK);
  pid_t pid = spawn(exit_with, (void *)5L);
  await_sigchld(1);
  CHECK("SIGCHLD delivered once for an exit", chld_count == 1);
  CHECK("si_code CLD_EXITED, si_status 5", chld_code == CLD_EXITED && chld_status == 5);
  CHECK("si_pid is the child", chld_pid == pid);
  CHECK_STATUS("that child", pid, "exit 5");

  pid = spawn(wait_forever, NULL);
  kill(pid, SIGKILL);
  await_sigchld(2);
  CHECK("SIGCHLD delivered for a kill", chld_count == 2);
  CHECK("si_code CLD_KILLED, si_status SIGKILL", chld_code == CLD_KILLED && chld_status == SIGKILL);
  CHECK_STATUS("the killed child", pid, "signal SIGKILL");

  /* Stops are reported with SIGCHLD unless SA_NOCLDSTOP; SIGCHLD stays blocked so we can look at pending. */
  if (!qemu_skips("SIGCHLD for stops, SA_NOCLDSTOP (qemu-user gets them wrong, and not every time)")) {
    pid = spawn(wait_forever, NULL);
    kill(pid, SIGSTOP);
    int stopped;
    wait_retry(pid, &stopped, WUNTRACED);
    CHECK("a stop raises SIGCHLD", is_pending(SIGCHLD));
    await_sigchld(3);
    CHECK("si_code CLD_STOPPED, si_status SIGSTOP", chld_code == CLD_STOPPED && chld_status == SIGSTOP);
    action.sa_flags = SA_SIGINFO | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &action, NULL);
    kill(pid, SIGCONT);
    wait_retry(pid, &stopped, WCONTINUED);
    kill(pid, SIGSTOP);
    wait_retry(pid, &stopped, WUNTRACED);
    CHECK("with SA_NOCLDSTOP neither a continue nor a stop does", !is_pending(SIGCHLD) && chld_count == 3);
    kill(pid, SIGKILL);
    CHECK_STATUS("stopped child killed", pid, "signal SIGKILL");
    await_sigchld(4);
    CHECK("its death does", chld_count == 4 && chld_code == CLD_KILLED);
  }
  block(SIGCHLD, SIG_UNBLOCK);

  /* SIGCHLD ignored: children are not left as zombies, wait waits for them all and then fails. */
  int delivered = chld_count, status;
  signal(SIGCHLD, SIG_IGN);
  spawn(exit_with, (void *)1L);
  spawn(exit_with, (void *)2L);
  CHECK_ERRNO("SIGCHLD ignored: wait finds no zombie", wait(&status), ECHILD);
  signal(SIGCHLD, SIG_DFL);
  CHECK("the handler never ran for them", chld_count == delivered);
}

static volatile sig_atomic_t usr1_seen, usr1_code, usr1_from_parent;

static void on_sigusr1(int signo, siginfo_t *info, void *context) {
  (void)signo;
  (void)context;
  usr1_seen = 1;
  usr1_code = info->si_code;
  usr1_from_parent = info->si_pid == getppid();
}

static int catch_usr1(void *unused) {
  (void)unused;
  sigset_t none;
  sigemptyset(&none);
  while (!usr1_seen) sigsuspend(&none); /* SIGUSR1 was blocked before fork */
  return usr1_code == SI_USER && usr1_from_parent ? 0 : 1;
}

static void kill_children(void) {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_sigaction = on_sigusr1;
  action.sa_flags = SA_SIGINFO;
  sigaction(SIGUSR1, &action, NULL);
  block(SIGUSR1, SIG_BLOCK);
  pid_t pid = spawn(catch_usr1, NULL);
  block(SIGUSR1, SIG_UNBLOCK);
  signal(SIGUSR1, SIG_DFL);
  CHECK("kill(pid, 0) on a live child", kill(pid, 0) == 0);
  CHECK_ERRNO("kill with an invalid signal", kill(pid, 1000), EINVAL);
  CHECK("kill SIGUSR1 to the child", kill(pid, SIGUSR1) == 0);
  CHECK_STATUS("the child's handler saw SI_USER from its parent", pid, "exit 0");
  CHECK_ERRNO("kill(pid, 0) once reaped", kill(pid, 0), ESRCH);
}

/* Child: its own group, then report, wait for the parent's look, check setsid is refused to a leader. */
static int own_group(void *fds) {
  int *p = fds;
  if (setpgid(0, 0) != 0) return 1;
  if (getpgid(0) != getpid() || getpgrp() != getpid()) return 2;
  if (!(setsid() == -1 && errno == EPERM)) return 3; /* a group leader cannot start a session */
  send_byte(p[1], 'g');
  return receive_byte(p[0]) == 'x' ? 0 : 4;
}

static int new_session(void *fds) {
  int *p = fds;
  pid_t old_session = getsid(0);
  if (setsid() != getpid()) return 1;
  if (getsid(0) != getpid() || getpgid(0) != getpid() || getsid(0) == old_session) return 2;
  if (!(setsid() == -1 && errno == EPERM)) return 3; /* now it leads a group */
  if (!(setpgid(0, getppid()) == -1 && errno == EPERM)) return 4; /* groups do not cross sessions */
  send_byte(p[1], 's');
  return receive_byte(p[0]) == 'x' ? 0 : 5;
}

static void groups_and_sessions(void) {
  int down[2], up[2];
  pipe(down);
  pipe(up);
  int fds[2] = {down[0], up[1]};
  pid_t pid = spawn(own_group, fds);
  CHECK("child moved to its own group", receive_byte(up[0]) == 'g');
  CHECK("getpgid(child) is the child's pid", getpgid(pid) == pid);
  CHECK("our own group is unchanged", getpgid(0) != pid);
  send_byte(down[1], 'x');
  CHECK_STATUS("setpgid(0, 0) child; setsid refused with EPERM", pid, "exit 0");

  pid = spawn(new_session, fds);
  CHECK("child started a session", receive_byte(up[0]) == 's');
  CHECK("getsid(child) is the child's pid", getsid(pid) == pid);
  CHECK("our own session is unchanged", getsid(0) != pid);
  CHECK_ERRNO("setpgid of a child in another session", setpgid(pid, pid), EPERM);
  send_byte(down[1], 'x');
  CHECK_STATUS("setsid child: getsid == getpid, EPERM cases", pid, "exit 0");

  CHECK_ERRNO("setpgid of a process that is not our child", setpgid(getppid(), 0), ESRCH);
  CHECK_ERRNO("setpgid with a negative group", setpgid(0, -1), EINVAL);
  CHECK_ERRNO("getpgid of a reaped pid", getpgid(pid), ESRCH);
  CHECK_ERRNO("getsid of a reaped pid", getsid(pid), ESRCH);
  close(down[0]);
  close(down[1]);
  close(up[0]);
  close(up[1]);
}

static int join_group(void *leader) {
  /* The parent also puts us there; doing it on both sides removes the race. */
  setpgid(0, (pid_t)(long)leader);
  for (;;) pause();
  return 1;
}

static int kill_own_group(void *unused) {
  (void)unused;
  if (setpgid(0, 0) != 0) return 1;
  /* Blocked, not ignored: the grandchild unblocks it, and a SIGTERM that arrived first is then delivered. */
  block(SIGTERM, SIG_BLOCK);
  pid_t grandchild = fork();
  if (grandchild == 0) {
    block(SIGTERM, SIG_UNBLOCK);
    for (;;) pause();
  }
  if (kill(0, SIGTERM) != 0) return 2; /* our group: the grandchild, and ourselves (blocked, so it waits) */
  int status;
  if (wait_retry(grandchild, &status, 0) != grandchild) return 3;
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM ? 0 : 4;
}

static void group_kill(void) {
  pid_t leader = spawn(join_group, (void *)0L); /* setpgid(0, 0): leads its own group */
  setpgid(leader, leader);
  pid_t member = spawn(join_group, (void *)(long)leader);
  setpgid(member, leader);
  CHECK("both children in the new group", getpgid(leader) == leader && getpgid(member) == leader);
  CHECK("kill(-pgid, 0) finds the group", kill(-leader, 0) == 0);
  CHECK("kill(-pgid, SIGTERM)", kill(-leader, SIGTERM) == 0);
  CHECK_STATUS("the group leader got SIGTERM", leader, "signal SIGTERM");
  CHECK_STATUS("the other member got SIGTERM", member, "signal SIGTERM");
  CHECK_ERRNO("kill(-pgid, 0) once they are gone", kill(-leader, 0), ESRCH);
  CHECK_STATUS("kill(0, SIGTERM) reaches the sender's group only", spawn(kill_own_group, NULL), "exit 0");
}

static volatile sig_atomic_t usr2_count, hup_count;
static void on_sigusr2(int signo) {
  (void)signo;
  usr2_count++;
}
static void on_sighup(int signo) {
  (void)signo;
  hup_count++;
}

static int inherited(void *unused) {
  (void)unused;
  struct sigaction action;
  sigaction(SIGUSR1, NULL, &action);
  if (action.sa_handler != SIG_IGN) return 1;
  raise(SIGUSR1); /* ignored: we live on */
  sigaction(SIGUSR2, NULL, &action);
  if (action.sa_handler != on_sigusr2) return 2;
  if (!(action.sa_flags & SA_RESTART) || !sigismember(&action.sa_mask, SIGTERM)) return 3;
  if (usr2_count != 1) return 4; /* the parent's count came with the memory */
  raise(SIGUSR2);
  if (usr2_count != 2) return 5;
  sigset_t mask;
  sigprocmask(SIG_BLOCK, NULL, &mask);
  if (!sigismember(&mask, SIGHUP) || sigismember(&mask, SIGUSR2)) return 6;
  if (is_pending(SIGHUP)) return 7; /* pending in the parent, not inherited */
  if (alarm(0) != 0) return 8;      /* the parent's alarm is not inherited */
  raise(SIGHUP);                    /* blocked: stays pending, does not kill */
  if (!is_pending(SIGHUP)) return 9;
  return 0;
}

static void across_fork(void) {
  signal(SIGUSR1, SIG_IGN);
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = on_sigusr2;
  action.sa_flags = SA_RESTART;
  sigemptyset(&action.sa_mask);
  sigaddset(&action.sa_mask, SIGTERM);
  sigaction(SIGUSR2, &action, NULL);
  raise(SIGUSR2);
  CHECK("handler ran in the parent", usr2_count == 1);
  block(SIGHUP, SIG_BLOCK);
  signal(SIGHUP, on_sighup);
  raise(SIGHUP);
  CHECK("SIGHUP pending in the parent", is_pending(SIGHUP));
  /* A plain fork, not spawn(): spawn arms an alarm in the child, and this child checks it has none. */
  pid_t pid = fork();
  if (pid == 0) _exit(inherited(NULL));
  CHECK_STATUS("child: SIG_IGN kept, handler and flags kept, mask kept, nothing pending, no alarm", pid, "exit 0");
  CHECK("the parent's SIGHUP is still pending", is_pending(SIGHUP) && hup_count == 0);
  block(SIGHUP, SIG_UNBLOCK);
  CHECK("and is delivered once unblocked", hup_count == 1);
  CHECK("the child's handler runs did not count here", usr2_count == 1);
  signal(SIGHUP, SIG_DFL);
  signal(SIGUSR1, SIG_DFL);
  signal(SIGUSR2, SIG_DFL);
}

static volatile sig_atomic_t alarms;
static void on_alarm(int signo) {
  (void)signo;
  alarms++;
}

/* A child spinning in user code (no syscalls) must still die of its alarm, as on Linux. */
static int spin_until_alarm(void *unused) {
  (void)unused;
  alarm(1);
  for (volatile unsigned long i = 0;; i++) {
  }
  return 1;
}

static int sleep_until_alarm(void *unused) {
  (void)unused;
  struct itimerval in = {{0, 0}, {0, 20000}};
  setitimer(ITIMER_REAL, &in, NULL);
  pause();
  return 1;
}

/* Interval timers are real: their signals arrive, run handlers, and kill by default. */
static void timers(void) {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = on_alarm;
  sigaction(SIGALRM, &action, NULL);
  sigset_t none, alrm;
  sigemptyset(&none);
  sigemptyset(&alrm);
  sigaddset(&alrm, SIGALRM);
  sigprocmask(SIG_BLOCK, &alrm, NULL);
  struct itimerval every = {{0, 10000}, {0, 10000}}, now;
  CHECK("setitimer ITIMER_REAL, 10 ms interval", setitimer(ITIMER_REAL, &every, NULL) == 0);
  while (alarms < 3) sigsuspend(&none);
  CHECK("three SIGALRMs ran the handler", alarms >= 3);
  CHECK("getitimer shows it armed", getitimer(ITIMER_REAL, &now) == 0 && now.it_interval.tv_usec == 10000);
  struct itimerval off = {{0, 0}, {0, 0}};
  CHECK("disarmed", setitimer(ITIMER_REAL, &off, NULL) == 0 && getitimer(ITIMER_REAL, &now) == 0 &&
                        now.it_value.tv_sec == 0 && now.it_value.tv_usec == 0);
  CHECK_ERRNO("setitimer with an unknown timer", setitimer(7, &off, NULL), EINVAL);
  sigprocmask(SIG_UNBLOCK, &alrm, NULL);
  signal(SIGALRM, SIG_DFL);
  CHECK_STATUS("a child sleeping in pause() dies of its timer", spawn(sleep_until_alarm, NULL), "signal SIGALRM");
  CHECK_STATUS("a child spinning without syscalls dies of its alarm", spawn(spin_until_alarm, NULL),
               "signal SIGALRM");
}

int main(int argc, char **argv) {
  proc_init(argc, argv, 0, NULL);
  timers();
  sigchld();
  kill_children();
  groups_and_sessions();
  group_kill();
  across_fork();
  return finish();
}
