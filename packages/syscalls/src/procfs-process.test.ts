import { afterEach, beforeEach, expect, test } from "bun:test";
import { PROT_EXEC, PROT_READ, PROT_WRITE } from "./mm/abi.ts";
import {
  type ProcSource,
  renderCmdline,
  renderComm,
  renderEnviron,
  renderStat,
  renderStatus,
} from "./procfs-process.ts";
import { createFakeGuest, type FakeGuest } from "./test-support.ts";

let g: FakeGuest;
let source: ProcSource;
const EXE = "/usr/local/bin/guest-program";
const flags = { shared: false, anonymous: false, noreserve: false, growsDown: false, locked: false };

beforeEach(() => {
  g = createFakeGuest({ exePath: EXE });
  const args = new TextEncoder().encode("prog\0two words\0\0");
  const env = new TextEncoder().encode("A=1\0B=\0");
  const argStart = g.alloc(args.length);
  g.bytes.set(args, argStart);
  const envStart = g.alloc(env.length);
  g.bytes.set(env, envStart);
  g.process.setArgsArea({
    argStart,
    argEnd: argStart + args.length,
    envStart,
    envEnd: envStart + env.length,
    startStack: 0x7000,
  });
  const file = { dev: 1, inode: 2, path: EXE, offset: 0 };
  source = {
    process: g.process,
    memory: g.memory,
    brkStart: 0x50000,
    regions: [
      {
        start: 0x10000,
        end: 0x20000,
        prot: PROT_READ | PROT_EXEC,
        flags,
        file,
        mappingId: 1,
        mayHoldGuards: false,
      },
      {
        start: 0x30000,
        end: 0x32000,
        prot: PROT_READ | PROT_WRITE,
        flags,
        file,
        mappingId: 2,
        mayHoldGuards: false,
      },
      {
        start: 0x60000,
        end: 0x70000,
        prot: PROT_READ | PROT_WRITE,
        flags: { ...flags, anonymous: true, growsDown: true },
        name: "[stack]",
        mappingId: 3,
        mayHoldGuards: false,
      },
    ],
  };
});
afterEach(() => g.close());

test("cmdline and environ are the guest's argv/envp bytes", () => {
  expect(new TextDecoder().decode(renderCmdline(source))).toBe("prog\0two words\0\0");
  expect(new TextDecoder().decode(renderEnviron(source))).toBe("A=1\0B=\0");
});

test("stat: the guest's ids, comm, state, sizes and areas in their fields", () => {
  g.process.currentThread.setComm("my prog) x");
  g.process.currentThread.blocked = 0b100n;
  const line = renderStat(source);
  expect(line.endsWith("\n")).toBe(true);
  expect(
    line.startsWith(`${g.process.pid} (my prog) x) R ${g.process.ppid} ${g.process.pgid} ${g.process.sid} `),
  ).toBe(true);
  const fields = line
    .slice(line.lastIndexOf(")") + 2)
    .trim()
    .split(" ");
  const field = (n: number): string => fields[n - 3]!;
  expect(fields.length).toBe(50);
  expect(field(20)).toBe("1");
  expect(Number(field(23))).toBe(0x10000 + 0x2000 + 0x10000);
  expect(Number(field(24))).toBe((0x10000 + 0x2000 + 0x10000) / 4096);
  expect(Number(field(26))).toBe(0x10000);
  expect(Number(field(27))).toBe(0x20000);
  expect(Number(field(28))).toBe(0x7000);
  expect(field(32)).toBe("4");
  expect(Number(field(45))).toBe(0x30000);
  expect(Number(field(47))).toBe(0x50000);
  expect(Number(field(48))).toBe(g.process.argsArea.argStart);
  expect(Number(field(51))).toBe(g.process.argsArea.envEnd);
});

test("status and comm", () => {
  const status = renderStatus(source);
  expect(status).toContain(`\nPid:\t${g.process.pid}\n`);
  expect(status).toContain("State:\tR (running)\n");
  expect(status).toContain(`Name:\t${g.process.currentThread.commText}\n`);
  expect(status).toContain(`VmStk:\t      64 kB\n`);
  expect(status).toContain(`VmExe:\t      64 kB\n`);
  expect(renderComm(source)).toBe("guest-program\n");
});
