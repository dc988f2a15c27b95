/**
 * The one interface both execution backends implement (Hypervisor.framework and the Unicorn
 * emulator). Nothing above it knows which backend it runs on; differences are capability queries.
 *
 * Memory model (architecture.md): guest virtual address == guest physical address == offset into
 * one host slab. Protection is stage-1: AArch64 translation tables that live *inside* guest
 * physical memory (in the runtime's reserved window), written by the `pagetable` package. HVF
 * walks them in hardware; the emulator walks the very same bytes from its TLB-fill hook.
 */

/** The host slab that is the guest's physical memory. */
export interface GuestPhysicalMemory {
  /** Bytes of guest physical address space: valid addresses are [0, size). */
  readonly size: number;
  /** Zero-copy view over the whole slab. Index == guest physical address. */
  readonly bytes: Uint8Array;
  /** Host pointer of the slab's first byte (for handing guest buffers straight to host syscalls). */
  readonly hostAddress: number;
  /** Give the host pages behind [address, address+length) back: they read as zeroes afterwards. */
  discard(address: number, length: number): void;
  /**
   * Capability (absent where the backend cannot do it): back page-aligned [address, address+length) with the
   * host file `hostFd` at `offset`, shared, so guest stores reach the file at once (MAP_SHARED semantics).
   * `writable` is false for a file opened read-only. Returns 0 or -errno.
   */
  mapSharedFile?(address: number, length: number, hostFd: number, offset: number, writable: boolean): number;
  /**
   * Capability: back [address, address+length) with the host file privately (MAP_PRIVATE): unwritten pages
   * follow the file, a store copies the page. Undone by unmapSharedFile too. Returns 0 or -errno.
   */
  mapPrivateFile?(address: number, length: number, hostFd: number, offset: number): number;
  /** Undo mapSharedFile / mapPrivateFile: [address, address+length) becomes private zero-filled memory again. */
  unmapSharedFile?(address: number, length: number): void;
  /**
   * Capability: move the shared mapping at [from, from+length) (one made by mapSharedFile) to `to`, so the same
   * object backs the new range, as mremap moves a MAP_SHARED area. `keepSource` (MREMAP_DONTUNMAP) leaves the
   * old range mapped to the object too; otherwise it becomes private zero-filled memory. 0 or -errno.
   */
  moveSharedMapping?(from: number, to: number, length: number, keepSource: boolean): number;
}

export type AccessKind = "read" | "write" | "exec";

/** Why `Vcpu.run()` returned. PC conventions follow the hardware exception that caused it. */
export type VcpuExit =
  /** `svc #0` with no in-line handler (or the handler asked to leave): PC is past the svc, number in X8. */
  | { kind: "syscall" }
  /**
   * A translation fault (`mapped: false`: no valid descriptor) or permission fault (`mapped: true`)
   * at `address`, PC still on the faulting instruction.
   */
  | { kind: "fault"; address: number; access: AccessKind; mapped: boolean }
  /** An instruction the CPU does not implement (or a privileged one): PC on it. */
  | { kind: "undefined-instruction"; pc: number }
  /** `brk #imm`: PC on it. */
  | { kind: "breakpoint"; pc: number }
  /** `requestStop()` was called, or the in-line syscall handler asked to leave the run loop. */
  | { kind: "stopped"; preempted?: boolean }
  /** The backend failed in a way that is not the guest's doing. */
  | { kind: "backend-error"; message: string };

/** Names of the general registers a backend exposes. */
export type GeneralRegister =
  | `x${0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9}`
  | `x${1 | 2}${0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9}`
  | "x30"
  | "sp"
  | "pc"
  | "nzcv"
  | "tpidr_el0"
  | "tpidrro_el0"
  | "fpcr"
  | "fpsr";

/** Every GeneralRegister, in a fixed order (x0..x30 first, so a name's index is its register number there). */
export const GENERAL_REGISTER_NAMES: readonly GeneralRegister[] = [
  ...(Array.from({ length: 31 }, (_, n) => `x${n}`) as GeneralRegister[]),
  "sp",
  "pc",
  "nzcv",
  "tpidr_el0",
  "tpidrro_el0",
  "fpcr",
  "fpsr",
];

/**
 * In-line syscall handling: the backend calls this on `svc #0` *without* leaving `run()`, with
 * `frame` holding X0..X8 as 18 little-endian u32 words (lo, hi per register). The handler writes
 * the result into words 0–1 (X0) and returns SYSCALL_RESUME, or returns SYSCALL_LEAVE to make
 * `run()` return `{ kind: "stopped" }` (PC past the svc, X0 untouched).
 * This saves a full run-loop round trip per syscall, the commonest exit there is.
 */
export type InlineSyscallHandler = (frame: Uint32Array) => number;
export const SYSCALL_RESUME = 0;
export const SYSCALL_LEAVE = 1;

export interface Vcpu {
  readonly id: number;
  /** Run guest code until an exit. */
  run(): VcpuExit;
  /** Ask a running vCPU to leave `run()` with `{ kind: "stopped" }` as soon as it can. */
  requestStop(): void;
  setSyscallHandler(handler: InlineSyscallHandler | null): void;
  /** The syscall frame the in-line handler sees (X0..X8, u32 lo/hi pairs). */
  readonly syscallFrame: Uint32Array;
  getRegister(name: GeneralRegister): bigint;
  setRegister(name: GeneralRegister, value: bigint): void;
  /** Q0..Q31, 16 bytes each, little-endian. */
  getVector(index: number): Uint8Array;
  setVector(index: number, value: Uint8Array): void;
  /**
   * Several guest threads on this one vCPU (the emulator: one engine per process): a snapshot of every
   * register, restored when the thread runs again. Absent where threads get vCPUs of their own.
   */
  saveContext?(): VcpuContext;
  restoreContext?(context: VcpuContext): void;
  /**
   * Time slices for several guest threads on this vCPU: run() returns `{ kind: "stopped", preempted: true }`
   * at a block boundary after about `blocks` translated blocks (0: no slices, only interruptWord stops). Blocks
   * translated before the first call may not count: invalidate the guest's code once after enabling.
   */
  setTimeSlice?(blocks: number): void;
  /**
   * Host address of a 64-bit word that, set nonzero (by a host signal handler: plain store, async-signal-safe),
   * makes run() return `{ kind: "stopped", preempted: true }` at the next block boundary, registers exact. Only
   * once setTimeSlice has been called (0 is enough): the stop is taken by its block hook.
   */
  interruptWord?(): number;
  destroy(): void;
}

/**
 * A vCPU running on a host thread of its own (see VcpuThreads): `start()` returns at once and the guest runs
 * while the caller goes on; `poll()` reports its exit. There is no in-line syscall handler: every syscall is
 * an exit (`{ kind: "syscall" }`, PC past the svc) and X0..X8 in `syscallFrame` are the guest's registers
 * between runs (what is written there is what the guest sees on the next `start()`). While it runs, only
 * `requestStop()` may be called; everything else waits for its exit.
 */
export interface ConcurrentVcpu extends Vcpu {
  start(): void;
  /** The exit once there is one (the vCPU is then stopped), else null. Never blocks. */
  poll(): VcpuExit | null;
  /** Started and its exit not yet taken by poll(). */
  readonly running: boolean;
}

/**
 * Capability of a VM whose vCPUs cannot share one engine (Hypervisor.framework: a vCPU belongs to the host
 * thread that created it and `hv_vcpu_run` blocks that thread): one host thread per vCPU, all running at once,
 * and one counter that moves whenever any of them may have an exit, so a single thread can handle them all.
 */
export interface VcpuThreads {
  /** A new vCPU on a thread of its own, ready to start (blocks the caller while the thread sets it up). */
  spawn(): ConcurrentVcpu;
  /** Moves whenever a vCPU of this group may have something for poll(): read it before polling. */
  readonly ring: number;
  /** Block until `ring` is no longer `seen`, or for `timeoutMs` at most. */
  waitForRing(seen: number, timeoutMs: number): void;
}

/** An opaque register snapshot (see Vcpu.saveContext); free() gives its memory back. */
export interface VcpuContext {
  free(): void;
}

/** One request for the backend to drop cached translations after page-table edits. */
export type TlbInvalidation = { kind: "all" } | { kind: "range"; address: number; length: number };

export interface VmOptions {
  /** Guest physical address space in bytes (power of two, at least 256 MiB). */
  memorySize: number;
}

export interface Vm {
  readonly memory: GuestPhysicalMemory;
  /** Guest physical address of the level-0 translation table (TTBR0_EL1). */
  setTranslationRoot(rootAddress: number): void;
  /** Apply the TLB invalidations a syscall queued, as one request. */
  invalidateTlb(requests: readonly TlbInvalidation[]): void;
  /** Instruction bytes in [address, address+length) changed behind the CPU's back (loader, mmap of code). */
  invalidateCode(address: number, length: number): void;
  /**
   * A host fork() can carry this VM into the child. The emulator's VM is plain process memory: the child
   * keeps a working copy and no hook is needed. A Hypervisor.framework VM belongs to the process that
   * created it: the child rebuilds it through the hooks below.
   */
  readonly forkable?: boolean;
  /**
   * Parent, just before the host fork(): save into process memory whatever of the VM lives outside it
   * (vCPU registers held by a hypervisor). Returns null when ready, or why this VM cannot be forked right
   * now (the runtime answers the guest's fork with ENOSYS and says why under --trace); after a refusal
   * neither after-hook is called.
   */
  prepareFork?(): string | null;
  /**
   * Child, right after the host fork(), before anything else touches the VM: rebuild it over the child's
   * copy of guest memory (same addresses, same contents). Every Vcpu object of the calling thread keeps
   * working (same object, same registers); anything it cannot rebuild is a thrown error (the child cannot
   * report failure to the guest: its fork already returned in the parent).
   */
  afterForkInChild?(): void;
  /** Parent, after the host fork() returned (a pid or -errno): drop what prepareFork saved. */
  afterForkInParent?(): void;
  createVcpu(): Vcpu;
  /**
   * Capability (Hypervisor.framework): vCPUs on host threads of their own, one per guest thread (see
   * VcpuThreads). Absent where all guest threads share one vCPU (the emulator: Vcpu.saveContext).
   */
  vcpuThreads?(): VcpuThreads;
  destroy(): void;
}

export interface BackendAvailability {
  available: boolean;
  /** Why not, in one line a user can act on. */
  reason?: string;
}

export interface Backend {
  readonly name: "hvf" | "emulator";
  availability(): BackendAvailability;
  createVm(options: VmOptions): Vm;
}
