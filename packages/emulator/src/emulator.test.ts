import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { closeSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SYSCALL_LEAVE, SYSCALL_RESUME, type Vcpu, type Vm } from "@guest/hvf-bindings";
import { EmulatorBackend, type EmulatorVm, emulatorAvailability, populateHelperStatistics } from "./index.ts";
import { PAGE, TinyTables } from "./testing/tiny-tables.ts";

// Guest code, assembled with aarch64-linux-gnu-as (source beside each word).
const GETPID_LOOP = [
  0xd2800013, // mov x19, #0
  0xd2800149, // mov x9, #10
  0xd2801588, // 1: mov x8, #172 (getpid)
  0xd4000001, // svc #0
  0x8b000273, // add x19, x19, x0
  0xf1000529, // subs x9, x9, #1
  0x54ffff81, // b.ne 1b
  0xaa1303e0, // mov x0, x19
  0xd2800bc8, // mov x8, #94 (exit_group)
  0xd4000001, // svc #0
];
const STORE_LOAD_BRANCH = [
  0xf9000020, // str x0, [x1]
  0xf9400040, // ldr x0, [x2]
  0xd61f0060, // br x3
];
const SUBPAGE_LOADS = [
  0xf9400020, // ldr x0, [x1]
  0xf9420022, // ldr x2, [x1, #0x400]
  0xf9440023, // ldr x3, [x1, #0x800]
  0xf9460024, // ldr x4, [x1, #0xc00]
  0xd4200000, // brk #0
];
const FIRST_TOUCH_LOOP = [
  0xd34cfc24, // 1: lsr x4, x1, #12
  0x39000024, // strb w4, [x1]
  0x91400421, // add x1, x1, #4096
  0xeb02003f, // cmp x1, x2
  0x54ffff83, // b.lo 1b
  0xd4200000, // brk #0
];
const BRK_UDF = [
  0xd42000e0, // brk #7
  0x00000000, // udf #0
];

const CODE = 0x400000;
const DATA = 0x500000;
const RO_DATA = 0x600000;
const POOL = 0x1000000;
const available = emulatorAvailability().available;

function load(memory: Uint8Array, address: number, words: number[]): void {
  const view = new DataView(memory.buffer, memory.byteOffset + address, words.length * 4);
  for (const [i, word] of words.entries()) view.setUint32(i * 4, word >>> 0, true);
}

describe.skipIf(!available)("emulator backend", () => {
  let vm: EmulatorVm;
  let vcpu: Vcpu;
  let tables: TinyTables;

  beforeEach(() => {
    vm = new EmulatorBackend().createVm({ memorySize: 256 * 1024 * 1024 });
    tables = new TinyTables(vm.memory.bytes, POOL);
    tables.map(CODE, PAGE, true, false, true);
    tables.map(DATA, PAGE, true, true, false);
    tables.map(RO_DATA, PAGE, true, false, false);
    vm.setTranslationRoot(tables.root);
    vcpu = vm.createVcpu();
  });
  afterEach(() => vm.destroy());

  test("the VM survives a host fork as it is: forkable, with no fork hooks to run", () => {
    const asVm: Vm = vm;
    expect(asVm.forkable).toBe(true);
    expect(asVm.prepareFork).toBeUndefined();
    expect(asVm.afterForkInChild).toBeUndefined();
    expect(asVm.afterForkInParent).toBeUndefined();
  });

  test("svc is dispatched in place: X8 in, X0 out, no run() exit per call", () => {
    load(vm.memory.bytes, CODE, GETPID_LOOP);
    const seen: number[] = [];
    vcpu.setSyscallHandler((frame) => {
      seen.push(frame[16]!);
      if (frame[16] === 94) return SYSCALL_LEAVE;
      frame[0] = 7;
      frame[1] = 0;
      return SYSCALL_RESUME;
    });
    vcpu.setRegister("pc", BigInt(CODE));
    expect(vcpu.run()).toEqual({ kind: "stopped" });
    expect(seen).toEqual([...Array(10).fill(172), 94]);
    expect(vcpu.getRegister("x0")).toBe(70n); // 10 results of 7, summed by the guest
    expect(vcpu.getRegister("pc")).toBe(BigInt(CODE + 40)); // past the final svc
    expect(vm.statistics().syscalls).toBe(11);
  });

  test("without an in-line handler every svc leaves run() with PC past it", () => {
    load(vm.memory.bytes, CODE, GETPID_LOOP);
    vcpu.setRegister("pc", BigInt(CODE));
    expect(vcpu.run()).toEqual({ kind: "syscall" });
    expect(vcpu.getRegister("pc")).toBe(BigInt(CODE + 16));
    expect(vcpu.getRegister("x8")).toBe(172n);
  });

  test("write to a read-only page is a permission fault at the exact address, PC on the store", () => {
    load(vm.memory.bytes, CODE, STORE_LOAD_BRANCH);
    vcpu.setRegister("x1", BigInt(RO_DATA + 8));
    vcpu.setRegister("pc", BigInt(CODE));
    expect(vcpu.run()).toEqual({ kind: "fault", address: RO_DATA + 8, access: "write", mapped: true });
    expect(vcpu.getRegister("pc")).toBe(BigInt(CODE));
  });

  test("read of an unmapped page is a translation fault", () => {
    load(vm.memory.bytes, CODE, STORE_LOAD_BRANCH);
    vcpu.setRegister("x1", BigInt(DATA));
    vcpu.setRegister("x2", BigInt(0x700000));
    vcpu.setRegister("pc", BigInt(CODE));
    expect(vcpu.run()).toEqual({ kind: "fault", address: 0x700000, access: "read", mapped: false });
    expect(vcpu.getRegister("pc")).toBe(BigInt(CODE + 4));
  });

  test("executing a non-executable page is an exec permission fault at PC", () => {
    load(vm.memory.bytes, CODE, STORE_LOAD_BRANCH);
    vcpu.setRegister("x1", BigInt(DATA));
    vcpu.setRegister("x2", BigInt(DATA));
    vcpu.setRegister("x3", BigInt(DATA + 0x10));
    vcpu.setRegister("pc", BigInt(CODE));
    expect(vcpu.run()).toEqual({ kind: "fault", address: DATA + 0x10, access: "exec", mapped: true });
    expect(vcpu.getRegister("pc")).toBe(BigInt(DATA + 0x10));
  });

  test("a permission change takes effect after invalidateTlb", () => {
    load(vm.memory.bytes, CODE, STORE_LOAD_BRANCH);
    vcpu.setRegister("x0", 0x1234n);
    vcpu.setRegister("x1", BigInt(RO_DATA));
    vcpu.setRegister("pc", BigInt(CODE));
    expect(vcpu.run().kind).toBe("fault");
    tables.map(RO_DATA, PAGE, true, true, false);
    vm.invalidateTlb([{ kind: "range", address: RO_DATA, length: PAGE }]);
    vcpu.setRegister("x2", BigInt(0x700000)); // next instruction faults, so run() returns
    expect(vcpu.run().kind).toBe("fault");
    expect(new DataView(vm.memory.bytes.buffer).getUint32(RO_DATA, true)).toBe(0x1234);
  });

  test("every 1 KiB part of a 4 KiB page reads the slab's own bytes (Unicorn's page may be 1 KiB)", () => {
    // Regression: the fill hook once rebuilt the address from the 4 KiB page and dropped bits 10-11, so
    // guest loads at page+0xc00 read page+0x000.
    load(vm.memory.bytes, CODE, SUBPAGE_LOADS);
    const view = new DataView(vm.memory.bytes.buffer);
    for (let part = 0; part < 4; part++)
      view.setBigUint64(DATA + part * 0x400, BigInt(0x1111 * (part + 1)), true);
    vcpu.setRegister("x1", BigInt(DATA));
    vcpu.setRegister("pc", BigInt(CODE));
    expect(vcpu.run().kind).toBe("breakpoint");
    expect(["x0", "x2", "x3", "x4"].map((r) => vcpu.getRegister(r as "x0"))).toEqual([
      0x1111n,
      0x2222n,
      0x3333n,
      0x4444n,
    ]);
  });

  test("brk and udf leave run() with PC on the instruction", () => {
    load(vm.memory.bytes, CODE, BRK_UDF);
    vcpu.setRegister("pc", BigInt(CODE));
    expect(vcpu.run()).toEqual({ kind: "breakpoint", pc: CODE });
    vcpu.setRegister("pc", BigInt(CODE + 4));
    expect(vcpu.run()).toEqual({ kind: "undefined-instruction", pc: CODE + 4 });
  });

  test("guest memory: discard zero-fills, the view is the guest's physical memory", () => {
    vm.memory.bytes.fill(0xaa, DATA, DATA + PAGE);
    vm.memory.discard(DATA, PAGE);
    expect(vm.memory.bytes.subarray(DATA, DATA + PAGE).every((b) => b === 0)).toBe(true);
  });

  test("a sequential first touch is populated ahead, half by the helper thread; every page keeps its byte", () => {
    const TOUCHED = 0x2000000; // 32 MiB from here: windows grow to 2 MiB, so the helper gets work
    const LENGTH = 32 * 1024 * 1024;
    tables.map(TOUCHED, LENGTH, true, true, false);
    load(vm.memory.bytes, CODE, FIRST_TOUCH_LOOP);
    const before = populateHelperStatistics();
    vcpu.setRegister("x1", BigInt(TOUCHED));
    vcpu.setRegister("x2", BigInt(TOUCHED + LENGTH));
    vcpu.setRegister("pc", BigInt(CODE));
    expect(vcpu.run().kind).toBe("breakpoint");
    const after = populateHelperStatistics();
    const bytes = vm.memory.bytes;
    for (let page = TOUCHED; page < TOUCHED + LENGTH; page += PAGE) {
      if (bytes[page] !== (page / PAGE) % 256 || bytes[page + 1] !== 0 || bytes[page + PAGE - 1] !== 0)
        throw new Error(`page 0x${page.toString(16)} holds the wrong bytes`);
    }
    // The helper runs where it can help: Linux (MADV_POPULATE_WRITE) with a second CPU.
    if (process.platform === "linux" && navigator.hardwareConcurrency > 1) {
      expect(after.running).toBe(true);
      expect(after.jobs).toBeGreaterThan(before.jobs);
      // Each job is the back half of a window (at most 1 MiB); the last window may reach past the loop's end.
      expect(after.bytes - before.bytes).toBeGreaterThan(0);
      expect(after.bytes - before.bytes).toBeLessThanOrEqual(LENGTH / 2 + 2 * 1024 * 1024);
    }
  });

  test("a shared file mapped over memory the helper populated shows the file; unmapped, zeroes again", () => {
    const TOUCHED = 0x2000000;
    const LENGTH = 8 * 1024 * 1024;
    tables.map(TOUCHED, LENGTH, true, true, false);
    load(vm.memory.bytes, CODE, FIRST_TOUCH_LOOP);
    // Touch only the first page of the last 2 MiB window: the helper gets its back half, where the file goes
    // (core_slab_map_file waits for the helper before it replaces the host mapping).
    vcpu.setRegister("x1", BigInt(TOUCHED));
    vcpu.setRegister("x2", BigInt(TOUCHED + LENGTH - 2 * 1024 * 1024 + PAGE));
    vcpu.setRegister("pc", BigInt(CODE));
    expect(vcpu.run().kind).toBe("breakpoint");
    const path = join(tmpdir(), `guest-overlay-${process.pid}`);
    const content = new Uint8Array(1024 * 1024).map((_, i) => (i * 7) % 251);
    writeFileSync(path, content);
    const file = openSync(path, "r");
    try {
      const overlay = TOUCHED + LENGTH - 1024 * 1024;
      expect(vm.memory.mapSharedFile(overlay, content.length, file, 0, false)).toBe(0);
      populateHelperStatistics(); // waits for the helper: nothing may have written through the overlay
      expect(Buffer.from(vm.memory.bytes.subarray(overlay, overlay + content.length)).equals(content)).toBe(
        true,
      );
      vm.memory.unmapSharedFile(overlay, content.length);
      expect(vm.memory.bytes.subarray(overlay, overlay + content.length).every((b) => b === 0)).toBe(true);
      expect(Buffer.from(readFileSync(path)).equals(content)).toBe(true);
    } finally {
      closeSync(file);
      rmSync(path);
    }
  });

  test("dropping translated code of pages that cannot be fetched does not fault the running guest", () => {
    // Regression (found by tests/guest/mm_fuzz.c): mprotect(PROT_EXEC) of a range starting at a guard page
    // queued a code invalidation; Unicorn translates the start as a fetch, the fill hook refused it and the
    // prefetch abort landed on the guest instruction after the svc: the guest died of SIGSEGV.
    load(vm.memory.bytes, CODE, [0xd4000001 /* svc #0 */, 0xd4200000 /* brk #0 */]);
    let calls = 0;
    vcpu.setSyscallHandler(() => {
      calls++;
      vm.invalidateCode(DATA, PAGE); // mapped, not executable
      vm.invalidateCode(0x700000, 2 * PAGE); // nothing mapped
      vm.invalidateCode(CODE, PAGE); // the running code itself: executable
      return SYSCALL_RESUME;
    });
    vcpu.setRegister("pc", BigInt(CODE));
    expect(vcpu.run()).toEqual({ kind: "breakpoint", pc: CODE + 4 });
    expect(calls).toBe(1);
    // The identity entries answered for those lookups are gone: the pages keep their real permissions.
    load(vm.memory.bytes, CODE, [0xd61f0020 /* br x1 */]);
    vcpu.setRegister("x1", BigInt(DATA));
    vcpu.setRegister("pc", BigInt(CODE));
    expect(vcpu.run()).toEqual({ kind: "fault", address: DATA, access: "exec", mapped: true });
  });

  test("a throwing syscall handler surfaces as an exception from run(), not a crash", () => {
    load(vm.memory.bytes, CODE, GETPID_LOOP);
    vcpu.setSyscallHandler(() => {
      throw new Error("handler bug");
    });
    vcpu.setRegister("pc", BigInt(CODE));
    expect(() => vcpu.run()).toThrow("handler bug");
  });

  test("general and vector registers round-trip", () => {
    vcpu.setRegister("x28", 0xfedcba9876543210n);
    vcpu.setRegister("tpidr_el0", 0x1000n);
    expect(vcpu.getRegister("x28")).toBe(0xfedcba9876543210n);
    expect(vcpu.getRegister("tpidr_el0")).toBe(0x1000n);
    const q = Uint8Array.from({ length: 16 }, (_, i) => i + 1);
    vcpu.setVector(5, q);
    expect(Array.from(vcpu.getVector(5))).toEqual(Array.from(q));
  });
});

test("availability explains itself when the library cannot be used", () => {
  const result = emulatorAvailability();
  if (!result.available) expect(result.reason).toMatch(/unicorn/i);
  else expect(result.reason).toBeUndefined();
});
