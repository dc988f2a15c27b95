import { expect, test } from "bun:test";
import { ASSEMBLER, assembleDemo, LINKER } from "../../scripts/build-demo.ts";
import { demoGuestBytes } from "./demo-bytes.ts";

const haveTools = Bun.which(ASSEMBLER) !== null && Bun.which(LINKER) !== null;

test.skipIf(!haveTools)("committed demo bytes are exactly what demo.S assembles to", () => {
  expect(Buffer.from(demoGuestBytes()).equals(Buffer.from(assembleDemo()))).toBe(true);
});

test("the demo guest is a static aarch64 ELF executable", () => {
  const bytes = demoGuestBytes();
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  expect(Array.from(bytes.subarray(0, 4))).toEqual([0x7f, 0x45, 0x4c, 0x46]);
  expect(view.getUint16(16, true)).toBe(2); // ET_EXEC
  expect(view.getUint16(18, true)).toBe(183); // EM_AARCH64
});
