/**
 * POSIX per-process timers (include/uapi/asm-generic/siginfo.h, include/uapi/linux/time.h): sigevent notify
 * kinds and the layouts of struct sigevent, struct itimerspec and the _timer part of siginfo (arm64 LP64).
 */

/** sigev_notify: send sigev_signo to the process. */
export const SIGEV_SIGNAL = 0;
/** sigev_notify: no notification (the timer only keeps time). */
export const SIGEV_NONE = 1;
/** sigev_notify: glibc's thread notification; the kernel takes it as SIGEV_SIGNAL (glibc asks for SIGEV_THREAD_ID). */
export const SIGEV_THREAD = 2;
/** sigev_notify: send sigev_signo to one thread of the process, _sigev_un._tid (Linux-specific). */
export const SIGEV_THREAD_ID = 4;

/** struct sigevent { sigval_t sigev_value; int sigev_signo; int sigev_notify; union { int _tid; ... } } */
export const SIGEVENT = { value: 0, signo: 8, notify: 12, tid: 16, size: 64 } as const;

/** struct itimerspec { struct timespec it_interval; struct timespec it_value; } */
export const ITIMERSPEC = { interval: 0, value: 16, size: 32 } as const;

/** si_code of a POSIX timer's signal. */
export const SI_TIMER = -2;
/** siginfo _sifields._timer: { int _tid; int _overrun; sigval_t _sigval; int _sys_private; } */
export const SIGINFO_TIMER = { timerid: 16, overrun: 20, value: 24, sysPrivate: 32 } as const;

/** timer_getoverrun and si_overrun saturate here (DELAYTIMER_MAX). */
export const DELAYTIMER_MAX = 0x7fff_ffff;

/** The host side has this many slots for guest timers at once (TIMER_SLOTS in host.c). */
export const HOST_TIMER_SLOTS = 1024;

export { TIMER_ABSTIME } from "./clock.ts";
