/**
 * Symbol table of the emulator's native core (core.c): the shared object setup prebuilt for this exact source,
 * or compiled once per process by bun:ffi's `cc`. GUEST_EMULATOR_CORE names another prebuilt object to use.
 */

import { type cc, FFIType } from "bun:ffi";
import { join } from "node:path";
import { loadNativeHelper } from "@guest/hvf-bindings";

export const CORE_SOURCE = join(import.meta.dir, "core.c");

const symbols = {
  core_attach: { args: [FFIType.ptr], returns: FFIType.i32 },
  core_set_cpu_model: { args: [FFIType.ptr, FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  core_set_page_size: { args: [FFIType.ptr, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  core_run: { args: [FFIType.ptr, FFIType.u64], returns: FFIType.i32 },
  core_flush_tlb: { args: [FFIType.ptr], returns: FFIType.i32 },
  core_remove_code: { args: [FFIType.ptr, FFIType.u64, FFIType.u64], returns: FFIType.i32 },
  core_slab_create: { args: [FFIType.u64], returns: FFIType.i64_fast },
  core_slab_discard: { args: [FFIType.ptr, FFIType.u64, FFIType.u64, FFIType.ptr], returns: FFIType.i32 },
  core_slab_mark_populated: { args: [FFIType.ptr, FFIType.u64, FFIType.u64], returns: FFIType.void },
  core_slab_destroy: { args: [FFIType.ptr, FFIType.u64], returns: FFIType.i32 },
  core_slab_map_file: {
    args: [FFIType.ptr, FFIType.u64, FFIType.u64, FFIType.i32, FFIType.i64, FFIType.i32],
    returns: FFIType.i32,
  },
  core_slab_restore: { args: [FFIType.ptr, FFIType.u64, FFIType.u64], returns: FFIType.i32 },
  core_slab_map_private_file: {
    args: [FFIType.ptr, FFIType.u64, FFIType.u64, FFIType.i32, FFIType.i64],
    returns: FFIType.i32,
  },
  core_slab_move_shared: {
    args: [FFIType.ptr, FFIType.u64, FFIType.u64, FFIType.u64, FFIType.i32],
    returns: FFIType.i32,
  },
  core_struct_size: { args: [], returns: FFIType.i32 },
  core_set_time_slice: { args: [FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i32 },
  core_populate_helper_stats: { args: [FFIType.ptr], returns: FFIType.i32 },
  core_set_populate_helper: { args: [FFIType.i32], returns: FFIType.void },
} as const;

type CoreLibrary = ReturnType<typeof cc<typeof symbols>>;
/** The whole library object stays referenced: if it were collected, its compiled code would be freed under us. */
let library: CoreLibrary | null = null;

export function loadCore(): CoreLibrary["symbols"] {
  if (!library) {
    library = loadNativeHelper(CORE_SOURCE, symbols, process.env.GUEST_EMULATOR_CORE) as CoreLibrary;
    const nativeSize = library.symbols.core_struct_size();
    // The JS buffer must cover the whole C struct: C writes every field, past-the-end writes corrupt the JS heap.
    if (nativeSize !== CORE.size)
      throw new Error(`emulator core: struct core is ${nativeSize} bytes, core/ffi.ts says ${CORE.size}`);
  }
  return library.symbols;
}

/** Byte offsets of `struct core` fields (core.c). */
export const CORE = {
  uc: 0,
  emuStart: 8,
  emuStop: 16,
  readBatch: 24,
  regWrite: 32,
  ctl: 40,
  hookAdd: 48,
  mem: 56,
  memSize: 64,
  ttbr: 72,
  onSvc: 80,
  exitKind: 88,
  faultAddress: 96,
  faultAccess: 104,
  faultMapped: 112,
  intno: 120,
  stopRequested: 128,
  fills: 152,
  svcs: 160,
  frame: 168,
  populated: 352,
  populateEnabled: 360,
  populateNext: 368,
  populateWindow: 376,
  sliceCount: 384,
  sliceLimit: 392,
  preempted: 400,
  blockHook: 408,
  interrupt: 416,
  size: 424,
} as const;

export const EXIT = {
  NONE: 0,
  SYSCALL: 1,
  FAULT: 2,
  UNDEFINED: 3,
  BREAKPOINT: 4,
  STOPPED: 5,
  EXCEPTION: 6,
} as const;
