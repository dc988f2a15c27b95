/**
 * One guest process: loads a static aarch64 ELF into a fresh VM, builds its initial stack, and runs the
 * exit loop. Syscalls are dispatched in place from the backend (no run() round trip); run() returns only
 * for faults, undefined instructions, breakpoints and exit.
 */
import { writeSync } from "node:fs";
import type { Backend, Vcpu, Vm } from "@guest/hvf-bindings";
import { SYSCALL_LEAVE, SYSCALL_RESUME } from "@guest/hvf-bindings";
import {
  buildInitialStack,
  DEFAULT_HWCAP,
  DEFAULT_HWCAP2,
  type ElfImage,
  parseElf,
  pieLoadBias,
  planLoad,
  writeSegments,
} from "@guest/loader";
import {
  AddressSpace,
  createGuestRuntime,
  type GuestRuntime,
  PROT_READ,
  PROT_WRITE,
  SIGNAL_NAMES,
} from "@guest/syscalls";
import {
  GUEST_MEMORY_SIZE,
  MMAP_BASE,
  MMAP_MIN_ADDR,
  PIE_LOAD_BASE,
  RESERVED_START,
  STACK_SIZE,
  STACK_TOP,
} from "./layout.ts";

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
}

/** How the guest ended. */
export type GuestOutcome =
  | { kind: "exited"; status: number }
  | { kind: "signaled"; signal: number; detail: string };

export function outcomeToExitCode(outcome: GuestOutcome): number {
  return outcome.kind === "exited" ? outcome.status & 0xff : 128 + outcome.signal;
}

const SIGILL = 4;
const SIGTRAP = 5;
const SIGSEGV = 11;

export class GuestProcess {
  readonly vm: Vm;
  readonly vcpu: Vcpu;
  readonly space: AddressSpace;
  readonly runtime: GuestRuntime;
  private exitStatus: number | null = null;

  constructor(private readonly options: GuestOptions) {
    const image = parseElf(options.executable);
    this.vm = options.backend.createVm({ memorySize: GUEST_MEMORY_SIZE });
    try {
      this.space = new AddressSpace(this.vm, {
        mmapMin: MMAP_MIN_ADDR,
        mmapBase: MMAP_BASE,
        reservedStart: RESERVED_START,
      });
      this.vcpu = this.vm.createVcpu();
      this.runtime = createGuestRuntime({
        space: this.space,
        memory: this.vm.memory,
        exePath: options.executablePath,
        trace: options.trace,
      });
      this.load(image);
    } catch (error) {
      this.vm.destroy();
      throw error;
    }
  }

  private load(image: ElfImage): void {
    const { options, space, vm } = this;
    // Static-PIE lands at PIE_LOAD_BASE (rounded up to its segment alignment); ET_EXEC at its own addresses.
    const plan = planLoad(image, {
      loadBias: image.isPie ? pieLoadBias(image, PIE_LOAD_BASE) : 0,
      minAddress: MMAP_MIN_ADDR,
      maxAddress: STACK_TOP - STACK_SIZE,
    });
    for (const segment of plan.mappings) {
      // Map writable first so the loader can copy; the segment's own prot is applied right after.
      const mapped = space.mapFixed({
        start: segment.start,
        length: segment.end - segment.start,
        prot: PROT_READ | PROT_WRITE,
        name: options.executablePath,
      });
      if (mapped < 0)
        throw new Error(`cannot map segment at 0x${segment.start.toString(16)} (errno ${-mapped})`);
    }
    writeSegments(plan, options.executable, vm.memory.bytes);
    for (const segment of plan.mappings) {
      const result = space.mprotect(segment.start, segment.end - segment.start, segment.prot);
      if (result < 0)
        throw new Error(`cannot protect segment at 0x${segment.start.toString(16)} (errno ${-result})`);
    }
    space.initBrk(plan.imageEnd);

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
    const { sp } = buildInitialStack({
      memory: vm.memory.bytes,
      stackTop: STACK_TOP,
      argv: options.argv,
      envp: options.envp,
      execfn: options.execfn,
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
    this.vm.invalidateCode(0, RESERVED_START);
    this.vcpu.setRegister("sp", BigInt(sp));
    this.vcpu.setRegister("pc", BigInt(plan.entry));
  }

  /** Run to completion. */
  run(): GuestOutcome {
    const { vcpu, runtime, space } = this;
    const frame = vcpu.syscallFrame;
    vcpu.setSyscallHandler(() => {
      const result = runtime.dispatch(frame);
      space.commit();
      if (typeof result === "number") {
        frame[0] = result >>> 0;
        frame[1] = result < 0 ? 0xffffffff : Math.floor(result / 0x1_0000_0000) >>> 0;
        return SYSCALL_RESUME;
      }
      if (typeof result === "bigint") {
        frame[0] = Number(result & 0xffffffffn);
        frame[1] = Number((result >> 32n) & 0xffffffffn);
        return SYSCALL_RESUME;
      }
      if (result.control === "exit") {
        this.exitStatus = result.status;
        return SYSCALL_LEAVE;
      }
      return SYSCALL_LEAVE;
    });
    try {
      for (;;) {
        const exit = vcpu.run();
        switch (exit.kind) {
          case "stopped":
          case "syscall":
            if (this.exitStatus !== null) return { kind: "exited", status: this.exitStatus };
            continue;
          case "fault":
            return this.killedBy(
              SIGSEGV,
              `${exit.access} ${exit.mapped ? "not permitted" : "of unmapped memory"} at page 0x${exit.address.toString(16)}, pc 0x${vcpu.getRegister("pc").toString(16)}`,
            );
          case "undefined-instruction":
            return this.killedBy(SIGILL, `undefined instruction at pc 0x${exit.pc.toString(16)}`);
          case "breakpoint":
            return this.killedBy(SIGTRAP, `breakpoint at pc 0x${exit.pc.toString(16)}`);
          case "backend-error":
            throw new Error(exit.message);
        }
      }
    } finally {
      vcpu.setSyscallHandler(null);
    }
  }

  private killedBy(signal: number, detail: string): GuestOutcome {
    this.options.trace?.(`--- ${SIGNAL_NAMES[signal] ?? `signal ${signal}`} (${detail}) ---`);
    this.options.trace?.(`+++ killed by ${SIGNAL_NAMES[signal] ?? `signal ${signal}`} +++`);
    return { kind: "signaled", signal, detail };
  }

  destroy(): void {
    this.runtime.close();
    this.vm.destroy();
  }
}

/**
 * Trace lines go to the runtime's own stderr, which Bun makes non-blocking: a full pipe answers EAGAIN, so
 * wait briefly and retry instead of losing lines or failing the run.
 */
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
