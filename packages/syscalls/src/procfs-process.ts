/**
 * /proc/self/{stat,status,cmdline,environ,comm} of the guest, in the kernel's formats (fs/proc/array.c,
 * fs/proc/base.c). Guest facts (ids, comm, state, memory sizes from the region tracker, signal masks, the
 * argv/envp area) replace the host's; what the guest shares with the host process running it (terminal, CPU
 * times, start time, capabilities, CPU affinity, context switches) is taken from the host's own file.
 */
import { readFileSync } from "node:fs";
import type { Region } from "@guest/region-tracker";
import { SIG_DFL, SIG_IGN } from "./abi/signal.ts";
import type { GuestMemory } from "./memory.ts";
import { PROT_EXEC, PROT_WRITE } from "./mm/abi.ts";
import type { ProcessState } from "./process.ts";

const PAGE_SIZE = 4096;
const NSIG = 64;

/** What the renderers need to know about the guest. */
export interface ProcSource {
  process: ProcessState;
  memory: GuestMemory;
  regions: readonly Region[];
  brkStart: number;
}

/** Memory figures in bytes, from the tracker (every mapped page counts as resident: the runtime never swaps). */
interface MemoryFigures {
  size: number;
  resident: number;
  residentAnon: number;
  residentFile: number;
  residentShmem: number;
  locked: number;
  data: number;
  stack: number;
  exe: number;
  lib: number;
  startCode: number;
  endCode: number;
  startData: number;
  endData: number;
}

function memoryFigures(source: ProcSource): MemoryFigures {
  const figures: MemoryFigures = {
    size: 0,
    resident: 0,
    residentAnon: 0,
    residentFile: 0,
    residentShmem: 0,
    locked: 0,
    data: 0,
    stack: 0,
    exe: 0,
    lib: 0,
    startCode: 0,
    endCode: 0,
    startData: 0,
    endData: 0,
  };
  const exePath = source.process.exePath;
  for (const region of source.regions) {
    const length = region.end - region.start;
    figures.size += length;
    if (region.flags.locked) figures.locked += length;
    if (region.prot !== 0) {
      figures.resident += length;
      if (region.flags.shared && region.flags.anonymous) figures.residentShmem += length;
      else if (region.file) figures.residentFile += length;
      else figures.residentAnon += length;
    }
    const fromExe = region.file?.path === exePath || region.name === exePath;
    // task_mmu.c: VmExe/VmLib are executable mappings, VmStk the stack, VmData private writable memory.
    if (region.flags.growsDown) figures.stack += length;
    else if (region.prot & PROT_WRITE && !region.flags.shared) figures.data += length;
    if (region.prot & PROT_EXEC) {
      if (fromExe) {
        figures.exe += length;
        if (figures.startCode === 0) figures.startCode = region.start;
        figures.endCode = region.end;
      } else if (region.name !== "[vdso]") {
        figures.lib += length;
      }
    } else if (fromExe && region.start >= figures.endCode && figures.endCode !== 0) {
      if (figures.startData === 0) figures.startData = region.start;
      figures.endData = region.end;
    }
  }
  return figures;
}

/** Signal masks as Linux shows them: pending, blocked, ignored, caught. */
function signalMasks(process: ProcessState): {
  pending: bigint;
  shared: bigint;
  blocked: bigint;
  ignored: bigint;
  caught: bigint;
} {
  let ignored = 0n;
  let caught = 0n;
  for (let signal = 1; signal <= NSIG; signal++) {
    const handler = process.signalActions.handler(signal);
    const bit = 1n << BigInt(signal - 1);
    if (handler === SIG_IGN) ignored |= bit;
    else if (handler !== SIG_DFL) caught |= bit;
  }
  const thread = process.currentThread;
  return {
    pending: thread.pending,
    shared: process.sharedPending,
    blocked: thread.blocked,
    ignored,
    caught,
  };
}

function hostFile(name: string): string {
  try {
    return readFileSync(`/proc/self/${name}`, "latin1");
  } catch {
    return "";
  }
}

/** /proc/self/comm: the thread's name and a newline. */
export function renderComm(source: ProcSource): string {
  return `${source.process.currentThread.commText}\n`;
}

/** The guest bytes [start, end) (empty when unreadable, as a vanished mm reads). */
function guestRange(memory: GuestMemory, start: number, end: number): Uint8Array {
  if (end <= start) return new Uint8Array(0);
  const bytes = memory.readBytes(start, end - start);
  return typeof bytes === "number" ? new Uint8Array(0) : bytes;
}

/** /proc/self/cmdline: the argv strings as they are in guest memory now, each with its NUL. */
export function renderCmdline(source: ProcSource): Uint8Array {
  const area = source.process.argsArea;
  return guestRange(source.memory, area.argStart, area.argEnd);
}

/** /proc/self/environ: the initial environment strings, NUL-separated. */
export function renderEnviron(source: ProcSource): Uint8Array {
  const area = source.process.argsArea;
  return guestRange(source.memory, area.envStart, area.envEnd);
}

/** /proc/self/stat: 52 fields (proc(5)), state R since the reader is the running guest. */
export function renderStat(source: ProcSource): string {
  const { process } = source;
  const host = hostFile("stat");
  // Fields 3.. of the host's line (after the comm, which may contain spaces and parentheses).
  const rest = host
    .slice(host.lastIndexOf(")") + 2)
    .trim()
    .split(" ");
  const field = (n: number): string => rest[n - 3] ?? "0";
  const memory = memoryFigures(source);
  const masks = signalMasks(process);
  const area = process.argsArea;
  const values: Array<string | number | bigint> = [
    "R",
    process.ppid,
    process.pgid,
    process.sid,
    field(7), // tty_nr
    field(8), // tpgid
    field(9), // flags
    field(10),
    field(11),
    field(12),
    field(13), // faults
    field(14),
    field(15),
    field(16),
    field(17), // CPU times
    field(18), // priority
    field(19), // nice
    process.threads.size,
    0, // itrealvalue
    field(22), // starttime
    memory.size,
    memory.resident / PAGE_SIZE,
    field(25), // rsslim
    memory.startCode,
    memory.endCode,
    area.startStack,
    0, // kstkesp, kstkeip: 0 unless the reader may ptrace a stopped task
    0,
    masks.pending | masks.shared,
    masks.blocked,
    masks.ignored,
    masks.caught,
    0, // wchan
    0,
    0,
    17, // exit_signal SIGCHLD
    field(39), // processor
    0, // rt_priority
    0, // policy SCHED_OTHER
    field(42),
    field(43),
    field(44),
    memory.startData,
    memory.endData,
    source.brkStart,
    area.argStart,
    area.argEnd,
    area.envStart,
    area.envEnd,
    0, // exit_code
  ];
  return `${process.pid} (${process.currentThread.commText}) ${values.join(" ")}\n`;
}

const hex16 = (mask: bigint): string => mask.toString(16).padStart(16, "0");
const kB = (bytes: number): string => `${String(Math.floor(bytes / 1024)).padStart(8)} kB`;

/** /proc/self/status: the host's lines with the guest's identity, memory and signal lines put in. */
export function renderStatus(source: ProcSource): string {
  const { process } = source;
  const memory = memoryFigures(source);
  const masks = signalMasks(process);
  const replacements: Record<string, string> = {
    Name: process.currentThread.commText,
    Umask: process.umask.toString(8).padStart(4, "0"),
    State: "R (running)",
    Tgid: String(process.pid),
    Ngid: "0",
    Pid: String(process.pid),
    PPid: String(process.ppid),
    TracerPid: "0",
    NStgid: String(process.pid),
    NSpid: String(process.pid),
    NSpgid: String(process.pgid),
    NSsid: String(process.sid),
    VmPeak: kB(memory.size),
    VmSize: kB(memory.size),
    VmLck: kB(memory.locked),
    VmPin: kB(0),
    VmHWM: kB(memory.resident),
    VmRSS: kB(memory.resident),
    RssAnon: kB(memory.residentAnon),
    RssFile: kB(memory.residentFile),
    RssShmem: kB(memory.residentShmem),
    VmData: kB(memory.data),
    VmStk: kB(memory.stack),
    VmExe: kB(memory.exe),
    VmLib: kB(memory.lib),
    VmSwap: kB(0),
    Threads: String(process.threads.size),
    SigPnd: hex16(masks.pending),
    ShdPnd: hex16(masks.shared),
    SigBlk: hex16(masks.blocked),
    SigIgn: hex16(masks.ignored),
    SigCgt: hex16(masks.caught),
  };
  const lines = hostFile("status")
    .split("\n")
    .filter((line) => line.length > 0)
    .map((line) => {
      const colon = line.indexOf(":");
      const key = line.slice(0, colon);
      const value = replacements[key];
      return value === undefined ? line : `${key}:\t${value}`;
    });
  return `${lines.join("\n")}\n`;
}
