/**
 * The whole runtime, in process: a guest getpid loop (10,000 svc round trips through the real dispatcher)
 * and the same guest set up and torn down without running, so
 *   per-syscall cost = (getpid loop − set-up only) / 10,000.
 * The guest-vs-qemu comparison across processes is scripts/compare-qemu.ts.
 */
import { EmulatorBackend } from "@guest/emulator";
import { bench, do_not_optimize, group, run } from "mitata";
import { GuestProcess } from "../src/runtime/guest-process.ts";

const CALLS = 10_000;
// aarch64-linux-gnu-as output; source beside each word.
const GETPID_LOOP = [
  0xd284e209, // mov x9, #10000
  0xd2801588, // 1: mov x8, #172 (getpid)
  0xd4000001, //    svc #0
  0xf1000529, //    subs x9, x9, #1
  0x54ffffa1, //    b.ne 1b
  0xd2800000, // mov x0, #0
  0xd2800bc8, // mov x8, #94 (exit_group)
  0xd4000001, // svc #0
];

/** A minimal static ELF: one R+X PT_LOAD at 0x400000 holding `code` right after the headers. */
function tinyElf(code: number[]): Uint8Array {
  const base = 0x400000;
  const headers = 64 + 56;
  const bytes = new Uint8Array(headers + code.length * 4);
  const view = new DataView(bytes.buffer);
  bytes.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]); // ELF64, little endian, version 1, System V ABI
  view.setUint16(16, 2, true); // ET_EXEC
  view.setUint16(18, 183, true); // EM_AARCH64
  view.setUint32(20, 1, true);
  view.setBigUint64(24, BigInt(base + headers), true); // e_entry
  view.setBigUint64(32, 64n, true); // e_phoff
  view.setUint16(52, 64, true); // e_ehsize
  view.setUint16(54, 56, true); // e_phentsize
  view.setUint16(56, 1, true); // e_phnum
  view.setUint16(58, 64, true); // e_shentsize
  view.setUint32(64, 1, true); // PT_LOAD
  view.setUint32(68, 5, true); // PF_R | PF_X
  view.setBigUint64(80, BigInt(base), true); // p_vaddr
  view.setBigUint64(88, BigInt(base), true); // p_paddr
  view.setBigUint64(96, BigInt(bytes.length), true); // p_filesz
  view.setBigUint64(104, BigInt(bytes.length), true); // p_memsz
  view.setBigUint64(112, 0x1000n, true); // p_align
  for (const [i, word] of code.entries()) view.setUint32(headers + i * 4, word, true);
  return bytes;
}

const backend = new EmulatorBackend();
const getpidLoop = tinyElf(GETPID_LOOP);
const runGuest = (executable: Uint8Array): void => {
  const guest = new GuestProcess({
    backend,
    executablePath: "/bench",
    executable,
    argv: ["bench"],
    envp: [],
    execfn: "/bench",
  });
  try {
    do_not_optimize(guest.run());
  } finally {
    guest.destroy();
  }
};

group("guest (emulator backend, in process)", () => {
  bench(`getpid loop: ${CALLS} syscalls incl. VM set-up`, () => runGuest(getpidLoop));
  bench("set-up only: VM, page tables, load, initial stack, tear down", () => {
    const guest = new GuestProcess({
      backend,
      executablePath: "/bench",
      executable: getpidLoop,
      argv: ["bench"],
      envp: [],
      execfn: "/bench",
    });
    guest.destroy();
  });
});

await run(process.env.BENCH_JSON ? { format: "json" } : {});
