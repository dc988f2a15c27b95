/*
 * Random signal-state histories of one thread, printed so that two kernels can be compared line for line:
 * the native x86_64 build on this Linux host is the oracle for the aarch64 build under our runtime (signal
 * numbers, flags and si_codes are the same on both).
 *
 * usage: sig_fuzz SEED [STEPS]
 *
 * Steps: sigprocmask (every `how`, an invalid one too), sigaction (handler, SIG_IGN or SIG_DFL with random
 * SA_* flags and masks; SIGKILL/SIGSTOP/0/65 for the errors), kill / tgkill / rt_sigqueueinfo to ourselves,
 * sigpending, sigtimedwait with a zero timeout, sigaltstack. Only signals whose default action is to ignore,
 * or that have a handler or SIG_IGN, are ever sent, so the program never dies of one. Each step prints its
 * result; every delivery prints the signal, si_code, si_value, the mask inside the handler and whether it ran
 * on the alternate stack; every 4th step prints the mask and the pending set.
 */
// fixture: native
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "fuzz_rng.h"

static unsigned long below(unsigned long n) { return n ? (unsigned long)(next() % n) : 0; }

/* The signals sent: ignored by default, or kept with a handler / SIG_IGN (see `may_send`). */
static int pool[8];
static const int pool_size = 8;
static const int ignored_by_default[] = {SIGCHLD, SIGURG, SIGWINCH};

static char alt_stack[65536];
static volatile int depth;

static void show_set(const char *what, const sigset_t *set) {
  printf("%s", what);
  for (int i = 0; i < pool_size; i++)
    if (sigismember(set, pool[i])) printf(" %d", pool[i]);
  printf("\n");
}

static void handler(int sig, siginfo_t *info, void *context) {
  (void)context;
  sigset_t now;
  sigprocmask(SIG_BLOCK, NULL, &now);
  int on_alt = (char *)&now >= alt_stack && (char *)&now < alt_stack + sizeof alt_stack;
  printf("  delivered %d code %d value %d depth %d%s;", sig, info->si_code, info->si_value.sival_int, depth,
         on_alt ? " on the alternate stack" : "");
  show_set(" mask inside:", &now);
}

static int default_ignores(int sig) {
  for (unsigned i = 0; i < sizeof ignored_by_default / sizeof ignored_by_default[0]; i++)
    if (ignored_by_default[i] == sig) return 1;
  return 0;
}

/* Sending `sig` cannot kill us: its action is a handler or SIG_IGN, or SIG_DFL that ignores. */
static int may_send(int sig) {
  struct sigaction now;
  sigaction(sig, NULL, &now);
  /* The handler field, not SA_SIGINFO: SA_RESETHAND puts SIG_DFL back but leaves the flags. */
  return now.sa_handler != SIG_DFL || default_ignores(sig);
}

static const char *action_name(const struct sigaction *sa) {
  return sa->sa_handler == SIG_DFL ? "SIG_DFL" : sa->sa_handler == SIG_IGN ? "SIG_IGN" : "handler";
}

static void random_set(sigset_t *set) {
  sigemptyset(set);
  for (int i = 0; i < pool_size; i++)
    if (below(3) == 0) sigaddset(set, pool[i]);
}

static void result(const char *what, long r) {
  if (r < 0) printf("%s = -1 %s\n", what, strerror(errno));
  else printf("%s = %ld\n", what, r);
}

int main(int argc, char **argv) {
  seed_rng(argc > 1 ? argv[1] : NULL);
  long steps = argc > 2 ? atol(argv[2]) : 300;
  setvbuf(stdout, NULL, _IOFBF, 1 << 16);
  int filled = 0;
  pool[filled++] = SIGUSR1;
  pool[filled++] = SIGUSR2;
  pool[filled++] = SIGCHLD;
  pool[filled++] = SIGURG;
  pool[filled++] = SIGWINCH;
  pool[filled++] = SIGRTMIN;
  pool[filled++] = SIGRTMIN + 1;
  pool[filled++] = SIGRTMAX;
  /* Start with a handler everywhere, so that anything in the pool may be sent at first. */
  for (int i = 0; i < pool_size; i++) {
    struct sigaction sa = {0};
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO;
    sigaction(pool[i], &sa, NULL);
  }
  char what[160];
  for (long step = 0; step < steps; step++) {
    int sig = pool[below(pool_size)];
    switch (below(10)) {
    case 0: {
      static const int hows[] = {SIG_BLOCK, SIG_UNBLOCK, SIG_SETMASK, 7};
      int how = hows[below(4)];
      sigset_t set;
      random_set(&set);
      snprintf(what, sizeof what, "sigprocmask(%d)", how);
      result(what, sigprocmask(how, &set, NULL));
      break;
    }
    case 1:
    case 2: {
      struct sigaction sa = {0};
      int kind = (int)below(3);
      static const int flag_choices[] = {SA_RESTART, SA_NODEFER, SA_RESETHAND, SA_ONSTACK};
      for (unsigned i = 0; i < 4; i++)
        if (below(2)) sa.sa_flags |= flag_choices[i];
      if (kind == 0) {
        sa.sa_sigaction = handler;
        sa.sa_flags |= SA_SIGINFO;
      } else {
        sa.sa_handler = kind == 1 ? SIG_IGN : SIG_DFL;
      }
      random_set(&sa.sa_mask);
      int target = below(8) == 0 ? (int[]){0, SIGKILL, SIGSTOP, 65}[below(4)] : sig;
      /* SIG_DFL only where the default ignores: the program must not die of a later send. */
      if (kind == 2 && target > 0 && target < 65 && !default_ignores(target)) sa.sa_handler = SIG_IGN;
      snprintf(what, sizeof what, "sigaction(%d, %s, flags 0x%x)", target,
               kind == 0 ? "handler" : sa.sa_handler == SIG_IGN ? "SIG_IGN" : "SIG_DFL", (unsigned)sa.sa_flags);
      struct sigaction old;
      long r = sigaction(target, &sa, &old);
      result(what, r);
      if (r == 0)
        printf("  old: %s flags 0x%x\n", action_name(&old),
               (unsigned)(old.sa_flags & (SA_SIGINFO | SA_RESTART | SA_NODEFER | SA_RESETHAND | SA_ONSTACK)));
      break;
    }
    case 3:
    case 4: {
      if (!may_send(sig)) {
        printf("skip sending %d (its action would end the program)\n", sig);
        break;
      }
      int how = (int)below(3);
      depth++;
      if (how == 0) {
        snprintf(what, sizeof what, "kill(self, %d)", sig);
        result(what, kill(getpid(), sig));
      } else if (how == 1) {
        snprintf(what, sizeof what, "tgkill(self, %d)", sig);
        result(what, syscall(SYS_tgkill, getpid(), gettid(), sig));
      } else {
        siginfo_t info = {0};
        info.si_signo = sig;
        info.si_code = SI_QUEUE;
        info.si_pid = getpid();
        info.si_uid = getuid();
        info.si_value.sival_int = (int)below(1000);
        snprintf(what, sizeof what, "rt_sigqueueinfo(self, %d, value %d)", sig, info.si_value.sival_int);
        result(what, syscall(SYS_rt_sigqueueinfo, getpid(), sig, &info));
      }
      depth--;
      break;
    }
    case 5: {
      sigset_t set;
      random_set(&set);
      struct timespec zero = {0, 0};
      siginfo_t info;
      long r = sigtimedwait(&set, &info, &zero);
      if (r < 0) printf("sigtimedwait = -1 %s\n", strerror(errno));
      else printf("sigtimedwait = %ld code %d value %d\n", r, info.si_code, info.si_value.sival_int);
      break;
    }
    case 6: {
      stack_t ss = {0};
      int kind = (int)below(4);
      ss.ss_sp = alt_stack;
      ss.ss_size = kind == 0 ? 1000 : sizeof alt_stack;
      ss.ss_flags = kind == 1 ? SS_DISABLE : kind == 2 ? 0x7 : 0;
      stack_t old;
      snprintf(what, sizeof what, "sigaltstack(size %zu, flags %d)", ss.ss_size, ss.ss_flags);
      long r = sigaltstack(&ss, &old);
      result(what, r);
      if (r == 0) printf("  old: flags %d size %zu\n", old.ss_flags, old.ss_flags & SS_DISABLE ? 0 : old.ss_size);
      break;
    }
    default: {
      sigset_t pending;
      result("sigpending", sigpending(&pending));
      show_set("  pending:", &pending);
      break;
    }
    }
    if (step % 4 == 3) {
      sigset_t mask, pending;
      sigprocmask(SIG_BLOCK, NULL, &mask);
      sigpending(&pending);
      show_set("  mask:", &mask);
      show_set("  pending:", &pending);
    }
  }
  /* Whatever is still pending and blocked is delivered now, in the kernel's order. */
  sigset_t none;
  sigemptyset(&none);
  for (int i = 0; i < pool_size; i++)
    if (!may_send(pool[i])) signal(pool[i], SIG_IGN);
  sigprocmask(SIG_SETMASK, &none, NULL);
  printf("done after %ld steps\n", steps);
  return 0;
}
