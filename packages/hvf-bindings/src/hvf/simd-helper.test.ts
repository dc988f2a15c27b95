import { cc, FFIType } from "bun:ffi";
import { expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SIMD_HELPER_SOURCE } from "./ffi.ts";

/** The machine words the helper ships, read from its source. */
const shippedWords = [...readFileSync(SIMD_HELPER_SOURCE, "utf8").matchAll(/"\.int (0x[0-9a-f]+)\\n"/g)].map(
  (m) => Number(m[1]),
);

const tools = [
  "aarch64-linux-gnu-as",
  "aarch64-linux-gnu-objcopy",
  "aarch64-linux-gnu-gcc",
  "qemu-aarch64-static",
];
const missing = tools.filter((tool) => !Bun.which(tool));
if (missing.length) console.warn(`skipping SIMD trampoline checks: ${missing.join(", ")} not found`);

function run(argv: string[]): string {
  const result = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  if (result.exitCode !== 0) throw new Error(`${argv.join(" ")}: ${result.stderr.toString()}`);
  return result.stdout.toString();
}

test.skipIf(missing.length > 0)("the trampoline words are `ldr q0, [x2]; br x3`", () => {
  const dir = mkdtempSync(join(tmpdir(), "guest-simd-"));
  try {
    writeFileSync(join(dir, "t.s"), "ldr q0, [x2]\nbr x3\n");
    run(["aarch64-linux-gnu-as", "-o", join(dir, "t.o"), join(dir, "t.s")]);
    run(["aarch64-linux-gnu-objcopy", "-O", "binary", "-j", ".text", join(dir, "t.o"), join(dir, "t.bin")]);
    const bytes = readFileSync(join(dir, "t.bin"));
    expect(shippedWords).toEqual([bytes.readUInt32LE(0), bytes.readUInt32LE(4)]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.skipIf(missing.length > 0)(
  "on aarch64 (qemu) the trampoline passes the 16 bytes in q0 and keeps x0/w1",
  () => {
    const dir = mkdtempSync(join(tmpdir(), "guest-simd-"));
    try {
      // The framework's setter stand-in takes the vector by value, exactly like hv_vcpu_set_simd_fp_reg.
      const program = `
#include <arm_neon.h>
#include <stdint.h>
#include <stdio.h>
__asm__(".text\\n.p2align 2\\n.globl tramp\\ntramp:\\n.inst ${shippedWords.map((w) => `0x${w.toString(16)}`).join(", ")}\\n");
int32_t tramp(uint64_t vcpu, uint32_t reg, const void *value, void *target);
static int32_t setter(uint64_t vcpu, uint32_t reg, uint8x16_t value) {
  uint8_t out[16];
  vst1q_u8(out, value);
  printf("%llx %u", (unsigned long long)vcpu, reg);
  for (int i = 0; i < 16; i++) printf(" %02x", out[i]);
  printf("\\n");
  return 0x1234;
}
int main(void) {
  uint8_t value[16];
  for (int i = 0; i < 16; i++) value[i] = (uint8_t)(0xa0 + i);
  int32_t r = tramp(0x123456789abcull, 31, value, (void *)setter);
  printf("ret %x\\n", r);
  return 0;
}`;
      writeFileSync(join(dir, "t.c"), program);
      run(["aarch64-linux-gnu-gcc", "-static", "-O2", "-o", join(dir, "t"), join(dir, "t.c")]);
      const output = run(["qemu-aarch64-static", join(dir, "t")]);
      expect(output).toBe("123456789abc 31 a0 a1 a2 a3 a4 a5 a6 a7 a8 a9 aa ab ac ad ae af\nret 1234\n");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test("TinyCC (bun:ffi cc) accepts the helper source and exports its entry point", () => {
  // Compiled only: on this host the words are not this CPU's code. Proves the source, the
  // top-level asm and the symbol table are acceptable to the compiler macOS will use.
  const lib = cc({
    source: SIMD_HELPER_SOURCE,
    symbols: {
      guest_hvf_set_simd_fp_reg: {
        args: [FFIType.ptr, FFIType.u64, FFIType.u32, FFIType.ptr],
        returns: FFIType.i32,
      },
    },
  });
  expect(typeof (lib.symbols.guest_hvf_set_simd_fp_reg as unknown as { ptr: number }).ptr).toBe("number");
  lib.close();
});
