import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AT,
  AT_NAMES,
  buildInitialStack,
  DEFAULT_MINSIGSTKSZ,
  type InitialStackOptions,
  MAX_ARG_STRLEN,
  StackError,
  UNICORN_MAX_CPU_HWCAP,
  UNICORN_MAX_CPU_HWCAP2,
} from "./index.ts";

const MEMORY_SIZE = 0x400000;
const STACK_TOP = 0x400000;
const RANDOM = Uint8Array.from({ length: 16 }, (_, i) => 0xc0 + i);

function options(over: Partial<InitialStackOptions> = {}): InitialStackOptions {
  return {
    memory: new Uint8Array(MEMORY_SIZE),
    stackTop: STACK_TOP,
    argv: ["/bin/prog", "-v", "héllo wörld"],
    envp: ["HOME=/root", "PATH=/bin:/usr/bin"],
    execfn: "/bin/prog",
    phdr: 0x400040,
    phent: 56,
    phnum: 6,
    entry: 0x400580,
    uid: 1000,
    euid: 1001,
    gid: 100,
    egid: 101,
    hwcap: UNICORN_MAX_CPU_HWCAP,
    hwcap2: UNICORN_MAX_CPU_HWCAP2,
    random: RANDOM,
    sysinfoEhdr: 0xf000,
    ...over,
  };
}

/** Decode a stack the way a C runtime does: from sp upwards. */
function decode(memory: Uint8Array, sp: number) {
  const view = new DataView(memory.buffer, memory.byteOffset);
  const u64 = (at: number) => Number(view.getBigUint64(at, true));
  const cstring = (at: number) => new TextDecoder().decode(memory.subarray(at, memory.indexOf(0, at)));
  let q = sp;
  const argc = u64(q);
  q += 8;
  const argvPointers: number[] = [];
  for (let i = 0; i < argc; i++, q += 8) argvPointers.push(u64(q));
  const argvTerminator = u64(q);
  q += 8;
  const envpPointers: number[] = [];
  for (; u64(q) !== 0; q += 8) envpPointers.push(u64(q));
  q += 8;
  const auxv: [number, bigint][] = [];
  for (;;) {
    const type = u64(q);
    auxv.push([type, view.getBigUint64(q + 8, true)]);
    q += 16;
    if (type === AT.NULL) break;
  }
  const aux = (type: number) => Number(auxv.find(([t]) => t === type)?.[1] ?? -1);
  return {
    argc,
    argvTerminator,
    argv: argvPointers.map(cstring),
    argvPointers,
    envp: envpPointers.map(cstring),
    envpPointers,
    auxv,
    aux,
    cstring,
    end: q,
  };
}

describe("buildInitialStack", () => {
  test("argc, argv, envp and auxv decode as a C runtime sees them", () => {
    const o = options();
    const result = buildInitialStack(o);
    expect(result.sp % 16).toBe(0);
    const d = decode(o.memory, result.sp);
    expect(d.argc).toBe(3);
    expect(d.argvTerminator).toBe(0);
    expect(d.argv).toEqual(["/bin/prog", "-v", "héllo wörld"]);
    expect(d.envp).toEqual(["HOME=/root", "PATH=/bin:/usr/bin"]);
    expect(result.argvAddress).toBe(result.sp + 8);
    expect(result.envpAddress).toBe(result.sp + 8 + 4 * 8);
    expect(result.auxvAddress).toBe(result.envpAddress + 3 * 8);
    expect(d.auxv).toEqual(result.auxv.map(([t, v]) => [t, v]));
  });

  test("auxv order is Linux arm64's: ARCH_DLINFO, then the generic list", () => {
    const o = options();
    const d = decode(o.memory, buildInitialStack(o).sp);
    expect(d.auxv.map(([t]) => AT_NAMES[t])).toEqual([
      "AT_SYSINFO_EHDR",
      "AT_MINSIGSTKSZ",
      "AT_HWCAP",
      "AT_PAGESZ",
      "AT_CLKTCK",
      "AT_PHDR",
      "AT_PHENT",
      "AT_PHNUM",
      "AT_BASE",
      "AT_FLAGS",
      "AT_ENTRY",
      "AT_UID",
      "AT_EUID",
      "AT_GID",
      "AT_EGID",
      "AT_SECURE",
      "AT_RANDOM",
      "AT_HWCAP2",
      "AT_HWCAP3",
      "AT_EXECFN",
      "AT_PLATFORM",
      "AT_NULL",
    ]);
    expect(d.aux(AT.SYSINFO_EHDR)).toBe(0xf000);
    expect(d.aux(AT.MINSIGSTKSZ)).toBe(DEFAULT_MINSIGSTKSZ);
    expect(d.auxv.find(([t]) => t === AT.HWCAP)?.[1]).toBe(UNICORN_MAX_CPU_HWCAP);
    expect(d.auxv.find(([t]) => t === AT.HWCAP2)?.[1]).toBe(UNICORN_MAX_CPU_HWCAP2);
    expect(d.aux(AT.PAGESZ)).toBe(4096);
    expect(d.aux(AT.CLKTCK)).toBe(100);
    expect(d.aux(AT.PHDR)).toBe(0x400040);
    expect(d.aux(AT.PHENT)).toBe(56);
    expect(d.aux(AT.PHNUM)).toBe(6);
    expect(d.aux(AT.BASE)).toBe(0);
    expect(d.aux(AT.ENTRY)).toBe(0x400580);
    expect([d.aux(AT.UID), d.aux(AT.EUID), d.aux(AT.GID), d.aux(AT.EGID)]).toEqual([1000, 1001, 100, 101]);
    expect(d.aux(AT.SECURE)).toBe(0);
    expect(d.cstring(d.aux(AT.EXECFN))).toBe("/bin/prog");
    expect(d.cstring(d.aux(AT.PLATFORM))).toBe("aarch64");
    const random = d.aux(AT.RANDOM);
    expect(o.memory.subarray(random, random + 16)).toEqual(RANDOM);
  });

  test("string area: argv lowest, then envp, then execfn, then 8 zero bytes at the top", () => {
    const o = options({ execfn: "/usr/local/bin/prog-real" });
    const r = buildInitialStack(o);
    const d = decode(o.memory, r.sp);
    expect(r.execfnAddress).toBe(STACK_TOP - 8 - "/usr/local/bin/prog-real".length - 1);
    expect(o.memory.subarray(STACK_TOP - 8, STACK_TOP).every((b) => b === 0)).toBe(true);
    // Each string directly follows the previous one.
    const all = [...d.argvPointers, ...d.envpPointers, r.execfnAddress];
    const lengths = [...d.argv, ...d.envp].map((s) => Buffer.byteLength(s) + 1);
    for (let i = 0; i + 1 < all.length; i++) expect(all[i + 1]).toBe(all[i]! + lengths[i]!);
    expect(r.argStart).toBe(d.argvPointers[0]!);
    expect(r.argEnd).toBe(d.envpPointers[0]!);
    expect(r.envEnd).toBe(r.execfnAddress);
    // Platform sits below argv[0] rounded down to 16; the random bytes right below it.
    expect(r.platformAddress).toBe(Math.floor(r.argStart / 16) * 16 - 8);
    expect(r.randomAddress).toBe(r.platformAddress - 16);
    expect(d.end).toBeLessThanOrEqual(r.randomAddress);
    expect(r.randomAddress - d.end).toBeLessThan(16);
  });

  test("recycled memory: every byte between sp and the top is rewritten (gaps are zero)", () => {
    const o = options({ memory: new Uint8Array(MEMORY_SIZE).fill(0xee) });
    const r = buildInitialStack(o);
    const d = decode(o.memory, r.sp);
    expect(o.memory.subarray(d.end, r.randomAddress).every((b) => b === 0)).toBe(true);
    expect(o.memory.subarray(r.platformAddress + 8, r.argStart).every((b) => b === 0)).toBe(true);
    expect(o.memory[r.sp - 1]).toBe(0xee);
  });

  test("sp is 16-byte aligned for every argc/envc parity and string length", () => {
    for (let argc = 1; argc <= 4; argc++) {
      for (let envc = 0; envc <= 3; envc++) {
        for (let pad = 0; pad < 16; pad += 5) {
          const o = options({
            argv: Array.from({ length: argc }, (_, i) => `a${"x".repeat(pad + i)}`),
            envp: Array.from({ length: envc }, (_, i) => `E${i}=${"y".repeat(pad)}`),
          });
          const r = buildInitialStack(o);
          expect(r.sp % 16).toBe(0);
          expect(decode(o.memory, r.sp).argc).toBe(argc);
        }
      }
    }
  });

  test('empty argv becomes { "" } as in Linux >= 5.18', () => {
    const o = options({ argv: [] });
    const d = decode(o.memory, buildInitialStack(o).sp);
    expect(d.argc).toBe(1);
    expect(d.argv).toEqual([""]);
  });

  test("raw byte strings are copied verbatim", () => {
    const raw = Uint8Array.of(0xff, 0xfe, 0x41);
    const o = options({ argv: ["p", raw] });
    const r = buildInitialStack(o);
    const d = decode(o.memory, r.sp);
    expect(o.memory.subarray(d.argvPointers[1]!, d.argvPointers[1]! + 4)).toEqual(
      Uint8Array.of(0xff, 0xfe, 0x41, 0),
    );
  });

  test("optional entries: AT_IGNORE for a zero MINSIGSTKSZ, no vDSO, no HWCAP3, rseq, execfd, secure", () => {
    const o = options({
      sysinfoEhdr: undefined,
      minsigstksz: 0,
      hwcap3: null,
      rseq: { featureSize: 32, align: 32 },
      execfd: 3,
      secure: true,
    });
    const d = decode(o.memory, buildInitialStack(o).sp);
    const names = d.auxv.map(([t]) => AT_NAMES[t]);
    expect(names[0]).toBe("AT_IGNORE");
    expect(names).not.toContain("AT_SYSINFO_EHDR");
    expect(names).not.toContain("AT_HWCAP3");
    expect(names.slice(-5)).toEqual([
      "AT_PLATFORM",
      "AT_EXECFD",
      "AT_RSEQ_FEATURE_SIZE",
      "AT_RSEQ_ALIGN",
      "AT_NULL",
    ]);
    expect(d.aux(AT.SECURE)).toBe(1);
  });

  test("E2BIG: a single string longer than MAX_ARG_STRLEN", () => {
    const err = (() => {
      try {
        buildInitialStack(options({ argv: ["p", "x".repeat(MAX_ARG_STRLEN)] }));
      } catch (e) {
        return e as StackError;
      }
    })();
    expect(err).toBeInstanceOf(StackError);
    expect(err!.code).toBe("E2BIG");
    expect(err!.errno).toBe(7);
    expect(err!.message).toMatch(/argument list too long/);
    // Exactly at the limit (with its NUL) is fine.
    expect(() => buildInitialStack(options({ argv: ["p", "x".repeat(MAX_ARG_STRLEN - 1)] }))).not.toThrow();
  });

  test("E2BIG: total strings beyond a quarter of the stack rlimit", () => {
    const chunk = "z".repeat(100_000);
    const argv = Array.from({ length: 21 }, () => chunk); // 2.1 MB > 8 MiB / 4
    expect(() => buildInitialStack(options({ argv }))).toThrow(/argument list too long/);
    // A larger rlimit admits it (Linux caps the area at 3/4 of 8 MiB = 6 MiB).
    const big = new Uint8Array(0x1000000);
    expect(
      buildInitialStack(options({ argv, memory: big, stackTop: 0x1000000, stackRlimit: 0x2000000 })).argc,
    ).toBe(21);
    expect(() =>
      buildInitialStack(
        options({
          argv: Array.from({ length: 70 }, () => chunk),
          memory: big,
          stackTop: 0x1000000,
          stackRlimit: 2 ** 40,
        }),
      ),
    ).toThrow(/argument list too long/);
  });

  test("E2BIG: pointers alone exceed the limit", () => {
    const envp = Array.from({ length: 300_000 }, () => "");
    expect(() => buildInitialStack(options({ envp }))).toThrow(StackError);
  });

  test("EINVAL on embedded NUL; EFAULT when the stack does not fit", () => {
    expect(() => buildInitialStack(options({ argv: ["a\0b"] }))).toThrow(/NUL/);
    expect(() => buildInitialStack(options({ envp: [Uint8Array.of(65, 0, 66)] }))).toThrow(/NUL/);
    expect(() => buildInitialStack(options({ stackTop: MEMORY_SIZE + 16 }))).toThrow(StackError);
    expect(() => buildInitialStack(options({ stackTop: 0x1008 }))).toThrow(StackError);
    expect(() => buildInitialStack(options({ stackTop: 0x2000, stackBottom: 0x1f00 }))).toThrow(
      /below the stack bottom/,
    );
    expect(() => buildInitialStack(options({ random: new Uint8Array(8) }))).toThrow(/16 bytes/);
  });
});

/**
 * Oracle: the host's own Linux kernel. create_elf_tables() and copy_strings() are generic, so an x86-64
 * process started with ADDR_NO_RANDOMIZE (setarch -R) has the same layout relative to its stack top as
 * we build for arm64, given the same strings, the same platform string length and the same auxv entries.
 */
describe("layout matches the host Linux kernel", () => {
  const cc = Bun.which("cc") ?? Bun.which("gcc");
  const setarch = Bun.which("setarch");
  const canRun = process.platform === "linux" && process.arch === "x64" && cc !== null && setarch !== null;
  test.skipIf(!canRun)("argv/envp/execfn/platform/random/auxv/sp offsets from the top are identical", () => {
    const dir = mkdtempSync(join(tmpdir(), "loader-stack-oracle-"));
    try {
      const source = join(dir, "dump.c");
      const exe = join(dir, "dump");
      writeFileSync(source, HOST_DUMP_C);
      const build = Bun.spawnSync([cc!, "-O1", source, "-o", exe]);
      if (build.exitCode !== 0) throw new Error(`host cc failed: ${build.stderr.toString()}`);
      const argv = [exe, "one", "", "three and four", "ünïcode"];
      const env = { A: "1", LONGER_VARIABLE: "v".repeat(77), Z: "" };
      const run = Bun.spawnSync([setarch!, "-R", ...argv], { env });
      if (run.exitCode !== 0) {
        console.warn(`skipping kernel oracle: setarch failed (${run.stderr.toString().trim()})`);
        return;
      }
      const host = parseDump(run.stdout.toString());
      const types = host.auxv.map(([t]) => t);
      const fakeTop = 0x100000;
      const memory = new Uint8Array(fakeTop);
      const r = buildInitialStack({
        memory,
        stackTop: fakeTop,
        argv: argv,
        envp: Object.entries(env).map(([k, v]) => `${k}=${v}`),
        execfn: exe,
        phdr: 0,
        phent: 56,
        phnum: 0,
        entry: 0,
        random: RANDOM,
        platform: "x86_64",
        sysinfoEhdr: types.includes(AT.SYSINFO_EHDR) ? 0x1000 : undefined,
        hwcap3: types.includes(AT.HWCAP3) ? 0 : null,
        rseq: types.includes(AT.RSEQ_FEATURE_SIZE) ? { featureSize: 28, align: 32 } : undefined,
        execfd: types.includes(AT.EXECFD) ? 3 : undefined,
      });
      const ours = decode(memory, r.sp);
      // Same auxv entries in the same order (x86-64 and arm64 share the generic part and ARCH_DLINFO shape).
      expect(ours.auxv.slice(0, -1).map(([t]) => AT_NAMES[t])).toEqual(
        types.map((t) => AT_NAMES[t] ?? String(t)),
      );
      const rel = (hostAddress: number) => host.top - hostAddress;
      const relOurs = (address: number) => fakeTop - address;
      expect(relOurs(r.sp)).toBe(rel(host.sp));
      expect(ours.argvPointers.map(relOurs)).toEqual(host.args.map(rel));
      expect(ours.envpPointers.map(relOurs)).toEqual(host.envs.map(rel));
      expect(relOurs(r.auxvAddress)).toBe(rel(host.auxvAddress));
      for (const type of [AT.EXECFN, AT.PLATFORM, AT.RANDOM]) {
        expect(relOurs(ours.aux(type))).toBe(rel(Number(host.auxv.find(([t]) => t === type)![1])));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const HOST_DUMP_C = `
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv, char **envp) {
  FILE *f = fopen("/proc/self/maps", "r"); char line[512]; unsigned long lo, hi, top = 0;
  while (fgets(line, sizeof line, f)) if (strstr(line, "[stack]")) { sscanf(line, "%lx-%lx", &lo, &hi); top = hi; }
  printf("top %lx\\nsp %lx\\n", top, (unsigned long)argv - 8);
  for (int i = 0; i < argc; i++) printf("arg %lx\\n", (unsigned long)argv[i]);
  int envc = 0; for (; envp[envc]; envc++) printf("env %lx\\n", (unsigned long)envp[envc]);
  unsigned long *auxv = (unsigned long *)(envp + envc + 1);
  printf("auxv %lx\\n", (unsigned long)auxv);
  for (; auxv[0]; auxv += 2) printf("at %lu %lx\\n", auxv[0], auxv[1]);
  return 0;
}
`;

function parseDump(text: string) {
  const out = {
    top: 0,
    sp: 0,
    auxvAddress: 0,
    args: [] as number[],
    envs: [] as number[],
    auxv: [] as [number, bigint][],
  };
  for (const line of text.trim().split("\n")) {
    const [key, a, b] = line.split(" ");
    if (key === "top") out.top = Number.parseInt(a!, 16);
    else if (key === "sp") out.sp = Number.parseInt(a!, 16);
    else if (key === "auxv") out.auxvAddress = Number.parseInt(a!, 16);
    else if (key === "arg") out.args.push(Number.parseInt(a!, 16));
    else if (key === "env") out.envs.push(Number.parseInt(a!, 16));
    else if (key === "at") out.auxv.push([Number(a), BigInt(`0x${b}`)]);
  }
  return out;
}
