/**
 * The Hypervisor.framework symbol table (everything we call, in one place), opened lazily: importing
 * this module never touches the framework, so the package loads on Linux.
 *
 * Library path: $GUEST_HVF_FRAMEWORK, else /System/Library/Frameworks/Hypervisor.framework/Hypervisor.
 * Signatures are the SDK's (macOS 13+ arm64); see /work/shared/reference/peer-elfuse.md §2.2.
 */
import { cc, dlopen, FFIType } from "bun:ffi";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BackendAvailability } from "../backend.ts";
import { type HvfSigningStatus, hvfSigningStatus, signingUnavailableReason } from "./signing.ts";
// Embedded by `bun build --compile` (a plain path when run from source).
import simdHelperPath from "./simd-helper.c" with { type: "file" };

export const DEFAULT_HVF_FRAMEWORK = "/System/Library/Frameworks/Hypervisor.framework/Hypervisor";

export const hypervisorSymbols = {
  // hv_vm_config_t hv_vm_config_create(void)
  hv_vm_config_create: { args: [], returns: FFIType.ptr },
  // hv_return_t hv_vm_config_get_max_ipa_size(uint32_t *ipa_bit_length)
  hv_vm_config_get_max_ipa_size: { args: [FFIType.ptr], returns: FFIType.i32 },
  // hv_return_t hv_vm_config_get_default_ipa_size(uint32_t *ipa_bit_length)
  hv_vm_config_get_default_ipa_size: { args: [FFIType.ptr], returns: FFIType.i32 },
  // hv_return_t hv_vm_config_set_ipa_size(hv_vm_config_t config, uint32_t ipa_bit_length)
  hv_vm_config_set_ipa_size: { args: [FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  // hv_return_t hv_vm_create(hv_vm_config_t config)
  hv_vm_create: { args: [FFIType.ptr], returns: FFIType.i32 },
  // hv_return_t hv_vm_destroy(void)
  hv_vm_destroy: { args: [], returns: FFIType.i32 },
  // hv_return_t hv_vm_map(void *addr, hv_ipa_t ipa, size_t size, hv_memory_flags_t flags)
  hv_vm_map: { args: [FFIType.ptr, FFIType.u64, FFIType.u64, FFIType.u64], returns: FFIType.i32 },
  // hv_return_t hv_vm_unmap(hv_ipa_t ipa, size_t size)
  hv_vm_unmap: { args: [FFIType.u64, FFIType.u64], returns: FFIType.i32 },
  // hv_return_t hv_vcpu_create(hv_vcpu_t *vcpu, hv_vcpu_exit_t **exit, hv_vcpu_config_t config)
  hv_vcpu_create: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  // hv_return_t hv_vcpu_destroy(hv_vcpu_t vcpu)
  hv_vcpu_destroy: { args: [FFIType.u64], returns: FFIType.i32 },
  // hv_return_t hv_vcpu_run(hv_vcpu_t vcpu)
  hv_vcpu_run: { args: [FFIType.u64], returns: FFIType.i32 },
  // hv_return_t hv_vcpus_exit(hv_vcpu_t *vcpus, uint32_t vcpu_count): the only cross-thread call
  hv_vcpus_exit: { args: [FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  // hv_return_t hv_vcpu_get_reg(hv_vcpu_t vcpu, hv_reg_t reg, uint64_t *value)
  hv_vcpu_get_reg: { args: [FFIType.u64, FFIType.u32, FFIType.ptr], returns: FFIType.i32 },
  // hv_return_t hv_vcpu_set_reg(hv_vcpu_t vcpu, hv_reg_t reg, uint64_t value)
  hv_vcpu_set_reg: { args: [FFIType.u64, FFIType.u32, FFIType.u64], returns: FFIType.i32 },
  // hv_return_t hv_vcpu_get_sys_reg(hv_vcpu_t vcpu, hv_sys_reg_t reg, uint64_t *value)
  hv_vcpu_get_sys_reg: { args: [FFIType.u64, FFIType.u16, FFIType.ptr], returns: FFIType.i32 },
  // hv_return_t hv_vcpu_set_sys_reg(hv_vcpu_t vcpu, hv_sys_reg_t reg, uint64_t value)
  hv_vcpu_set_sys_reg: { args: [FFIType.u64, FFIType.u16, FFIType.u64], returns: FFIType.i32 },
  // hv_return_t hv_vcpu_get_simd_fp_reg(hv_vcpu_t vcpu, hv_simd_fp_reg_t reg, hv_simd_fp_uchar16_t *value)
  hv_vcpu_get_simd_fp_reg: { args: [FFIType.u64, FFIType.u32, FFIType.ptr], returns: FFIType.i32 },
  // hv_return_t hv_vcpu_set_simd_fp_reg(hv_vcpu_t, hv_simd_fp_reg_t, hv_simd_fp_uchar16_t value):
  // NEVER called from JS (its value is a 16-byte vector in q0); its address goes to simd-helper.c.
  hv_vcpu_set_simd_fp_reg: { args: [FFIType.u64, FFIType.u32], returns: FFIType.i32 },
  // hv_return_t hv_vcpu_set_vtimer_mask(hv_vcpu_t vcpu, bool vtimer_is_masked)
  hv_vcpu_set_vtimer_mask: { args: [FFIType.u64, FFIType.bool], returns: FFIType.i32 },
  // hv_return_t hv_vcpu_get_vtimer_offset(hv_vcpu_t vcpu, uint64_t *vtimer_offset)
  hv_vcpu_get_vtimer_offset: { args: [FFIType.u64, FFIType.ptr], returns: FFIType.i32 },
  // hv_return_t hv_vcpu_set_vtimer_offset(hv_vcpu_t vcpu, uint64_t vtimer_offset)
  hv_vcpu_set_vtimer_offset: { args: [FFIType.u64, FFIType.u64], returns: FFIType.i32 },
  // hv_return_t hv_vcpu_set_trap_debug_exceptions(hv_vcpu_t vcpu, bool value)
  hv_vcpu_set_trap_debug_exceptions: { args: [FFIType.u64, FFIType.bool], returns: FFIType.i32 },
  // void os_release(void *object): hv_vm_config_t is an OS object. Not in the framework itself;
  // dlsym on the framework's handle finds it in libSystem, which the framework links.
  os_release: { args: [FFIType.ptr], returns: FFIType.void },
} as const;

type Library = ReturnType<typeof dlopen<typeof hypervisorSymbols>>;
/** The callable symbol table; tests inject a scripted fake with the same shape. */
export type HypervisorSymbols = Library["symbols"];

/** Host the framework exists on, in `process.platform-process.arch` form. */
export function hostTag(): string {
  return `${process.platform}-${process.arch}`;
}

let library: Library | null = null;
let loadError: string | null = null;

/** Why Hypervisor.framework cannot be used on this host, or null if it can be opened. */
export function hypervisorUnavailable(): string | null {
  if (process.platform !== "darwin" || process.arch !== "arm64") {
    return `Hypervisor.framework needs macOS on Apple Silicon; this host is ${hostTag()}: use --backend emulator`;
  }
  loadHypervisor();
  return loadError;
}

/** Open the framework once; null (with hypervisorUnavailable() saying why) when it cannot be used. */
export function loadHypervisor(): HypervisorSymbols | null {
  if (library) return library.symbols;
  if (loadError) return null;
  if (process.platform !== "darwin" || process.arch !== "arm64") {
    loadError = `Hypervisor.framework needs macOS on Apple Silicon; this host is ${hostTag()}: use --backend emulator`;
    return null;
  }
  const path = process.env.GUEST_HVF_FRAMEWORK || DEFAULT_HVF_FRAMEWORK;
  try {
    library = dlopen(path, hypervisorSymbols);
    return library.symbols;
  } catch (error) {
    loadError = `cannot open ${path}: ${(error as Error).message.split("\n")[0]} (macOS 13 or newer is required; set GUEST_HVF_FRAMEWORK to override the path)`;
    return null;
  }
}

/**
 * Whether the backend can run here: macOS on Apple Silicon, the framework opens, this executable
 * carries the `com.apple.security.hypervisor` entitlement (else hv_vm_create would fail with
 * HV_DENIED), and the framework answers its IPA limit (which needs no entitlement).
 * `symbols` and `signing` replace the framework and the codesign check (tests); with injected
 * symbols and no `signing`, the signature is not checked.
 */
export function hvfAvailability(
  symbols?: HypervisorSymbols,
  signing?: HvfSigningStatus,
): BackendAvailability {
  if (!symbols) {
    const reason = hypervisorUnavailable();
    if (reason) return { available: false, reason };
  }
  const status = signing ?? (symbols ? null : hvfSigningStatus());
  if (status) {
    const reason = signingUnavailableReason(status);
    if (reason) return { available: false, reason };
  }
  const hv = symbols ?? loadHypervisor()!;
  const bits = new Uint32Array(new ArrayBuffer(4));
  const code = hv.hv_vm_config_get_max_ipa_size(bits) >>> 0;
  if (code !== 0) {
    return {
      available: false,
      reason: `hv_vm_config_get_max_ipa_size failed (0x${code.toString(16)}): Hypervisor.framework is not usable on this Mac`,
    };
  }
  return { available: true };
}

/** Address of a framework function (for C helpers that call it), after loadHypervisor succeeded. */
export function hypervisorSymbolAddress(name: keyof typeof hypervisorSymbols): number {
  if (!library) throw new Error(hypervisorUnavailable() ?? "Hypervisor.framework is not loaded");
  return (library.symbols[name] as unknown as { ptr: number }).ptr;
}

// ---------------------------------------------------------------------------------------------
// The SIMD setter helper (simd-helper.c), compiled by TinyCC on first use. macOS arm64 only.

const simdSymbols = {
  guest_hvf_set_simd_fp_reg: {
    args: [FFIType.ptr, FFIType.u64, FFIType.u32, FFIType.ptr],
    returns: FFIType.i32,
  },
} as const;
type SimdLibrary = ReturnType<typeof cc<typeof simdSymbols>>;
/** Kept referenced: a collected cc() library frees its code. */
let simdLibrary: SimdLibrary | null = null;

/** The helper's source: its real path, or its path in a compiled binary's embedded file system. */
export const SIMD_HELPER_SOURCE: string = simdHelperPath;

/** TinyCC reads real files only: a compiled binary (scripts/sign.ts) copies its embedded source out first. */
function compilableSimdSource(): string {
  if (!SIMD_HELPER_SOURCE.startsWith("/$bunfs/")) return SIMD_HELPER_SOURCE;
  const copy = join(mkdtempSync(join(tmpdir(), "guest-hvf-")), "simd-helper.c");
  writeFileSync(copy, readFileSync(SIMD_HELPER_SOURCE));
  return copy;
}

export function loadSimdHelper(): SimdLibrary["symbols"] {
  if (process.platform !== "darwin" || process.arch !== "arm64") {
    throw new Error(`the SIMD register helper is arm64 machine code; this host is ${hostTag()}`);
  }
  simdLibrary ??= cc({ source: compilableSimdSource(), symbols: simdSymbols });
  return simdLibrary.symbols;
}
