/**
 * Scheduling: the host thread running the guest is the guest's task, so policy, parameters, nice values and
 * I/O priority go to it (the host kernel checks permissions as Linux would for the guest). One exception:
 * the real-time policies are refused (EPERM, what a task without CAP_SYS_NICE and RLIMIT_RTPRIO 0 gets), as
 * a spinning guest would otherwise take a CPU from everything else. Threads share that host thread here, so
 * a per-thread setting applies to all of them.
 */
import { EINVAL, EPERM, ESRCH } from "../abi/errno.ts";
import {
  IOPRIO_WHO_PGRP,
  IOPRIO_WHO_PROCESS,
  IOPRIO_WHO_USER,
  MAX_USER_RT_PRIO,
  PRIO_PGRP,
  PRIO_PROCESS,
  PRIO_USER,
  SCHED_BATCH,
  SCHED_DEADLINE,
  SCHED_EXT,
  SCHED_FIFO,
  SCHED_IDLE,
  SCHED_OTHER,
  SCHED_RESET_ON_FORK,
  SCHED_RR,
} from "../abi/process.ts";
import type { SyscallContext, SyscallHandler } from "../context.ts";
import { SCRATCH_GENERAL } from "../host/host.ts";

function isOwnTask(ctx: SyscallContext, pid: number): boolean {
  return pid === 0 || pid === ctx.process.pid || ctx.process.threads.has(pid);
}

export const schedGetscheduler: SyscallHandler = (args, ctx) => {
  const pid = args.int(0);
  if (pid < 0) return -EINVAL;
  return isOwnTask(ctx, pid) ? ctx.host.sym.host_sched_getscheduler(0) : -ESRCH;
};

export const schedGetparam: SyscallHandler = (args, ctx) => {
  const pid = args.int(0);
  const param = args.ptr(1);
  if (param === 0 || pid < 0) return -EINVAL;
  if (!isOwnTask(ctx, pid)) return -ESRCH;
  const out = ctx.host.scratchAddress + SCRATCH_GENERAL;
  const r = ctx.host.sym.host_sched_getparam(0, out);
  if (r < 0) return r;
  return Math.min(ctx.memory.writeU32(param, ctx.host.scratchView.getUint32(SCRATCH_GENERAL, true)), 0);
};

/** Whether (policy, priority) passes __sched_setscheduler's validation (before any permission check). */
function validPolicy(policy: number, priority: number): boolean {
  switch (policy) {
    case SCHED_OTHER:
    case SCHED_BATCH:
    case SCHED_IDLE:
      return priority === 0;
    case SCHED_FIFO:
    case SCHED_RR:
      return priority >= 1 && priority <= MAX_USER_RT_PRIO;
    default:
      // SCHED_DEADLINE needs sched_setattr; SCHED_EXT needs a BPF scheduler this kernel does not have.
      return false;
  }
}

/**
 * Linux do_sched_setscheduler for our task: validated here, then made by the host thread (SCHED_OTHER, BATCH,
 * IDLE, with or without SCHED_RESET_ON_FORK); the real-time policies are refused (see the file comment).
 */
function setScheduler(ctx: SyscallContext, pid: number, policy: number, paramAddress: number): number {
  if (paramAddress === 0 || pid < 0) return -EINVAL;
  const priority = ctx.memory.readU32(paramAddress);
  if (priority < 0) return priority;
  if (!isOwnTask(ctx, pid)) return -ESRCH;
  const base = policy & ~SCHED_RESET_ON_FORK;
  if (!validPolicy(base, priority | 0)) return -EINVAL;
  if (base === SCHED_FIFO || base === SCHED_RR) return -EPERM;
  const param = ctx.host.scratchAddress + SCRATCH_GENERAL;
  ctx.host.scratchView.setUint32(SCRATCH_GENERAL, priority, true);
  return ctx.host.sym.host_sched_setscheduler(0, policy, param);
}

export const schedSetscheduler: SyscallHandler = (args, ctx) => {
  const policy = args.int(1);
  if (policy < 0) return -EINVAL;
  return setScheduler(ctx, args.int(0), policy, args.ptr(2));
};

/** sched_setparam keeps the current policy (and its reset-on-fork flag). */
export const schedSetparam: SyscallHandler = (args, ctx) => {
  const current = ctx.host.sym.host_sched_getscheduler(0);
  if (current < 0) return current;
  return setScheduler(ctx, args.int(0), current, args.ptr(1));
};

/** The round-robin time slice: 100 ms under SCHED_RR, 0 for the fair policies (as Linux 6.18 reports). */
export const schedRrGetInterval: SyscallHandler = (args, ctx) => {
  const pid = args.int(0);
  if (pid < 0) return -EINVAL;
  if (!isOwnTask(ctx, pid)) return -ESRCH;
  const out = ctx.host.scratchAddress + SCRATCH_GENERAL;
  const r = ctx.host.sym.host_sched_rr_get_interval(0, out);
  if (r < 0) return r;
  const bytes = ctx.host.scratch.slice(SCRATCH_GENERAL, SCRATCH_GENERAL + 16);
  return Math.min(ctx.memory.writeBytes(args.ptr(1), bytes), 0);
};

export const schedGetPriorityMax: SyscallHandler = (args) => {
  switch (args.int(0)) {
    case SCHED_FIFO:
    case SCHED_RR:
      return MAX_USER_RT_PRIO;
    case SCHED_OTHER:
    case SCHED_BATCH:
    case SCHED_IDLE:
    case SCHED_DEADLINE:
    case SCHED_EXT:
      return 0;
    default:
      return -EINVAL;
  }
};

export const schedGetPriorityMin: SyscallHandler = (args) => {
  switch (args.int(0)) {
    case SCHED_FIFO:
    case SCHED_RR:
      return 1;
    case SCHED_OTHER:
    case SCHED_BATCH:
    case SCHED_IDLE:
    case SCHED_DEADLINE:
    case SCHED_EXT:
      return 0;
    default:
      return -EINVAL;
  }
};

/**
 * The host `who` for a guest (which, who), or -errno: our own task, group and user are the host's (asking
 * about them answers with the host's values); anyone else is a process we do not have.
 */
function priorityTarget(ctx: SyscallContext, which: number, who: number): number {
  const p = ctx.process;
  switch (which) {
    case PRIO_PROCESS:
      return isOwnTask(ctx, who) ? 0 : -ESRCH;
    case PRIO_PGRP:
      return who === 0 || who === p.pgid ? 0 : -ESRCH;
    case PRIO_USER:
      return who === 0 || who === p.uid ? 0 : -ESRCH;
    default:
      return -EINVAL;
  }
}

/** The raw syscall's answer: 20 - nice (1..40), as Linux returns it (the libc wrapper converts). */
export const getpriority: SyscallHandler = (args, ctx) => {
  const which = args.int(0);
  const target = priorityTarget(ctx, which, args.int(1));
  if (target < 0) return target;
  // A guest-visible pgid of our own (after setpgid/setsid) is not the host's group: answer for ourselves.
  const hostWhich = which === PRIO_PGRP && ctx.process.pgid === ctx.process.pid ? PRIO_PROCESS : which;
  return ctx.host.sym.host_getpriority(hostWhich, 0);
};

/** Only our own task's nice value changes (on the host thread that runs the guest); groups and users would reach host processes. */
export const setpriority: SyscallHandler = (args, ctx) => {
  const which = args.int(0);
  const target = priorityTarget(ctx, which, args.int(1));
  if (target < 0) return target;
  if (which !== PRIO_PROCESS) return -EPERM;
  return ctx.host.sym.host_setpriority(PRIO_PROCESS, 0, args.int(2));
};

/** ioprio's (which, who) naming our own task, group or user: 0, or -errno (another process: ESRCH). */
function ioprioTarget(ctx: SyscallContext, which: number, who: number): number {
  const p = ctx.process;
  switch (which) {
    case IOPRIO_WHO_PROCESS:
      return isOwnTask(ctx, who) ? 0 : -ESRCH;
    case IOPRIO_WHO_PGRP:
      return who === 0 || who === p.pgid ? 0 : -ESRCH;
    case IOPRIO_WHO_USER:
      return who === 0 || who === p.uid ? 0 : -ESRCH;
    default:
      return -EINVAL;
  }
}

/** I/O priority of our own task (or group/user, which the host answers for): the host thread's. */
export const ioprioGet: SyscallHandler = (args, ctx) => {
  const which = args.int(0);
  const target = ioprioTarget(ctx, which, args.int(1));
  if (target < 0) return target;
  const p = ctx.process;
  const hostWhich = which === IOPRIO_WHO_PGRP && p.pgid === p.pid ? IOPRIO_WHO_PROCESS : which;
  return ctx.host.sym.host_ioprio_get(hostWhich, 0);
};

/**
 * ioprio_set on our own task (a process group or user of ours is just this process here: the host is asked
 * about its own thread only, never about other host processes of the same group or user).
 */
export const ioprioSet: SyscallHandler = (args, ctx) => {
  const target = ioprioTarget(ctx, args.int(0), args.int(1));
  if (target < 0) return target;
  return ctx.host.sym.host_ioprio_set(IOPRIO_WHO_PROCESS, 0, args.int(2));
};

/** The CPU and NUMA node the host thread running the guest is on. */
export const getcpu: SyscallHandler = (args, ctx) => {
  const out = ctx.host.scratchAddress + SCRATCH_GENERAL;
  const r = ctx.host.sym.host_getcpu(out);
  if (r < 0) return r;
  const view = ctx.host.scratchView;
  const cpuAddress = args.ptr(0);
  const nodeAddress = args.ptr(1);
  if (cpuAddress !== 0) {
    const w = ctx.memory.writeU32(cpuAddress, view.getUint32(SCRATCH_GENERAL, true));
    if (w < 0) return w;
  }
  if (nodeAddress !== 0) {
    const w = ctx.memory.writeU32(nodeAddress, view.getUint32(SCRATCH_GENERAL + 4, true));
    if (w < 0) return w;
  }
  return 0;
};
