/** Process-control ABI of Linux arm64: prctl options, scheduler policies, priorities, credentials limits. */

/** prctl options (include/uapi/linux/prctl.h). */
export const PR_SET_PDEATHSIG = 1;
export const PR_GET_PDEATHSIG = 2;
export const PR_GET_DUMPABLE = 3;
export const PR_SET_DUMPABLE = 4;
export const PR_GET_KEEPCAPS = 7;
export const PR_SET_KEEPCAPS = 8;
export const PR_SET_NAME = 15;
export const PR_GET_NAME = 16;
export const PR_SET_TIMERSLACK = 29;
export const PR_GET_TIMERSLACK = 30;
export const PR_SET_CHILD_SUBREAPER = 36;
export const PR_GET_CHILD_SUBREAPER = 37;
export const PR_SET_NO_NEW_PRIVS = 38;
export const PR_GET_NO_NEW_PRIVS = 39;
export const PR_GET_TIMING = 13;
export const PR_SET_TIMING = 14;
export const PR_GET_SECCOMP = 21;
export const PR_CAPBSET_READ = 23;
export const PR_TASK_PERF_EVENTS_DISABLE = 31;
export const PR_TASK_PERF_EVENTS_ENABLE = 32;
export const PR_MCE_KILL = 33;
export const PR_MCE_KILL_GET = 34;
export const PR_SET_THP_DISABLE = 41;
export const PR_GET_THP_DISABLE = 42;
export const PR_SET_IO_FLUSHER = 57;
export const PR_GET_IO_FLUSHER = 58;
export const PR_SET_MEMORY_MERGE = 67;
export const PR_GET_MEMORY_MERGE = 68;
/** PR_MCE_KILL's arguments and policies. */
export const PR_MCE_KILL_CLEAR = 0;
export const PR_MCE_KILL_SET = 1;
export const PR_MCE_KILL_DEFAULT = 2;
/** The highest capability number Linux 6.18 knows (CAP_CHECKPOINT_RESTORE). */
export const CAP_LAST_CAP = 40;

export const PRCTL_NAMES: Readonly<Record<number, string>> = {
  [PR_SET_PDEATHSIG]: "PR_SET_PDEATHSIG",
  [PR_GET_PDEATHSIG]: "PR_GET_PDEATHSIG",
  [PR_GET_DUMPABLE]: "PR_GET_DUMPABLE",
  [PR_SET_DUMPABLE]: "PR_SET_DUMPABLE",
  [PR_GET_KEEPCAPS]: "PR_GET_KEEPCAPS",
  [PR_SET_KEEPCAPS]: "PR_SET_KEEPCAPS",
  [PR_SET_NAME]: "PR_SET_NAME",
  [PR_GET_NAME]: "PR_GET_NAME",
  [PR_SET_TIMERSLACK]: "PR_SET_TIMERSLACK",
  [PR_GET_TIMERSLACK]: "PR_GET_TIMERSLACK",
  [PR_SET_CHILD_SUBREAPER]: "PR_SET_CHILD_SUBREAPER",
  [PR_GET_CHILD_SUBREAPER]: "PR_GET_CHILD_SUBREAPER",
  [PR_SET_NO_NEW_PRIVS]: "PR_SET_NO_NEW_PRIVS",
  [PR_GET_NO_NEW_PRIVS]: "PR_GET_NO_NEW_PRIVS",
  // Known to strace; answered with EINVAL (features this kernel does not offer).
  21: "PR_GET_SECCOMP",
  22: "PR_SET_SECCOMP",
  23: "PR_CAPBSET_READ",
  35: "PR_SET_MM",
  50: "PR_SVE_SET_VL",
  51: "PR_SVE_GET_VL",
  55: "PR_SET_TAGGED_ADDR_CTRL",
  56: "PR_GET_TAGGED_ADDR_CTRL",
  1398164801: "PR_SET_VMA",
};

/** PR_SET_DUMPABLE values a process may set (SUID_DUMP_DISABLE, SUID_DUMP_USER). */
export const SUID_DUMP_DISABLE = 0;
export const SUID_DUMP_USER = 1;

/** task->comm: 15 characters and a NUL. */
export const TASK_COMM_LEN = 16;

/** The default timer slack of a task (ns). */
export const DEFAULT_TIMER_SLACK_NS = 50_000;

/** Scheduling policies (include/uapi/linux/sched.h). */
export const SCHED_OTHER = 0;
export const SCHED_FIFO = 1;
export const SCHED_RR = 2;
export const SCHED_BATCH = 3;
export const SCHED_IDLE = 5;
export const SCHED_DEADLINE = 6;
export const SCHED_EXT = 7;
/** Or'ed into a policy: children go back to SCHED_OTHER. */
export const SCHED_RESET_ON_FORK = 0x4000_0000;
/** Real-time priorities are 1..MAX_RT_PRIO-1. */
export const MAX_USER_RT_PRIO = 99;

export const SCHED_POLICY_NAMES: readonly string[] = [
  "SCHED_OTHER",
  "SCHED_FIFO",
  "SCHED_RR",
  "SCHED_BATCH",
  "SCHED_ISO",
  "SCHED_IDLE",
  "SCHED_DEADLINE",
  "SCHED_EXT",
];

/** struct sched_param: one int. */
export const SCHED_PARAM_SIZE = 4;

/** getpriority/setpriority `which`. */
export const PRIO_PROCESS = 0;
export const PRIO_PGRP = 1;
export const PRIO_USER = 2;
export const PRIO_NAMES: readonly string[] = ["PRIO_PROCESS", "PRIO_PGRP", "PRIO_USER"];
/** Nice values are clamped to MIN_NICE..MAX_NICE. */
export const MIN_NICE = -20;
export const MAX_NICE = 19;

/** ioprio_get `which`. */
export const IOPRIO_WHO_PROCESS = 1;
export const IOPRIO_WHO_PGRP = 2;
export const IOPRIO_WHO_USER = 3;
export const IOPRIO_WHO_NAMES: readonly string[] = [
  "0",
  "IOPRIO_WHO_PROCESS",
  "IOPRIO_WHO_PGRP",
  "IOPRIO_WHO_USER",
];

/** Supplementary groups: at most this many (NGROUPS_MAX). */
export const NGROUPS_MAX = 65_536;
/** (uid_t)-1 / (gid_t)-1: "leave unchanged" for setre*id/setres*id, invalid everywhere else. */
export const ID_UNCHANGED = 0xffff_ffff;

/** personality(0xffffffff) only queries. */
export const PERSONALITY_QUERY = 0xffff_ffff;
export const PER_LINUX = 0;

/** flock operations. */
export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;
