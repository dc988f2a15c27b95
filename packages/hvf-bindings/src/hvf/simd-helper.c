/*
 * hv_vcpu_set_simd_fp_reg(hv_vcpu_t, hv_simd_fp_reg_t, hv_simd_fp_uchar16_t value) takes its value
 * as a 16-byte vector BY VALUE, i.e. in q0 (AAPCS64). bun:ffi cannot pass that, and TinyCC (bun:ffi's
 * `cc`) cannot either: it silently ignores __attribute__((vector_size)) (sizeof is 1), so a C
 * wrapper written the obvious way would compile and pass garbage. The wrapper is therefore two
 * instructions of machine code, emitted as data words TinyCC's generic assembler accepts:
 *
 *   ldr q0, [x2]     // 0x3dc00040  the 16 bytes the caller points at, into q0
 *   br  x3           // 0xd61f0060  tail-call the framework with x0 (vcpu) and w1 (reg) untouched
 *
 * Both the plain and the underscore-prefixed label are defined so the reference resolves under
 * ELF and Mach-O symbol conventions. Only ever called on macOS arm64. No system headers.
 */
#include <stdint.h>

__asm__(".text\n"
        ".p2align 2\n"
        ".globl guest_hvf_simd_trampoline\n"
        ".globl _guest_hvf_simd_trampoline\n"
        "guest_hvf_simd_trampoline:\n"
        "_guest_hvf_simd_trampoline:\n"
        ".int 0x3dc00040\n"
        ".int 0xd61f0060\n");

int32_t guest_hvf_simd_trampoline(uint64_t vcpu, uint32_t reg, const void *value, void *target);

/* Returns the framework's hv_return_t. `target` is hv_vcpu_set_simd_fp_reg's address. */
int32_t guest_hvf_set_simd_fp_reg(void *target, uint64_t vcpu, uint32_t reg, const void *value) {
  return guest_hvf_simd_trampoline(vcpu, reg, value, target);
}
