/**
 * One guest process: loads a static aarch64 ELF into a fresh VM, builds its initial stack, and runs the
 * exit loop. Syscalls are dispatched in place from the backend (no run() round trip); run() returns only
 * for faults, undefined instructions, breakpoints and exit.
 */
import { statSync, writeSync } from "node:fs";
import type { Backend, GeneralRegister, Vcpu, VcpuExit, Vm } from "@guest/hvf-bindings";
import { SYSCALL_LEAVE, SYSCALL_RESUME } from "@guest/hvf-bindings";
import {
  buildInitialStack,
  DEFAULT_HWCAP,
  DEFAULT_HWCAP2,
  ElfError,
  type LoadPlan,
  parseElf,
  pieLoadBias,
  planLoad,
  type StackString,
  writeSegments,
} from "@guest/loader";
import {
  AddressSpace,
  applyThreadAffinity,
  createGuestRuntime,
  type DeliveryOutcome,
  type ExecProgram,
  errno,
  type GuestRuntime,
  hostFork,
  PROT_EXEC,
  PROT_READ,
  PROT_WRITE,
  pollBlockedThreads,
  SIGNAL_NAMES,
  type SignalInfo,
  sharedHost,
  signalFrameAbi as sig,
  signalAbi,
} from "@guest/syscalls";
import {
  GUEST_MEMORY_SIZE,
  MMAP_BASE,
  MMAP_MIN_ADDR,
  PIE_LOAD_BASE,
  RESERVED_START,
  STACK_SIZE,
  STACK_TOP,
  VDSO_BASE,
} from "./layout.ts";
import { VcpuThreadRunner } from "./vcpu-threads.ts";

export interface GuestOptions {
  backend: Backend;
  /** Host path of the executable (already checked to exist). */
  executablePath: string;
  /** The bytes of the executable. */
  executable: Uint8Array;
  argv: string[];
  envp: string[];
  /** The filename execve would get (AT_EXECFN): the path as typed, or the PATH-resolved one. */
  execfn: string;
  /** strace-style syscall log sink (one line, no newline). */
  trace?: (line: string) => void;
  /** This host process is the guest process (the CLI): its signals are the guest's (see GuestRuntimeOptions). */
  ownsProcess?: boolean;
}

/** How the guest ended. */
export type GuestOutcome =
  | { kind: "exited"; status: number }
  | { kind: "signaled"; signal: number; detail: string };

export function outcomeToExitCode(outcome: GuestOutcome): number {
  return outcome.kind === "exited" ? outcome.status & 0xff : 128 + outcome.signal;
}

/** A program to load: at start-up and at every execve. */
interface ProgramToLoad {
  /** Host path of the ELF file (its mappings are named after it). */
  path: string;
  bytes: Uint8Array;
  argv: readonly StackString[];
  envp: readonly StackString[];
  /** AT_EXECFN. */
  execfn: StackString;
}

/**
 * Translated blocks a guest thread runs before another runnable thread gets the engine (a block is a few
 * instructions: roughly a millisecond of guest code). Only once the process has had a second thread.
 */
const TIME_SLICE_BLOCKS = 100_000;

/** Every general register execve zeroes (start_thread: memset(regs, 0); TLS and FP control cleared too). */
const ZEROED_AT_EXEC: readonly GeneralRegister[] = [
  ...Array.from({ length: 31 }, (_, i) => `x${i}` as GeneralRegister),
  "nzcv",
  "tpidr_el0",
  "tpidrro_el0",
  "fpcr",
  "fpsr",
];
const ZERO_VECTOR = new Uint8Array(16);
/** Signals a guest's own instructions raise (faults, traps): never asynchronous, no interrupt needed. */
const SYNCHRONOUS_SIGNALS = new Set([
  sig.SIGSEGV,
  sig.SIGBUS,
  sig.SIGILL,
  sig.SIGFPE,
  sig.SIGTRAP,
  signalAbi.SIGSYS,
]);

export class GuestProcess {
  readonly vm: Vm;
  readonly vcpu: Vcpu;
  readonly space: AddressSpace;
  readonly runtime: GuestRuntime;
  /** A VM whose vCPUs cannot share one engine (Hypervisor.framework): a vCPU per guest thread (vcpu-threads.ts). */
  private readonly vcpuThreads: VcpuThreadRunner | null = null;

  constructor(private readonly options: GuestOptions) {
    const load = this.prepare({
      path: options.executablePath,
      bytes: options.executable,
      argv: options.argv,
      envp: options.envp,
      execfn: options.execfn,
    });
    this.vm = options.backend.createVm({ memorySize: GUEST_MEMORY_SIZE });
    try {
      this.space = new AddressSpace(this.vm, {
        mmapMin: MMAP_MIN_ADDR,
        mmapBase: MMAP_BASE,
        reservedStart: RESERVED_START,
      });
      if (this.vm.vcpuThreads) this.vcpuThreads = new VcpuThreadRunner(this.vm, options.trace);
      this.vcpu = this.vcpuThreads ? this.vcpuThreads.vcpu : this.vm.createVcpu();
      this.runtime = createGuestRuntime({
        space: this.space,
        memory: this.vm.memory,
        exePath: options.executablePath,
        registers: this.vcpu,
        trace: options.trace,
        exec: (program) => this.prepareExec(program),
        fork: { fork: () => this.forkHost() },
        threads: this.vcpu.saveContext
          ? {
              spawn: (child, sp, tls) => {
                // The parent's registers at its svc (PC past it); X0, SP and TPIDR are the child's on first run.
                child.context = this.vcpu.saveContext!();
                child.start = { sp, tls };
                child.run = "runnable";
                this.enableTimeSlices();
                return undefined;
              },
            }
          : this.vcpuThreads?.spawner,
        catchHostSignals: options.ownsProcess ?? false,
      });
      load();
    } catch (error) {
      this.vcpuThreads?.destroy();
      this.vm.destroy();
      throw error;
    }
  }

  /**
   * Check and plan `program` (throws ElfError) without touching the VM; the returned function loads it into
   * an empty address space. Start-up and execve both go through here.
   */
  private prepare(program: ProgramToLoad): () => void {
    const image = parseElf(program.bytes);
    // Static-PIE lands at PIE_LOAD_BASE (rounded up to its segment alignment); ET_EXEC at its own addresses.
    const plan = planLoad(image, {
      loadBias: image.isPie ? pieLoadBias(image, PIE_LOAD_BASE) : 0,
      minAddress: MMAP_MIN_ADDR,
      maxAddress: STACK_TOP - STACK_SIZE,
    });
    return () => this.load(program, plan);
  }

  /** execve's loader: an ELF the loader refuses (PT_INTERP included) is ENOEXEC, said so under --trace. */
  private prepareExec(program: ExecProgram): (() => void) | number {
    try {
      return this.prepare({
        path: program.path,
        bytes: program.bytes,
        argv: program.argv,
        envp: program.envp,
        execfn: program.filename,
      });
    } catch (error) {
      if (!(error instanceof ElfError)) throw error;
      this.options.trace?.(`[guest] execve: ${program.path}: ${error.message}: ENOEXEC`);
      return -errno.ENOEXEC;
    }
  }

  private timeSlices = false;
  private blockHook = false;

  /** Preemption for guest threads: a time slice counted in translated blocks (see Vcpu.setTimeSlice). */
  private enableTimeSlices(): void {
    if (this.timeSlices || !this.vcpu.setTimeSlice) return;
    this.timeSlices = true;
    this.installBlockHook(TIME_SLICE_BLOCKS);
    this.enableAsyncSignals();
  }

  /** The block hook, with `blocks` per slice (0: none). Blocks translated before it lack its call: the
   * guest's executable code is invalidated once. */
  private installBlockHook(blocks: number): void {
    this.vcpu.setTimeSlice!(blocks);
    if (this.blockHook) return;
    this.blockHook = true;
    for (const region of this.space.regions.toArray()) {
      if (region.prot & PROT_EXEC) this.vm.invalidateCode(region.start, region.end - region.start);
    }
  }

  private asyncSignals = false;
  private seenActionsVersion = -1;

  /**
   * Signals reach a guest running code without syscalls at once (its next block boundary), as on Linux: the
   * host-signal bridge sets the vCPU's interrupt word. Costs the block hook's call per block, so only once a
   * handler could need it (a handler for a signal that can arrive asynchronously) or threads exist.
   */
  private enableAsyncSignals(): void {
    if (this.asyncSignals || !this.runtime.hostSignals.active) return;
    if (!this.vcpu.interruptWord || !this.vcpu.setTimeSlice) return;
    this.asyncSignals = true;
    if (!this.blockHook) this.installBlockHook(0);
    this.runtime.hostSignals.setInterruptWord(this.vcpu.interruptWord());
  }

  /** After rt_sigaction: a handler for an asynchronous signal turns asynchronous delivery on. */
  private noticeHandlers(): void {
    const actions = this.runtime.process.signalActions;
    this.seenActionsVersion = actions.version;
    if (this.asyncSignals) return;
    for (let signal = 1; signal <= 64; signal++) {
      if (SYNCHRONOUS_SIGNALS.has(signal)) continue;
      if (actions.handler(signal) > 1n) {
        this.enableAsyncSignals();
        return;
      }
    }
  }

  /** True in a process made by the guest's fork (its end is the host process's end: see main.ts). */
  forkedChild = false;

  /**
   * fork for the guest: the host's fork of this whole runtime. Guest memory is a private mapping of this
   * process, so the child gets it copy-on-write from the host kernel; the engine, page tables, region tracker,
   * fd table and signal state are plain memory and come along. A VM whose state is partly outside process
   * memory (Hypervisor.framework's: it belongs to the process that created it) is carried over by the Vm fork
   * hooks: prepareFork saves its vCPU registers (or says why it cannot: ENOSYS), the child rebuilds the VM
   * before anything else touches it, the parent drops the saved state.
   */
  private forkHost(): number {
    const vm = this.vm;
    if (!vm.forkable) {
      this.options.trace?.("[guest] fork: the backend's VM cannot be inherited by a child process: ENOSYS");
      return -errno.ENOSYS;
    }
    const refused = vm.prepareFork?.() ?? null;
    if (refused !== null) {
      this.options.trace?.(`[guest] fork: ${refused}: ENOSYS`);
      return -errno.ENOSYS;
    }
    const changes = this.space.prepareFork();
    const pid = hostFork();
    if (pid === 0) {
      this.forkedChild = true;
      vm.afterForkInChild?.();
      this.space.afterForkInChild(changes);
    } else {
      vm.afterForkInParent?.();
    }
    return pid;
  }

  /** Map the planned image, [vdso] and the stack into the (empty) address space; set the entry registers. */
  private load(program: ProgramToLoad, plan: LoadPlan): void {
    const { space, vm, vcpu } = this;
    // Each mapping is a private file mapping of the executable up to the end of its file-backed bytes (as
    // /proc/self/maps shows it: device, inode, offset, path); the rest (BSS pages past the file) is anonymous.
    // Mapped writable first so the loader can copy; the segment's own prot is applied right after.
    const identity = fileIdentity(program.path);
    for (const mapping of plan.mappings) {
      const segment = plan.segments.find(
        (candidate) => candidate.end > mapping.start && candidate.start < mapping.end,
      );
      const fileEnd = segment
        ? Math.min(mapping.end, pageUp(segment.vaddr + segment.fileSize))
        : mapping.start;
      const fileOffset = segment ? segment.fileOffset - (segment.vaddr - mapping.start) : 0;
      const pieces: Array<[number, number, boolean]> = [
        [mapping.start, Math.max(mapping.start, fileEnd), true],
        [Math.max(mapping.start, fileEnd), mapping.end, false],
      ];
      for (const [start, end, fromFile] of pieces) {
        if (end <= start) continue;
        const mapped = space.mapFixed({
          start,
          length: end - start,
          prot: PROT_READ | PROT_WRITE,
          file: fromFile && identity ? { ...identity, offset: fileOffset } : undefined,
          name: fromFile ? program.path : undefined,
        });
        if (mapped < 0) throw new Error(`cannot map the image at 0x${start.toString(16)} (errno ${-mapped})`);
      }
    }
    writeSegments(plan, program.bytes, vm.memory.bytes);
    for (const segment of plan.mappings) {
      const result = space.mprotect(segment.start, segment.end - segment.start, segment.prot);
      if (result < 0)
        throw new Error(`cannot protect segment at 0x${segment.start.toString(16)} (errno ${-result})`);
    }
    space.initBrk(plan.imageEnd);

    this.mapVdso();

    const stackBottom = STACK_TOP - STACK_SIZE;
    const stack = space.mapFixed({
      start: stackBottom,
      length: STACK_SIZE,
      prot: PROT_READ | PROT_WRITE,
      name: "[stack]",
      growsDown: true,
    });
    if (stack < 0) throw new Error(`cannot map the stack (errno ${-stack})`);
    space.commit();

    const random = crypto.getRandomValues(new Uint8Array(16));
    const { sp, argStart, argEnd, envStart, envEnd } = buildInitialStack({
      memory: vm.memory.bytes,
      stackTop: STACK_TOP,
      argv: program.argv,
      envp: program.envp,
      execfn: program.execfn,
      phdr: plan.phdrAddress,
      phent: plan.phent,
      phnum: plan.phnum,
      entry: plan.entry,
      base: 0,
      pagesz: 4096,
      uid: process.getuid?.() ?? 0,
      euid: process.geteuid?.() ?? 0,
      gid: process.getgid?.() ?? 0,
      egid: process.getegid?.() ?? 0,
      secure: false,
      hwcap: DEFAULT_HWCAP,
      hwcap2: DEFAULT_HWCAP2,
      clktck: 100,
      platform: "aarch64",
      random,
    });
    // Translated code: every executable page of the new image was invalidated as it became executable (mapFixed
    // and mprotect queue it; commit() sent it), which at execve covers whatever the old program left cached
    // there. A whole-space invalidateCode(0, …) cannot be used mid-run: Unicorn translates the start address
    // first, and address 0 is unmapped (the fetch fault would abort the syscall).
    this.runtime.process.setArgsArea({ argStart, argEnd, envStart, envEnd, startStack: sp });
    for (const name of ZEROED_AT_EXEC) vcpu.setRegister(name, 0n);
    for (let i = 0; i < 32; i++) vcpu.setVector(i, ZERO_VECTOR);
    vcpu.setRegister("sp", BigInt(sp));
    vcpu.setRegister("pc", BigInt(plan.entry));
  }

  /**
   * The [vdso] page. For now it holds only the rt_sigreturn trampoline that signal handlers return through
   * (AT_SYSINFO_EHDR is not passed: there is no vDSO ELF image yet, so libc uses the syscalls directly).
   */
  private mapVdso(): void {
    const result = this.space.mapFixed({
      start: VDSO_BASE,
      length: 4096,
      prot: PROT_READ | PROT_EXEC,
      name: "[vdso]",
    });
    if (result < 0) throw new Error(`cannot map [vdso] (errno ${-result})`);
    const code = new DataView(this.vm.memory.bytes.buffer, VDSO_BASE, 8);
    code.setUint32(0, 0xd2801168, true); // mov x8, #139 (rt_sigreturn)
    code.setUint32(4, 0xd4000001, true); // svc #0
    this.runtime.signals.sigreturnTrampoline = BigInt(VDSO_BASE);
  }

  /** Run to completion. */
  run(): GuestOutcome {
    if (this.vcpuThreads) return this.runThreads(this.vcpuThreads);
    const { vcpu, runtime, space } = this;
    const signals = runtime.signals;
    const frame = vcpu.syscallFrame;
    vcpu.setSyscallHandler(() => {
      const result = runtime.dispatch(frame);
      space.commit();
      if (typeof result === "number") {
        frame[0] = result >>> 0;
        frame[1] = result < 0 ? 0xffffffff : Math.floor(result / 0x1_0000_0000) >>> 0;
      } else if (typeof result === "bigint") {
        frame[0] = Number(result & 0xffffffffn);
        frame[1] = Number((result >> 32n) & 0xffffffffn);
      } else if (result.control === "exit") {
        // A forked child that owns its host process ends right here (_exit), as main() would after unwinding
        // the run: that unwinding is code only children run, compiled anew in each at the price of
        // copy-on-write faults (see packages/syscalls/src/proc/fork-warmup.ts). The raw symbol, not hostExit():
        // the parent never ran that either.
        if (this.forkedChild && this.options.ownsProcess) sharedHost().sym.host_exit(result.status);
        this.outcome = { kind: "exited", status: result.status };
        return SYSCALL_LEAVE;
      } else if (result.control === "bad-signal-frame") {
        this.outcome = this.killedBy(sig.SIGSEGV, "rt_sigreturn found no valid signal frame");
        return SYSCALL_LEAVE;
      } else if (result.control === "fatal-signal") {
        this.outcome = this.killedBy(result.signal, result.detail);
        return SYSCALL_LEAVE;
      } else if (result.control === "switch-thread") {
        // Another guest thread runs next: leave the run with PC past the svc; X0 is set when this one resumes.
        this.pendingSwitch = true;
        return SYSCALL_LEAVE;
      } else if (result.control === "restart-syscall") {
        // Back onto the svc with X0 as it was (the frame still holds it): the handler's return re-issues it.
        vcpu.setRegister("pc", vcpu.getRegister("pc") - 4n);
      } else {
        // rt_sigreturn and execve set every register: X0 too, and the core writes X0 from the frame.
        this.setFrameX0(vcpu.getRegister("x0"));
      }
      if (runtime.process.signalActions.version !== this.seenActionsVersion) this.noticeHandlers();
      if (signals.anyPending || runtime.process.currentThread.savedMask !== null)
        return this.deliverAtSyscallReturn();
      return SYSCALL_RESUME;
    });
    try {
      for (;;) {
        const exit = vcpu.run();
        if (this.outcome) return this.outcome;
        switch (exit.kind) {
          case "stopped":
          case "syscall":
            if (exit.kind === "stopped" && exit.preempted && runtime.process.threads.size > 1) {
              // Its time slice ran out in user code: the next runnable thread gets the engine.
              runtime.process.currentThread.preempted = true;
              this.pendingSwitch = true;
            }
            if (this.pendingSwitch) {
              this.switchThread();
              if (signals.pendingFor(runtime.process.currentThread) !== 0n) signals.anyPending = true;
            }
            // A signal pending from a syscall that left the run (or from a fault): deliver it now.
            runtime.pullHostSignals();
            if (signals.anyPending) this.outcome = this.settle(signals.deliverPending());
            if (this.outcome) return this.outcome;
            continue;
          case "fault":
          case "undefined-instruction":
          case "breakpoint": {
            const info = this.exceptionSignal(exit);
            if (info === null) continue; // the file grew over this page: run the instruction again
            this.outcome = this.settle(signals.deliverFault(info));
            break;
          }
          case "backend-error":
            throw new Error(exit.message);
        }
        if (this.outcome) return this.outcome;
      }
    } finally {
      vcpu.setSyscallHandler(null);
    }
  }

  /** Every guest thread on a vCPU of its own, all running at once; the scheduling decisions are shared with run(). */
  private runThreads(runner: VcpuThreadRunner): GuestOutcome {
    return runner.run({
      runtime: this.runtime,
      space: this.space,
      interruptForSignals: () => this.interruptForSignals(),
      prepareReissue: (thread) => this.prepareReissue(thread),
      settle: (outcome) => this.settle(outcome),
      killedBy: (signal, detail) => this.killedBy(signal, detail),
      exceptionSignal: (exit) => this.exceptionSignal(exit),
    });
  }

  private outcome: GuestOutcome | null = null;
  /** The syscall just handled stopped the current guest thread: another one runs before the guest resumes. */
  private pendingSwitch = false;

  /**
   * Cooperative scheduling of the process's guest threads on this vCPU (packages/syscalls/src/proc/threads.ts):
   * save the stopped thread's registers, then run the next runnable one in round-robin order. With none
   * runnable, sleep until the earliest deadline (a futex timeout or a nanosleep), or until a host signal.
   */
  private switchThread(): void {
    this.pendingSwitch = false;
    const process = this.runtime.process;
    const current = process.currentThread;
    if (process.threads.get(current.tid) === current) {
      current.context?.free();
      current.context = this.vcpu.saveContext!();
    }
    const host = sharedHost();
    pollBlockedThreads(process, host, 0); // threads waiting on fds that are ready by now
    for (;;) {
      this.interruptForSignals();
      const next = this.nextRunnable(current.tid);
      if (next) {
        this.resumeThread(next);
        return;
      }
      let earliest = Number.POSITIVE_INFINITY;
      let fdWaiters = false;
      for (const thread of process.threads.values()) {
        if (thread.run === "blocked" && thread.deadline > 0) earliest = Math.min(earliest, thread.deadline);
        if (thread.run === "blocked" && thread.waitPoll !== null) fdWaiters = true;
      }
      if (fdWaiters) {
        // Until an fd is ready, the earliest deadline, or a host signal (which interrupts the host ppoll).
        pollBlockedThreads(process, host, earliest - performance.now());
        this.runtime.pullHostSignals();
      } else if (earliest !== Number.POSITIVE_INFINITY) {
        const wait = earliest - performance.now();
        if (wait > 0) Bun.sleepSync(wait);
      }
      if (earliest !== Number.POSITIVE_INFINITY) {
        const now = performance.now();
        for (const thread of process.threads.values()) {
          // The result set when it blocked: -ETIMEDOUT for a futex, 0 for a sleep or a timed fd wait (not re-issued).
          if (thread.run === "blocked" && thread.deadline > 0 && thread.deadline <= now)
            thread.wake(thread.restartAtDeadline ? null : thread.wakeResult);
        }
      }
      if (fdWaiters || earliest !== Number.POSITIVE_INFINITY) continue;
      // Every thread waits for another: only a signal can end that (Linux would wait forever too).
      this.runtime.hostSignals.waitForAny();
      this.runtime.pullHostSignals();
    }
  }

  /**
   * A signal for a blocked thread interrupts its wait (EINTR), so its handler can run. A signal for the process
   * (shared) interrupts one thread at most, and none if a runnable thread can take it (complete_signal). A
   * thread in rt_sigtimedwait for a pending signal takes it.
   */
  private interruptForSignals(): void {
    const process = this.runtime.process;
    let shared = process.sharedPending;
    for (const thread of process.threads.values()) {
      if (thread.run === "runnable") shared &= thread.blocked;
    }
    for (const thread of process.threads.values()) {
      if (thread.run !== "blocked") continue;
      if (thread.waitSignals & (thread.pending | process.sharedPending)) {
        thread.wake(null); // rt_sigtimedwait: it issues the call again, which takes the signal
      } else if (thread.waitChildEvents >= 0 && thread.waitChildEvents !== process.childEvents) {
        thread.wake(null); // wait4/waitid: a child changed state, it looks again
      } else if (thread.pending & ~thread.blocked || shared & ~thread.blocked) {
        const deliverable = (thread.pending | shared) & ~thread.blocked;
        shared &= thread.blocked;
        if (thread.writeDone > 0) {
          // A pipe write that wrote part of its bytes returns that count (Linux never restarts it).
          const written = thread.writeDone;
          thread.writeDone = 0;
          thread.wake(written);
          continue;
        }
        // With SA_RESTART, a restartable call is issued again after the handler (its frame holds the svc).
        thread.wake(thread.restartable && this.restartsAfter(deliverable) ? null : -errno.EINTR);
      }
    }
  }

  /** The lowest of `signals` (the one delivered first) has a handler with SA_RESTART. */
  private restartsAfter(signals: bigint): boolean {
    let signal = 1;
    while (!(signals & (1n << BigInt(signal - 1)))) signal++;
    const actions = this.runtime.process.signalActions;
    return actions.handler(signal) > 1n && (actions.flags(signal) & BigInt(sig.SA_RESTART)) !== 0n;
  }

  /** The first runnable thread after `tid` in creation order, wrapping around (`tid` itself last). */
  private nextRunnable(tid: number) {
    const threads = [...this.runtime.process.threads.values()];
    const at = threads.findIndex((thread) => thread.tid === tid);
    for (let i = 1; i <= threads.length; i++) {
      const thread = threads[(at + i) % threads.length]!; // at = -1 (an exited thread): from the first
      if (thread.run === "runnable") return thread;
    }
    return undefined;
  }

  private resumeThread(thread: ReturnType<GuestProcess["nextRunnable"]> & object): void {
    const { vcpu } = this;
    const previous = this.runtime.process.currentThread;
    // The host thread's CPU affinity is the running guest thread's (sched_setaffinity is per thread).
    if (thread.affinity !== previous.affinity) applyThreadAffinity(sharedHost(), thread);
    this.runtime.process.currentThread = thread;
    vcpu.restoreContext!(thread.context!);
    if (thread.preempted) {
      thread.preempted = false; // resumes exactly where its slice ended
    } else if (thread.restartX0 !== null) {
      // It blocked in a call that it now issues again: back onto its svc, X0 as it was, with its own mask
      // (a ppoll/pselect6 sets its temporary one again) and the time it has left.
      vcpu.setRegister("pc", vcpu.getRegister("pc") - 4n);
      vcpu.setRegister("x0", thread.restartX0);
      thread.restartX0 = null;
      this.prepareReissue(thread);
    } else if (thread.start) {
      vcpu.setRegister("x0", 0n);
      if (thread.start.sp !== 0n) vcpu.setRegister("sp", thread.start.sp);
      if (thread.start.tls !== null) vcpu.setRegister("tpidr_el0", thread.start.tls);
      thread.start = null;
    } else {
      vcpu.setRegister("x0", BigInt.asUintN(64, BigInt(thread.wakeResult)));
    }
  }

  private prepareReissue(thread: ReturnType<GuestProcess["nextRunnable"]> & object): void {
    if (thread.restartAtDeadline && thread.savedMask !== null) {
      thread.blocked = thread.savedMask;
      thread.savedMask = null;
    }
    if (thread.rewriteTimeout !== 0) {
      const left = Math.max(0, thread.restartDeadline - performance.now());
      const seconds = Math.floor(left / 1000);
      const nanoseconds = Math.floor((left - seconds * 1000) * 1e6);
      const memory = this.runtime.memory;
      if (memory.check(thread.rewriteTimeout, 16, true)) {
        memory.writeU64(thread.rewriteTimeout, seconds);
        memory.writeU64(thread.rewriteTimeout + 8, nanoseconds);
      }
    }
    thread.restartAtDeadline = false;
    thread.rewriteTimeout = 0;
    thread.restartDeadline = 0;
  }

  private setFrameX0(value: bigint): void {
    const frame = this.vcpu.syscallFrame;
    frame[0] = Number(value & 0xffffffffn);
    frame[1] = Number((value >> 32n) & 0xffffffffn);
  }

  /**
   * A signal became deliverable during the syscall (kill/raise to self, a mask that unblocked one): the
   * interrupted state is "the syscall returned X0", so X0 goes to the register before the frame is built.
   */
  private deliverAtSyscallReturn(): number {
    const frame = this.vcpu.syscallFrame;
    this.vcpu.setRegister("x0", (BigInt(frame[1]!) << 32n) | BigInt(frame[0]!));
    const outcome = this.runtime.signals.deliverPending();
    const settled = this.settle(outcome);
    if (settled) {
      this.outcome = settled;
      return SYSCALL_LEAVE;
    }
    // The handler's registers are set; the core writes X0 (now the signal number) from the frame.
    this.setFrameX0(this.vcpu.getRegister("x0"));
    return SYSCALL_RESUME;
  }

  /** Turn a delivery outcome into the end of the process, or null to keep running. */
  private settle(outcome: DeliveryOutcome): GuestOutcome | null {
    if (outcome.kind === "terminate")
      return this.killedBy(outcome.signal, outcome.core ? "core dumped" : "terminated");
    if (outcome.kind === "stop") {
      // Default action of SIGSTOP/SIGTSTP/SIGTTIN/SIGTTOU: stop for real, so a shell's job control sees it.
      process.kill(process.pid, "SIGSTOP");
      return null;
    }
    return null;
  }

  /**
   * The signal a guest exception raises: SIGSEGV/SIGBUS for a fault, SIGILL for an undefined instruction,
   * SIGTRAP for brk; null when the instruction should simply run again (a file grew over the page).
   */
  exceptionSignal(exit: VcpuExit): SignalInfo | null {
    if (exit.kind === "undefined-instruction")
      return { signal: sig.SIGILL, code: sig.ILL_ILLOPC, address: exit.pc };
    if (exit.kind === "breakpoint") return { signal: sig.SIGTRAP, code: sig.TRAP_BRKPT, address: exit.pc };
    if (exit.kind !== "fault") throw new Error(`not a guest exception: ${exit.kind}`);
    const bus = this.space.resolveBusFault(exit.address);
    if (bus === "retry") return null;
    if (bus === "sigbus") return { signal: sig.SIGBUS, code: sig.BUS_ADRERR, address: exit.address };
    return this.faultInfo(exit.address, exit.access, exit.mapped);
  }

  /** SIGSEGV for an access Linux would fault: MAPERR where nothing is mapped, ACCERR where the mapping forbids it. */
  private faultInfo(address: number, access: "read" | "write" | "exec", mapped: boolean): SignalInfo {
    const region = this.space.regions.find(address);
    const inRegion = region !== undefined && region.start <= address;
    // A guard page is a fault with nothing behind it (a PTE marker): SEGV_MAPERR, as on Linux.
    const guard = inRegion && region.mayHoldGuards && this.space.tables.isGuard(address - (address % 4096));
    const code = (inRegion || mapped) && !guard ? sig.SEGV_ACCERR : sig.SEGV_MAPERR;
    const fsc = code === sig.SEGV_ACCERR ? sig.FSC_PERMISSION_L3 : sig.FSC_TRANSLATION_L3;
    const esr =
      access === "exec"
        ? (sig.ESR_EC_IABT_LOWER << 26) | sig.ESR_IL | fsc
        : (sig.ESR_EC_DABT_LOWER << 26) | sig.ESR_IL | (access === "write" ? sig.ESR_WNR : 0) | fsc;
    return { signal: sig.SIGSEGV, code, address, esr: esr >>> 0 };
  }

  private killedBy(signal: number, detail: string): GuestOutcome {
    this.runtime.releaseRobustLists(); // as every exit does, so a process-shared robust mutex is not lost
    const name = SIGNAL_NAMES[signal] ?? `signal ${signal}`;
    const where =
      signal === sig.SIGSEGV || signal === sig.SIGBUS
        ? `, pc 0x${this.vcpu.getRegister("pc").toString(16)}`
        : "";
    this.options.trace?.(`--- ${name} (${detail}${where}) ---`);
    this.options.trace?.(`+++ killed by ${name} +++`);
    return { kind: "signaled", signal, detail: `${detail}${where}` };
  }

  destroy(): void {
    this.runtime.close();
    this.vcpuThreads?.destroy();
    this.vm.destroy();
  }
}

/**
 * Trace lines go to the runtime's own stderr, which Bun makes non-blocking: a full pipe answers EAGAIN, so
 * wait briefly and retry instead of losing lines or failing the run.
 */
const pageUp = (n: number): number => Math.ceil(n / 4096) * 4096;

/** Device and inode of the executable, for its mappings (null if it cannot be stat'ed, e.g. the built-in demo). */
function fileIdentity(path: string): { dev: number; inode: number; path: string } | null {
  try {
    const stat = statSync(path);
    return { dev: stat.dev, inode: stat.ino, path };
  } catch {
    return null;
  }
}

export function traceToStderr(line: string): void {
  let pending = Buffer.from(`${line}\n`);
  while (pending.length > 0) {
    try {
      pending = pending.subarray(writeSync(2, pending));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EAGAIN") throw error;
      Bun.sleepSync(1);
    }
  }
}
