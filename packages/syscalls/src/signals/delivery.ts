/**
 * Signal delivery as Linux arm64 does it: a `struct rt_sigframe` (siginfo + ucontext with sigcontext, an
 * FPSIMD record and, for faults, an ESR record) built on the thread's stack or its alternate stack, a frame
 * record {x29, x30} above it, and the registers set for the handler (x0 = signo, x1/x2 = info/uc with
 * SA_SIGINFO, sp = frame, x29 = frame record, x30 = sa_restorer, pc = handler). rt_sigreturn undoes it.
 * The thread is process.currentThread; each thread has its own pending set, mask and alternate stack. Signals
 * sent to the process (kill, rt_sigqueueinfo, other processes' signals) wait in the process's shared set for
 * whichever thread does not block them, as Linux's complete_signal() picks one.
 */
import type { GeneralRegister } from "@guest/hvf-bindings";
import type { GuestMemory } from "../memory.ts";
import type { AltStack, ProcessState, ThreadState } from "../process.ts";
import {
  defaultAction,
  ESR_CONTEXT_SIZE,
  ESR_MAGIC,
  FPSIMD,
  FPSIMD_CONTEXT_SIZE,
  FPSIMD_MAGIC,
  FRAME_RECORD_SIZE,
  MINSIGSTKSZ,
  NSIG,
  RT_SIGFRAME_SIZE,
  SA_NODEFER,
  SA_ONSTACK,
  SA_RESETHAND,
  SA_RESTORER,
  SA_SIGINFO,
  SIG_DFL,
  SIG_IGN,
  SIGBUS,
  SIGCONTEXT,
  SIGFPE,
  SIGILL,
  SIGINFO,
  SIGINFO_SIZE,
  SIGKILL,
  SIGRTMIN,
  SIGSEGV,
  SIGSTOP,
  SIGSYS,
  SIGTRAP,
  SS_AUTODISARM,
  SS_DISABLE,
  SS_ONSTACK,
  STACK_T,
  UCONTEXT,
} from "./abi.ts";

const bit = (signal: number): bigint => 1n << BigInt(signal - 1);

/** Faults: dequeued before anything else pending (Linux's SYNCHRONOUS_MASK). */
const SYNCHRONOUS_MASK = [SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGFPE, SIGSYS].reduce((m, s) => m | bit(s), 0n);

/** Linux's next_signal: the synchronous signals of `pending` first, then the lowest number; 0 if none. */
function nextSignal(pending: bigint): number {
  if (pending === 0n) return 0;
  const candidates = pending & SYNCHRONOUS_MASK ? pending & SYNCHRONOUS_MASK : pending;
  let signal = 1;
  while (!(candidates & bit(signal))) signal++;
  return signal;
}

/**
 * Queue `info`; false when nothing is to be marked pending: a standard signal already pending (they do not
 * queue). Real-time signals queue one siginfo per send.
 */
function enqueue(queues: Map<number, SignalInfo[]>, pending: bigint, info: SignalInfo): boolean {
  if (info.signal < SIGRTMIN && pending & bit(info.signal)) return false;
  const queue = queues.get(info.signal);
  if (queue) queue.push(info);
  else queues.set(info.signal, [info]);
  return true;
}

/** The oldest siginfo of `signal` (made up if none was kept) and whether more are queued behind it. */
function take(queues: Map<number, SignalInfo[]>, signal: number): [SignalInfo, boolean] {
  const queue = queues.get(signal);
  const info = queue?.shift() ?? { signal, code: 0 };
  const more = (queue?.length ?? 0) > 0;
  if (!more) queues.delete(signal);
  return [info, more];
}

/** The registers delivery reads and writes (a subset of the backend's Vcpu). */
export interface RegisterAccess {
  getRegister(name: GeneralRegister): bigint;
  setRegister(name: GeneralRegister, value: bigint): void;
  getVector(index: number): Uint8Array;
  setVector(index: number, value: Uint8Array): void;
}

export interface SignalInfo {
  signal: number;
  code: number;
  /** si_addr (faults) */
  address?: number;
  /** si_pid / si_uid (kill, tgkill) */
  pid?: number;
  uid?: number;
  /** si_status (SIGCHLD: exit status or signal of the child) */
  status?: number;
  /** ESR_EL1 for the frame's esr_context (faults only) */
  esr?: number;
  /** The sender's own siginfo (rt_sigqueueinfo): copied into the frame as given, si_signo set. */
  raw?: Uint8Array;
}

export type DeliveryOutcome =
  | { kind: "none" }
  | { kind: "delivered"; signal: number }
  | { kind: "terminate"; signal: number; core: boolean }
  | { kind: "stop"; signal: number };

const UNBLOCKABLE = (1n << BigInt(SIGKILL - 1)) | (1n << BigInt(SIGSTOP - 1));
const GENERAL: GeneralRegister[] = Array.from({ length: 31 }, (_, i) => `x${i}` as GeneralRegister);

/** The guest's siginfo_t for `info` into `out` (SIGINFO_SIZE bytes, zeroed first). */
export function writeSiginfo(out: Uint8Array, info: SignalInfo): void {
  out.fill(0, 0, SIGINFO_SIZE);
  const view = new DataView(out.buffer, out.byteOffset, SIGINFO_SIZE);
  if (info.raw) {
    out.set(info.raw.subarray(0, SIGINFO_SIZE)); // as given by the sender
    view.setInt32(SIGINFO.signo, info.signal, true);
    return;
  }
  view.setInt32(SIGINFO.signo, info.signal, true);
  view.setInt32(SIGINFO.code, info.code, true);
  if (info.address !== undefined) view.setBigUint64(SIGINFO.addr, BigInt(info.address), true);
  else if (info.pid !== undefined) {
    view.setInt32(SIGINFO.pid, info.pid, true);
    view.setUint32(SIGINFO.uid, info.uid ?? 0, true);
    if (info.status !== undefined) view.setInt32(SIGINFO.status, info.status, true);
  }
}

export class SignalDelivery {
  /** The current thread's sigaltstack state: ss_sp, ss_size, and SS_DISABLE / SS_AUTODISARM flags. */
  get altStack(): AltStack {
    return this.thread.altStack;
  }
  set altStack(value: AltStack) {
    this.thread.altStack = value;
  }
  /**
   * siginfo of pending (not yet delivered) signals, by thread and number; the process's shared ones apart. A
   * standard signal has at most one; real-time signals queue, one siginfo per send, delivered in order.
   */
  private readonly threadInfo = new WeakMap<ThreadState, Map<number, SignalInfo[]>>();
  private readonly sharedInfo = new Map<number, SignalInfo[]>();
  /** Cheap hot-path test (a boolean, no BigInt work): some signal is pending, maybe blocked. */
  anyPending = false;
  /**
   * Where handlers return to when sa_restorer is not given: the vDSO's rt_sigreturn trampoline (the arm64
   * kernel never needs SA_RESTORER, and glibc does not set it). 0 until the runtime maps one.
   */
  sigreturnTrampoline = 0n;

  constructor(
    private readonly memory: GuestMemory,
    private readonly process: ProcessState,
    private readonly registers: RegisterAccess,
  ) {}

  private get thread() {
    return this.process.currentThread;
  }

  /** Mark a signal pending for the current thread (kill, tgkill, raise to self). */
  raise(info: SignalInfo): void {
    this.raiseOn(this.thread, info);
  }

  /** Mark a signal pending for one thread of the process (tgkill to another thread: it gets it when it runs). */
  raiseOn(thread: ThreadState, info: SignalInfo): void {
    if (!enqueue(this.infoOf(thread), thread.pending, info)) return;
    thread.pending |= bit(info.signal);
    if (thread === this.thread) this.anyPending = true;
  }

  /**
   * A signal for the process as a whole (kill to our pid, rt_sigqueueinfo, another process's signal): pending
   * in the shared set until a thread that does not block it takes it — the current thread if it can (Linux's
   * wants_signal prefers it), else the first other one, whose wait it interrupts (the scheduler sees it).
   */
  raiseProcess(info: SignalInfo): void {
    const process = this.process;
    if (!enqueue(this.sharedInfo, process.sharedPending, info)) return;
    process.sharedPending |= bit(info.signal);
    this.anyPending = true;
  }

  /**
   * The action of `signal` became one that ignores it (SIG_IGN, or SIG_DFL where the default is to ignore):
   * like do_sigaction, every pending instance goes, the process's and each thread's, blocked or not.
   */
  discardPending(signal: number): void {
    const signalBit = bit(signal);
    const process = this.process;
    process.sharedPending &= ~signalBit;
    this.sharedInfo.delete(signal);
    for (const thread of process.threads.values()) {
      thread.pending &= ~signalBit;
      this.threadInfo.get(thread)?.delete(signal);
    }
    this.anyPending = (this.thread.pending | process.sharedPending) !== 0n;
  }

  private infoOf(thread: ThreadState): Map<number, SignalInfo[]> {
    let map = this.threadInfo.get(thread);
    if (map === undefined) {
      map = new Map();
      this.threadInfo.set(thread, map);
    }
    return map;
  }

  /** Signals pending for `thread`: its own and the process's. */
  pendingFor(thread: ThreadState): bigint {
    return thread.pending | this.process.sharedPending;
  }

  /**
   * Take the lowest pending signal of `set` for the current thread (its own first, then the process's), with
   * its siginfo, or null: what rt_sigtimedwait and delivery dequeue.
   */
  dequeue(set: bigint): SignalInfo | null {
    const thread = this.thread;
    const process = this.process;
    // As Linux's dequeue_signal: the thread's own pending set first, then the process's; in each, the
    // synchronous signals (faults) before the others, then the lowest number.
    let info: SignalInfo | null = null;
    const own = nextSignal(thread.pending & set);
    if (own !== 0) {
      const [taken, more] = take(this.infoOf(thread), own);
      if (!more) thread.pending &= ~bit(own);
      info = taken;
    } else {
      const shared = nextSignal(process.sharedPending & set);
      if (shared === 0) return null;
      const [taken, more] = take(this.sharedInfo, shared);
      if (!more) process.sharedPending &= ~bit(shared);
      info = taken;
    }
    this.anyPending = (thread.pending | process.sharedPending) !== 0n;
    return info;
  }

  /** Is anything pending and not blocked? (cheap: checked after syscalls that can make one deliverable) */
  hasDeliverable(): boolean {
    const thread = this.thread;
    return ((thread.pending | this.process.sharedPending) & ~thread.blocked) !== 0n;
  }

  /** The lowest pending, unblocked signal (the one delivery would take first), or 0. */
  nextDeliverable(): number {
    const thread = this.thread;
    const deliverable = (thread.pending | this.process.sharedPending) & ~thread.blocked;
    if (deliverable === 0n) return 0;
    let signal = 1;
    while (!(deliverable & bit(signal))) signal++;
    return signal;
  }

  /**
   * Deliver every pending, unblocked signal (each handler frame on top of the previous one, as Linux does
   * before returning to user space). Stops at the first one that ends the process.
   */
  deliverPending(): DeliveryOutcome {
    let outcome: DeliveryOutcome = { kind: "none" };
    for (;;) {
      const thread = this.thread;
      const info = this.dequeue(~thread.blocked);
      if (info === null) {
        this.restoreSavedMask();
        return outcome;
      }
      const result = this.dispatch(info);
      if (result.kind === "terminate" || result.kind === "stop") {
        this.restoreSavedMask();
        return result;
      }
      if (result.kind === "delivered") outcome = result;
    }
  }

  /** No (more) handler frames: a temporary mask left by sigsuspend/ppoll/pselect6 gives way to the saved one. */
  private restoreSavedMask(): void {
    const thread = this.thread;
    if (thread.savedMask === null) return;
    thread.blocked = thread.savedMask;
    thread.savedMask = null;
    this.anyPending = (thread.pending | this.process.sharedPending) !== 0n;
  }

  /**
   * A synchronous fault (SIGSEGV, SIGBUS, SIGILL, SIGTRAP): like force_sig_fault, a blocked or ignored signal
   * is unblocked and reset to SIG_DFL first, so it always reaches a handler or kills.
   */
  deliverFault(info: SignalInfo): DeliveryOutcome {
    const thread = this.thread;
    const actions = this.process.signalActions;
    const handler = actions.handler(info.signal);
    if (thread.blocked & bit(info.signal) || handler === SIG_IGN) {
      thread.blocked &= ~bit(info.signal);
      if (handler === SIG_IGN) actions.write(info.signal, SIG_DFL, 0n, 0n, 0n);
    }
    return this.dispatch(info);
  }

  private dispatch(info: SignalInfo): DeliveryOutcome {
    const actions = this.process.signalActions;
    const handler = actions.handler(info.signal);
    if (handler === SIG_IGN) return { kind: "none" };
    if (handler === SIG_DFL) {
      const action = defaultAction(info.signal);
      if (action === "ignore" || action === "continue") return { kind: "none" };
      if (action === "stop") return { kind: "stop", signal: info.signal };
      return { kind: "terminate", signal: info.signal, core: action === "core" };
    }
    if (!this.setupFrame(info)) {
      // The frame could not be written (stack unmapped or full): Linux forces SIGSEGV, which kills.
      return { kind: "terminate", signal: SIGSEGV, core: true };
    }
    return { kind: "delivered", signal: info.signal };
  }

  private onAltStack(sp: bigint): boolean {
    const { sp: base, size, flags } = this.altStack;
    return !(flags & SS_DISABLE) && sp > base && sp - base <= size;
  }

  private setupFrame(info: SignalInfo): boolean {
    const { registers, process } = this;
    const signal = info.signal;
    const actions = process.signalActions;
    const base = signal * 4;
    const handler = actions.table[base]!;
    const flags = Number(actions.table[base + 1]! & 0xffff_ffffn);
    const restorer = actions.table[base + 2]!;
    const mask = actions.table[base + 3]!;

    const sp = registers.getRegister("sp");
    const onAlt = this.onAltStack(sp);
    let top = sp;
    if (flags & SA_ONSTACK && !(this.altStack.flags & SS_DISABLE) && !onAlt)
      top = this.altStack.sp + this.altStack.size;
    const record = (top - BigInt(FRAME_RECORD_SIZE)) & ~15n;
    const frame = record - BigInt(RT_SIGFRAME_SIZE);
    const frameAddress = Number(frame);
    const end = Number(record) + FRAME_RECORD_SIZE;
    if (frame < 0n || !this.memory.check(frameAddress, end - frameAddress, true)) return false;

    const bytes = this.memory.bytes;
    bytes.fill(0, frameAddress, end);
    const view = new DataView(bytes.buffer, bytes.byteOffset + frameAddress, end - frameAddress);
    writeSiginfo(bytes.subarray(frameAddress, frameAddress + SIGINFO_SIZE), info);
    // ucontext
    const uc = SIGINFO_SIZE;
    const altFlags = this.altStack.flags & SS_DISABLE ? SS_DISABLE : onAlt ? SS_ONSTACK : 0;
    view.setBigUint64(uc + UCONTEXT.stack + STACK_T.sp, this.altStack.sp, true);
    view.setInt32(uc + UCONTEXT.stack + STACK_T.flags, altFlags, true);
    view.setBigUint64(uc + UCONTEXT.stack + STACK_T.size, this.altStack.size, true);
    // The mask the handler's return restores: the one a sigsuspend/ppoll replaced, if any (then forgotten).
    view.setBigUint64(uc + UCONTEXT.sigmask, this.thread.savedMask ?? this.thread.blocked, true);
    this.thread.savedMask = null;
    const mc = uc + UCONTEXT.mcontext;
    view.setBigUint64(mc + SIGCONTEXT.faultAddress, BigInt(info.address ?? 0), true);
    for (let i = 0; i < 31; i++)
      view.setBigUint64(mc + SIGCONTEXT.regs + i * 8, registers.getRegister(GENERAL[i]!), true);
    view.setBigUint64(mc + SIGCONTEXT.sp, sp, true);
    view.setBigUint64(mc + SIGCONTEXT.pc, registers.getRegister("pc"), true);
    // EL0t with the condition flags: the only PSTATE state user space has.
    view.setBigUint64(mc + SIGCONTEXT.pstate, registers.getRegister("nzcv") & 0xf000_0000n, true);
    let record_ = mc + SIGCONTEXT.reserved;
    view.setUint32(record_, FPSIMD_MAGIC, true);
    view.setUint32(record_ + 4, FPSIMD_CONTEXT_SIZE, true);
    view.setUint32(record_ + FPSIMD.fpsr, Number(registers.getRegister("fpsr") & 0xffff_ffffn), true);
    view.setUint32(record_ + FPSIMD.fpcr, Number(registers.getRegister("fpcr") & 0xffff_ffffn), true);
    for (let i = 0; i < 32; i++) {
      new Uint8Array(view.buffer, view.byteOffset + record_ + FPSIMD.vregs + i * 16, 16).set(
        registers.getVector(i),
      );
    }
    record_ += FPSIMD_CONTEXT_SIZE;
    if (info.esr !== undefined) {
      view.setUint32(record_, ESR_MAGIC, true);
      view.setUint32(record_ + 4, ESR_CONTEXT_SIZE, true);
      view.setBigUint64(record_ + 8, BigInt(info.esr), true);
      record_ += ESR_CONTEXT_SIZE;
    }
    // The terminator record is the zeroes already there.
    // frame record {fp, lr}
    const recordOffset = Number(record) - frameAddress;
    view.setBigUint64(recordOffset, registers.getRegister("x29"), true);
    view.setBigUint64(recordOffset + 8, registers.getRegister("x30"), true);

    registers.setRegister("x0", BigInt(signal));
    if (flags & SA_SIGINFO) {
      registers.setRegister("x1", frame);
      registers.setRegister("x2", frame + BigInt(uc));
    }
    registers.setRegister("sp", frame);
    registers.setRegister("x29", record);
    registers.setRegister("x30", flags & SA_RESTORER ? restorer : this.sigreturnTrampoline);
    registers.setRegister("pc", handler);

    const thread = this.thread;
    thread.blocked = (thread.blocked | mask | (flags & SA_NODEFER ? 0n : bit(signal))) & ~UNBLOCKABLE;
    // SA_RESETHAND: only the handler goes back to SIG_DFL; the flags and mask stay, as Linux leaves them.
    if (flags & SA_RESETHAND) actions.write(signal, SIG_DFL, BigInt(flags), restorer, mask);
    if (this.altStack.flags & SS_AUTODISARM && flags & SA_ONSTACK && !onAlt)
      this.altStack = { sp: 0n, size: 0n, flags: SS_DISABLE };
    return true;
  }

  /**
   * rt_sigreturn: restore the registers, signal mask, FP/SIMD state and alternate stack saved in the frame at SP.
   * Returns the restored X0, or null for a bad frame (the caller then kills with SIGSEGV, as Linux does).
   */
  sigreturn(): bigint | null {
    const { registers } = this;
    const frame = registers.getRegister("sp");
    if (frame & 15n) return null;
    const frameAddress = Number(frame);
    if (!this.memory.check(frameAddress, RT_SIGFRAME_SIZE, false)) return null;
    const view = new DataView(
      this.memory.bytes.buffer,
      this.memory.bytes.byteOffset + frameAddress,
      RT_SIGFRAME_SIZE,
    );
    const uc = SIGINFO_SIZE;
    const mc = uc + UCONTEXT.mcontext;
    const reserved = mc + SIGCONTEXT.reserved;
    if (
      view.getUint32(reserved, true) !== FPSIMD_MAGIC ||
      view.getUint32(reserved + 4, true) !== FPSIMD_CONTEXT_SIZE
    )
      return null;
    const pstate = view.getBigUint64(mc + SIGCONTEXT.pstate, true);
    // Only AArch64 EL0t is a valid user state (valid_user_regs): M[4:0] must be 0.
    if ((pstate & 0x1fn) !== 0n) return null;

    const thread = this.thread;
    thread.blocked = view.getBigUint64(uc + UCONTEXT.sigmask, true) & ~UNBLOCKABLE;
    for (let i = 0; i < 31; i++)
      registers.setRegister(GENERAL[i]!, view.getBigUint64(mc + SIGCONTEXT.regs + i * 8, true));
    registers.setRegister("sp", view.getBigUint64(mc + SIGCONTEXT.sp, true));
    registers.setRegister("pc", view.getBigUint64(mc + SIGCONTEXT.pc, true));
    registers.setRegister("nzcv", pstate & 0xf000_0000n);
    registers.setRegister("fpsr", BigInt(view.getUint32(reserved + FPSIMD.fpsr, true)));
    registers.setRegister("fpcr", BigInt(view.getUint32(reserved + FPSIMD.fpcr, true)));
    for (let i = 0; i < 32; i++) {
      registers.setVector(
        i,
        new Uint8Array(view.buffer, view.byteOffset + reserved + FPSIMD.vregs + i * 16, 16).slice(),
      );
    }
    // restore_altstack: applied with sigaltstack's own rules; Linux ignores its errors (all but EFAULT).
    const ss = uc + UCONTEXT.stack;
    this.setAltStack(
      view.getBigUint64(ss + STACK_T.sp, true),
      view.getInt32(ss + STACK_T.flags, true),
      view.getBigUint64(ss + STACK_T.size, true),
      registers.getRegister("sp"),
    );
    return view.getBigUint64(mc + SIGCONTEXT.regs, true);
  }

  /** sigaltstack(2)'s core: returns 0 or -errno (EPERM while on the stack, EINVAL, ENOMEM). */
  setAltStack(sp: bigint, flags: number, size: bigint, currentSp: bigint): number {
    if (this.onAltStack(currentSp)) return -1; // EPERM
    const mode = flags & ~SS_AUTODISARM;
    if (mode !== 0 && mode !== SS_ONSTACK && mode !== SS_DISABLE) return -22; // EINVAL
    if (mode === SS_DISABLE) {
      this.altStack = { sp: 0n, size: 0n, flags: SS_DISABLE };
      return 0;
    }
    if (size < BigInt(MINSIGSTKSZ)) return -12; // ENOMEM
    this.altStack = { sp, size, flags: flags & SS_AUTODISARM };
    return 0;
  }

  /** The stack_t sigaltstack reports for the current state. */
  altStackFlags(currentSp: bigint): number {
    if (this.altStack.flags & SS_DISABLE) return SS_DISABLE;
    return (this.onAltStack(currentSp) ? SS_ONSTACK : 0) | (this.altStack.flags & SS_AUTODISARM);
  }

  /** Signals 1..64 are valid. */
  static valid(signal: number): boolean {
    return signal >= 1 && signal <= NSIG;
  }
}
