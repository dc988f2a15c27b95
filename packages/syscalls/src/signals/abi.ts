/**
 * The Linux arm64 signal frame and signal ABI (arch/arm64/kernel/signal.c, uapi asm/sigcontext.h), as read off
 * the headers by a program compiled for aarch64 (offsets printed with offsetof, not counted by hand).
 */

/** struct rt_sigframe { siginfo_t info; struct ucontext uc; } */
export const SIGINFO_SIZE = 128;
export const UCONTEXT_SIZE = 4560;
export const RT_SIGFRAME_SIZE = SIGINFO_SIZE + UCONTEXT_SIZE; // 4688, a multiple of 16
/** struct frame_record { u64 fp; u64 lr; }, placed just above the frame. */
export const FRAME_RECORD_SIZE = 16;

export const SIGINFO = {
  signo: 0,
  errno: 4,
  code: 8,
  addr: 16,
  pid: 16,
  uid: 20,
  value: 24,
  status: 24,
} as const;

/** Offsets inside struct ucontext. */
export const UCONTEXT = { flags: 0, link: 8, stack: 16, sigmask: 40, mcontext: 176 } as const;
/** Offsets inside struct sigcontext (uc_mcontext). */
export const SIGCONTEXT = { faultAddress: 0, regs: 8, sp: 256, pc: 264, pstate: 272, reserved: 288 } as const;
export const SIGCONTEXT_RESERVED_SIZE = 4096;
/** stack_t */
export const STACK_T = { sp: 0, flags: 8, size: 16, sizeof: 24 } as const;

/** Records in __reserved: { u32 magic; u32 size; … }, terminated by a zero record. */
export const FPSIMD_MAGIC = 0x46508001;
export const FPSIMD_CONTEXT_SIZE = 528;
export const FPSIMD = { fpsr: 8, fpcr: 12, vregs: 16 } as const;
export const ESR_MAGIC = 0x45535201;
export const ESR_CONTEXT_SIZE = 16;

export {
  SA_NODEFER,
  SA_ONSTACK,
  SA_RESETHAND,
  SA_RESTART,
  SA_RESTORER,
  SA_SIGINFO,
  SIG_DFL,
  SIG_IGN,
} from "../abi/signal.ts";

export const SS_ONSTACK = 1;
export const SS_DISABLE = 2;
export const SS_AUTODISARM = 0x8000_0000;
/** arm64 MINSIGSTKSZ as the kernel checks it in sigaltstack (5120, AT_MINSIGSTKSZ). */
export const MINSIGSTKSZ = 5120;

/** si_code values. */
export const SI_USER = 0;
export const SI_TKILL = -6;
/** si_code of SIGCHLD for a child that stopped or continued. */
export const CLD_STOPPED = 5;
export const CLD_CONTINUED = 6;
export const SI_QUEUE = -1;
export const SEGV_MAPERR = 1;
export const SEGV_ACCERR = 2;
export const BUS_ADRALN = 1;
export const BUS_ADRERR = 2;
export const ILL_ILLOPC = 1;
export const TRAP_BRKPT = 1;

// Signal numbers: the one table in ../abi/signal.ts.
export {
  NSIG,
  SIGABRT,
  SIGBUS,
  SIGCHLD,
  SIGCONT,
  SIGFPE,
  SIGHUP,
  SIGILL,
  SIGINT,
  SIGKILL,
  SIGPIPE,
  SIGQUIT,
  SIGRTMIN,
  SIGSEGV,
  SIGSTOP,
  SIGSYS,
  SIGTRAP,
} from "../abi/signal.ts";

import {
  SIGABRT,
  SIGBUS,
  SIGCHLD,
  SIGCONT,
  SIGFPE,
  SIGILL,
  SIGQUIT,
  SIGSEGV,
  SIGSTOP,
  SIGTRAP,
} from "../abi/signal.ts";

/** What SIG_DFL does (signal(7)). */
export type DefaultAction = "terminate" | "core" | "ignore" | "stop" | "continue";
export function defaultAction(signal: number): DefaultAction {
  switch (signal) {
    case SIGCHLD:
    case 23: // SIGURG
    case 28: // SIGWINCH
      return "ignore";
    case SIGCONT:
      return "continue";
    case SIGSTOP:
    case 20: // SIGTSTP
    case 21: // SIGTTIN
    case 22: // SIGTTOU
      return "stop";
    case SIGQUIT:
    case SIGILL:
    case SIGTRAP:
    case SIGABRT:
    case SIGBUS:
    case SIGFPE:
    case SIGSEGV:
    case 24: // SIGXCPU
    case 25: // SIGXFSZ
    case 31: // SIGSYS
      return "core";
    default:
      return "terminate";
  }
}

/** ESR_EL1 values the frame's esr_context reports for EL0 aborts (Arm ARM D17.2). */
export const ESR_EC_DABT_LOWER = 0x24;
export const ESR_EC_IABT_LOWER = 0x20;
export const ESR_IL = 1 << 25;
export const ESR_WNR = 1 << 6;
/** DFSC/IFSC: translation fault, level 3 / permission fault, level 3. */
export const FSC_TRANSLATION_L3 = 0x07;
export const FSC_PERMISSION_L3 = 0x0f;
