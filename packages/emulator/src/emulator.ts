/**
 * The software backend: the `Backend` interface over Unicorn 2.1 (see architecture.md, "Unicorn facts").
 *
 * - Guest memory is one slab mapped once with uc_mem_map_ptr and never split.
 * - Permissions come from UC_TLB_VIRTUAL: the C core's TLB-fill hook walks the same AArch64 tables the
 *   HVF backend hands to hardware, so both backends enforce identical per-page permissions.
 * - `svc` is handled in place: the interrupt hook calls the JS dispatcher with X0..X8 in `syscallFrame`.
 *   One engine per VM; all vCPUs of a VM share it (guest atomics stay atomic), so only one runs at a time.
 */
import { JSCallback, type Pointer, ptr, toArrayBuffer } from "bun:ffi";
import type {
  AccessKind,
  Backend,
  BackendAvailability,
  GeneralRegister,
  GuestPhysicalMemory,
  InlineSyscallHandler,
  TlbInvalidation,
  Vcpu,
  VcpuContext,
  VcpuExit,
  Vm,
  VmOptions,
} from "@guest/hvf-bindings";
import { SYSCALL_LEAVE } from "@guest/hvf-bindings";
import { CORE, EXIT, loadCore } from "./core/ffi.ts";
import { type MemoryAccess, memoryAccessOf } from "./decode/decode.ts";
import { exactFaultAddress } from "./decode/fault-address.ts";
import {
  UC_ARCH_ARM64,
  UC_ARM64_REG,
  UC_CPU_ARM64_MAX,
  UC_ERR,
  UC_ERR_NAMES,
  UC_MEM_FETCH,
  UC_MEM_WRITE,
  UC_MODE_ARM,
  UC_PROT_ALL,
  UC_QUERY_PAGE_SIZE,
} from "./unicorn/constants.ts";
import { loadUnicorn, type UnicornLibrary, unicornLoadError } from "./unicorn/ffi.ts";

export class EmulatorError extends Error {
  constructor(call: string, code: number) {
    super(`${call} failed: ${UC_ERR_NAMES[code] ?? "unknown error"} (${code})`);
    this.name = "EmulatorError";
  }
}

/** The native address of an FFI symbol (Bun provides `.ptr` at run time; its types do not declare it). */
function symbolAddress(symbol: unknown): Pointer {
  return (symbol as { ptr: Pointer }).ptr;
}

/** Unicorn 2.0.x stores take a slow path (20× slower) and lack the TLB-fill hook: refuse them. */
export const MIN_UNICORN_VERSION = { major: 2, minor: 1 };

export function unicornVersion(lib: UnicornLibrary): { major: number; minor: number; patch: number } {
  const major = new Uint32Array(new ArrayBuffer(4));
  const minor = new Uint32Array(new ArrayBuffer(4));
  const combined = lib.symbols.uc_version(ptr(major), ptr(minor));
  return { major: major[0]!, minor: minor[0]!, patch: (combined >>> 0) & 0xff };
}

export function emulatorAvailability(): BackendAvailability {
  const loaded = loadUnicorn();
  if (!loaded) return { available: false, reason: unicornLoadError() ?? "libunicorn not found" };
  const version = unicornVersion(loaded.lib);
  if (
    version.major < MIN_UNICORN_VERSION.major ||
    (version.major === MIN_UNICORN_VERSION.major && version.minor < MIN_UNICORN_VERSION.minor)
  ) {
    return {
      available: false,
      reason: `${loaded.path} is Unicorn ${version.major}.${version.minor}.${version.patch}; guest needs 2.1 or newer (2.0 lacks the TLB-fill hook and runs stores ~20× slower). Run \`bun install\` to fetch 2.1, or set GUEST_UNICORN_LIB.`,
    };
  }
  return { available: true };
}

/** What the populate helper thread (Linux: half of each sequential fault-around window) has done so far. */
export interface PopulateHelperStatistics {
  /** This process has a helper thread (Linux, two or more CPUs, and a fault-around window of 512 KiB+ seen). */
  running: boolean;
  jobs: number;
  bytes: number;
  /** Windows that found the helper still busy with the previous one (this thread then did half a window). */
  busy: number;
}

/** Waits for the helper's current job, then reads its counters (for tests and benchmarks). */
export function populateHelperStatistics(): PopulateHelperStatistics {
  const counters = new BigUint64Array(new ArrayBuffer(24));
  const running = loadCore().core_populate_helper_stats(ptr(counters)) === 1;
  return { running, jobs: Number(counters[0]), bytes: Number(counters[1]), busy: Number(counters[2]) };
}

/** Switch the populate helper off or on (on by default where it can run); benchmarks compare the two. */
export function setPopulateHelper(enabled: boolean): void {
  loadCore().core_set_populate_helper(enabled ? 1 : 0);
}

const GUEST_PAGE_SIZE = 4096;

const ACCESS_BY_MEM_TYPE: Record<number, AccessKind> = {
  16: "read",
  [UC_MEM_WRITE]: "write",
  [UC_MEM_FETCH]: "exec",
};

/** PC, SP, X0..X30: the registers a fault exit hands the decoder (X29 and X30 sit apart in Unicorn's ids). */
const FAULT_REGISTER_IDS = [
  UC_ARM64_REG.PC,
  UC_ARM64_REG.SP,
  ...Array.from({ length: 29 }, (_, i) => UC_ARM64_REG.X0 + i),
  UC_ARM64_REG.X29,
  UC_ARM64_REG.X30,
];

function registerId(name: GeneralRegister): number {
  switch (name) {
    case "sp":
      return UC_ARM64_REG.SP;
    case "pc":
      return UC_ARM64_REG.PC;
    case "nzcv":
      return UC_ARM64_REG.NZCV;
    case "tpidr_el0":
      return UC_ARM64_REG.TPIDR_EL0;
    case "tpidrro_el0":
      return UC_ARM64_REG.TPIDRRO_EL0;
    case "fpcr":
      return UC_ARM64_REG.FPCR;
    case "fpsr":
      return UC_ARM64_REG.FPSR;
    case "x29":
      return UC_ARM64_REG.X29;
    case "x30":
      return UC_ARM64_REG.X30;
    default: {
      const index = Number(name.slice(1));
      return UC_ARM64_REG.X0 + index;
    }
  }
}

class EmulatorMemory implements GuestPhysicalMemory {
  readonly bytes: Uint8Array;
  /**
   * One bit per 64 KiB chunk: the fill hook populated it (anonymous fault-around), or it must not be
   * populated (a shared file overlay). Read by C: an explicit ArrayBuffer, referenced for the VM's lifetime.
   */
  readonly populated: Uint8Array;
  readonly populatedPtr: Pointer;
  constructor(
    readonly hostAddress: number,
    readonly size: number,
  ) {
    this.bytes = new Uint8Array(toArrayBuffer(hostAddress as Pointer, 0, size));
    this.populated = new Uint8Array(new ArrayBuffer(Math.ceil(size / 65536 / 8)));
    this.populatedPtr = ptr(this.populated);
  }
  discard(address: number, length: number): void {
    if (length <= 0) return;
    const result = loadCore().core_slab_discard(
      this.hostAddress as Pointer,
      address,
      length,
      this.populatedPtr,
    );
    if (result !== 0 || process.platform === "darwin") this.bytes.fill(0, address, address + length);
  }
  mapSharedFile(address: number, length: number, hostFd: number, offset: number, writable: boolean): number {
    // The host and guest page sizes match on Linux (4 KiB); a 16 KiB-page host needs aligned overlays.
    loadCore().core_slab_mark_populated(this.populatedPtr, address, length);
    return loadCore().core_slab_map_file(
      this.hostAddress as Pointer,
      address,
      length,
      hostFd,
      offset,
      writable ? 1 : 0,
    );
  }
  /** Linux only (the host's mremap moves the shared object's mapping); elsewhere mremap copies instead. */
  readonly moveSharedMapping =
    process.platform === "linux"
      ? (from: number, to: number, length: number, keepSource: boolean): number => {
          // The destination is backed by the object from now on: the fill hook must never populate it.
          loadCore().core_slab_mark_populated(this.populatedPtr, to, length);
          return loadCore().core_slab_move_shared(
            this.hostAddress as Pointer,
            from,
            to,
            length,
            keepSource ? 1 : 0,
          );
        }
      : undefined;
  mapPrivateFile(address: number, length: number, hostFd: number, offset: number): number {
    // Never populated by the fill hook: that would copy every page and stop them following the file.
    loadCore().core_slab_mark_populated(this.populatedPtr, address, length);
    return loadCore().core_slab_map_private_file(
      this.hostAddress as Pointer,
      address,
      length,
      hostFd,
      offset,
    );
  }
  unmapSharedFile(address: number, length: number): void {
    if (loadCore().core_slab_restore(this.hostAddress as Pointer, address, length) !== 0) {
      throw new Error(`cannot restore guest memory at 0x${address.toString(16)} after a shared file mapping`);
    }
  }
}

class EmulatorVcpu implements Vcpu {
  readonly syscallFrame: Uint32Array;
  // Buffers handed to C are created over an explicit ArrayBuffer: a small "fast" typed array may move
  // its storage when its .buffer is first touched, leaving C with a stale pointer.
  private readonly scratch = new BigUint64Array(new ArrayBuffer(16));
  private readonly scratchPtr: Pointer;
  // Fault exits read PC, SP and X0..X30 with one uc_reg_read_batch (FAULT_REGISTER_IDS order): after a
  // run, every FFI call and JS path runs cold, so one call beats several lazy reads.
  private readonly faultValues = new BigUint64Array(new ArrayBuffer(FAULT_REGISTER_IDS.length * 8));
  private readonly faultIds = new Int32Array(new ArrayBuffer(FAULT_REGISTER_IDS.length * 4));
  private readonly faultPointers = new BigUint64Array(new ArrayBuffer(FAULT_REGISTER_IDS.length * 8));
  private readonly faultIdsPtr: Pointer;
  private readonly faultPointersPtr: Pointer;
  private handler: InlineSyscallHandler | null = null;
  private callback: JSCallback | null = null;

  constructor(
    readonly id: number,
    private readonly vm: EmulatorVm,
  ) {
    this.syscallFrame = new Uint32Array(vm.coreState.buffer, CORE.frame, 18);
    this.scratchPtr = ptr(this.scratch);
    this.faultIds.set(FAULT_REGISTER_IDS);
    const values = ptr(this.faultValues);
    for (let i = 0; i < FAULT_REGISTER_IDS.length; i++) this.faultPointers[i] = BigInt(values + i * 8);
    this.faultIdsPtr = ptr(this.faultIds);
    this.faultPointersPtr = ptr(this.faultPointers);
  }

  setSyscallHandler(handler: InlineSyscallHandler | null): void {
    this.handler = handler;
    const view = this.vm.coreView;
    if (!handler) {
      view.setBigUint64(CORE.onSvc, 0n, true);
      this.callback?.close();
      this.callback = null;
      return;
    }
    if (!this.callback) {
      // Same-thread callback; kept referenced for the engine's lifetime (closed in destroy()).
      this.callback = new JSCallback(
        () => {
          try {
            return this.handler ? this.handler(this.syscallFrame) : SYSCALL_LEAVE;
          } catch (error) {
            this.vm.pendingError = error;
            return SYSCALL_LEAVE;
          }
        },
        { args: [], returns: "i32" },
      );
    }
    view.setBigUint64(CORE.onSvc, BigInt(this.callback.ptr!), true);
  }

  run(): VcpuExit {
    const vm = this.vm;
    const pc = this.getRegister("pc");
    const err = loadCore().core_run(vm.corePtr, pc);
    const view = vm.coreView;
    const kind = Number(view.getBigUint64(CORE.exitKind, true));
    if (vm.pendingError) {
      const error = vm.pendingError;
      vm.pendingError = null;
      throw error;
    }
    switch (kind) {
      case EXIT.SYSCALL:
        return { kind: "syscall" };
      case EXIT.STOPPED:
        return view.getBigUint64(CORE.preempted, true)
          ? { kind: "stopped", preempted: true }
          : { kind: "stopped" };
      case EXIT.UNDEFINED:
        return { kind: "undefined-instruction", pc: Number(this.getRegister("pc")) };
      case EXIT.BREAKPOINT:
        return { kind: "breakpoint", pc: Number(this.getRegister("pc")) };
    }
    const faultMapped = view.getBigUint64(CORE.faultMapped, true);
    if (faultMapped !== 2n && (kind === EXIT.FAULT || err !== UC_ERR.OK)) {
      return this.faultExit(
        view.getBigUint64(CORE.faultAddress, true),
        ACCESS_BY_MEM_TYPE[Number(view.getBigUint64(CORE.faultAccess, true))] ?? "read",
        faultMapped === 1n,
      );
    }
    if (err === UC_ERR.INSN_INVALID)
      return { kind: "undefined-instruction", pc: Number(this.getRegister("pc")) };
    if (err !== UC_ERR.OK)
      return { kind: "backend-error", message: new EmulatorError("uc_emu_start", err).message };
    return {
      kind: "backend-error",
      message: `emulation ended without an exit (exception ${view.getBigUint64(CORE.intno, true)})`,
    };
  }

  /**
   * A fault exit with Linux's si_addr: the TLB-fill hook saw only `page` (rounded down to Unicorn's page),
   * so the instruction at PC is decoded to find the exact byte. Runs on fault exits only.
   * - Fetch faults: the faulting address is PC itself.
   * - Data faults: the first byte of the decoded access inside the faulting guest page; the access kind
   *   comes from the instruction (atomics and CAS are write faults even when their read is the denied
   *   part, as arm64 Linux reports them).
   * - Fallback: the page address and the hook's access kind when the word at PC is not a load/store the
   *   decoder knows or its access does not touch the faulting page.
   */
  private faultExit(page: bigint, hookAccess: AccessKind, mapped: boolean): VcpuExit {
    const vm = this.vm;
    const values = this.faultValues;
    const count = FAULT_REGISTER_IDS.length;
    const err = vm.uc.symbols.uc_reg_read_batch(vm.engine, this.faultIdsPtr, this.faultPointersPtr, count);
    if (err) throw new EmulatorError("uc_reg_read_batch(fault registers)", err);
    const pc = values[0]!;
    if (hookAccess === "exec") {
      const address = pc >= page && pc < page + BigInt(vm.unicornPageSize) ? pc : page;
      return { kind: "fault", address: Number(address), access: "exec", mapped };
    }
    const bytes = vm.memory.bytes;
    let decoded: MemoryAccess | null = null;
    if (pc + 4n <= BigInt(bytes.length)) {
      const at = Number(pc);
      const word = bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24);
      decoded = memoryAccessOf(word, (n) => values[2 + n]!, values[1]!, pc);
    }
    const exact = exactFaultAddress(decoded, page, vm.unicornPageSize, GUEST_PAGE_SIZE);
    if (exact === null || !decoded)
      return { kind: "fault", address: Number(page), access: hookAccess, mapped };
    return { kind: "fault", address: Number(exact), access: decoded.write ? "write" : "read", mapped };
  }

  requestStop(): void {
    this.vm.coreView.setBigUint64(CORE.stopRequested, 1n, true);
  }

  saveContext(): VcpuContext {
    const uc = this.vm.uc.symbols;
    const holder = new BigUint64Array(new ArrayBuffer(8));
    const err = uc.uc_context_alloc(this.vm.engine, ptr(holder));
    if (err) throw new EmulatorError("uc_context_alloc", err);
    const context = Number(holder[0]!) as Pointer;
    const saved = uc.uc_context_save(this.vm.engine, context);
    if (saved) throw new EmulatorError("uc_context_save", saved);
    let freed = false;
    return {
      pointer: context,
      free: () => {
        if (!freed) uc.uc_context_free(context);
        freed = true;
      },
    } as VcpuContext;
  }

  setTimeSlice(blocks: number): void {
    // No whole-cache flush (it costs seconds of page zeroing in Unicorn 2.1): the caller invalidates the
    // guest's code (invalidateCode) so that blocks translated before the hook existed are retranslated with it.
    const err = loadCore().core_set_time_slice(this.vm.corePtr, blocks, 0);
    if (err) throw new EmulatorError("time slice (UC_HOOK_BLOCK)", err);
  }

  interruptWord(): number {
    return Number(this.vm.corePtr) + CORE.interrupt;
  }

  restoreContext(context: VcpuContext): void {
    const pointer = (context as VcpuContext & { pointer: Pointer }).pointer;
    const err = this.vm.uc.symbols.uc_context_restore(this.vm.engine, pointer);
    if (err) throw new EmulatorError("uc_context_restore", err);
  }

  getRegister(name: GeneralRegister): bigint {
    const err = this.vm.uc.symbols.uc_reg_read(this.vm.engine, registerId(name), this.scratchPtr);
    if (err) throw new EmulatorError(`uc_reg_read(${name})`, err);
    return this.scratch[0]!;
  }

  setRegister(name: GeneralRegister, value: bigint): void {
    this.scratch[0] = BigInt.asUintN(64, value);
    const err = this.vm.uc.symbols.uc_reg_write(this.vm.engine, registerId(name), this.scratchPtr);
    if (err) throw new EmulatorError(`uc_reg_write(${name})`, err);
  }

  getVector(index: number): Uint8Array {
    const err = this.vm.uc.symbols.uc_reg_read(this.vm.engine, UC_ARM64_REG.Q0 + index, this.scratchPtr);
    if (err) throw new EmulatorError(`uc_reg_read(q${index})`, err);
    return new Uint8Array(this.scratch.buffer.slice(0, 16));
  }

  setVector(index: number, value: Uint8Array): void {
    new Uint8Array(this.scratch.buffer).set(value.subarray(0, 16));
    const err = this.vm.uc.symbols.uc_reg_write(this.vm.engine, UC_ARM64_REG.Q0 + index, this.scratchPtr);
    if (err) throw new EmulatorError(`uc_reg_write(q${index})`, err);
  }

  destroy(): void {
    this.setSyscallHandler(null);
  }
}

class EmulatorVm implements Vm {
  readonly memory: EmulatorMemory;
  readonly uc: UnicornLibrary;
  readonly engine: Pointer;
  /** `struct core` of core.c; its buffer stays referenced while the engine lives (C keeps a pointer). */
  readonly coreState = new BigUint64Array(new ArrayBuffer(CORE.size));
  readonly coreView = new DataView(this.coreState.buffer);
  readonly corePtr: Pointer;
  /** Everything of this VM (engine, slab, tables) is process memory: a host fork's child keeps a working copy. */
  readonly forkable = true;
  pendingError: unknown = null;
  /** Unicorn's softmmu page: the granule of the addresses the TLB-fill hook sees. */
  readonly unicornPageSize: number;
  private vcpus: EmulatorVcpu[] = [];
  private destroyed = false;

  constructor(options: VmOptions) {
    const loaded = loadUnicorn();
    if (!loaded) throw new Error(unicornLoadError() ?? "libunicorn not found");
    this.uc = loaded.lib;
    const core = loadCore();
    const size = options.memorySize;
    const handle = new BigUint64Array(new ArrayBuffer(8));
    let err = this.uc.symbols.uc_open(UC_ARCH_ARM64, UC_MODE_ARM, ptr(handle));
    if (err) throw new EmulatorError("uc_open", err);
    this.engine = Number(handle[0]) as Pointer;
    const s = this.uc.symbols;
    // 4 KiB softmmu pages, as the guest's own granule, where Unicorn allows it: the 1 KiB default makes
    // every 4 KiB page cost four TLB entries (of 64) and four fills. Unicorn 2.1.1 accepts this control only
    // for 32-bit ARM (UC_ERR_ARG here); later releases accept it for arm64 too. Correctness does not
    // depend on it: the TLB-fill hook keeps every offset bit below the descriptor's block size.
    err = core.core_set_page_size(this.engine, symbolAddress(s.uc_ctl), GUEST_PAGE_SIZE);
    if (err && err !== UC_ERR.ARG) throw new EmulatorError("uc_ctl(UC_PAGE_SIZE)", err);
    err = core.core_set_cpu_model(this.engine, symbolAddress(s.uc_ctl), UC_CPU_ARM64_MAX);
    if (err) throw new EmulatorError("uc_ctl(CPU_MODEL)", err);
    const pageSize = new BigUint64Array(new ArrayBuffer(8));
    err = s.uc_query(this.engine, UC_QUERY_PAGE_SIZE, ptr(pageSize));
    if (err) throw new EmulatorError("uc_query(PAGE_SIZE)", err);
    this.unicornPageSize = Number(pageSize[0]);
    const slab = core.core_slab_create(size);
    if (typeof slab !== "number" || slab < 0)
      throw new Error(`cannot reserve ${size} bytes of guest memory (errno ${-Number(slab)})`);
    this.memory = new EmulatorMemory(slab, size);
    err = s.uc_mem_map_ptr(this.engine, 0, size, UC_PROT_ALL, slab as Pointer);
    if (err) throw new EmulatorError("uc_mem_map_ptr", err);

    const state = this.coreState;
    state[CORE.uc / 8] = BigInt(this.engine);
    state[CORE.emuStart / 8] = BigInt(symbolAddress(s.uc_emu_start));
    state[CORE.emuStop / 8] = BigInt(symbolAddress(s.uc_emu_stop));
    state[CORE.readBatch / 8] = BigInt(symbolAddress(s.uc_reg_read_batch));
    state[CORE.regWrite / 8] = BigInt(symbolAddress(s.uc_reg_write));
    state[CORE.ctl / 8] = BigInt(symbolAddress(s.uc_ctl));
    state[CORE.hookAdd / 8] = BigInt(symbolAddress(s.uc_hook_add));
    state[CORE.mem / 8] = BigInt(slab);
    state[CORE.memSize / 8] = BigInt(size);
    state[CORE.populated / 8] = BigInt(this.memory.populatedPtr);
    // MADV_POPULATE_WRITE exists since Linux 5.14; the hook turns it off on the first failure.
    state[CORE.populateEnabled / 8] = process.platform === "linux" ? 1n : 0n;
    this.corePtr = ptr(state);
    err = core.core_attach(this.corePtr);
    if (err) throw new EmulatorError("core_attach (TLB mode and hooks)", err);
    // FP/SIMD enabled at EL0 and EL1 (CPACR_EL1.FPEN = 0b11), as Linux leaves it for user space.
    const scratch = new BigUint64Array(new ArrayBuffer(8));
    scratch[0] = 3n << 20n;
    err = s.uc_reg_write(this.engine, UC_ARM64_REG.CPACR_EL1, ptr(scratch));
    if (err) throw new EmulatorError("uc_reg_write(CPACR_EL1)", err);
  }

  setTranslationRoot(rootAddress: number): void {
    this.coreState[CORE.ttbr / 8] = BigInt(rootAddress);
    loadCore().core_flush_tlb(this.corePtr);
  }

  invalidateTlb(requests: readonly TlbInvalidation[]): void {
    // Unicorn 2.1 offers only a whole-TLB flush; one per batch, and none for an empty batch.
    if (requests.length > 0) loadCore().core_flush_tlb(this.corePtr);
  }

  invalidateCode(address: number, length: number): void {
    if (length > 0) loadCore().core_remove_code(this.corePtr, address, address + length);
  }

  createVcpu(): Vcpu {
    if (this.vcpus.length > 0) {
      // One engine per VM keeps guest atomics atomic; a scheduler for several threads is the threads issue.
      throw new Error("the emulator backend runs one vCPU per VM for now");
    }
    const vcpu = new EmulatorVcpu(this.vcpus.length, this);
    this.vcpus.push(vcpu);
    return vcpu;
  }

  /** TLB fills and svc exceptions seen so far (for benchmarks and the package README). */
  statistics(): { tlbFills: number; syscalls: number } {
    return {
      tlbFills: Number(this.coreState[CORE.fills / 8]),
      syscalls: Number(this.coreState[CORE.svcs / 8]),
    };
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const vcpu of this.vcpus) vcpu.destroy();
    this.uc.symbols.uc_close(this.engine);
    loadCore().core_slab_destroy(this.memory.hostAddress as Pointer, this.memory.size);
  }
}

export class EmulatorBackend implements Backend {
  readonly name = "emulator" as const;
  availability(): BackendAvailability {
    return emulatorAvailability();
  }
  createVm(options: VmOptions): EmulatorVm {
    const availability = this.availability();
    if (!availability.available) throw new Error(availability.reason);
    return new EmulatorVm(options);
  }
}

export type { EmulatorVm };
