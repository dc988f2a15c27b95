/**
 * The native backend: `Backend`/`Vm`/`Vcpu` over Hypervisor.framework.
 *
 * THREAD RULE. Hypervisor.framework lets a vCPU be used only from the thread that created it:
 * hv_vcpu_run, register access and hv_vcpu_destroy must all come from that thread; the single
 * exception is hv_vcpus_exit, which any thread may call. Every HvfVcpu records the creating
 * thread (worker_threads.threadId, 0 on the main thread) and throws HvfThreadError on any other.
 * `requestStop()` and `requestRemoteStop(remoteStopToken())` are the cross-thread entry points.
 * There is one VM per process (a framework limit).
 *
 * How the guest runs (layout.ts, shim.S): the guest is at EL0 over our EL1 shim. The shim and its
 * per-vCPU frames live in a backend-private region above guest memory, mapped through our own
 * TTBR1 tables. Every synchronous exception from EL0 reaches the shim, which saves the guest's
 * registers into the frame and exits with `HVC #n`. While the vCPU is parked there ("frame" state)
 * the frame IS the guest's register file: the host reads/writes it as memory, and X0..X8 are the
 * in-line syscall frame, zero copy. After an asynchronous exit that interrupted EL0 directly
 * (hv_vcpus_exit) the guest's registers are the live vCPU registers ("live" state); if the host
 * then needs the shim (TLB maintenance), the vCPU is redirected through the shim's resume entry.
 */
import { type Pointer, ptr, toArrayBuffer } from "bun:ffi";
import { threadId } from "node:worker_threads";
import type {
  Backend,
  BackendAvailability,
  GeneralRegister,
  GuestPhysicalMemory,
  InlineSyscallHandler,
  TlbInvalidation,
  Vcpu,
  VcpuExit,
  VcpuThreads,
  Vm,
  VmOptions,
} from "../backend.ts";
import { SYSCALL_RESUME } from "../backend.ts";
import { mapAnonymous, unmap } from "../libc/ffi.ts";
import {
  ACTION,
  FRAME,
  frameOffset,
  HVC,
  MAX_VCPUS,
  PAGE_SIZE,
  PRIVATE,
  PRIVATE_SIZE,
  SHIM_ENTRY,
  shimVirtualAddress,
  slotOffset,
  TLBI_PAGES_MAX,
  VCPU_SLOT_SIZE,
} from "../shim/layout.ts";
import { buildPrivateRegion } from "../shim/tables.ts";
import {
  CNTKCTL_EL1_EL0VCTEN,
  CPACR_EL1_FPEN,
  HOST_PAGE_SIZE,
  HV_DENIED,
  HV_EXIT_REASON_CANCELED,
  HV_EXIT_REASON_EXCEPTION,
  HV_EXIT_REASON_VTIMER_ACTIVATED,
  HV_MEMORY_RWX,
  HV_REG_CPSR,
  HV_REG_FPCR,
  HV_REG_FPSR,
  HV_REG_PC,
  HV_SIMD_FP_REG_COUNT,
  HV_SYS_REG,
  HV_VCPU_EXIT,
  hvRegX,
  IPA_SIZE_LADDER,
  MAIR_EL1_VALUE,
  PSTATE_MODE_MASK,
  PSTATE_NZCV_MASK,
  PSTATE_SHIM_ENTRY,
  SLAB_SEGMENT_COUNT_MAX,
  SLAB_SEGMENT_MIN,
  type SysRegName,
  sctlrEl1Value,
  tcrEl1Value,
} from "./constants.ts";
import { decodeSyndrome, el0ExceptionToVcpuExit, exitReasonName, readExitInfo } from "./decode.ts";
import { check, HvfError, HvfThreadError } from "./errors.ts";
import {
  type HypervisorSymbols,
  hvfAvailability,
  hypervisorSymbolAddress,
  loadHypervisor,
  loadSimdHelper,
} from "./ffi.ts";
import {
  FORK_REGISTERS,
  FORK_SYSTEM_REGISTERS,
  FORK_VECTOR_BYTES,
  FORK_VECTOR_COUNT,
} from "./fork-registers.ts";
import { type QueuedActions, SharedVmState } from "./shared-vm-state.ts";
import { EC, ESR } from "./syndrome-constants.ts";
import { type HvfVcpuThreadOptions, HvfVcpuWorkerGroup } from "./vcpu-worker-group.ts";

/** Everything the backend takes from the outside world; tests inject a scripted fake. */
export interface HvfHost {
  hv: HypervisorSymbols;
  /** Zeroed, page-aligned, lazily backed host memory (host pointer). */
  allocate(size: number): number;
  release(address: number, size: number): void;
  /** hv_vcpu_set_simd_fp_reg with the 16 bytes at `value` (a host pointer). */
  setSimdFpReg(vcpu: bigint, reg: number, value: number): number;
  /** Identity of the calling thread. */
  currentThread(): number;
}

function defaultHost(): HvfHost {
  const hv = loadHypervisor();
  if (!hv) throw new Error(hvfAvailability().reason);
  return {
    hv,
    allocate: mapAnonymous,
    release: unmap,
    setSimdFpReg: (vcpu, reg, value) =>
      loadSimdHelper().guest_hvf_set_simd_fp_reg(
        hypervisorSymbolAddress("hv_vcpu_set_simd_fp_reg") as Pointer,
        vcpu,
        reg,
        value as Pointer,
      ),
    currentThread: () => threadId,
  };
}

/** A cross-thread handle: enough to stop a vCPU from any thread with `requestRemoteStop`. */
export interface RemoteStopToken {
  vcpu: bigint;
  /** Host address of the vCPU frame's STOP word. */
  stopWord: number;
}

/** Stop a vCPU from any thread: flag the shim's stop word, then kick the vCPU with hv_vcpus_exit. */
export function requestRemoteStop(
  token: RemoteStopToken,
  hv: Pick<HypervisorSymbols, "hv_vcpus_exit"> | null = loadHypervisor(),
): void {
  if (!hv) throw new Error(hvfAvailability().reason);
  new BigUint64Array(toArrayBuffer(token.stopWord, 0, 8))[0] = 1n;
  const handles = new BigUint64Array([token.vcpu]);
  check("hv_vcpus_exit", hv.hv_vcpus_exit(handles, 1));
}

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}

/** IPA widths worth trying for this much guest memory (plus our private region above it), widest first. */
export function ipaCandidates(memorySize: number, maxIpaBits: number): number[] {
  return IPA_SIZE_LADDER.filter((bits) => bits <= maxIpaBits && 2 ** bits >= memorySize + PRIVATE_SIZE);
}

/** Segment size for mapping the slab: at least 2 MiB, at most SLAB_SEGMENT_COUNT_MAX segments. */
export function slabSegmentSize(memorySize: number): number {
  return Math.max(SLAB_SEGMENT_MIN, memorySize / SLAB_SEGMENT_COUNT_MAX);
}

class HvfMemory implements GuestPhysicalMemory {
  readonly bytes: Uint8Array;
  constructor(
    readonly hostAddress: number,
    readonly size: number,
  ) {
    this.bytes = new Uint8Array(toArrayBuffer(hostAddress, 0, size));
  }
  discard(address: number, length: number): void {
    if (length <= 0) return;
    if (address < 0 || address + length > this.size) throw new RangeError("discard outside guest memory");
    // The slab stays mapped into the VM, so pages cannot be swapped underneath it; macOS's
    // MADV_FREE does not zero either. Zero explicitly (what Linux's MADV_DONTNEED guarantees).
    this.bytes.fill(0, address, address + length);
  }
}

type VcpuState = "frame" | "live";

/**
 * What a vCPU needs of its VM, on whichever thread it lives: the VM itself (the creating thread) or
 * an `HvfVmAttachment` (a Worker). Everything here is process-wide memory or shared state.
 */
interface VcpuHome {
  readonly host: HvfHost;
  readonly privateBytes: Uint8Array;
  readonly privateAddress: number;
  readonly privateIpa: bigint;
  readonly shared: SharedVmState;
  vcpuDestroyed(index: number): void;
}

/** A vCPU's registers saved in process memory for a fork (see FORK_REGISTERS and friends). */
interface VcpuForkSnapshot {
  readonly registers: BigUint64Array;
  readonly systemRegisters: BigUint64Array;
  readonly vectors: Uint8Array;
  vtimerOffset: bigint;
}

class HvfVcpu implements Vcpu {
  readonly syscallFrame: Uint32Array;
  private readonly frame: DataView;
  private readonly frameAddress: number;
  /** hv_vcpu_t and its exit struct: replaced when a forked child re-creates the vCPU. */
  private vcpuHandle: bigint;
  private exitView: DataView;
  private readonly owner: number;
  private readonly scratch = new BigUint64Array(new ArrayBuffer(16));
  private readonly scratchBytes = new Uint8Array(this.scratch.buffer);
  private state: VcpuState = "frame";
  private handler: InlineSyscallHandler | null = null;
  private ttbr0Applied = -1;
  private destroyed = false;
  private trapDebug = false;
  private forkSnapshot: VcpuForkSnapshot | null = null;
  /** The decoded ESR of the last EL0 exception, for diagnostics and for exits VcpuExit cannot express. */
  lastSyndrome: bigint = 0n;

  constructor(
    readonly id: number,
    private readonly vm: VcpuHome,
    handle: bigint,
    exitPointer: number,
  ) {
    this.owner = vm.host.currentThread();
    this.vcpuHandle = handle;
    this.exitView = new DataView(toArrayBuffer(exitPointer, 0, HV_VCPU_EXIT.size));
    const offset = frameOffset(id);
    this.frameAddress = vm.privateAddress + offset;
    this.frame = new DataView(vm.privateBytes.buffer, vm.privateBytes.byteOffset + offset, FRAME.SIZE);
    this.syscallFrame = new Uint32Array(
      vm.privateBytes.buffer,
      vm.privateBytes.byteOffset + offset + FRAME.X0,
      18,
    );
    new Uint8Array(vm.privateBytes.buffer, vm.privateBytes.byteOffset + slotOffset(id), VCPU_SLOT_SIZE).fill(
      0,
    );

    // Initial EL1 programming (elfuse bootstrap.c, adapted: the MMU is on from the first instruction
    // because the shim runs from TTBR1, and the first entry goes through the shim's resume path,
    // which invalidates the TLB and I-cache before the first ERET to EL0).
    this.programEl1();
    this.setSys("SPSR_EL1", 0n);
    this.setSys("ELR_EL1", 0n);
    this.setSys("SP_EL0", 0n);
    this.applyTranslationRoot();
    this.enterThroughShim();
    this.frame.setBigUint64(FRAME.ACTION, ACTION.TLBI_ALL | ACTION.IC_IALLU, true);
  }

  /** The hv_vcpu_t (changes once, in a forked child: see rebuildAfterFork). */
  get handle(): bigint {
    return this.vcpuHandle;
  }

  /** The fixed EL1 environment of the shim: at creation, and again in a forked child. */
  private programEl1(): void {
    this.setSys("SCTLR_EL1", sctlrEl1Value());
    this.setSys("TCR_EL1", tcrEl1Value());
    this.setSys("MAIR_EL1", MAIR_EL1_VALUE);
    this.setSys("TTBR1_EL1", this.vm.privateIpa + BigInt(PRIVATE.L0));
    this.setSys("VBAR_EL1", shimVirtualAddress(PRIVATE.CODE + SHIM_ENTRY.VECTORS));
    this.setSys("CPACR_EL1", CPACR_EL1_FPEN);
    this.setSys("CNTKCTL_EL1", CNTKCTL_EL1_EL0VCTEN);
    this.setSys("CNTV_CTL_EL0", 0n);
    this.setSys("MDSCR_EL1", 0n);
    this.setSys("TPIDR_EL1", shimVirtualAddress(slotOffset(this.id)));
    // No guest timer interrupts: the guest reads time through syscalls and the EL0 counter.
    check("hv_vcpu_set_vtimer_mask", this.vm.host.hv.hv_vcpu_set_vtimer_mask(this.handle, true));
  }

  // ---- fork ---------------------------------------------------------------------------------

  /**
   * Parent, before fork(): read every register the hypervisor holds into process memory. Called from
   * inside the in-line syscall handler (the vCPU parked in the shim after its HVC) or between runs.
   */
  snapshotForFork(): void {
    this.assertOwner("fork snapshot");
    const hv = this.vm.host.hv;
    const registers = new BigUint64Array(FORK_REGISTERS.length);
    FORK_REGISTERS.forEach(({ name, reg }, i) => {
      registers[i] = this.getLive(reg, name);
    });
    const systemRegisters = new BigUint64Array(FORK_SYSTEM_REGISTERS.length);
    FORK_SYSTEM_REGISTERS.forEach((name, i) => {
      systemRegisters[i] = this.getSys(name);
    });
    const vectors = new Uint8Array(FORK_VECTOR_COUNT * FORK_VECTOR_BYTES);
    for (let q = 0; q < FORK_VECTOR_COUNT; q++) {
      check(`hv_vcpu_get_simd_fp_reg(Q${q})`, hv.hv_vcpu_get_simd_fp_reg(this.handle, q, this.scratch));
      vectors.set(this.scratchBytes.subarray(0, FORK_VECTOR_BYTES), q * FORK_VECTOR_BYTES);
    }
    check("hv_vcpu_get_vtimer_offset", hv.hv_vcpu_get_vtimer_offset(this.handle, this.scratch));
    this.forkSnapshot = { registers, systemRegisters, vectors, vtimerOffset: this.scratch[0]! };
  }

  /** Parent, after fork(): the snapshot is no longer needed. */
  dropForkSnapshot(): void {
    this.forkSnapshot = null;
  }

  /**
   * Child, after fork(): the parent's hv_vcpu_t does not exist in this process. Create a vCPU on this
   * thread, rebind this object to it, program the EL1 environment and restore the snapshot over it (the
   * snapshot wins where both write). The frame, the run state and the in-line handler are process memory
   * and came along with fork(); the VM queues the TLB and I-cache invalidation for the first entry.
   */
  rebuildAfterFork(): void {
    const snapshot = this.forkSnapshot;
    if (!snapshot) throw new Error(`vCPU ${this.id}: afterForkInChild without a snapshot from prepareFork`);
    if (this.vm.host.currentThread() !== this.owner) {
      throw new HvfThreadError("fork rebuild", this.id, this.owner, this.vm.host.currentThread());
    }
    const hv = this.vm.host.hv;
    const handle = new BigUint64Array(new ArrayBuffer(8));
    const exit = new BigUint64Array(new ArrayBuffer(8));
    check("hv_vcpu_create (forked child)", hv.hv_vcpu_create(handle, exit, null));
    this.vcpuHandle = handle[0]!;
    this.exitView = new DataView(toArrayBuffer(Number(exit[0]!), 0, HV_VCPU_EXIT.size));
    this.programEl1();
    FORK_SYSTEM_REGISTERS.forEach((name, i) => {
      this.setSys(name, snapshot.systemRegisters[i]!);
    });
    FORK_REGISTERS.forEach(({ name, reg }, i) => {
      this.setLive(reg, snapshot.registers[i]!, name);
    });
    for (let q = 0; q < FORK_VECTOR_COUNT; q++) {
      check(
        `hv_vcpu_set_simd_fp_reg(Q${q})`,
        this.vm.host.setSimdFpReg(this.handle, q, ptr(snapshot.vectors, q * FORK_VECTOR_BYTES)),
      );
    }
    // The same CNTVOFF keeps CNTVCT_EL0 continuous across the fork (the host counter is system-wide).
    check("hv_vcpu_set_vtimer_offset", hv.hv_vcpu_set_vtimer_offset(this.handle, snapshot.vtimerOffset));
    if (this.trapDebug) {
      check("hv_vcpu_set_trap_debug_exceptions", hv.hv_vcpu_set_trap_debug_exceptions(this.handle, true));
    }
    this.forkSnapshot = null;
  }

  // ---- thread rule --------------------------------------------------------------------------

  private assertOwner(call: string): void {
    if (this.destroyed) throw new Error(`${call} on destroyed vCPU ${this.id}`);
    const current = this.vm.host.currentThread();
    if (current !== this.owner) throw new HvfThreadError(call, this.id, this.owner, current);
  }

  // ---- raw register access (owner thread) ---------------------------------------------------

  private setSys(name: SysRegName, value: bigint): void {
    check(
      `hv_vcpu_set_sys_reg(${name})`,
      this.vm.host.hv.hv_vcpu_set_sys_reg(this.handle, HV_SYS_REG[name], value),
    );
  }
  private getSys(name: SysRegName): bigint {
    check(
      `hv_vcpu_get_sys_reg(${name})`,
      this.vm.host.hv.hv_vcpu_get_sys_reg(this.handle, HV_SYS_REG[name], this.scratch),
    );
    return this.scratch[0]!;
  }
  private setLive(reg: number, value: bigint, name: string): void {
    check(`hv_vcpu_set_reg(${name})`, this.vm.host.hv.hv_vcpu_set_reg(this.handle, reg, value));
  }
  private getLive(reg: number, name: string): bigint {
    check(`hv_vcpu_get_reg(${name})`, this.vm.host.hv.hv_vcpu_get_reg(this.handle, reg, this.scratch));
    return this.scratch[0]!;
  }

  /** Point the vCPU at the shim's resume entry, at EL1h with the frame as its stack. */
  private enterThroughShim(): void {
    this.setSys("SP_EL1", shimVirtualAddress(frameOffset(this.id)));
    this.setLive(HV_REG_PC, shimVirtualAddress(PRIVATE.CODE + SHIM_ENTRY.RESUME), "PC");
    this.setLive(HV_REG_CPSR, BigInt(PSTATE_SHIM_ENTRY), "CPSR");
    this.state = "frame";
  }

  /** Live → frame: copy the interrupted EL0 state into the frame and resume it through the shim. */
  private redirectThroughShim(): void {
    for (let n = 0; n <= 30; n++) {
      this.frame.setBigUint64(FRAME.X0 + 8 * n, this.getLive(hvRegX(n), `X${n}`), true);
    }
    this.frame.setBigUint64(FRAME.ELR, this.getLive(HV_REG_PC, "PC"), true);
    this.frame.setBigUint64(FRAME.SPSR, this.getLive(HV_REG_CPSR, "CPSR"), true);
    this.frame.setBigUint64(FRAME.SP_EL0, this.getSys("SP_EL0"), true);
    this.enterThroughShim();
  }

  private applyTranslationRoot(): void {
    const root = this.vm.shared.translationRoot;
    if (this.ttbr0Applied === root) return;
    this.setSys("TTBR0_EL1", BigInt(root));
    this.ttbr0Applied = root;
    this.vm.shared.queueAction(ACTION.TLBI_ALL);
  }

  /** Hand queued maintenance to the shim (frame state) before the vCPU runs again. */
  private prepareEntry(): void {
    this.applyTranslationRoot();
    const queued = this.vm.shared.takeActions();
    if (queued.action === 0n) return;
    if (this.state === "live") this.redirectThroughShim();
    const f = this.frame;
    let action = f.getBigUint64(FRAME.ACTION, true) | queued.action;
    if (queued.action & ACTION.TLBI_PAGES) {
      if (f.getBigUint64(FRAME.ACTION, true) & ACTION.TLBI_PAGES) {
        action = (action & ~ACTION.TLBI_PAGES) | ACTION.TLBI_ALL; // two ranges in one go: flush all
      } else {
        f.setBigUint64(FRAME.TLBI_PAGE, queued.page, true);
        f.setBigUint64(FRAME.TLBI_COUNT, queued.count, true);
      }
    }
    f.setBigUint64(FRAME.ACTION, action, true);
  }

  // ---- Vcpu ---------------------------------------------------------------------------------

  setSyscallHandler(handler: InlineSyscallHandler | null): void {
    this.handler = handler;
  }

  run(): VcpuExit {
    this.assertOwner("hv_vcpu_run");
    const hv = this.vm.host.hv;
    this.prepareEntry();
    for (;;) {
      const code = hv.hv_vcpu_run(this.handle) >>> 0;
      if (code !== 0) return { kind: "backend-error", message: new HvfError("hv_vcpu_run", code).message };
      const reason = this.exitView.getUint32(HV_VCPU_EXIT.reason, true);
      if (reason === HV_EXIT_REASON_EXCEPTION) {
        const exit = this.onException();
        if (exit) return exit;
        this.prepareEntry();
        continue;
      }
      if (reason === HV_EXIT_REASON_CANCELED) {
        if (this.frame.getBigUint64(FRAME.STOP, true) === 0n) continue; // already honoured
        const cpsr = Number(this.getLive(HV_REG_CPSR, "CPSR"));
        if ((cpsr & PSTATE_MODE_MASK) === 0) {
          // Interrupted at EL0: registers are live and consistent.
          this.frame.setBigUint64(FRAME.STOP, 0n, true);
          this.state = "live";
          return { kind: "stopped" };
        }
        continue; // inside the shim: it stops with HVC_STOP before its next ERET
      }
      if (reason === HV_EXIT_REASON_VTIMER_ACTIVATED) {
        check("hv_vcpu_set_vtimer_mask", hv.hv_vcpu_set_vtimer_mask(this.handle, true));
        continue;
      }
      const info = readExitInfo(this.exitView);
      return {
        kind: "backend-error",
        message: `hv_vcpu_run returned ${exitReasonName(reason)} (syndrome 0x${info.syndrome.toString(16)})`,
      };
    }
  }

  /** An exception exit: an HVC from the shim, or a trap to EL2. Returns null to keep running. */
  private onException(): VcpuExit | null {
    // Hot path (every syscall): EC and immediate straight from the syndrome's low word, no allocation.
    const low = this.exitView.getUint32(HV_VCPU_EXIT.syndrome, true);
    const ec = (low >>> ESR.EC_SHIFT) & ESR.EC_MASK;
    if (ec === EC.HVC64) {
      this.state = "frame";
      const f = this.frame;
      const immediate = low & ESR.IMM16_MASK;
      switch (immediate) {
        case HVC.SYSCALL: {
          if (!this.handler) return { kind: "syscall" };
          return this.handler(this.syscallFrame) === SYSCALL_RESUME ? null : { kind: "stopped" };
        }
        case HVC.ABORT:
        case HVC.BRK:
        case HVC.EL0_EXCEPTION:
          this.lastSyndrome = f.getBigUint64(FRAME.ESR, true);
          return el0ExceptionToVcpuExit(
            this.lastSyndrome,
            f.getBigUint64(FRAME.FAR, true),
            f.getBigUint64(FRAME.ELR, true),
          );
        case HVC.STOP:
          f.setBigUint64(FRAME.STOP, 0n, true);
          return { kind: "stopped" };
      }
      if (immediate >= HVC.BAD_VECTOR && immediate < HVC.BAD_VECTOR + 16) {
        const vector = (immediate - HVC.BAD_VECTOR) * 0x80;
        return {
          kind: "backend-error",
          message: `the EL1 shim took an unexpected exception at vector +0x${vector.toString(16)}: ESR_EL1 0x${this.getSys("ESR_EL1").toString(16)}, ELR_EL1 0x${this.getSys("ELR_EL1").toString(16)}, FAR_EL1 0x${this.getSys("FAR_EL1").toString(16)}`,
        };
      }
      return { kind: "backend-error", message: `unknown HVC #${immediate} from the shim` };
    }
    const info = readExitInfo(this.exitView);
    const decoded = decodeSyndrome(info.syndrome);
    if (decoded.ec === EC.WFX) {
      // WFI/WFE trapped to the hypervisor: PC is on the instruction; treat it as a no-op.
      this.setLive(HV_REG_PC, this.getLive(HV_REG_PC, "PC") + 4n, "PC");
      return null;
    }
    return {
      kind: "backend-error",
      message: `unexpected exception exit: ${decoded.ecName} (syndrome 0x${info.syndrome.toString(16)}, VA 0x${info.virtualAddress.toString(16)}, IPA 0x${info.physicalAddress.toString(16)})`,
    };
  }

  requestStop(): void {
    requestRemoteStop(this.remoteStopToken(), this.vm.host.hv);
  }

  /** For another thread (Worker) that must stop this vCPU: pass the token, call requestRemoteStop. */
  remoteStopToken(): RemoteStopToken {
    return { vcpu: this.handle, stopWord: this.frameAddress + FRAME.STOP };
  }

  getRegister(name: GeneralRegister): bigint {
    this.assertOwner("hv_vcpu_get_reg");
    const f = this.frame;
    const inFrame = this.state === "frame";
    switch (name) {
      case "pc":
        return inFrame ? f.getBigUint64(FRAME.ELR, true) : this.getLive(HV_REG_PC, "PC");
      case "sp":
        return inFrame ? f.getBigUint64(FRAME.SP_EL0, true) : this.getSys("SP_EL0");
      case "nzcv": {
        const pstate = inFrame ? f.getBigUint64(FRAME.SPSR, true) : this.getLive(HV_REG_CPSR, "CPSR");
        return pstate & BigInt(PSTATE_NZCV_MASK);
      }
      case "tpidr_el0":
        return this.getSys("TPIDR_EL0");
      case "tpidrro_el0":
        return this.getSys("TPIDRRO_EL0");
      case "fpcr":
        return this.getLive(HV_REG_FPCR, "FPCR");
      case "fpsr":
        return this.getLive(HV_REG_FPSR, "FPSR");
      default: {
        const n = Number(name.slice(1));
        return inFrame ? f.getBigUint64(FRAME.X0 + 8 * n, true) : this.getLive(hvRegX(n), name.toUpperCase());
      }
    }
  }

  setRegister(name: GeneralRegister, value: bigint): void {
    this.assertOwner("hv_vcpu_set_reg");
    const v = BigInt.asUintN(64, value);
    const f = this.frame;
    const inFrame = this.state === "frame";
    switch (name) {
      case "pc":
        if (inFrame) f.setBigUint64(FRAME.ELR, v, true);
        else this.setLive(HV_REG_PC, v, "PC");
        return;
      case "sp":
        if (inFrame) f.setBigUint64(FRAME.SP_EL0, v, true);
        else this.setSys("SP_EL0", v);
        return;
      case "nzcv": {
        const mask = BigInt(PSTATE_NZCV_MASK);
        if (inFrame)
          f.setBigUint64(FRAME.SPSR, (f.getBigUint64(FRAME.SPSR, true) & ~mask) | (v & mask), true);
        else this.setLive(HV_REG_CPSR, (this.getLive(HV_REG_CPSR, "CPSR") & ~mask) | (v & mask), "CPSR");
        return;
      }
      case "tpidr_el0":
        this.setSys("TPIDR_EL0", v);
        return;
      case "tpidrro_el0":
        this.setSys("TPIDRRO_EL0", v);
        return;
      case "fpcr":
        this.setLive(HV_REG_FPCR, v, "FPCR");
        return;
      case "fpsr":
        this.setLive(HV_REG_FPSR, v, "FPSR");
        return;
      default: {
        const n = Number(name.slice(1));
        if (inFrame) f.setBigUint64(FRAME.X0 + 8 * n, v, true);
        else this.setLive(hvRegX(n), v, name.toUpperCase());
      }
    }
  }

  getVector(index: number): Uint8Array {
    this.assertOwner("hv_vcpu_get_simd_fp_reg");
    if (!Number.isInteger(index) || index < 0 || index >= HV_SIMD_FP_REG_COUNT)
      throw new RangeError(`no register q${index}`);
    check(
      `hv_vcpu_get_simd_fp_reg(Q${index})`,
      this.vm.host.hv.hv_vcpu_get_simd_fp_reg(this.handle, index, this.scratch),
    );
    return this.scratchBytes.slice(0, 16);
  }

  setVector(index: number, value: Uint8Array): void {
    this.assertOwner("hv_vcpu_set_simd_fp_reg");
    if (!Number.isInteger(index) || index < 0 || index >= HV_SIMD_FP_REG_COUNT)
      throw new RangeError(`no register q${index}`);
    if (value.length !== 16) throw new RangeError(`q${index} takes 16 bytes, got ${value.length}`);
    this.scratchBytes.set(value);
    check(
      `hv_vcpu_set_simd_fp_reg(Q${index})`,
      this.vm.host.setSimdFpReg(this.handle, index, ptr(this.scratch)),
    );
  }

  /**
   * Route the guest's debug exceptions (BRK, breakpoints, watchpoints, single step) straight to the host as
   * exits instead of to the EL1 shim (hv_vcpu_set_trap_debug_exceptions); for debuggers. Off by default.
   */
  setTrapDebugExceptions(enabled: boolean): void {
    this.assertOwner("hv_vcpu_set_trap_debug_exceptions");
    check(
      "hv_vcpu_set_trap_debug_exceptions",
      this.vm.host.hv.hv_vcpu_set_trap_debug_exceptions(this.handle, enabled),
    );
    this.trapDebug = enabled;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.assertOwner("hv_vcpu_destroy");
    this.destroyed = true;
    check("hv_vcpu_destroy", this.vm.host.hv.hv_vcpu_destroy(this.handle));
    this.vm.vcpuDestroyed(this.id);
  }
}

/** hv_vm_create with an IPA width: null on success, else the failure. */
function createVmWithIpa(hv: HypervisorSymbols, bits: number): HvfError | null {
  const config = hv.hv_vm_config_create();
  if (!config) throw new Error("hv_vm_config_create returned NULL");
  const setCode = hv.hv_vm_config_set_ipa_size(config, bits) >>> 0;
  const createCode = setCode === 0 ? hv.hv_vm_create(config) >>> 0 : setCode;
  hv.os_release(config);
  if (createCode === 0) return null;
  return new HvfError(
    setCode === 0 ? `hv_vm_create(${bits}-bit IPA)` : "hv_vm_config_set_ipa_size",
    createCode,
  );
}

/** Create a vCPU in a claimed slot on the calling thread (hv_vcpu_create makes it that thread's). */
function createVcpuIn(home: VcpuHome, index: number): HvfVcpu {
  const handle = new BigUint64Array(new ArrayBuffer(8));
  const exit = new BigUint64Array(new ArrayBuffer(8));
  try {
    check("hv_vcpu_create", home.host.hv.hv_vcpu_create(handle, exit, null));
  } catch (error) {
    home.shared.releaseSlot(index);
    throw error;
  }
  try {
    return new HvfVcpu(index, home, handle[0]!, Number(exit[0]!));
  } catch (error) {
    home.host.hv.hv_vcpu_destroy(handle[0]!);
    home.shared.releaseSlot(index);
    throw error;
  }
}

/**
 * Everything another thread needs to attach to a VM (structured-cloneable: post it to a Worker).
 * Addresses are host pointers, valid in every thread of the process.
 */
export interface HvfVmDescriptor {
  memoryAddress: number;
  memorySize: number;
  privateAddress: number;
  privateIpa: bigint;
  ipaBits: number;
  shared: SharedArrayBuffer;
}

export class HvfVm implements Vm, VcpuHome {
  readonly memory: HvfMemory;
  /** Guest physical address of the private region (just above guest memory). */
  readonly privateIpa: bigint;
  readonly privateAddress: number;
  readonly privateBytes: Uint8Array;
  readonly ipaBits: number;
  readonly shared = new SharedVmState();
  /** vCPUs created on this thread, by slot; vCPUs of attached Workers only appear in `shared`. */
  private readonly local = new Map<number, HvfVcpu>();
  /** Every hv_vm_map, in order: undone by destroy, replayed by a forked child. */
  private readonly mappings: { address: number; ipa: number; size: number; flags: number }[] = [];
  private destroyed = false;
  /** prepareFork snapshotted the local vCPUs; an after-hook comes next. */
  private forkPrepared = false;
  /**
   * A host fork() can carry this VM into the child through the fork hooks below (the child re-creates
   * the VM and the calling thread's vCPUs). Unverified on Apple hardware: see the README.
   */
  readonly forkable = true;
  /** The Worker vCPUs of `vcpuThreads()`, made on first use. */
  private workerGroup: HvfVcpuWorkerGroup | null = null;

  constructor(
    readonly host: HvfHost,
    options: VmOptions,
    /** How `vcpuThreads()` makes its Workers (tests: a fake framework in each). */
    private readonly threadOptions: HvfVcpuThreadOptions = {},
  ) {
    const size = options.memorySize;
    if (!isPowerOfTwo(size) || size < 256 * 1024 * 1024) {
      throw new RangeError(`memorySize must be a power of two of at least 256 MiB (got ${size})`);
    }
    const hv = host.hv;
    const maxBits = new Uint32Array(new ArrayBuffer(4));
    check("hv_vm_config_get_max_ipa_size", hv.hv_vm_config_get_max_ipa_size(maxBits));
    const candidates = ipaCandidates(size, maxBits[0]!);
    if (candidates.length === 0) {
      throw new Error(
        `${size} bytes of guest memory need an IPA space of more than ${Math.log2(size)} bits; this host allows ${maxBits[0]} (try a smaller guest)`,
      );
    }
    let created = 0;
    let lastError: HvfError | null = null;
    for (const bits of candidates) {
      lastError = createVmWithIpa(hv, bits);
      if (!lastError) {
        created = bits;
        break;
      }
      if (lastError.code === HV_DENIED) break; // an entitlement problem: no width will help
    }
    if (!created) throw lastError!;
    this.ipaBits = created;

    let slab = 0;
    let privateAddress = 0;
    try {
      slab = host.allocate(size);
      privateAddress = host.allocate(PRIVATE_SIZE);
      this.memory = new HvfMemory(slab, size);
      this.privateAddress = privateAddress;
      this.privateBytes = new Uint8Array(toArrayBuffer(privateAddress, 0, PRIVATE_SIZE));
      this.privateIpa = BigInt(size);
      buildPrivateRegion(this.privateBytes, this.privateIpa);
      const segment = slabSegmentSize(size);
      for (let ipa = 0; ipa < size; ipa += segment) this.map(slab + ipa, ipa, segment);
      this.map(privateAddress, size, PRIVATE_SIZE);
    } catch (error) {
      for (const m of this.mappings) hv.hv_vm_unmap(m.ipa, m.size);
      hv.hv_vm_destroy();
      if (privateAddress) host.release(privateAddress, PRIVATE_SIZE);
      if (slab) host.release(slab, size);
      throw error;
    }
  }

  private map(address: number, ipa: number, size: number, flags = HV_MEMORY_RWX): void {
    if (size % HOST_PAGE_SIZE !== 0)
      throw new RangeError(`hv_vm_map size ${size} is not a multiple of 16 KiB`);
    check(
      `hv_vm_map(ipa 0x${ipa.toString(16)}, ${size} bytes)`,
      this.host.hv.hv_vm_map(address as Pointer, ipa, size, flags),
    );
    this.mappings.push({ address, ipa, size, flags });
  }

  // ---- fork (Vm fork hooks) -----------------------------------------------------------------

  /**
   * Parent, just before the host fork(): snapshot every local vCPU's registers into process memory.
   * Refused (a reason, nothing changed) when a vCPU lives in another thread: a forked child has only the
   * calling thread, and a vCPU can be re-created only by the thread that will own it.
   */
  prepareFork(): string | null {
    if (this.destroyed) return "the VM is destroyed";
    const here = this.host.currentThread();
    const elsewhere = this.shared.slotOwners().filter((owner) => owner.thread !== here);
    if (elsewhere.length > 0) {
      return `vCPU slot(s) ${elsewhere.map((o) => `${o.slot} (thread ${o.thread})`).join(", ")} run in other threads (vCPU Workers), and a forked child has only the calling thread: fork is supported on Hypervisor.framework only while every vCPU belongs to the calling thread`;
    }
    try {
      for (const vcpu of this.local.values()) vcpu.snapshotForFork();
    } catch (error) {
      this.dropForkSnapshots();
      return `cannot snapshot the vCPU registers: ${(error as Error).message}`;
    }
    this.forkPrepared = true;
    return null;
  }

  /** Parent, after fork() (a pid or -errno): the VM never stopped being ours; drop the snapshots. */
  afterForkInParent(): void {
    this.dropForkSnapshots();
  }

  /**
   * Child, right after fork(): the parent's VM and vCPUs belong to the parent. Create a VM at the same IPA
   * width, map this process's copy-on-write copies of the slab and the private region at the same IPAs with
   * the same flags, re-create each vCPU on this thread (same HvfVcpu objects, new handles), restore their
   * snapshots and queue a full TLB + I-cache invalidation for the first entry.
   */
  afterForkInChild(): void {
    if (!this.forkPrepared) throw new Error("afterForkInChild without a successful prepareFork");
    this.forkPrepared = false;
    const created = createVmWithIpa(this.host.hv, this.ipaBits);
    if (created) {
      throw new Error(
        `fork: the child cannot create its VM (${created.message}); Hypervisor.framework may not allow a VM in a forked process`,
      );
    }
    const recorded = this.mappings.splice(0);
    for (const m of recorded) this.map(m.address, m.ipa, m.size, m.flags);
    for (const id of [...this.local.keys()].sort((a, b) => a - b)) this.local.get(id)!.rebuildAfterFork();
    this.queueAction(ACTION.TLBI_ALL | ACTION.IC_IALLU);
  }

  private dropForkSnapshots(): void {
    for (const vcpu of this.local.values()) vcpu.dropForkSnapshot();
    this.forkPrepared = false;
  }

  setTranslationRoot(rootAddress: number): void {
    if (rootAddress % PAGE_SIZE !== 0 || rootAddress < 0 || rootAddress >= this.memory.size) {
      throw new RangeError(
        `translation root 0x${rootAddress.toString(16)} is not a page inside guest memory`,
      );
    }
    this.shared.translationRoot = rootAddress; // each vCPU applies it (on its own thread) before it next runs
  }

  get translationRoot(): number {
    return this.shared.translationRoot;
  }

  queueAction(action: bigint, page = 0n, count = 0n): void {
    this.shared.queueAction(action, page, count);
  }

  takeActions(): QueuedActions {
    return this.shared.takeActions();
  }

  /** What a Worker passes to `attachHvfVm` to create vCPUs of this VM on its own thread. */
  descriptor(): HvfVmDescriptor {
    if (this.destroyed) throw new Error("descriptor of a destroyed VM");
    return {
      memoryAddress: this.memory.hostAddress,
      memorySize: this.memory.size,
      privateAddress: this.privateAddress,
      privateIpa: this.privateIpa,
      ipaBits: this.ipaBits,
      shared: this.shared.buffer,
    };
  }

  invalidateTlb(requests: readonly TlbInvalidation[]): void {
    for (const request of requests) {
      if (request.kind === "all") {
        this.queueAction(ACTION.TLBI_ALL);
        continue;
      }
      if (request.length <= 0) continue;
      const first = Math.floor(request.address / PAGE_SIZE);
      const last = Math.floor((request.address + request.length - 1) / PAGE_SIZE);
      const count = last - first + 1;
      if (count > TLBI_PAGES_MAX) this.queueAction(ACTION.TLBI_ALL);
      else this.queueAction(ACTION.TLBI_PAGES, BigInt(first), BigInt(count));
    }
  }

  invalidateCode(_address: number, length: number): void {
    if (length > 0) this.queueAction(ACTION.IC_IALLU);
  }

  /**
   * vCPUs in Workers of their own, one per guest thread, sharing a doorbell (vcpu-worker-group.ts): what the
   * runtime uses on this backend, since the thread that created a vCPU is the only one that may run it.
   */
  vcpuThreads(): VcpuThreads {
    if (this.destroyed) throw new Error("vcpuThreads of a destroyed VM");
    this.workerGroup ??= new HvfVcpuWorkerGroup(
      () => this.descriptor(),
      (token) => requestRemoteStop(token as RemoteStopToken, this.host.hv),
      this.threadOptions,
    );
    return this.workerGroup;
  }

  /** A vCPU owned by the calling thread (see the thread rule); Workers use `attachHvfVm`. */
  createVcpu(): HvfVcpu {
    if (this.destroyed) throw new Error("createVcpu on a destroyed VM");
    const index = this.shared.claimSlot(this.host.currentThread());
    if (index < 0) throw new Error(`at most ${MAX_VCPUS} vCPUs per VM`);
    const vcpu = createVcpuIn(this, index);
    this.local.set(index, vcpu);
    return vcpu;
  }

  vcpuDestroyed(index: number): void {
    this.local.delete(index);
    this.shared.releaseSlot(index);
  }

  destroy(): void {
    if (this.destroyed) return;
    for (const vcpu of [...this.local.values()]) vcpu.destroy();
    const remote = this.shared.slotOwners();
    if (remote.length > 0) {
      throw new Error(
        `destroy: vCPU slot(s) ${remote.map((o) => `${o.slot} (thread ${o.thread})`).join(", ")} still live in other threads: destroy their VcpuWorkerHost first`,
      );
    }
    this.destroyed = true;
    const hv = this.host.hv;
    for (const m of this.mappings) check("hv_vm_unmap", hv.hv_vm_unmap(m.ipa, m.size));
    check("hv_vm_destroy", hv.hv_vm_destroy());
    this.host.release(this.privateAddress, PRIVATE_SIZE);
    this.host.release(this.memory.hostAddress, this.memory.size);
  }
}

/**
 * A VM seen from a thread that did not create it (a vCPU Worker): the VM is process-wide, so this
 * thread may create vCPUs of its own in it. Memory and the private region are the creator's.
 */
export class HvfVmAttachment implements VcpuHome {
  readonly privateBytes: Uint8Array;
  readonly privateAddress: number;
  readonly privateIpa: bigint;
  readonly shared: SharedVmState;
  readonly memory: HvfMemory;

  constructor(
    readonly host: HvfHost,
    descriptor: HvfVmDescriptor,
  ) {
    this.privateAddress = descriptor.privateAddress;
    this.privateIpa = descriptor.privateIpa;
    this.privateBytes = new Uint8Array(toArrayBuffer(descriptor.privateAddress, 0, PRIVATE_SIZE));
    this.shared = new SharedVmState(descriptor.shared);
    this.memory = new HvfMemory(descriptor.memoryAddress, descriptor.memorySize);
  }

  /** A vCPU owned by the calling thread. */
  createVcpu(): HvfVcpu {
    const index = this.shared.claimSlot(this.host.currentThread());
    if (index < 0) throw new Error(`at most ${MAX_VCPUS} vCPUs per VM`);
    return createVcpuIn(this, index);
  }

  vcpuDestroyed(index: number): void {
    this.shared.releaseSlot(index);
  }
}

/** Attach to a VM created on another thread (see `HvfVm.descriptor()`); default host: the real framework. */
export function attachHvfVm(descriptor: HvfVmDescriptor, host: HvfHost = defaultHost()): HvfVmAttachment {
  return new HvfVmAttachment(host, descriptor);
}

export class HvfBackend implements Backend {
  readonly name = "hvf" as const;
  /**
   * `host` replaces the framework, memory and thread identity (tests); default: the real ones. `threads`
   * configures the Workers of `HvfVm.vcpuThreads()` (tests: a fake framework module for each).
   */
  constructor(
    private readonly host?: HvfHost,
    private readonly threads: HvfVcpuThreadOptions = {},
  ) {}
  availability(): BackendAvailability {
    return this.host ? hvfAvailability(this.host.hv) : hvfAvailability();
  }
  createVm(options: VmOptions): HvfVm {
    return new HvfVm(this.host ?? defaultHost(), options, this.threads);
  }
}

export type { HvfVcpu };
