/**
 * Signal syscalls that need the registers or deliver: rt_sigreturn, sigaltstack, rt_sigqueueinfo (kill, tkill
 * and tgkill live with process control in proc/handlers.ts).
 * (rt_sigaction and rt_sigprocmask only keep state: they live in handlers/signal.ts.)
 * Signals to this process are made pending and delivered by the runtime when the syscall returns.
 */
import { NR } from "../abi/syscalls.ts";
import type { SyscallHandler } from "../context.ts";
import type { Dispatcher } from "../dispatch.ts";
import { SI_USER, SIGINFO, SIGINFO_SIZE, STACK_T } from "./abi.ts";
import { type RegisterAccess, SignalDelivery } from "./delivery.ts";

const EPERM = 1;
const ESRCH = 3;
const EFAULT = 14;
const EINVAL = 22;

export function registerSignalHandlers(
  dispatcher: Dispatcher,
  signals: SignalDelivery,
  registers: RegisterAccess,
): void {
  const rtSigreturn: SyscallHandler = () => {
    const x0 = signals.sigreturn();
    if (x0 === null) return { control: "bad-signal-frame" };
    return { control: "registers-set" };
  };

  const sigaltstack: SyscallHandler = (args, ctx) => {
    const newAddress = args.ptr(0);
    const oldAddress = args.ptr(1);
    const sp = registers.getRegister("sp");
    let old: Uint8Array | null = null;
    if (oldAddress !== 0) {
      const view = ctx.memory.viewBytes(oldAddress, STACK_T.sizeof, true);
      if (typeof view === "number") return -EFAULT;
      old = view;
    }
    const before = { ...signals.altStack, flags: signals.altStackFlags(sp) };
    if (newAddress !== 0) {
      const view = ctx.memory.viewBytes(newAddress, STACK_T.sizeof, false);
      if (typeof view === "number") return -EFAULT;
      const data = new DataView(view.buffer, view.byteOffset, STACK_T.sizeof);
      const result = signals.setAltStack(
        data.getBigUint64(STACK_T.sp, true),
        data.getInt32(STACK_T.flags, true),
        data.getBigUint64(STACK_T.size, true),
        sp,
      );
      if (result === -1) return -EPERM;
      if (result < 0) return result;
    }
    if (old) {
      const data = new DataView(old.buffer, old.byteOffset, STACK_T.sizeof);
      data.setBigUint64(STACK_T.sp, before.sp, true);
      data.setInt32(STACK_T.flags, before.flags, true);
      data.setUint32(STACK_T.flags + 4, 0, true);
      data.setBigUint64(STACK_T.size, before.size, true);
    }
    return 0;
  };

  /**
   * rt_sigqueueinfo (to this process: any thread not blocking it takes it) / rt_tgsigqueueinfo (to one of its
   * threads): the caller's siginfo reaches the handler as given.
   */
  const queue = (
    ctx: Parameters<SyscallHandler>[1],
    tgid: number,
    tid: number | null,
    signal: number,
    infoAddress: number,
  ) => {
    if (signal < 0 || signal > 64) return -EINVAL;
    const process = ctx.process;
    const thread = tid === null ? null : process.threads.get(tid);
    if (tgid !== process.pid || thread === undefined) return -ESRCH;
    const raw = ctx.memory.viewBytes(infoAddress, SIGINFO_SIZE, false);
    if (typeof raw === "number") return -EFAULT;
    const copy = raw.slice();
    const code = new DataView(copy.buffer).getInt32(SIGINFO.code, true);
    if (signal === 0) return 0;
    if (thread === null) signals.raiseProcess({ signal, code, raw: copy });
    else signals.raiseOn(thread, { signal, code, raw: copy });
    return 0;
  };
  const rtSigqueueinfo: SyscallHandler = (args, ctx) =>
    queue(ctx, args.int(0), null, args.int(1), args.ptr(2));
  const rtTgsigqueueinfo: SyscallHandler = (args, ctx) =>
    queue(ctx, args.int(0), args.int(1), args.int(2), args.ptr(3));
  dispatcher.registerHandler(NR.rt_sigqueueinfo, "rt_sigqueueinfo", rtSigqueueinfo);
  dispatcher.registerHandler(NR.rt_tgsigqueueinfo, "rt_tgsigqueueinfo", rtTgsigqueueinfo);
  dispatcher.registerHandler(NR.rt_sigreturn, "rt_sigreturn", rtSigreturn);
  dispatcher.registerHandler(NR.sigaltstack, "sigaltstack", sigaltstack);
}

export { SI_USER, SignalDelivery };
