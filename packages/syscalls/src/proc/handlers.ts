/**
 * Process control: clone/clone3 without CLONE_VM (fork, vfork), wait4/waitid, kill to any process or group,
 * process groups and sessions, rt_sigsuspend.
 *
 * A guest process is a host process and its pid is the host's, so everything between processes is the host
 * kernel's own: fork is the runtime's fork (guest memory copied on write by the host), wait statuses, groups,
 * sessions and the terminal's foreground group are real, and a signal to another guest is a host signal
 * that the receiving runtime turns back into a guest signal (host-signals.ts).
 */

import { type Pointer, toArrayBuffer } from "bun:ffi";
import { readFileSync } from "node:fs";
import {
  CLONE_ARGS,
  CLONE_CHILD_CLEARTID,
  CLONE_CHILD_SETTID,
  CLONE_NEW_ANY,
  CLONE_PARENT_SETTID,
  CLONE_PIDFD,
  CLONE_SETTLS,
  CLONE_SIGHAND,
  CLONE_THREAD,
  CLONE_VFORK,
  CLONE_VM,
  CSIGNAL,
  P_ALL,
  P_PGID,
  P_PID,
  P_PIDFD,
  WAIT4_KNOWN,
  WAITID_KNOWN,
  WCONTINUED,
  WEXITED,
  WNOHANG,
  WNOWAIT,
  WSTOPPED,
} from "../abi/clone.ts";
import { EACCES, EAGAIN, EFAULT, EINTR, EINVAL, ENOSYS, EPERM, ESRCH } from "../abi/errno.ts";
import { NSIG, SIGCHLD, SIGSET_SIZE, UNBLOCKABLE_MASK } from "../abi/signal.ts";
import { RUSAGE } from "../abi/structs.ts";
import { NR } from "../abi/syscalls.ts";
import type { SyscallArgs, SyscallContext, SyscallHandler } from "../context.ts";
import type { Dispatcher } from "../dispatch.ts";
import { SCRATCH_GENERAL } from "../host/host.ts";
import { SI_TKILL, SI_USER, SIGINFO, SIGINFO_SIZE } from "../signals/abi.ts";
import { type RegisterAccess, type SignalDelivery, writeSiginfo } from "../signals/delivery.ts";
import { warmForkChildPath } from "./fork-warmup.ts";
import type { HostSignalBridge } from "./host-signals.ts";
import {
  cloneThread,
  deadlineOf,
  parkForSignal,
  parkOnSignals,
  parkUntilChild,
  registerThreadHandlers,
  type ThreadSpawner,
} from "./threads.ts";

/** What the runtime's owner provides: the host fork with the backend prepared for it. */
export interface ForkProvider {
  /**
   * Fork the whole runtime: the child's pid in the parent, 0 in the child (which continues from here with a
   * copy of everything), or -errno (-ENOSYS where the backend cannot be forked).
   */
  fork(): number;
}

export interface ProcessControlDependencies {
  signals: SignalDelivery;
  registers: RegisterAccess;
  bridge: HostSignalBridge;
  fork?: ForkProvider;
  /** Threads on this process's vCPU (clone with CLONE_VM|CLONE_THREAD); without it they answer ENOSYS. */
  threads?: ThreadSpawner;
  trace?: (line: string) => void;
}

// siginfo for waitid: the host's layout is Linux's (x86_64 and arm64 agree on every SIGCHLD field).

interface CloneRequest {
  flags: number;
  exitSignal: number;
  stack: bigint;
  parentTid: number;
  childTid: number;
  tls: bigint;
  pidfd: number;
}

/** Slots of the shared exec-marks page (host_exec_marks): pid % EXEC_MARK_SLOTS. */
const EXEC_MARK_SLOTS = 1024;
let execMarks: Uint32Array | null = null;
function sharedExecMarks(ctx: SyscallContext): Uint32Array | null {
  if (execMarks === null) {
    const address = ctx.host.sym.host_exec_marks();
    if (address !== 0) execMarks = new Uint32Array(toArrayBuffer(address as Pointer, 0, EXEC_MARK_SLOTS * 4));
  }
  return execMarks;
}

/** The parent pid of a host process, from /proc/<pid>/stat (field 4), or -1. */
function parentOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return -1;
  }
}

/** A forked child execs: from now on its parent's setpgid on it gets EACCES (see host_exec_marks). */
export function markExecInForkedChild(ctx: SyscallContext): void {
  const marks = sharedExecMarks(ctx);
  if (marks) marks[ctx.process.pid % EXEC_MARK_SLOTS] = ctx.process.pid;
}

export function registerProcessControl(dispatcher: Dispatcher, deps: ProcessControlDependencies): void {
  const { signals, registers, bridge, trace } = deps;

  /** Linux copy_process's checks, then fork (vfork waits for the child to exec or exit). */
  const spawn = (ctx: SyscallContext, request: CloneRequest, name: string): number => {
    const { flags } = request;
    if (flags & CLONE_THREAD && !(flags & CLONE_SIGHAND)) return -EINVAL;
    if (flags & CLONE_SIGHAND && !(flags & CLONE_VM)) return -EINVAL;
    if (flags & CLONE_NEW_ANY) {
      trace?.(`[guest] ${name}: namespaces (flags 0x${flags.toString(16)}) are not supported: EPERM`);
      return -EPERM;
    }
    if (flags & CLONE_VM && !(flags & CLONE_VFORK)) {
      const result = deps.threads ? cloneThread(ctx, deps.threads, request) : -ENOSYS;
      if (result === -ENOSYS)
        trace?.(
          `[guest] ${name}: CLONE_VM without CLONE_THREAD|CLONE_SIGHAND (or no thread support here): ENOSYS`,
        );
      return result;
    }
    if (flags & CLONE_PIDFD) {
      trace?.(`[guest] ${name}: CLONE_PIDFD is not supported yet: ENOSYS`);
      return -ENOSYS;
    }
    if (request.exitSignal !== SIGCHLD && request.exitSignal !== 0) {
      // The host child always reports with SIGCHLD; another exit signal would need __WCLONE waits.
      trace?.(`[guest] ${name}: exit signal ${request.exitSignal} is not supported (only SIGCHLD): EINVAL`);
      return -EINVAL;
    }
    if (!deps.fork) {
      trace?.(`[guest] ${name}: this backend cannot fork: ENOSYS`);
      return -ENOSYS;
    }
    const parentPid = ctx.process.pid;
    const host = ctx.host.sym;
    // vfork (with or without CLONE_VM: the child always gets its own copy of memory here, which POSIX allows)
    // keeps the parent asleep until the child execs or exits, so their output interleaves as on Linux.
    let releaseRead = -1;
    let releaseWrite = -1;
    if (flags & CLONE_VFORK) {
      const pipe = host.host_pipe2(ctx.host.scratchAddress + SCRATCH_GENERAL, 0);
      if (pipe < 0) return pipe;
      releaseRead = ctx.host.scratchView.getInt32(SCRATCH_GENERAL, true);
      releaseWrite = ctx.host.scratchView.getInt32(SCRATCH_GENERAL + 4, true);
    }
    // The exec-marks page must exist before the fork to be shared with the child.
    const marks = sharedExecMarks(ctx);
    warmForkChildPath();
    const pid = deps.fork.fork();
    if (pid < 0) {
      if (releaseRead >= 0) {
        host.host_close(releaseRead);
        host.host_close(releaseWrite);
      }
      return pid;
    }
    if (pid === 0) {
      if (marks) marks[host.host_getpid() % EXEC_MARK_SLOTS] = 0;
      // The child: a new host process with a copy of everything, continuing right here (host_fork already
      // rebound the signal bridge to this process's thread).
      const process = ctx.process;
      process.afterFork(parentPid);
      if (releaseRead >= 0) {
        host.host_close(releaseRead);
        process.vforkReleaseFd = releaseWrite;
      }
      const thread = process.currentThread;
      if (request.stack !== 0n) registers.setRegister("sp", request.stack);
      if (flags & CLONE_SETTLS) registers.setRegister("tpidr_el0", request.tls);
      if (flags & CLONE_CHILD_SETTID) ctx.memory.writeU32(request.childTid, process.pid);
      if (flags & CLONE_CHILD_CLEARTID) thread.clearChildTid = request.childTid;
      return 0;
    }
    if (flags & CLONE_PARENT_SETTID) ctx.memory.writeU32(request.parentTid, pid);
    if (releaseRead >= 0) {
      host.host_close(releaseWrite);
      // Read to EOF: the child's end closes at its exec or exit. A host signal only restarts the read.
      const buffer = ctx.host.scratchAddress + SCRATCH_GENERAL;
      for (;;) {
        const got = host.host_read(releaseRead, buffer, 1);
        if (got === 0 || (got < 0 && got !== -EINTR)) break;
      }
      host.host_close(releaseRead);
    }
    return pid;
  };

  /** arm64 clone(flags, stack, parent_tid, tls, child_tid). */
  const clone: SyscallHandler = (args, ctx) => {
    const raw = args.uint(0);
    return spawn(
      ctx,
      {
        flags: raw & ~CSIGNAL,
        exitSignal: raw & CSIGNAL,
        stack: args.raw(1),
        parentTid: args.ptr(2),
        tls: args.raw(3),
        childTid: args.ptr(4),
        pidfd: 0,
      },
      "clone",
    );
  };

  const clone3: SyscallHandler = (args, ctx) => {
    const address = args.ptr(0);
    const size = args.ulong(1);
    if (size < CLONE_ARGS.sizeVer0 || size > 4096) return -EINVAL;
    const view = ctx.memory.viewBytes(address, Math.min(size, CLONE_ARGS.sizeVer2), false);
    if (typeof view === "number") return -EFAULT;
    const data = new DataView(view.buffer, view.byteOffset, view.byteLength);
    const u64 = (offset: number): bigint =>
      offset + 8 <= view.byteLength ? data.getBigUint64(offset, true) : 0n;
    const flags = u64(CLONE_ARGS.flags);
    const exitSignal = u64(CLONE_ARGS.exitSignal);
    if (flags >> 32n || exitSignal > BigInt(NSIG)) return -EINVAL;
    if (u64(CLONE_ARGS.setTid) !== 0n || u64(CLONE_ARGS.setTidSize) !== 0n) return -EPERM;
    const stack = u64(CLONE_ARGS.stack);
    const stackSize = u64(CLONE_ARGS.stackSize);
    if ((stack === 0n) !== (stackSize === 0n)) return -EINVAL;
    return spawn(
      ctx,
      {
        flags: Number(flags),
        exitSignal: Number(exitSignal),
        stack: stack === 0n ? 0n : stack + stackSize,
        parentTid: Number(u64(CLONE_ARGS.parentTid)),
        childTid: Number(u64(CLONE_ARGS.childTid)),
        tls: u64(CLONE_ARGS.tls),
        pidfd: Number(u64(CLONE_ARGS.pidfd)),
      },
      "clone3",
    );
  };

  /** wait4(pid, wstatus, options, rusage): the host's, with status and rusage written straight to guest memory. */
  const wait4: SyscallHandler = (args, ctx) => {
    const options = args.uint(2);
    if (options & ~WAIT4_KNOWN) return -EINVAL;
    const statusAddress = args.ptr(1);
    const rusageAddress = args.ptr(3);
    // Linux reaps the child first and only then fails to copy the results out: a bad pointer still reaps.
    const scratch = ctx.host.scratchAddress + SCRATCH_GENERAL;
    let status = statusAddress === 0 ? 0 : ctx.memory.hostPointer(statusAddress, 4, true);
    let rusage = rusageAddress === 0 ? 0 : ctx.memory.hostPointer(rusageAddress, RUSAGE.size, true);
    const fault = status < 0 || rusage < 0;
    if (status < 0) status = scratch;
    if (rusage < 0) rusage = scratch + 64;
    const pid = args.int(0);
    if (mustPark(ctx, options)) {
      // wait4's pid as waitid's (idtype, id): < -1 a group, -1 any child, 0 our group, > 0 one child.
      const [idtype, id] =
        pid < -1 ? [P_PGID, -pid] : pid === -1 ? [P_ALL, 0] : pid === 0 ? [P_PGID, 0] : [P_PID, pid];
      const probe = childWaiting(ctx, idtype, id, (options & ~WNOHANG) | WEXITED);
      if (probe === 0) return parkUntilChild(ctx, args.raw(0));
    }
    const result = ctx.host.sym.host_wait4(pid, status, options, rusage);
    return fault && result > 0 ? -EFAULT : result;
  };

  /** With other threads to run, a wait for a child that would block parks only its thread. */
  const mustPark = (ctx: SyscallContext, options: number): boolean =>
    ctx.process.threads.size > 1 && (options & WNOHANG) === 0;

  /**
   * Whether a child matching the wait is ready now (1), none is (0), or the wait fails anyway (-errno: the
   * real call then reports it): a WNOHANG|WNOWAIT waitid that reaps nothing.
   */
  const childWaiting = (ctx: SyscallContext, idtype: number, id: number, options: number): number => {
    const info = ctx.host.scratchAddress + SCRATCH_GENERAL;
    ctx.host.scratch.fill(0, SCRATCH_GENERAL, SCRATCH_GENERAL + SIGINFO_SIZE);
    const result = ctx.host.sym.host_waitid(idtype, id, info, options | WNOHANG | WNOWAIT, 0);
    if (result < 0) return result;
    return ctx.host.scratchView.getInt32(SCRATCH_GENERAL + SIGINFO.pid, true) !== 0 ? 1 : 0;
  };

  /** waitid(idtype, id, infop, options, rusage). */
  const waitid: SyscallHandler = (args, ctx) => {
    const idtype = args.int(0);
    const options = args.uint(3);
    if (options & ~WAITID_KNOWN || !(options & (WEXITED | WSTOPPED | WCONTINUED))) return -EINVAL;
    if (idtype !== P_ALL && idtype !== P_PID && idtype !== P_PGID && idtype !== P_PIDFD) return -EINVAL;
    let id = args.int(1);
    if (idtype === P_PIDFD) {
      const entry = ctx.process.fds.get(id);
      if (entry === undefined) return -EINVAL;
      id = entry.hostFd;
    }
    const infoAddress = args.ptr(2);
    const rusageAddress = args.ptr(4);
    const info = infoAddress === 0 ? 0 : ctx.memory.hostPointer(infoAddress, SIGINFO_SIZE, true);
    if (info < 0) return -EFAULT;
    const rusage = rusageAddress === 0 ? 0 : ctx.memory.hostPointer(rusageAddress, RUSAGE.size, true);
    if (rusage < 0) return -EFAULT;
    if (mustPark(ctx, options) && childWaiting(ctx, idtype, id, options) === 0)
      return parkUntilChild(ctx, args.raw(0));
    return ctx.host.sym.host_waitid(idtype, id, info, options, rusage);
  };

  /**
   * kill(pid, sig): to this process alone it is raised here (exact siginfo, delivered on return); anything that
   * may reach others (another pid, a group, -1) is the host's kill, and whatever comes back to us arrives
   * through the host-signal bridge like any other sender's.
   */
  const kill: SyscallHandler = (args, ctx) => {
    const pid = args.int(0);
    const signal = args.int(1);
    if (signal < 0 || signal > NSIG) return -EINVAL;
    const process = ctx.process;
    if (pid === process.pid) {
      if (signal !== 0) signals.raiseProcess({ signal, code: SI_USER, pid: process.pid, uid: process.uid });
      return 0;
    }
    if (pid === -2147483648) return -ESRCH;
    return ctx.host.sym.host_kill(pid, signal);
  };

  const tgkillOther = (tgid: number | null, tid: number, signal: number, ctx: SyscallContext): number => {
    if (signal < 0 || signal > NSIG || tid <= 0 || (tgid !== null && tgid <= 0)) return -EINVAL;
    const process = ctx.process;
    // A thread of ours (its tid is ours to give, not a host tid): pending on it, delivered when it runs. The
    // pid names the calling thread when the leader's own state is gone.
    const thread = process.threads.get(tid) ?? (tid === process.pid ? process.currentThread : undefined);
    if (thread !== undefined && (tgid === null || tgid === process.pid)) {
      if (signal !== 0)
        signals.raiseOn(thread, { signal, code: SI_TKILL, pid: process.pid, uid: process.uid });
      return 0;
    }
    // Another guest process: single-threaded as far as we can reach it, its only thread's tid is its pid.
    if (tgid !== null && tgid !== tid) return -ESRCH;
    return ctx.host.sym.host_kill(tid, signal);
  };
  const tkill: SyscallHandler = (args, ctx) => tgkillOther(null, args.int(0), args.int(1), ctx);
  const tgkill: SyscallHandler = (args, ctx) => tgkillOther(args.int(0), args.int(1), args.int(2), ctx);

  const getpgid: SyscallHandler = (args, ctx) => {
    const result = ctx.host.sym.host_getpgid(args.int(0));
    if (result >= 0 && args.int(0) === 0) ctx.process.pgid = result;
    return result;
  };
  const getsid: SyscallHandler = (args, ctx) => {
    const result = ctx.host.sym.host_getsid(args.int(0));
    if (result >= 0 && args.int(0) === 0) ctx.process.sid = result;
    return result;
  };
  const setpgid: SyscallHandler = (args, ctx) => {
    const target = args.int(0);
    if (
      target > 0 &&
      target !== ctx.process.pid &&
      sharedExecMarks(ctx)?.[target % EXEC_MARK_SLOTS] === target
    ) {
      // A child of ours that has exec'd (anyone else's is the host's ESRCH).
      if (parentOf(target) === ctx.process.pid) return -EACCES;
    }
    const result = ctx.host.sym.host_setpgid(args.int(0), args.int(1));
    if (result === 0) ctx.process.pgid = Math.max(ctx.host.sym.host_getpgid(0), 0);
    return result;
  };
  const setsid: SyscallHandler = (_args, ctx) => {
    const result = ctx.host.sym.host_setsid();
    if (result >= 0) {
      ctx.process.sid = result;
      ctx.process.pgid = result;
    }
    return result;
  };

  /**
   * rt_sigsuspend(mask, size): wait, with `mask` as the blocked set, until a signal is delivered (a handler
   * runs or the process ends); always -EINTR. The frame of that handler saves the old mask.
   */
  const rtSigsuspend: SyscallHandler = (args: SyscallArgs, ctx) => {
    if (args.ulong(1) !== SIGSET_SIZE) return -EINVAL;
    const mask = ctx.memory.readU64Big(args.ptr(0));
    if (typeof mask === "number") return -EFAULT;
    const thread = ctx.process.currentThread;
    const saved = thread.blocked;
    thread.blocked = mask & ~UNBLOCKABLE_MASK;
    if (ctx.process.threads.size > 1) {
      // Only this thread waits: the scheduler ends its wait with EINTR once a signal its mask lets through is
      // pending for it; the handler's frame saves the old mask.
      bridge.pullInto(signals, ctx.process);
      thread.savedMask = saved;
      if (signals.hasDeliverable()) return -EINTR;
      return parkForSignal(ctx);
    }
    for (;;) {
      bridge.pullInto(signals, ctx.process);
      if (signals.hasDeliverable()) break;
      if (!bridge.active) {
        // Host signals are not caught (a runtime embedded in another program): nothing could ever wake us.
        trace?.("[guest] rt_sigsuspend: no signal can arrive (host signals are not caught here): EINTR");
        break;
      }
      bridge.waitForAny();
    }
    thread.savedMask = saved;
    return -EINTR;
  };

  /**
   * rt_sigtimedwait(set, info, timeout, size): take a pending signal of `set` (the thread's own first, then the
   * process's) without running its handler; wait for one up to `timeout` (-EAGAIN), or until a signal outside
   * the set that is not blocked arrives (its handler runs: -EINTR).
   */
  const rtSigtimedwait: SyscallHandler = (args, ctx) => {
    if (args.ulong(3) !== SIGSET_SIZE) return -EINVAL;
    const set = ctx.memory.readU64Big(args.ptr(0));
    if (typeof set === "number") return -EFAULT;
    const wanted = set & ~UNBLOCKABLE_MASK;
    // The end of the wait (performance.now() ms; Infinity: none), or -EFAULT/-EINVAL for a bad timespec.
    const end = args.ptr(2) === 0 ? Number.POSITIVE_INFINITY : deadlineOf(ctx, args.ptr(2), false, false);
    if (end < 0) return end;
    const infoAddress = args.ptr(1);
    const take = (): number | null => {
      const info = signals.dequeue(wanted);
      if (info === null) return null;
      if (infoAddress !== 0) {
        const out = ctx.memory.viewBytes(infoAddress, SIGINFO_SIZE, true);
        if (typeof out === "number") return -EFAULT; // taken all the same, as Linux's copy_siginfo_to_user fails
        writeSiginfo(out, info);
      }
      return info.signal;
    };
    bridge.pullInto(signals, ctx.process);
    const pending = take();
    if (pending !== null) return pending;
    if (end <= performance.now()) return -EAGAIN; // a zero timeout: nothing to wait for
    if (ctx.process.threads.size > 1)
      return parkOnSignals(ctx, wanted, args.raw(0), end === Number.POSITIVE_INFINITY ? 0 : end);
    if (!bridge.active) {
      trace?.("[guest] rt_sigtimedwait: no signal can arrive (host signals are not caught here)");
      if (end === Number.POSITIVE_INFINITY) return -EINTR;
      Bun.sleepSync(end - performance.now());
      return -EAGAIN;
    }
    for (;;) {
      if (signals.hasDeliverable()) return -EINTR; // a handler to run: the wait ends
      const remaining = end - performance.now();
      if (remaining <= 0) return -EAGAIN;
      if (remaining === Number.POSITIVE_INFINITY) bridge.waitForAny();
      else bridge.waitFor(remaining);
      bridge.pullInto(signals, ctx.process);
      const got = take();
      if (got !== null) return got;
    }
  };

  registerThreadHandlers(dispatcher);
  dispatcher.registerHandler(NR.clone, "clone", clone);
  dispatcher.registerHandler(NR.clone3, "clone3", clone3);
  dispatcher.registerHandler(NR.wait4, "wait4", wait4);
  dispatcher.registerHandler(NR.waitid, "waitid", waitid);
  dispatcher.registerHandler(NR.kill, "kill", kill);
  dispatcher.registerHandler(NR.tkill, "tkill", tkill);
  dispatcher.registerHandler(NR.tgkill, "tgkill", tgkill);
  dispatcher.registerHandler(NR.getpgid, "getpgid", getpgid);
  dispatcher.registerHandler(NR.getsid, "getsid", getsid);
  dispatcher.registerHandler(NR.setpgid, "setpgid", setpgid);
  dispatcher.registerHandler(NR.setsid, "setsid", setsid);
  dispatcher.registerHandler(NR.rt_sigsuspend, "rt_sigsuspend", rtSigsuspend);
  dispatcher.registerHandler(NR.rt_sigtimedwait, "rt_sigtimedwait", rtSigtimedwait);
}
