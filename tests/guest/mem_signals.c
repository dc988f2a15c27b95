/*
 * Faults and signals (memory-semantics.md §5): a SA_SIGINFO handler sees the exact si_addr and si_code;
 * SA_ONSTACK runs it on the sigaltstack; SA_RESETHAND resets the disposition; SA_NODEFER and sa_mask decide
 * what is blocked while it runs; returning from it (rt_sigreturn) restores every register and retries the
 * faulting instruction; SIGBUS for a file mapping past EOF; raise, kill and sigqueue reach the handler with
 * the right si_code. Built for x86_64 too and run natively: every expectation is Linux's.
 *
 * Modes that end in a signal death, checked from tests/memory.test.ts (status 139 = 128 + SIGSEGV):
 *   --crash                an unhandled SIGSEGV
 *   --crash-after-handler  a SA_RESETHAND handler returns without fixing the fault: the retry kills
 */
// fixture: native
#include "mem_check.h"

static sigjmp_buf jump;

/* ---- SA_SIGINFO details --------------------------------------------------------------------------- */

static volatile int info_signo, info_code, info_errno;
static volatile uintptr_t info_addr;

static void record_and_jump(int signo, siginfo_t *info, void *context) {
  (void)context;
  info_signo = signo;
  info_code = info->si_code;
  info_errno = info->si_errno;
  info_addr = (uintptr_t)info->si_addr;
  siglongjmp(jump, 1);
}

static void install(int signo, void (*handler)(int, siginfo_t *, void *), int flags, const sigset_t *mask) {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_sigaction = handler;
  action.sa_flags = SA_SIGINFO | flags;
  if (mask) action.sa_mask = *mask;
  else sigemptyset(&action.sa_mask);
  sigaction(signo, &action, NULL);
}

static void test_siginfo(void) {
  unsigned char *none = map_anon(PAGE, PROT_NONE);
  uintptr_t hole = free_range(PAGE, 1);
  install(SIGSEGV, record_and_jump, 0, NULL);
  info_signo = 0;
  if (sigsetjmp(jump, 1) == 0) probe_sink = *(volatile unsigned char *)(hole + 0x123);
  CHECK("unmapped read: handler sees SIGSEGV", info_signo == SIGSEGV);
  CHECK("unmapped read: si_code SEGV_MAPERR", info_code == SEGV_MAPERR);
  CHECK("unmapped read: si_addr exact, not page aligned", info_addr == hole + 0x123);
  CHECK("unmapped read: si_errno 0", info_errno == 0);
  info_signo = 0;
  if (sigsetjmp(jump, 1) == 0) *(volatile unsigned char *)(none + 0x123) = 1;
  CHECK("PROT_NONE write: handler sees SIGSEGV SEGV_ACCERR", info_signo == SIGSEGV && info_code == SEGV_ACCERR);
  CHECK("PROT_NONE write: si_addr exact", info_addr == (uintptr_t)none + 0x123);
  /* A wider access straddling into the bad page reports an address in the bad page. */
  unsigned char *two = map_anon(2 * PAGE, PROT_READ | PROT_WRITE);
  mprotect(two + PAGE, PAGE, PROT_NONE);
  info_signo = 0;
  if (sigsetjmp(jump, 1) == 0) *(volatile uint32_t *)(two + PAGE + 0x40) = 1;
  CHECK("aligned 4-byte store: si_addr exact", info_signo == SIGSEGV && info_addr == (uintptr_t)two + PAGE + 0x40);
  munmap(two, 2 * PAGE);
  munmap(none, PAGE);
  signal(SIGSEGV, SIG_DFL);
}

/* ---- SA_ONSTACK ----------------------------------------------------------------------------------- */

static unsigned char alt_stack[64 * 1024] __attribute__((aligned(16)));
static volatile uintptr_t handler_local_at;
static volatile int handler_saw_onstack;

static void where_am_i(int signo, siginfo_t *info, void *context) {
  (void)signo, (void)info, (void)context;
  volatile int local = 0;
  handler_local_at = (uintptr_t)&local;
  stack_t now;
  sigaltstack(NULL, &now);
  handler_saw_onstack = (now.ss_flags & SS_ONSTACK) != 0;
  siglongjmp(jump, 1);
}

static int on_alt_stack(uintptr_t address) {
  return address >= (uintptr_t)alt_stack && address < (uintptr_t)alt_stack + sizeof alt_stack;
}

static void test_onstack(void) {
  stack_t stack = {.ss_sp = alt_stack, .ss_size = sizeof alt_stack, .ss_flags = 0};
  CHECK("sigaltstack", sigaltstack(&stack, NULL) == 0);
  uintptr_t hole = free_range(PAGE, 1);

  install(SIGSEGV, where_am_i, SA_ONSTACK, NULL);
  handler_local_at = 0;
  if (sigsetjmp(jump, 1) == 0) probe_sink = *(volatile unsigned char *)hole;
  CHECK("SA_ONSTACK: the handler runs on the alternate stack", on_alt_stack(handler_local_at));
  CHECK("SA_ONSTACK: sigaltstack says SS_ONSTACK inside", handler_saw_onstack);
  stack_t after;
  sigaltstack(NULL, &after);
  CHECK("SA_ONSTACK: not on the alternate stack after",
        (after.ss_flags & SS_ONSTACK) == 0 && after.ss_sp == alt_stack && after.ss_size == sizeof alt_stack);

  install(SIGSEGV, where_am_i, 0, NULL);
  handler_local_at = 0;
  if (sigsetjmp(jump, 1) == 0) probe_sink = *(volatile unsigned char *)hole;
  CHECK("without SA_ONSTACK: the handler runs on the normal stack",
        handler_local_at != 0 && !on_alt_stack(handler_local_at));

  stack_t off = {.ss_flags = SS_DISABLE};
  CHECK("sigaltstack SS_DISABLE", sigaltstack(&off, NULL) == 0);
  install(SIGSEGV, where_am_i, SA_ONSTACK, NULL);
  handler_local_at = 0;
  if (sigsetjmp(jump, 1) == 0) probe_sink = *(volatile unsigned char *)hole;
  CHECK("SA_ONSTACK with the alternate stack disabled: the normal stack",
        handler_local_at != 0 && !on_alt_stack(handler_local_at));
  signal(SIGSEGV, SIG_DFL);
}

/* ---- SA_RESETHAND, SA_NODEFER, sa_mask ------------------------------------------------------------ */

static volatile int usr1_count, usr1_depth, usr1_max_depth, usr1_blocked_inside, usr2_blocked_inside;
static volatile int events[8], event_count;

static void note(int event) {
  if (event_count < 8) events[event_count++] = event;
}

static void usr1_handler(int signo, siginfo_t *info, void *context) {
  (void)info, (void)context;
  int mine = ++usr1_count;
  usr1_depth++;
  if (usr1_depth > usr1_max_depth) usr1_max_depth = usr1_depth;
  sigset_t now;
  sigprocmask(SIG_BLOCK, NULL, &now);
  usr1_blocked_inside = sigismember(&now, SIGUSR1);
  usr2_blocked_inside = sigismember(&now, SIGUSR2);
  note(10 + mine);
  /* The first delivery raises the signal again: nested at once with SA_NODEFER, after return without. */
  if (mine == 1) raise(signo);
  note(20 + mine);
  usr1_depth--;
}

static void usr2_handler(int signo, siginfo_t *info, void *context) {
  (void)signo, (void)info, (void)context;
  note(30);
}

static void reset_usr1(void) {
  usr1_count = usr1_depth = usr1_max_depth = usr1_blocked_inside = usr2_blocked_inside = 0;
  event_count = 0;
}

static int events_are(const int *want, int n) {
  if (event_count != n) return 0;
  for (int i = 0; i < n; i++)
    if (events[i] != want[i]) return 0;
  return 1;
}

static void test_flags(void) {
  struct sigaction query;

  /* Default: the signal is blocked while its handler runs; the second raise waits until it returns. */
  reset_usr1();
  install(SIGUSR1, usr1_handler, 0, NULL);
  raise(SIGUSR1);
  CHECK("default: SIGUSR1 is blocked in its handler", usr1_blocked_inside == 1);
  static const int deferred[] = {11, 21, 12, 22};
  CHECK("default: the nested raise is delivered after the handler returns", events_are(deferred, 4));
  CHECK("default: never nested", usr1_max_depth == 1);

  /* SA_NODEFER: not blocked, the nested raise runs at once inside the first handler. */
  reset_usr1();
  install(SIGUSR1, usr1_handler, SA_NODEFER, NULL);
  raise(SIGUSR1);
  static const int nested[] = {11, 12, 22, 21};
  CHECK("SA_NODEFER: the nested raise runs inside the handler", events_are(nested, 4));
  CHECK("SA_NODEFER: nested two deep", usr1_max_depth == 2);
  CHECK("SA_NODEFER: SIGUSR1 is not blocked in its handler", usr1_blocked_inside == 0);

  /* sa_mask: SIGUSR2 blocked during the handler, unblocked again after it returns. */
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGUSR2);
  install(SIGUSR2, usr2_handler, 0, NULL);
  reset_usr1();
  usr1_count = 1; /* no nested SIGUSR1 this time */
  install(SIGUSR1, usr1_handler, 0, &mask);
  raise(SIGUSR1);
  CHECK("sa_mask: SIGUSR2 blocked inside", usr2_blocked_inside == 1);
  sigset_t after;
  sigprocmask(SIG_BLOCK, NULL, &after);
  CHECK("sa_mask: the mask is restored after the handler",
        !sigismember(&after, SIGUSR1) && !sigismember(&after, SIGUSR2));
  raise(SIGUSR2);
  CHECK("sa_mask: SIGUSR2 is delivered normally after", event_count > 0 && events[event_count - 1] == 30);

  /* SA_RESETHAND: the disposition is back to SIG_DFL once the handler has been entered. */
  reset_usr1();
  usr1_count = 1;
  install(SIGUSR1, usr1_handler, SA_RESETHAND, NULL);
  raise(SIGUSR1);
  sigaction(SIGUSR1, NULL, &query);
  CHECK("SA_RESETHAND: the handler ran", usr1_count == 2);
  CHECK("SA_RESETHAND: the disposition is SIG_DFL after", query.sa_handler == SIG_DFL);

  install(SIGSEGV, record_and_jump, SA_RESETHAND, NULL);
  uintptr_t hole = free_range(PAGE, 1);
  info_signo = 0;
  if (sigsetjmp(jump, 1) == 0) probe_sink = *(volatile unsigned char *)hole;
  sigaction(SIGSEGV, NULL, &query);
  CHECK("SA_RESETHAND on SIGSEGV: the handler ran", info_signo == SIGSEGV);
  CHECK("SA_RESETHAND on SIGSEGV: SIG_DFL after (a second fault would kill)", query.sa_handler == SIG_DFL);
  signal(SIGUSR1, SIG_DFL);
  signal(SIGUSR2, SIG_DFL);
}

/* ---- rt_sigreturn: fix the fault and return ------------------------------------------------------- */

#define FIX_PAGES 8
static unsigned char *fix_base;
static volatile int fixes;

static void fix_and_return(int signo, siginfo_t *info, void *context) {
  (void)signo, (void)context;
  uintptr_t page = (uintptr_t)info->si_addr & ~(PAGE - 1);
  if (page < (uintptr_t)fix_base || page >= (uintptr_t)fix_base + FIX_PAGES * PAGE) {
    signal(SIGSEGV, SIG_DFL); /* not ours: let the retry kill */
    return;
  }
  /* Clobber floating-point and integer registers here: the interrupted code must not notice. */
  volatile double x = (double)page;
  for (int i = 0; i < 50; i++) x = x * 1.000001 + 3.25;
  mprotect((void *)page, PAGE, PROT_READ | PROT_WRITE);
  fixes++;
}

/* Integer and floating-point state live across each store; every store faults once when pages are read-only. */
__attribute__((noinline)) static double work(unsigned char *pages) {
  double sum = 0.5, scale = 1.25;
  unsigned long acc = 1, mix = 0x9e3779b97f4a7c15UL;
  for (int i = 0; i < FIX_PAGES; i++) {
    sum = sum * scale + i;
    acc = acc * 3 + (unsigned long)i;
    mix ^= acc << (i % 13);
    ((volatile unsigned char *)pages)[i * PAGE + 7 + i] = (unsigned char)acc;
    sum += (double)(acc & 0xff) / 7.0;
    mix = mix * 31 + (unsigned long)sum;
  }
  return sum + (double)(mix % 1000003) + (double)acc;
}

static void test_sigreturn(void) {
  unsigned char *reference = map_anon(FIX_PAGES * PAGE, PROT_READ | PROT_WRITE);
  fix_base = map_anon(FIX_PAGES * PAGE, PROT_READ);
  CHECK("mmap pages for the fix-up test", reference != NULL && fix_base != NULL);
  if (!reference || !fix_base) return;
  double expected = work(reference);
  install(SIGSEGV, fix_and_return, 0, NULL);
  fixes = 0;
  double got = work(fix_base);
  signal(SIGSEGV, SIG_DFL);
  CHECK("every store faulted once and was retried", fixes == FIX_PAGES);
  CHECK("registers survived the handler (same result as without faults)", got == expected);
  CHECK("the retried stores landed", memcmp(reference, fix_base, FIX_PAGES * PAGE) == 0);
  munmap(reference, FIX_PAGES * PAGE);
  munmap(fix_base, FIX_PAGES * PAGE);
}

/* ---- SIGBUS past the end of a file ---------------------------------------------------------------- */

static void test_sigbus(void) {
  int fd = temp_file(PAGE + 100, 160);
  unsigned char *f = fd < 0 ? MAP_FAILED : mmap(NULL, 4 * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
  unsigned char *s = fd < 0 ? MAP_FAILED : mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  CHECK("mmap 4 pages of a 1-page-and-100-bytes file", f != MAP_FAILED && s != MAP_FAILED);
  if (f == MAP_FAILED || s == MAP_FAILED) return;
  CHECK("the file's pages read", has_pattern_from(f, PAGE + 100, 160, 0));
  CHECK("the rest of the last file page reads zero", all_bytes(f + PAGE + 100, PAGE - 100, 0));
  CHECK_FAULT("a page past end of file", PROBE_READ, f + 2 * PAGE + 0x123, SIGBUS, BUS_ADRERR);
  CHECK_FAULT("the last page past end of file", PROBE_READ, f + 4 * PAGE - 1, SIGBUS, BUS_ADRERR);
  CHECK_FAULT("shared, past end of file", PROBE_WRITE, s + 3 * PAGE + 8, SIGBUS, BUS_ADRERR);
  /* Growing the file makes the pages valid. */
  CHECK("ftruncate the file to 3 pages", ftruncate(fd, 3 * PAGE) == 0);
  CHECK_NO_FAULT("after ftruncate: the page is in the file", PROBE_READ, f + 2 * PAGE + 0x123);
  CHECK("after ftruncate: it reads zero", all_bytes(f + 2 * PAGE, PAGE, 0));
  CHECK_FAULT("after ftruncate: still SIGBUS past the new end", PROBE_READ, f + 3 * PAGE, SIGBUS, BUS_ADRERR);
  close(fd);
  munmap(f, 4 * PAGE);
  munmap(s, 4 * PAGE);
}

/* ---- raise, kill, sigqueue ------------------------------------------------------------------------ */

static volatile int sent_count, sent_code, sent_pid, sent_uid, sent_value;

static void sent_handler(int signo, siginfo_t *info, void *context) {
  (void)signo, (void)context;
  sent_count++;
  sent_code = info->si_code;
  sent_pid = info->si_pid;
  sent_uid = (int)info->si_uid;
  sent_value = info->si_value.sival_int;
}

/* Each check counts deliveries from its own starting point, so one failure does not cascade. */
static void test_sent(void) {
  install(SIGUSR1, sent_handler, 0, NULL);
  int start = sent_count;
  raise(SIGUSR1);
  CHECK("raise(SIGUSR1) reaches the handler before raise returns", sent_count == start + 1);
  CHECK("raise: si_code SI_TKILL", sent_code == SI_TKILL);
  CHECK("raise: si_pid is our pid", sent_pid == getpid());
  CHECK("raise: si_uid is our uid", sent_uid == (int)getuid());
  start = sent_count;
  kill(getpid(), SIGUSR1);
  CHECK("kill(getpid(), SIGUSR1) reaches the handler", sent_count == start + 1);
  CHECK("kill: si_code SI_USER", sent_code == SI_USER);
  CHECK("kill: si_pid is our pid", sent_pid == getpid());
  start = sent_count;
  union sigval value = {.sival_int = 4242};
  sigqueue(getpid(), SIGUSR1, value);
  CHECK("sigqueue reaches the handler", sent_count == start + 1);
  CHECK("sigqueue: si_code SI_QUEUE and the value", sent_code == SI_QUEUE && sent_value == 4242);

  /* Blocked: pending, not delivered, until unblocked. */
  sigset_t usr1, pending;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  sigprocmask(SIG_BLOCK, &usr1, NULL);
  start = sent_count;
  raise(SIGUSR1);
  sigpending(&pending);
  CHECK("blocked: pending and not delivered", sigismember(&pending, SIGUSR1) && sent_count == start);
  raise(SIGUSR1); /* a standard signal does not queue twice */
  sigprocmask(SIG_UNBLOCK, &usr1, NULL);
  CHECK("unblocked: delivered once", sent_count == start + 1);
  sigpending(&pending);
  CHECK("unblocked: no longer pending", !sigismember(&pending, SIGUSR1));
  signal(SIGUSR1, SIG_DFL);

  /* Ignored: nothing happens. */
  signal(SIGUSR1, SIG_IGN);
  start = sent_count;
  raise(SIGUSR1);
  CHECK("SIG_IGN: raise is harmless", sent_count == start);
  signal(SIGUSR1, SIG_DFL);
}

/* ---- deaths ---------------------------------------------------------------------------------------- */

static volatile int resethand_runs;
static void returns_without_fixing(int signo, siginfo_t *info, void *context) {
  (void)signo, (void)info, (void)context;
  resethand_runs++;
  static const char message[] = "handler ran, returning without fixing the fault\n";
  write(1, message, sizeof message - 1);
}

static void crash(int after_handler) {
  uintptr_t hole = free_range(PAGE, 1);
  if (after_handler) install(SIGSEGV, returns_without_fixing, SA_RESETHAND, NULL);
  printf("about to read unmapped memory\n");
  fflush(stdout);
  probe_sink = *(volatile unsigned char *)(hole + 0x10);
  printf("FAIL still alive after the fault (handler ran %d times)\n", resethand_runs);
  exit(1);
}

int main(int argc, char **argv) {
  static const char *const flags[] = {"--crash", "--crash-after-handler", NULL};
  mem_init(argc, argv, flags);
  if (mem_flag(argc, argv, "--crash")) crash(0);
  if (mem_flag(argc, argv, "--crash-after-handler")) crash(1);
  test_siginfo();
  test_onstack();
  test_flags();
  test_sigreturn();
  test_sigbus();
  test_sent();
  return finish();
}
