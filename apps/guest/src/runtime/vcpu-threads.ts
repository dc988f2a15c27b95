/**
 * Guest threads on a backend whose vCPUs cannot share one engine (Hypervisor.framework: a vCPU belongs to the
 * host thread that created it, and hv_vcpu_run blocks that thread). Each guest thread gets a vCPU on a host
 * thread of its own (`Vm.vcpuThreads()`: one Worker per vCPU) and every runnable thread's vCPU runs at once.
 * This thread keeps the runtime: the exits of all vCPUs are taken here one at a time (one doorbell for all of
 * them), with process.currentThread set to the thread whose vCPU exited. Syscalls and all ThreadState
 * bookkeeping are therefore serialised exactly as on the emulator, so the runtime's futex word checks stay
 * right, while guest code — and its hardware atomics on the shared guest memory — runs in parallel.
 *
 * Same semantics as GuestProcess's single-vCPU scheduler (whose signal and re-issue logic this reuses through
 * ThreadLoopHooks): clone(CLONE_VM|CLONE_THREAD) starts a vCPU with the parent's registers (X0 = 0, the new SP
 * and TPIDR_EL0); a thread the runtime parks (switch-thread) leaves its vCPU stopped at the syscall's exit
 * until it is woken, then resumes with its wake result in X0 or issues its call again (PC back on the svc,
 * X0 = restartX0); a thread's exit destroys its vCPU; exit_group (or a fatal signal) stops every vCPU. A
 * signal for a parked thread interrupts its wait as on the emulator; a running thread with a deliverable
 * signal is stopped (requestStop) and takes it before it runs on.
 *
 * Until its first clone a process keeps its one vCPU on this thread (MainThreadVcpu): no Worker handshake per
 * exit, and fork stays possible. The first clone moves it into a Worker (a register copy) with the new thread's.
 */
import {
  type ConcurrentVcpu,
  GENERAL_REGISTER_NAMES,
  type GeneralRegister,
  type Vcpu,
  type VcpuExit,
  type VcpuThreads,
  type Vm,
} from "@guest/hvf-bindings";
import {
  type AddressSpace,
  type DeliveryOutcome,
  errno,
  type GuestRuntime,
  pollBlockedThreads,
  type SignalInfo,
  sharedHost,
  signalFrameAbi as sig,
  type ThreadSpawner,
  type ThreadState,
} from "@guest/syscalls";
import type { GuestOutcome } from "./guest-process.ts";

/** What the threaded loop takes from GuestProcess: its runtime and the logic both schedulers share. */
export interface ThreadLoopHooks {
  readonly runtime: GuestRuntime;
  readonly space: AddressSpace;
  /** Signals end the waits of parked threads (EINTR, or a re-issue), as on the emulator. */
  interruptForSignals(): void;
  /** A parked call issued again gets its own mask and the time it has left. */
  prepareReissue(thread: ThreadState): void;
  /** A delivery outcome → the end of the process, or null to go on. */
  settle(outcome: DeliveryOutcome): GuestOutcome | null;
  killedBy(signal: number, detail: string): GuestOutcome;
  /** The signal a fault, undefined instruction or breakpoint raises (null: run the instruction again). */
  exceptionSignal(exit: VcpuExit): SignalInfo | null;
}

/** A new thread copies every register of the thread that cloned it: the general ones and Q0..Q31. */
const VECTOR_REGISTERS = 32;
/**
 * Longest doorbell wait while vCPUs run: host signals (a Ctrl-C for the guest) are noticed between waits, and a
 * thread waiting on an fd is polled between them (a host ppoll cannot wait on the doorbell as well).
 */
const SIGNAL_CHECK_MS = 50;
const FD_CHECK_MS = 5;

/** Identity, frame and registers of another vCPU (`delegate`), for the two wrappers below. */
abstract class DelegatingVcpu {
  protected abstract get delegate(): Vcpu;
  get id(): number {
    return this.delegate.id;
  }
  get syscallFrame(): Uint32Array {
    return this.delegate.syscallFrame;
  }
  getRegister(name: GeneralRegister): bigint {
    return this.delegate.getRegister(name);
  }
  setRegister(name: GeneralRegister, value: bigint): void {
    this.delegate.setRegister(name, value);
  }
  getVector(index: number): Uint8Array {
    return this.delegate.getVector(index);
  }
  setVector(index: number, value: Uint8Array): void {
    this.delegate.setVector(index, value);
  }
}

/**
 * The `Vcpu` the runtime and the loader see: whichever guest thread is current. Register access goes to that
 * thread's vCPU (stopped at its exit while the runtime works on it).
 */
export class CurrentThreadVcpu extends DelegatingVcpu implements Vcpu {
  constructor(public target: ConcurrentVcpu) {
    super();
  }
  protected get delegate(): Vcpu {
    return this.target;
  }
  run(): VcpuExit {
    throw new Error("a vCPU per guest thread: VcpuThreadRunner runs them, not Vcpu.run()");
  }
  requestStop(): void {
    this.target.requestStop();
  }
  setSyscallHandler(handler: unknown): void {
    if (handler) throw new Error("a vCPU per guest thread: every syscall is an exit, no in-line handler");
  }
  destroy(): void {
    // The runner owns the vCPUs (VcpuThreadRunner.destroy).
  }
}

/**
 * The first thread's vCPU until the process's first clone: made on this (the main) thread, so a guest that never
 * has a second thread needs no Worker (no handshake per exit) and can still fork (Vm.prepareFork refuses while
 * vCPUs live in Workers). `start()` runs it to its next exit at once: with one guest thread nothing else needs
 * this thread meanwhile (as with a single vCPU anywhere: run() blocks).
 */
class MainThreadVcpu extends DelegatingVcpu implements ConcurrentVcpu {
  private exit: VcpuExit | null = null;
  constructor(private readonly inner: Vcpu) {
    super();
  }
  protected get delegate(): Vcpu {
    return this.inner;
  }
  get running(): boolean {
    return this.exit !== null;
  }
  start(): void {
    this.exit = this.inner.run();
  }
  poll(): VcpuExit | null {
    const exit = this.exit;
    this.exit = null;
    return exit;
  }
  run(): VcpuExit {
    return this.inner.run();
  }
  requestStop(): void {
    // It runs only inside start(), on this very thread: nothing can ask it to stop meanwhile.
  }
  setSyscallHandler(handler: Parameters<Vcpu["setSyscallHandler"]>[0]): void {
    this.inner.setSyscallHandler(handler);
  }
  destroy(): void {
    this.inner.destroy();
  }
}

export class VcpuThreadRunner {
  /** The current guest thread's vCPU, for the runtime (signal frames) and the loader. */
  readonly vcpu: CurrentThreadVcpu;
  /** clone(CLONE_VM|CLONE_THREAD)'s spawner for createGuestRuntime. */
  readonly spawner: ThreadSpawner;
  private readonly vcpus = new Map<ThreadState, ConcurrentVcpu>();
  /** The first thread's (main-thread) vCPU until run() knows its ThreadState. */
  private initial: ConcurrentVcpu | null;
  /** Threads whose last syscall parked them (or yielded): their wake result or re-issue is applied before they run. */
  private readonly parked = new Set<ThreadState>();
  /** Running threads stopped for a signal and not back yet (one kick each). */
  private readonly kicked = new Set<ThreadState>();
  private hooks: ThreadLoopHooks | null = null;
  /** Where the next poll round starts (round robin, so one busy thread cannot starve the others' exits). */
  private cursor = 0;
  /** From the last housekeeping: the earliest deadline of a parked thread, and whether any waits on fds. */
  private earliestDeadline = Number.POSITIVE_INFINITY;
  private fdWaiters = false;
  /** The VM's Worker vCPUs and their doorbell, from the first clone on. */
  private group: VcpuThreads | null = null;

  /** `vm` must have the `vcpuThreads` capability; `trace` is --trace's line printer. */
  constructor(
    private readonly vm: Vm,
    private readonly trace?: (line: string) => void,
  ) {
    if (!vm.vcpuThreads) throw new Error("VcpuThreadRunner needs a VM with vCPU threads (Vm.vcpuThreads)");
    this.initial = new MainThreadVcpu(vm.createVcpu());
    this.vcpu = new CurrentThreadVcpu(this.initial);
    this.spawner = { spawn: (child, sp, tls) => this.spawn(child, sp, tls) };
  }

  /**
   * A new thread: a vCPU of its own in a Worker with the cloning thread's registers, X0 = 0, its stack and TLS.
   * At the first clone the cloning thread's vCPU moves into a Worker too: this thread must be free to take
   * every vCPU's exits, and a vCPU can only run on the thread that created it.
   */
  private spawn(child: ThreadState, sp: bigint, tls: bigint | null): number | undefined {
    const parent = this.vcpu.target; // stopped at its clone (PC past the svc)
    let moved: ConcurrentVcpu | null = null;
    let vcpu: ConcurrentVcpu;
    try {
      moved = parent instanceof MainThreadVcpu ? this.copyIntoWorker(parent) : null;
      vcpu = this.copyIntoWorker(parent);
    } catch (error) {
      // No vCPU slot or Worker to be had: clone fails with EAGAIN, as Linux does at its thread limits.
      moved?.destroy();
      this.trace?.(`[guest] clone: no vCPU for a new thread (${(error as Error).message}): EAGAIN`);
      return -errno.EAGAIN;
    }
    vcpu.setRegister("x0", 0n);
    if (sp !== 0n) vcpu.setRegister("sp", sp);
    if (tls !== null) vcpu.setRegister("tpidr_el0", tls);
    if (moved) {
      this.vcpus.set(this.live.runtime.process.currentThread, moved);
      this.vcpu.target = moved;
      parent.destroy();
    }
    this.vcpus.set(child, vcpu);
    child.run = "runnable";
    return undefined;
  }

  /** A Worker vCPU holding a copy of every register of `source`. */
  private copyIntoWorker(source: ConcurrentVcpu): ConcurrentVcpu {
    this.group ??= this.vm.vcpuThreads!();
    const vcpu = this.group.spawn();
    try {
      for (const name of GENERAL_REGISTER_NAMES) vcpu.setRegister(name, source.getRegister(name));
      for (let q = 0; q < VECTOR_REGISTERS; q++) vcpu.setVector(q, source.getVector(q));
    } catch (error) {
      vcpu.destroy();
      throw error;
    }
    return vcpu;
  }

  /** Run every guest thread until the process ends; every vCPU is destroyed on the way out. */
  run(hooks: ThreadLoopHooks): GuestOutcome {
    this.hooks = hooks;
    if (this.initial) {
      this.vcpus.set(hooks.runtime.process.currentThread, this.initial);
      this.initial = null;
    }
    try {
      for (;;) {
        const ended = this.startRunnable();
        if (ended) return ended;
        const next = this.takeExit();
        if (next) {
          const outcome = this.onExit(next.thread, next.vcpu, next.exit);
          if (outcome) return outcome;
        }
        this.housekeeping();
        if (!this.anyRunning() && !this.anyStartable()) this.idle();
      }
    } finally {
      this.destroy();
    }
  }

  /** Stop and destroy every vCPU (their Workers end). */
  destroy(): void {
    const all = [...this.vcpus.values()];
    if (this.initial) all.push(this.initial);
    this.vcpus.clear();
    this.initial = null;
    for (const vcpu of all) if (vcpu.running) vcpu.requestStop(); // all at once, then wait for each
    let failure: unknown = null;
    for (const vcpu of all) {
      try {
        vcpu.destroy();
      } catch (error) {
        failure ??= error;
      }
    }
    if (failure) throw failure;
  }

  private get live(): ThreadLoopHooks {
    return this.hooks!;
  }

  private select(thread: ThreadState, vcpu: ConcurrentVcpu): void {
    this.live.runtime.process.currentThread = thread;
    this.vcpu.target = vcpu;
  }

  /** Start the vCPU of every runnable thread that is stopped; stop running ones that have a signal to take. */
  private startRunnable(): GuestOutcome | null {
    const { signals, process } = this.live.runtime;
    for (const thread of process.threads.values()) {
      if (thread.run !== "runnable") continue;
      const vcpu = this.vcpus.get(thread);
      if (!vcpu || vcpu.running) continue;
      this.select(thread, vcpu);
      if (this.parked.delete(thread)) this.applyWake(thread, vcpu);
      if (signals.pendingFor(thread) !== 0n || thread.savedMask !== null) {
        const outcome = this.live.settle(signals.deliverPending());
        if (outcome) return outcome;
      }
      this.kicked.delete(thread);
      vcpu.start();
    }
    for (const [thread, vcpu] of this.vcpus) {
      if (!vcpu.running || this.kicked.has(thread)) continue;
      if ((signals.pendingFor(thread) & ~thread.blocked) === 0n) continue;
      this.kicked.add(thread);
      vcpu.requestStop();
    }
    return null;
  }

  /** What GuestProcess.resumeThread does for a woken thread: its result in X0, or its call issued again. */
  private applyWake(thread: ThreadState, vcpu: ConcurrentVcpu): void {
    if (thread.restartX0 === null) {
      vcpu.setRegister("x0", BigInt.asUintN(64, BigInt(thread.wakeResult)));
      return;
    }
    vcpu.setRegister("pc", vcpu.getRegister("pc") - 4n);
    vcpu.setRegister("x0", thread.restartX0);
    thread.restartX0 = null;
    this.live.prepareReissue(thread);
  }

  /**
   * The next exit of any running vCPU, or null: then the doorbell was waited on (bounded: deadlines, fds and
   * host signals need this thread too) or nothing runs at all.
   */
  private takeExit(): { thread: ThreadState; vcpu: ConcurrentVcpu; exit: VcpuExit } | null {
    const seen = this.group?.ring ?? 0; // before polling: an exit in between makes the wait return at once
    const entries = [...this.vcpus];
    let running = false;
    for (let i = 0; i < entries.length; i++) {
      const at = (this.cursor + i) % entries.length;
      const [thread, vcpu] = entries[at]!;
      if (!vcpu.running) continue;
      running = true;
      const exit = vcpu.poll();
      if (exit) {
        this.cursor = at + 1;
        return { thread, vcpu, exit };
      }
    }
    if (!running || !this.group) return null;
    const budget = Math.min(
      this.fdWaiters ? FD_CHECK_MS : SIGNAL_CHECK_MS,
      this.earliestDeadline - performance.now(),
    );
    this.group.waitForRing(seen, budget);
    return null;
  }

  private onExit(thread: ThreadState, vcpu: ConcurrentVcpu, exit: VcpuExit): GuestOutcome | null {
    this.select(thread, vcpu);
    const { signals } = this.live.runtime;
    switch (exit.kind) {
      case "syscall":
        return this.onSyscall(thread, vcpu);
      case "stopped":
        return null; // stopped for a signal: startRunnable delivers it as the thread starts again
      case "backend-error":
        throw new Error(exit.message);
      default: {
        const info = this.live.exceptionSignal(exit);
        return info === null ? null : this.live.settle(signals.deliverFault(info));
      }
    }
  }

  private onSyscall(thread: ThreadState, stopped: ConcurrentVcpu): GuestOutcome | null {
    const { runtime, space } = this.live;
    const result = runtime.dispatch(stopped.syscallFrame);
    space.commit();
    const vcpu = this.vcpu.target; // the same, unless a first clone just moved this thread into a Worker
    if (typeof result !== "object") {
      vcpu.setRegister("x0", BigInt.asUintN(64, BigInt(result)));
    } else {
      switch (result.control) {
        case "exit":
          return { kind: "exited", status: result.status };
        case "bad-signal-frame":
          return this.live.killedBy(sig.SIGSEGV, "rt_sigreturn found no valid signal frame");
        case "fatal-signal":
          return this.live.killedBy(result.signal, result.detail);
        case "switch-thread":
          // Parked (or yielded, or gone): its vCPU stays stopped here until the thread runs again.
          this.reapExited();
          if (this.vcpus.has(thread)) this.parked.add(thread);
          return null;
        case "restart-syscall":
          vcpu.setRegister("pc", vcpu.getRegister("pc") - 4n); // back onto the svc, X0 as it was
          break;
        default:
          // rt_sigreturn and execve set the registers themselves; execve also ended the other threads.
          this.reapExited();
      }
    }
    const { signals } = runtime;
    if (signals.pendingFor(thread) !== 0n || thread.savedMask !== null)
      return this.live.settle(signals.deliverPending());
    return null;
  }

  /** Threads gone from the process (exit, execve's de_thread): their vCPUs and Workers go too. */
  private reapExited(): void {
    const live = new Set(this.live.runtime.process.threads.values());
    for (const [thread, vcpu] of this.vcpus) {
      if (live.has(thread)) continue;
      this.vcpus.delete(thread);
      this.parked.delete(thread);
      this.kicked.delete(thread);
      vcpu.destroy(); // stops it first if it was running
    }
  }

  /**
   * Between exits: host signals in, parked threads whose deadline passed or whose fd is ready woken, signals
   * interrupting parked threads' waits.
   */
  private housekeeping(): void {
    const { runtime } = this.live;
    const process = runtime.process;
    runtime.pullHostSignals();
    const now = performance.now();
    let earliest = Number.POSITIVE_INFINITY;
    let fdWaiters = false;
    for (const thread of process.threads.values()) {
      if (thread.run !== "blocked") continue;
      if (thread.waitPoll !== null) fdWaiters = true;
      if (thread.deadline <= 0) continue;
      // A deadline ends the wait with the result set when it parked (a ppoll/pselect6 is issued again).
      if (thread.deadline <= now) thread.wake(thread.restartAtDeadline ? null : thread.wakeResult);
      else earliest = Math.min(earliest, thread.deadline);
    }
    if (fdWaiters) pollBlockedThreads(process, sharedHost(), 0);
    this.live.interruptForSignals();
    this.earliestDeadline = earliest;
    this.fdWaiters = fdWaiters;
  }

  private anyRunning(): boolean {
    for (const vcpu of this.vcpus.values()) if (vcpu.running) return true;
    return false;
  }

  private anyStartable(): boolean {
    for (const thread of this.live.runtime.process.threads.values()) {
      if (thread.run === "runnable" && this.vcpus.get(thread)?.running === false) return true;
    }
    return false;
  }

  /** Every thread is parked: sleep until an fd is ready, the earliest deadline, or a host signal. */
  private idle(): void {
    const { runtime } = this.live;
    const wait = this.earliestDeadline - performance.now();
    if (this.fdWaiters) pollBlockedThreads(runtime.process, sharedHost(), wait);
    else if (wait !== Number.POSITIVE_INFINITY) runtime.hostSignals.waitFor(wait);
    else runtime.hostSignals.waitForAny(); // each waits for another: only a signal can end it, as on Linux
  }
}
