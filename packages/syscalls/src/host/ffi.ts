/**
 * Symbol table of the host shim (host.c), compiled once per process by bun:ffi's `cc`.
 * Set GUEST_SYSCALLS_HOST to a prebuilt shared object with the same symbols to skip the compile.
 *
 * Every function returns the Linux convention (result or -errno, in the host's errno numbering);
 * `hostErrnoToLinux` maps the host's numbers to Linux's (identity on Linux hosts).
 */

import { type cc, FFIType } from "bun:ffi";
import { join } from "node:path";
import { loadNativeHelper } from "@guest/hvf-bindings";

// Pointer arguments are u64: they are host addresses computed as numbers (slab base + guest address).
const { i32, u32, i64, u64, i64_fast } = FFIType;

const symbols = {
  host_scratch: { args: [], returns: i64_fast },
  host_scratch_size: { args: [], returns: i64_fast },
  host_read: { args: [i32, u64, u64], returns: i64_fast },
  host_write: { args: [i32, u64, u64], returns: i64_fast },
  host_pread: { args: [i32, u64, u64, i64], returns: i64_fast },
  host_pwrite: { args: [i32, u64, u64, i64], returns: i64_fast },
  host_readv: { args: [i32, u64, i32], returns: i64_fast },
  host_writev: { args: [i32, u64, i32], returns: i64_fast },
  host_preadv2: { args: [i32, u64, i32, i64, i32], returns: i64_fast },
  host_pwritev2: { args: [i32, u64, i32, i64, i32], returns: i64_fast },
  host_openat: { args: [i32, u64, i32, u32], returns: i64_fast },
  host_close: { args: [i32], returns: i64_fast },
  host_lseek: { args: [i32, i64, i32], returns: i64_fast },
  host_statx: { args: [i32, u64, i32, u32, u64], returns: i64_fast },
  host_getdents64: { args: [i32, u64, u64], returns: i64_fast },
  host_readlinkat: { args: [i32, u64, u64, u64], returns: i64_fast },
  host_faccessat: { args: [i32, u64, i32, i32], returns: i64_fast },
  host_fcntl: { args: [i32, i32, i64], returns: i64_fast },
  host_dup_min: { args: [i32, i32], returns: i64_fast },
  host_pipe2: { args: [u64, i32], returns: i64_fast },
  host_tcgets: { args: [i32, u64], returns: i64_fast },
  host_tcsets: { args: [i32, i32, u64], returns: i64_fast },
  host_tiocgwinsz: { args: [i32, u64], returns: i64_fast },
  host_tiocgpgrp: { args: [i32, u64], returns: i64_fast },
  host_fionread: { args: [i32, u64], returns: i64_fast },
  host_isatty: { args: [i32], returns: i64_fast },
  host_mkdirat: { args: [i32, u64, u32], returns: i64_fast },
  host_unlinkat: { args: [i32, u64, i32], returns: i64_fast },
  host_renameat2: { args: [i32, u64, i32, u64, u32], returns: i64_fast },
  host_symlinkat: { args: [u64, i32, u64], returns: i64_fast },
  host_linkat: { args: [i32, u64, i32, u64, i32], returns: i64_fast },
  host_fchmodat: { args: [i32, u64, u32, i32], returns: i64_fast },
  host_fchmod: { args: [i32, u32], returns: i64_fast },
  host_fchownat: { args: [i32, u64, u32, u32, i32], returns: i64_fast },
  host_fchown: { args: [i32, u32, u32], returns: i64_fast },
  host_utimensat: { args: [i32, u64, u64, i32], returns: i64_fast },
  host_ftruncate: { args: [i32, i64], returns: i64_fast },
  host_fsync: { args: [i32], returns: i64_fast },
  host_fdatasync: { args: [i32], returns: i64_fast },
  host_fd_path: { args: [i32, u64, u64], returns: i64_fast },
  host_gethostname: { args: [u64, u64], returns: i64_fast },
  host_clock_gettime: { args: [i32, u64], returns: i64_fast },
  host_clock_getres: { args: [i32, u64], returns: i64_fast },
  host_clock_nanosleep: { args: [i32, i32, u64, u64], returns: i64_fast },
  host_nanosleep: { args: [u64, u64], returns: i64_fast },
  host_gettimeofday: { args: [u64], returns: i64_fast },
  host_getrandom: { args: [u64, u64, u32], returns: i64_fast },
  host_sysinfo: { args: [u64], returns: i64_fast },
  host_getrusage: { args: [i32, u64], returns: i64_fast },
  host_sched_getaffinity: { args: [i32, u64, u64], returns: i64_fast },
  host_sched_setaffinity: { args: [i32, u64, u64], returns: i64_fast },
  host_sched_yield: { args: [], returns: i64_fast },
  host_getpid: { args: [], returns: i64_fast },
  host_getppid: { args: [], returns: i64_fast },
  host_getuid: { args: [], returns: i64_fast },
  host_geteuid: { args: [], returns: i64_fast },
  host_getgid: { args: [], returns: i64_fast },
  host_getegid: { args: [], returns: i64_fast },
  host_umask: { args: [u32], returns: i64_fast },
  host_getpgid: { args: [i32], returns: i64_fast },
  host_getsid: { args: [i32], returns: i64_fast },
  host_getgroups: { args: [i32, u64], returns: i64_fast },
  host_getresuid: { args: [u64], returns: i64_fast },
  host_getresgid: { args: [u64], returns: i64_fast },
  host_times: { args: [u64], returns: i64_fast },
  host_fstatfs: { args: [i32, u64], returns: i64_fast },
  host_sendfile: { args: [i32, i32, u64, u64], returns: i64_fast },
  host_sync: { args: [], returns: i64_fast },
  host_syncfs: { args: [i32], returns: i64_fast },
  host_flock: { args: [i32, i32], returns: i64_fast },
  host_getpriority: { args: [i32, i32], returns: i64_fast },
  host_setpriority: { args: [i32, i32, i32], returns: i64_fast },
  host_getcpu: { args: [u64], returns: i64_fast },
  host_ioprio_get: { args: [i32, i32], returns: i64_fast },
  host_ioprio_set: { args: [i32, i32, i32], returns: i64_fast },
  host_sched_setscheduler: { args: [i32, i32, u64], returns: i64_fast },
  host_sched_getscheduler: { args: [i32], returns: i64_fast },
  host_sched_getparam: { args: [i32, u64], returns: i64_fast },
  host_sched_rr_get_interval: { args: [i32, u64], returns: i64_fast },
  host_ppoll: { args: [u64, u64, u64], returns: i64_fast },
  host_pselect: { args: [i32, u64, u64, u64, u64], returns: i64_fast },
  host_fork: { args: [], returns: i64_fast },
  host_memfd: { args: [u64], returns: i64_fast },
  host_getrlimit: { args: [i32, u64], returns: i64_fast },
  host_epoll_create1: { args: [i32], returns: i64_fast },
  host_eventfd: { args: [u32, i32], returns: i64_fast },
  host_timerfd_create: { args: [i32, i32], returns: i64_fast },
  host_timerfd_settime: { args: [i32, i32, u64, u64], returns: i64_fast },
  host_timerfd_gettime: { args: [i32, u64], returns: i64_fast },
  host_epoll_ctl: { args: [i32, i32, i32, u32, u64], returns: i64_fast },
  host_epoll_wait: { args: [i32, u64, i32, i32], returns: i64_fast },
  host_setitimer: { args: [i32, u64, u64], returns: i64_fast },
  host_getitimer: { args: [i32, u64], returns: i64_fast },
  host_exec_marks: { args: [], returns: i64_fast },
  host_futex: { args: [u64, i32, u32, u64, u64, u32], returns: i64_fast },
  host_futex_waitv: { args: [u64, u32, u32, u64, i32], returns: i64_fast },
  host_wait4: { args: [i32, u64, i32, u64], returns: i64_fast },
  host_waitid: { args: [i32, i32, u64, i32, u64], returns: i64_fast },
  host_kill: { args: [i32, i32], returns: i64_fast },
  host_setpgid: { args: [i32, i32], returns: i64_fast },
  host_setsid: { args: [], returns: i64_fast },
  host_tiocspgrp: { args: [i32, u64], returns: i64_fast },
  host_exit: { args: [i32], returns: i64_fast },
  host_die_by_signal: { args: [i32], returns: i64_fast },
  host_signals_install: { args: [u64], returns: i64_fast },
  host_signals_uninstall: { args: [], returns: i64_fast },
  host_signals_child_mode: { args: [i32, i32], returns: i64_fast },
  host_signals_immediate: { args: [], returns: i64_fast },
  host_signals_flag: { args: [], returns: i64_fast },
  host_signals_take: { args: [u64], returns: i64_fast },
  host_signals_wait: { args: [], returns: i64_fast },
  host_signals_kick_word: { args: [u64], returns: i64_fast },
  host_signals_wait_timeout: { args: [u64], returns: i64_fast },
  host_timers_enable: { args: [], returns: i64_fast },
  host_timer_create: { args: [i32, i32, i32], returns: i64_fast },
  host_timer_settime: { args: [i32, i32, i32, u64, u64], returns: i64_fast },
  host_timer_gettime: { args: [i32, u64], returns: i64_fast },
  host_timer_delete: { args: [i32], returns: i64_fast },
  host_timer_forget: { args: [i32], returns: i64_fast },
  host_timers_reset: { args: [], returns: i64_fast },
  host_timers_take: { args: [u64, i32], returns: i64_fast },
} as const;

type HostLibrary = ReturnType<typeof cc<typeof symbols>>;
type ReturningNumber<T> = {
  [K in keyof T]: T[K] extends (...args: infer A) => unknown ? (...args: A) => number : never;
};
/**
 * The shim's functions. Every return is i64_fast and always below 2^53 (results, -errno, sizes, host
 * addresses), so i64_fast hands back a plain number: the type says so.
 */
export type HostSymbols = ReturningNumber<HostLibrary["symbols"]>;

/** The library object stays referenced: if it were collected, its compiled code would be freed under us. */
let library: HostLibrary | null = null;

export const HOST_SOURCE = join(import.meta.dir, "host.c");

export function loadHost(): HostSymbols {
  if (!library) {
    if (process.platform !== "linux") {
      // host.c declares Linux-only entry points (statx, getdents64, sysinfo, renameat2) and returns Linux
      // layouts as-is; a macOS port synthesises them and fills HOST_ERRNO_TO_LINUX below.
      throw new Error(`@guest/syscalls: host layer not implemented for ${process.platform}`);
    }
    library = loadNativeHelper(
      HOST_SOURCE,
      symbols,
      process.env.GUEST_SYSCALLS_HOST,
    ) as unknown as HostLibrary;
  }
  return library.symbols as unknown as HostSymbols;
}

/**
 * Host errno → Linux errno. On Linux hosts the numbers are the guest's own, so this is the identity and
 * the handlers skip it (`HOST_ERRNO_IS_LINUX`). A macOS host fills a table here.
 */
export const HOST_ERRNO_IS_LINUX = process.platform === "linux";
export function hostErrnoToLinux(hostErrno: number): number {
  return hostErrno;
}

/** A host result (value or -hostErrno) as a Linux result. */
export function linuxResult(result: number): number {
  return result >= 0 || HOST_ERRNO_IS_LINUX ? result : -hostErrnoToLinux(-result);
}

/** Which column of the open-flag table the host uses. */
export type HostFlagArch = "aarch64" | "x86_64";
export const HOST_FLAG_ARCH: HostFlagArch = process.arch === "x64" ? "x86_64" : "aarch64";
