/**
 * The syscall layer of one guest process, composed: fd/process state, bounds-checked guest memory (its
 * access checks answered by the address space), the dispatcher with the built-in handlers, and the
 * memory syscalls over the address space.
 */
import { statSync } from "node:fs";
import type { GuestPhysicalMemory } from "@guest/hvf-bindings";
import { formatProcMaps } from "@guest/region-tracker";
import { EINTR, EPIPE } from "./abi/errno.ts";
import { F_GETFL, F_SETFL, O_ACCMODE, O_CLOEXEC, O_NONBLOCK } from "./abi/fcntl.ts";
import { SA_RESTART, SIGPIPE } from "./abi/signal.ts";
import { STATX } from "./abi/structs.ts";
import { NR } from "./abi/syscalls.ts";
import type { SyscallResult } from "./context.ts";
import { createDispatcher, type Dispatcher } from "./dispatch.ts";
import { type ExecPrepare, registerExecHandlers } from "./exec/handlers.ts";
import { type Host, SCRATCH_GENERAL, sharedHost } from "./host/host.ts";
import { GuestMemory } from "./memory.ts";
import type { AddressSpace } from "./mm/address-space.ts";
import { registerMemoryHandlers } from "./mm/handlers.ts";
import { type ForkProvider, registerProcessControl } from "./proc/handlers.ts";
import { type HostSignalBridge, sharedHostSignals } from "./proc/host-signals.ts";
import { exitRobustList, type RobustListContext } from "./proc/robust.ts";
import { type ThreadSpawner, wakeThreadsOn } from "./proc/threads.ts";
import { ProcessState } from "./process.ts";
import { closeProcFiles, registerProcFiles } from "./procfs.ts";
import {
  type ProcSource,
  renderCmdline,
  renderComm,
  renderEnviron,
  renderStat,
  renderStatus,
} from "./procfs-process.ts";
import { SI_USER } from "./signals/abi.ts";
import { type RegisterAccess, SignalDelivery } from "./signals/delivery.ts";
import { registerSignalHandlers } from "./signals/handlers.ts";

/** A lookup by syscall number: 1 for the listed syscalls. */
function syscallSet(numbers: readonly number[]): Uint8Array {
  const set = new Uint8Array(512);
  for (const nr of numbers) set[nr] = 1;
  return set;
}

/** Syscalls whose EPIPE comes with SIGPIPE (pipe and socket writes), as a lookup by number. */
const RAISES_SIGPIPE = syscallSet([
  NR.write,
  NR.writev,
  NR.pwrite64,
  NR.pwritev,
  NR.pwritev2,
  NR.sendfile,
  NR.splice,
  NR.tee,
  NR.vmsplice,
  NR.sendto,
  NR.sendmsg,
  NR.sendmmsg,
]);

/**
 * Interrupted by a signal whose handler runs, these return EINTR even with SA_RESTART (signal(7)); every other
 * blocking syscall is restarted by a SA_RESTART handler.
 */
const NEVER_RESTARTED = syscallSet([
  NR.ppoll,
  NR.pselect6,
  NR.epoll_pwait,
  NR.epoll_pwait2,
  NR.rt_sigsuspend,
  NR.rt_sigtimedwait,
  NR.nanosleep,
  NR.clock_nanosleep,
  NR.msgrcv,
  NR.msgsnd,
  NR.semop,
  NR.semtimedop,
  NR.io_getevents,
  NR.io_pgetevents,
]);

/** /proc/self files rendered from the guest's state (besides maps). */
const PROCESS_FILES: Record<string, (source: ProcSource) => string | Uint8Array> = {
  stat: renderStat,
  status: renderStatus,
  cmdline: renderCmdline,
  environ: renderEnviron,
  comm: renderComm,
};

export interface GuestRuntimeOptions {
  space: AddressSpace;
  memory: GuestPhysicalMemory;
  /** Absolute host path of the program (/proc/self/exe). */
  exePath: string;
  /** The vCPU's registers (signal frames are built from and restored to them). */
  registers: RegisterAccess;
  trace?: (line: string) => void;
  /** execve/execveat's loader (see exec/handlers.ts); without it they stay ENOSYS. */
  exec?: ExecPrepare;
  /** fork for clone/clone3 without CLONE_VM; without it they answer ENOSYS. */
  fork?: ForkProvider;
  /** Threads for clone/clone3 with CLONE_VM|CLONE_THREAD; without it they answer ENOSYS. */
  threads?: ThreadSpawner;
  /**
   * Catch the host process's signals and turn them into the guest's (the runtime *is* the guest process: the
   * CLI). Off by default, so a runtime created inside another program (tests, benchmarks) leaves that
   * program's signal handling alone; close() gives the dispositions back.
   */
  catchHostSignals?: boolean;
}

export interface GuestRuntime {
  readonly process: ProcessState;
  readonly memory: GuestMemory;
  readonly dispatcher: Dispatcher;
  readonly signals: SignalDelivery;
  /** Signals sent to this host process, on their way to becoming guest signals. */
  readonly hostSignals: HostSignalBridge;
  dispatch(frame: Uint32Array): SyscallResult;
  /** Move host signals recorded since the last call into the guest's pending set. */
  pullHostSignals(): void;
  /** The process dies (a fatal signal): its threads' robust futexes are released as Linux's exit does. */
  releaseRobustLists(): void;
  /** Close every host fd the guest held. */
  close(): void;
}

export function createGuestRuntime(options: GuestRuntimeOptions): GuestRuntime {
  const { space } = options;
  const memory = new GuestMemory({
    bytes: options.memory.bytes,
    hostAddress: options.memory.hostAddress,
    isAccessible: (address, length, write) => space.isAccessible(address, length, write),
  });
  const process = new ProcessState({ exePath: options.exePath });
  for (const fd of [0, 1, 2]) giveBlockingDescription(process, fd, sharedHost());
  const dispatcher = createDispatcher({ memory, process, trace: options.trace });
  registerMemoryHandlers(dispatcher, space, options.memory.hostAddress);
  registerProcFiles(process, (name) => {
    if (name === "maps") return renderMaps(space);
    const render = PROCESS_FILES[name];
    if (render === undefined) return null;
    return render({ process, memory, regions: space.regions.toArray(), brkStart: space.brkStart });
  });
  const signals = new SignalDelivery(memory, process, options.registers);
  registerSignalHandlers(dispatcher, signals, options.registers);
  if (options.exec) registerExecHandlers(dispatcher, { space, signals, prepare: options.exec });
  const hostSignals = sharedHostSignals(sharedHost());
  if (options.catchHostSignals) {
    const installed = hostSignals.install();
    if (installed < 0) throw new Error(`@guest/syscalls: cannot catch host signals (errno ${-installed})`);
    hostSignals.updateImmediate(process);
  }
  registerProcessControl(dispatcher, {
    signals,
    registers: options.registers,
    bridge: hostSignals,
    fork: options.fork,
    threads: options.threads,
    trace: options.trace,
  });
  process.childSignalChanged = () => hostSignals.mirrorChildDisposition(process);
  process.discardPendingSignal = (signal) => signals.discardPending(signal);
  const pullHostSignals = (): void => {
    hostSignals.pullInto(signals, process);
    hostSignals.updateImmediate(process);
  };
  /**
   * A host call interrupted by a host signal (EINTR) ends as Linux would end it: with no handler to run (the
   * signal is ignored, blocked, or stops/continues us) the syscall restarts transparently; a handler with
   * SA_RESTART restarts it after the handler (PC back on the svc, X0 as it was); otherwise EINTR.
   */
  const resolveInterrupted = (frame: Uint32Array): SyscallResult => {
    for (;;) {
      const taken = hostSignals.pullInto(signals, process);
      const deliverable = signals.nextDeliverable();
      if (deliverable === 0) {
        if (taken === 0) return -EINTR;
        process.restarting = true;
        let again: SyscallResult;
        try {
          again = dispatcher.dispatch(frame);
        } finally {
          process.restarting = false;
        }
        if (again !== -EINTR) return again;
        continue;
      }
      const flags = Number(process.signalActions.flags(deliverable) & 0xffff_ffffn);
      const hasHandler = process.signalActions.handler(deliverable) > 1n;
      if (hasHandler && flags & SA_RESTART && NEVER_RESTARTED[frame[16]!] === 0) {
        return { control: "restart-syscall" };
      }
      return -EINTR;
    }
  };
  // Writing to a pipe (or socket) nobody reads: Linux fails the write with EPIPE *and* sends SIGPIPE, whose
  // default action ends the process (status 141 in a shell), as in `yes | head -1`.
  const robustContext: RobustListContext = {
    memory,
    host: sharedHost(),
    wakeLocal: (address, count) => wakeThreadsOn(process, address, count),
  };
  /** The process is ending: every thread's robust futexes are released (OWNER_DIED, a waiter woken). */
  const releaseRobustLists = (): void => {
    for (const thread of process.threads.values()) exitRobustList(robustContext, thread);
  };
  const dispatchAndSignal = (frame: Uint32Array): SyscallResult => {
    let result = dispatcher.dispatch(frame);
    if (typeof result === "object" && result.control === "exit") {
      // Inline rather than releaseRobustLists(): this function is compiled before a fork, a forked child's
      // first call of another would compile it afresh in every child (proc/fork-warmup.ts).
      for (const thread of process.threads.values()) exitRobustList(robustContext, thread);
    } else if (result === -EINTR) result = resolveInterrupted(frame);
    else if (result === -EPIPE && RAISES_SIGPIPE[frame[16]!] === 1) {
      signals.raise({ signal: SIGPIPE, code: SI_USER, pid: process.pid, uid: process.uid });
    }
    if (hostSignals.recorded) hostSignals.pullInto(signals, process);
    hostSignals.updateImmediate(process);
    return result;
  };
  return {
    process,
    memory,
    dispatcher,
    signals,
    hostSignals,
    pullHostSignals,
    releaseRobustLists,
    dispatch: dispatchAndSignal,
    close: () => {
      if (options.catchHostSignals) hostSignals.uninstall();
      space.close();
      process.closeAll();
      closeProcFiles(process);
    },
  };
}

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFSOCK = 0o140000;

/**
 * Bun marks its own stdio non-blocking, and the guest's 0/1/2 start as dups of them (the same open file
 * description), so a guest write to a full pipe would see EAGAIN where Linux (and qemu) block. Give the guest
 * its own, blocking description of pipes, FIFOs and terminals by reopening /proc/self/fd/N. Regular files keep
 * the shared description (their offset must stay shared with the parent, and they never return EAGAIN);
 * sockets cannot be reopened, so their shared description is made blocking.
 */
function giveBlockingDescription(process: ProcessState, guestFd: number, host: Host): void {
  const entry = process.fds.get(guestFd);
  if (!entry) return;
  const flags = host.sym.host_fcntl(entry.hostFd, F_GETFL, 0);
  if (flags < 0 || !(flags & O_NONBLOCK)) return;
  const stat = host.statFd(entry.hostFd);
  const type = stat < 0 ? 0 : host.scratchView.getUint16(SCRATCH_GENERAL + STATX.mode, true) & S_IFMT;
  if (type === S_IFREG) return;
  if (type !== S_IFSOCK) {
    const path = host.cString(`/proc/self/fd/${entry.hostFd}`);
    const reopened = host.sym.host_openat(-100, path, (flags & (O_ACCMODE | 0o2000)) | O_CLOEXEC, 0);
    if (reopened >= 0) {
      host.sym.host_close(entry.hostFd);
      entry.hostFd = reopened;
      return;
    }
  }
  host.sym.host_fcntl(entry.hostFd, F_SETFL, flags & ~O_NONBLOCK);
}

/**
 * /proc/self/maps as Linux names things: shared anonymous memory is "/dev/zero (deleted)" on the shmem
 * device (00:01), and a mapped file that has since been unlinked (or replaced) gets " (deleted)".
 */
function renderMaps(space: AddressSpace): string {
  const regions = space.regions.toArray().map((region) => {
    if (region.flags.shared && region.flags.anonymous) {
      return {
        ...region,
        name: "/dev/zero (deleted)",
        file: { dev: 1, inode: region.mappingId, path: "/dev/zero", offset: 0 },
      };
    }
    const file = region.file;
    if (!file) return region;
    let current: { dev: number; ino: number } | null = null;
    try {
      current = statSync(file.path);
    } catch {}
    const deleted = current === null || current.ino !== file.inode || current.dev !== file.dev;
    return deleted ? { ...region, name: `${region.name ?? file.path} (deleted)` } : region;
  });
  return formatProcMaps(regions);
}
