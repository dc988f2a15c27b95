/**
 * Emulator backend costs: the in-place svc round trip, a TLB flush, and a TLB fill (the C walker answering
 * a miss from the guest's page tables). The TLB survives between runs, so the cold row flushes first:
 *   warm load = (101 passes − 1 pass) / (100 × 32);
 *   fill = ((flush + 1 pass) − flush − (1 warm pass)) / 32.
 * Unicorn 2.1's softmmu TLB keeps 64 entries in UC_TLB_VIRTUAL mode and does not grow, so 32 pages stay
 * warm while the 256-page row shows a working set that misses on every access.
 *
 * First touch: a sequential write over fresh host memory, fault-around with and without the populate helper.
 *
 * The fault rows: a store to a read-only page, run() returning the exact fault address (PC read, the word
 * at PC decoded, its base register read), and the pure decoder alone on representative words.
 */
import { SYSCALL_LEAVE, SYSCALL_RESUME } from "@guest/hvf-bindings";
import { bench, do_not_optimize, group, run } from "mitata";
import { memoryAccessOf } from "../src/decode/decode.ts";
import { EmulatorBackend, populateHelperStatistics, setPopulateHelper } from "../src/index.ts";
import { PAGE, TinyTables } from "../src/testing/tiny-tables.ts";

const CODE = 0x400000;
const DATA = 0x1000000;
const POOL = 0x8000000;
const READ_ONLY = 0x9000000;
const WARM_PAGES = 32;
const THRASH_PAGES = 256;
const SVCS = 1000;
// aarch64-linux-gnu-as output; source beside each word.
const PROGRAM = [
  0xaa0403e1, // touch: mov x1, x4            (x4 = first page, x5 = passes, x6 = pages)
  0xaa0603e2, //        mov x2, x6
  0xf9400023, // page:  ldr x3, [x1]
  0x91400421, //        add x1, x1, #4096
  0xf1000442, //        subs x2, x2, #1
  0x54ffffa1, //        b.ne page
  0xf10004a5, //        subs x5, x5, #1
  0x54ffff21, //        b.ne touch
  0xd2800bc8, //        mov x8, #94
  0xd4000001, //        svc #0
  0xd2801588, // loop:  mov x8, #172
  0xd4000001, //        svc #0
  0xf1000529, //        subs x9, x9, #1
  0x54ffffa1, //        b.ne loop
  0xd2800bc8, //        mov x8, #94
  0xd4000001, //        svc #0
  0xf9000020, // fault: str x0, [x1]            (x1 in a read-only page)
  0xf8200420, //        ldraa x0, [x1]          (not decoded: the page-address fallback)
  0xf9400020, //        ldr x0, [x1]
  0xd34cfc24, // first: lsr x4, x1, #12        (x1 = first page, x2 = end)
  0x39000024, //        strb w4, [x1]
  0x91400421, //        add x1, x1, #4096
  0xeb02003f, //        cmp x1, x2
  0x54ffff83, //        b.lo first
  0xd2800bc8, //        mov x8, #94
  0xd4000001, //        svc #0
];
const TOUCH = CODE;
const EXIT_ONLY = CODE + 32;
const SVC_LOOP = CODE + 40;
const STORE_FAULT = CODE + 64;
const UNDECODED_FAULT = CODE + 68;
const LOAD_FAULT = CODE + 72;
const FIRST_TOUCH = CODE + 76;
const FRESH = 0x10000000;
const FRESH_PAGES = 2048;

const vm = new EmulatorBackend().createVm({ memorySize: 512 * 1024 * 1024 });
const tables = new TinyTables(vm.memory.bytes, POOL);
tables.map(CODE, PAGE, true, false, true);
tables.map(DATA, THRASH_PAGES * PAGE, true, true, false);
tables.map(READ_ONLY, PAGE, true, false, false);
tables.map(FRESH, FRESH_PAGES * PAGE, true, true, false);
vm.setTranslationRoot(tables.root);
const code = new DataView(vm.memory.bytes.buffer, CODE, PROGRAM.length * 4);
for (const [i, word] of PROGRAM.entries()) code.setUint32(i * 4, word, true);
const vcpu = vm.createVcpu();
vcpu.setSyscallHandler((frame) => {
  if (frame[16] === 94) return SYSCALL_LEAVE;
  frame[0] = 1;
  frame[1] = 0;
  return SYSCALL_RESUME;
});

/** Give the range back to the host, then write one byte to each of its pages, in order. */
function firstTouch(): void {
  vm.memory.discard(FRESH, FRESH_PAGES * PAGE);
  vcpu.setRegister("x1", BigInt(FRESH));
  vcpu.setRegister("x2", BigInt(FRESH + FRESH_PAGES * PAGE));
  vcpu.setRegister("pc", BigInt(FIRST_TOUCH));
  do_not_optimize(vcpu.run());
}

function touchPages(passes: number, pages = WARM_PAGES, flushFirst = false): void {
  if (flushFirst) vm.invalidateTlb([{ kind: "all" }]);
  vcpu.setRegister("x4", BigInt(DATA));
  vcpu.setRegister("x5", BigInt(passes));
  vcpu.setRegister("x6", BigInt(pages));
  vcpu.setRegister("pc", BigInt(passes === 0 ? EXIT_ONLY : TOUCH));
  do_not_optimize(vcpu.run());
}

group("emulator", () => {
  bench(`svc round trip ×${SVCS} (in-place JS handler)`, () => {
    vcpu.setRegister("x9", BigInt(SVCS));
    vcpu.setRegister("pc", BigInt(SVC_LOOP));
    do_not_optimize(vcpu.run());
  });
  bench("empty run (uc_emu_start + exit svc)", () => touchPages(0));
  bench(`one pass over ${WARM_PAGES} pages (warm)`, () => touchPages(1));
  bench(`101 passes over ${WARM_PAGES} pages (100 warm passes)`, () => touchPages(101));
  bench("store fault exit with exact address (STR to a read-only page)", () => {
    vcpu.setRegister("x1", BigInt(READ_ONLY + 0x123));
    vcpu.setRegister("pc", BigInt(STORE_FAULT));
    do_not_optimize(vcpu.run());
  });
  bench("load fault exit with exact address (LDR, decoded)", () => {
    vcpu.setRegister("x1", BigInt(READ_ONLY + PAGE + 0x123));
    vcpu.setRegister("pc", BigInt(LOAD_FAULT));
    do_not_optimize(vcpu.run());
  });
  bench("load fault exit, fallback (LDRAA, not decoded)", () => {
    vcpu.setRegister("x1", BigInt(READ_ONLY + PAGE + 0x123));
    vcpu.setRegister("pc", BigInt(UNDECODED_FAULT));
    do_not_optimize(vcpu.run());
  });
  bench(`two passes over ${THRASH_PAGES} pages (> 64-entry TLB: every load fills)`, () =>
    touchPages(2, THRASH_PAGES),
  );
  // Last: rows that flush. After QEMU's 100 ms sizing window a flush of a lightly used TLB shrinks it, which
  // would make every row after them thrash.
  bench(`flush, then one pass over ${WARM_PAGES} pages (${WARM_PAGES} fills)`, () =>
    touchPages(1, WARM_PAGES, true),
  );
  bench("TLB flush (uc_ctl TLB_FLUSH)", () => vm.invalidateTlb([{ kind: "all" }]));
});

// First touch: the host allocates every page (the slab range is given back before each pass), with the fill
// hook's fault-around populating in windows: this thread alone, or the front half here and the back half on
// the helper thread. Per page = row mean / FRESH_PAGES (the discard of 8 MiB is included).
group(`first touch, ${FRESH_PAGES} fresh pages written in order (discarded before each pass)`, () => {
  bench("fault-around on this thread only", () => {
    setPopulateHelper(false);
    firstTouch();
  });
  bench("fault-around with the populate helper", () => {
    setPopulateHelper(true);
    firstTouch();
  });
});

// The fault decoder alone (pure TS; runs only on fault exits). Register reads are plain functions here.
const registers = (n: number) => 0x500000n + BigInt(n) * 0x1000n;
const DECODE_SAMPLES: [string, number][] = [
  ["ldr x0, [x1, #16]", 0xf9400820],
  ["ldp x29, x30, [sp], #16", 0xa8c17bfd],
  ["ldr x0, [x1, w5, sxtw]", 0xf865c820],
  ["ld1 {v0.2d-v3.2d}, [x1], #64", 0x4cdf2c20],
  ["ldadd x0, x6, [x1]", 0xf8200026],
  ["add x0, x1, x2 (not memory: null)", 0x8b020020],
];
group("fault decoder (memoryAccessOf)", () => {
  for (const [source, word] of DECODE_SAMPLES)
    bench(source, () => do_not_optimize(memoryAccessOf(word, registers, 0x7ff000n, 0x400000n)));
});

await run(process.env.BENCH_JSON ? { format: "json" } : {});
if (!process.env.BENCH_JSON) console.log("populate helper:", populateHelperStatistics());
vm.destroy();
