/**
 * A scripted stand-in for the Hypervisor.framework symbol table, for run-loop tests on any host.
 * It keeps per-vCPU registers, records every call, and on each hv_vcpu_run plays the next scripted
 * step: a step plays the hardware and the shim (edits the frame, sets the exit struct).
 */
import { ptr, toArrayBuffer } from "bun:ffi";
import { mapAnonymous, unmap } from "../../libc/ffi.ts";
import { FRAME, SHIM_VA_BASE } from "../../shim/layout.ts";
import {
  HV_BAD_ARGUMENT,
  HV_BUSY,
  HV_EXIT_REASON_CANCELED,
  HV_EXIT_REASON_EXCEPTION,
  HV_REG_CPSR,
  HV_REG_PC,
  HV_SYS_REG,
  HV_VCPU_EXIT,
} from "../constants.ts";
import type { HypervisorSymbols } from "../ffi.ts";
import { EC } from "../syndrome-constants.ts";
import type { HvfHost } from "../vm.ts";

export const PC = HV_REG_PC;

export interface FakeVcpu {
  handle: bigint;
  regs: bigint[];
  sysregs: Map<number, bigint>;
  exitBuffer: ArrayBuffer;
  exit: DataView;
  simd: Uint8Array[];
  vtimerMaskCalls: boolean[];
  trapDebugCalls: boolean[];
  /** CNTVOFF: CNTVCT_EL0 = the host counter minus this. */
  vtimerOffset: bigint;
}

/** Plays one hv_vcpu_run; a number return value is the hv_return_t (default HV_SUCCESS). */
export type Step = (vcpu: FakeVcpu, fake: FakeHypervisor) => unknown;

/** Flags per vCPU handle, shared between threads: set by hv_vcpus_exit, awaited by a spinning guest. */
export const EXIT_LINE_SIZE = 64 * 4;

export class FakeHypervisor {
  maxIpa = 40;
  /** IPA widths hv_vm_create refuses (to exercise the 40 → 38 → 36 ladder). */
  refuseIpa = new Set<number>();
  createResult = 0;
  ipaRequested: number[] = [];
  vmCreated = false;
  maps: { address: number; ipa: number; size: number; flags: number }[] = [];
  unmaps: { ipa: number; size: number }[] = [];
  vcpus = new Map<bigint, FakeVcpu>();
  exitsRequested: bigint[] = [];
  calls: string[] = [];
  script: Step[] = [];
  /** Host view of the private region, set by the test once the VM exists. */
  privateBytes: Uint8Array | null = null;
  thread = 0;
  /** Played when the script is empty (a guest that does the same thing forever); null: fail. */
  idleStep: Step | null = null;
  /** CNTVOFF a new vCPU starts with. */
  defaultVtimerOffset = 0n;
  private nextHandle = 0n;
  private configs = new Map<number, number>();
  private readonly exitLine: Int32Array | null;

  readonly symbols = this.makeSymbols();

  /**
   * `exitLine` lets hv_vcpus_exit cross threads as the real one does: fakes on several threads that
   * share it see each other's cancels (the VM's thread kicks, the vCPU's thread spins until kicked).
   */
  constructor(options: { exitLine?: SharedArrayBuffer; firstHandle?: number } = {}) {
    this.exitLine = options.exitLine ? new Int32Array(options.exitLine) : null;
    // Fakes in several workers share one exit line: each numbers its vCPUs from its own base.
    this.nextHandle = BigInt(options.firstHandle ?? 0);
  }

  host(): HvfHost {
    return {
      hv: this.symbols,
      allocate: mapAnonymous,
      release: unmap,
      setSimdFpReg: (vcpu, reg, value) => {
        this.vcpus.get(vcpu)!.simd[reg] = new Uint8Array(toArrayBuffer(value, 0, 16)).slice();
        return 0;
      },
      currentThread: () => this.thread,
    };
  }

  /**
   * Become the framework as a forked child sees it: no VM and no vCPUs (the parent's stay the parent's).
   * Host memory is the same in this one process; a real child has a copy at the same addresses.
   * Handles keep counting up, so a child vCPU never reuses a parent's handle; the parent's exit structs
   * are overwritten with 0xff bytes.
   */
  forkChild(): void {
    // The parent's exit structs mean nothing here: poison them so a stale pointer reads garbage.
    for (const vcpu of this.vcpus.values()) new Uint8Array(vcpu.exitBuffer).fill(0xff);
    this.vmCreated = false;
    this.vcpus = new Map();
    this.maps = [];
    this.unmaps = [];
    this.ipaRequested = [];
    this.exitsRequested = [];
    this.calls = [];
    this.configs.clear();
  }

  vcpu(index = 0): FakeVcpu {
    return [...this.vcpus.values()][index]!;
  }

  /** The frame a vCPU's shim would use right now: SP_EL1 (a TTBR1 VA) → private region offset. */
  frameOf(vcpu: FakeVcpu): DataView {
    const sp = vcpu.sysregs.get(HV_SYS_REG.SP_EL1)!;
    const bytes = this.privateBytes!;
    const offset = Number(sp - SHIM_VA_BASE);
    return new DataView(bytes.buffer, bytes.byteOffset + offset, FRAME.SIZE);
  }

  // ---- helpers that play the shim --------------------------------------------------------------

  /** The shim's return path ran: it performed (and cleared) the queued actions; returns what it saw. */
  shimResumes(vcpu: FakeVcpu): { action: bigint; page: bigint; count: bigint } {
    const frame = this.frameOf(vcpu);
    const seen = {
      action: frame.getBigUint64(FRAME.ACTION, true),
      page: frame.getBigUint64(FRAME.TLBI_PAGE, true),
      count: frame.getBigUint64(FRAME.TLBI_COUNT, true),
    };
    frame.setBigUint64(FRAME.ACTION, 0n, true);
    return seen;
  }

  /** EL0 took a synchronous exception: the shim saved the state and exits with HVC #imm. */
  shimExits(
    vcpu: FakeVcpu,
    immediate: number,
    state: { esr: bigint; elr: bigint; far?: bigint; x?: Record<number, bigint>; sp?: bigint; spsr?: bigint },
  ): void {
    const frame = this.frameOf(vcpu);
    for (const [n, value] of Object.entries(state.x ?? {}))
      frame.setBigUint64(FRAME.X0 + 8 * Number(n), value, true);
    frame.setBigUint64(FRAME.ESR, state.esr, true);
    frame.setBigUint64(FRAME.ELR, state.elr, true);
    frame.setBigUint64(FRAME.FAR, state.far ?? 0n, true);
    frame.setBigUint64(FRAME.SP_EL0, state.sp ?? 0x7fff_f000n, true);
    frame.setBigUint64(FRAME.SPSR, state.spsr ?? 0n, true);
    this.setExit(vcpu, HV_EXIT_REASON_EXCEPTION, (BigInt(EC.HVC64) << 26n) | (1n << 25n) | BigInt(immediate));
  }

  setExit(vcpu: FakeVcpu, reason: number, syndrome = 0n, va = 0n, ipa = 0n): void {
    vcpu.exit.setUint32(HV_VCPU_EXIT.reason, reason, true);
    vcpu.exit.setBigUint64(HV_VCPU_EXIT.syndrome, syndrome, true);
    vcpu.exit.setBigUint64(HV_VCPU_EXIT.virtualAddress, va, true);
    vcpu.exit.setBigUint64(HV_VCPU_EXIT.physicalAddress, ipa, true);
  }

  /**
   * The guest runs at EL0 until another thread calls hv_vcpus_exit on it (through the exit line),
   * then the run ends CANCELED with live registers and PC at `pc`.
   */
  runUntilKicked(vcpu: FakeVcpu, pc: bigint): void {
    const line = this.exitLine;
    if (!line) throw new Error("runUntilKicked needs an exit line");
    const index = Number(vcpu.handle);
    while (Atomics.compareExchange(line, index, 1, 0) !== 1) Atomics.wait(line, index, 0);
    vcpu.regs[PC] = pc;
    this.cancelled(vcpu, true);
  }

  /** hv_vcpus_exit interrupted the guest at EL0 (live registers) or inside the shim (EL1h). */
  cancelled(vcpu: FakeVcpu, atEl0: boolean): void {
    vcpu.regs[HV_REG_CPSR] = atEl0 ? 0n : 0x3c5n;
    this.setExit(vcpu, HV_EXIT_REASON_CANCELED);
  }

  private makeSymbols(): HypervisorSymbols {
    const u64 = (value: number | bigint) => BigInt(value);
    const symbols = {
      hv_vm_config_create: () => {
        const id = 0x1000 + this.configs.size * 16;
        this.configs.set(id, 0);
        return id;
      },
      hv_vm_config_get_max_ipa_size: (out: Uint32Array) => {
        out[0] = this.maxIpa;
        return 0;
      },
      hv_vm_config_get_default_ipa_size: (out: Uint32Array) => {
        out[0] = 36;
        return 0;
      },
      hv_vm_config_set_ipa_size: (config: number, bits: number) => {
        this.configs.set(config, bits);
        return 0;
      },
      hv_vm_create: (config: number) => {
        const bits = this.configs.get(config)!;
        this.ipaRequested.push(bits);
        if (this.createResult) return this.createResult | 0;
        if (this.refuseIpa.has(bits)) return HV_BAD_ARGUMENT | 0;
        if (this.vmCreated) return HV_BUSY | 0; // one VM per process
        this.vmCreated = true;
        return 0;
      },
      hv_vm_destroy: () => {
        this.vmCreated = false;
        return 0;
      },
      hv_vm_map: (address: number, ipa: number | bigint, size: number | bigint, flags: number | bigint) => {
        this.maps.push({
          address: Number(address),
          ipa: Number(ipa),
          size: Number(size),
          flags: Number(flags),
        });
        return 0;
      },
      hv_vm_unmap: (ipa: number | bigint, size: number | bigint) => {
        this.unmaps.push({ ipa: Number(ipa), size: Number(size) });
        return 0;
      },
      hv_vcpu_create: (handleOut: BigUint64Array, exitOut: BigUint64Array) => {
        const handle = this.nextHandle++;
        const exitBuffer = new ArrayBuffer(HV_VCPU_EXIT.size);
        const vcpu: FakeVcpu = {
          handle,
          regs: new Array(35).fill(0n),
          sysregs: new Map(),
          exitBuffer,
          exit: new DataView(exitBuffer),
          simd: Array.from({ length: 32 }, () => new Uint8Array(16)),
          vtimerMaskCalls: [],
          trapDebugCalls: [],
          vtimerOffset: this.defaultVtimerOffset,
        };
        this.vcpus.set(handle, vcpu);
        handleOut[0] = handle;
        exitOut[0] = BigInt(ptr(exitBuffer));
        return 0;
      },
      hv_vcpu_destroy: (handle: bigint) => {
        this.calls.push(`destroy ${handle}`);
        return this.vcpus.delete(u64(handle)) ? 0 : HV_BAD_ARGUMENT | 0;
      },
      hv_vcpu_run: (handle: bigint) => {
        const step = this.script.shift() ?? this.idleStep;
        if (!step) throw new Error("fake hv_vcpu_run: script exhausted");
        this.calls.push("run");
        const result = step(this.vcpus.get(u64(handle))!, this);
        return typeof result === "number" ? result : 0;
      },
      hv_vcpus_exit: (handles: BigUint64Array, count: number) => {
        for (let i = 0; i < count; i++) {
          this.exitsRequested.push(handles[i]!);
          if (this.exitLine) {
            Atomics.store(this.exitLine, Number(handles[i]!), 1);
            Atomics.notify(this.exitLine, Number(handles[i]!));
          }
        }
        return 0;
      },
      hv_vcpu_get_reg: (handle: bigint, reg: number, out: BigUint64Array) => {
        out[0] = this.vcpus.get(u64(handle))!.regs[reg]!;
        return 0;
      },
      hv_vcpu_set_reg: (handle: bigint, reg: number, value: bigint | number) => {
        this.vcpus.get(u64(handle))!.regs[reg] = u64(value);
        return 0;
      },
      hv_vcpu_get_sys_reg: (handle: bigint, reg: number, out: BigUint64Array) => {
        out[0] = this.vcpus.get(u64(handle))!.sysregs.get(reg) ?? 0n;
        return 0;
      },
      hv_vcpu_set_sys_reg: (handle: bigint, reg: number, value: bigint | number) => {
        this.vcpus.get(u64(handle))!.sysregs.set(reg, u64(value));
        return 0;
      },
      hv_vcpu_get_simd_fp_reg: (handle: bigint, reg: number, out: BigUint64Array) => {
        new Uint8Array(out.buffer, out.byteOffset, 16).set(this.vcpus.get(u64(handle))!.simd[reg]!);
        return 0;
      },
      hv_vcpu_set_simd_fp_reg: () => {
        throw new Error("hv_vcpu_set_simd_fp_reg is never called from JS");
      },
      hv_vcpu_set_vtimer_mask: (handle: bigint, masked: boolean) => {
        this.vcpus.get(u64(handle))!.vtimerMaskCalls.push(masked);
        return 0;
      },
      hv_vcpu_get_vtimer_offset: (handle: bigint, out: BigUint64Array) => {
        out[0] = this.vcpus.get(u64(handle))!.vtimerOffset;
        return 0;
      },
      hv_vcpu_set_vtimer_offset: (handle: bigint, value: bigint | number) => {
        this.vcpus.get(u64(handle))!.vtimerOffset = u64(value);
        return 0;
      },
      hv_vcpu_set_trap_debug_exceptions: (handle: bigint, value: boolean) => {
        this.vcpus.get(u64(handle))!.trapDebugCalls.push(value);
        return 0;
      },
      os_release: (config: number) => {
        this.configs.delete(config);
      },
    };
    return symbols as unknown as HypervisorSymbols;
  }
}
