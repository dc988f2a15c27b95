/** strace-style rendering of one syscall: `name(arg, …) = result`. Only used when tracing is on. */
import { CLOCK_NAMES } from "../abi/clock.ts";
import { ERRNO_MESSAGES, ERRNO_NAMES, MAX_ERRNO } from "../abi/errno.ts";
import {
  AT_FDCWD,
  FCNTL_COMMAND_NAMES,
  O_ACCMODE,
  O_CREAT,
  O_TMPFILE,
  OPEN_FLAGS,
  SEEK_NAMES,
} from "../abi/fcntl.ts";
import { IOCTL_NAMES } from "../abi/ioctl.ts";
import {
  IOPRIO_WHO_NAMES,
  LOCK_EX,
  LOCK_NB,
  LOCK_SH,
  LOCK_UN,
  PRCTL_NAMES,
  PRIO_NAMES,
  SCHED_POLICY_NAMES,
  SCHED_RESET_ON_FORK,
} from "../abi/process.ts";
import { RLIMIT_NAMES } from "../abi/resource.ts";
import { SIGNAL_NAMES, SIGPROCMASK_HOW_NAMES, SIGRTMIN } from "../abi/signal.ts";
import type { SyscallArgs, SyscallResult } from "../context.ts";
import type { GuestMemory } from "../memory.ts";
import type { ResultFormat, SyscallFormatSpec } from "./formats.ts";

export type ArgFormat =
  | { kind: "plain"; name: string }
  | { kind: "buf" | "iov"; out: boolean; lengthArg: number }
  | { kind: "mode-if-creat"; flagsArg: number }
  | { kind: "cstr-out" };

export interface CompiledFormat {
  args: ArgFormat[];
  ret: ResultFormat;
}

/** Parses a format spec ("buf-in:2" etc.) once, when the table is built. */
export function compileFormat(spec: SyscallFormatSpec): CompiledFormat {
  const args = spec.args.map((token): ArgFormat => {
    const [name, index] = token.split(":");
    if (name === "buf-in" || name === "buf-out")
      return { kind: "buf", out: name === "buf-out", lengthArg: Number(index) };
    if (name === "iov-in" || name === "iov-out")
      return { kind: "iov", out: name === "iov-out", lengthArg: Number(index) };
    if (name === "mode-if-creat") return { kind: "mode-if-creat", flagsArg: Number(index) };
    if (name === "cstr-out") return { kind: "cstr-out" };
    return { kind: "plain", name: name! };
  });
  return { args, ret: spec.ret ?? "int" };
}

/** strace's default string limit (-s 32). */
export const STRING_LIMIT = 32;

/** C-escapes bytes the way strace prints them: \n \t etc., other non-printables as the shortest octal. */
export function quoteBytes(bytes: Uint8Array): string {
  let out = '"';
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    switch (c) {
      case 0x22:
        out += '\\"';
        continue;
      case 0x5c:
        out += "\\\\";
        continue;
      case 0x09:
        out += "\\t";
        continue;
      case 0x0a:
        out += "\\n";
        continue;
      case 0x0b:
        out += "\\v";
        continue;
      case 0x0c:
        out += "\\f";
        continue;
      case 0x0d:
        out += "\\r";
        continue;
    }
    if (c >= 0x20 && c < 0x7f) {
      out += String.fromCharCode(c);
    } else {
      // The short form is ambiguous when an octal digit follows: then use all three digits.
      const next = bytes[i + 1];
      const digitFollows = next !== undefined && next >= 0x30 && next <= 0x37;
      out += `\\${digitFollows ? c.toString(8).padStart(3, "0") : c.toString(8)}`;
    }
  }
  return `${out}"`;
}

function hex(value: bigint | number): string {
  return `0x${value.toString(16)}`;
}

function pointer(args: SyscallArgs, i: number): string {
  const value = args.raw(i);
  return value === 0n ? "NULL" : hex(value);
}

function flagNames(value: number, names: ReadonlyArray<readonly [string, number]>, zero: string): string {
  const parts: string[] = [];
  let rest = value >>> 0;
  for (const [name, bit] of names) {
    if (bit !== 0 && (rest & bit) === bit) {
      parts.push(name);
      rest &= ~bit;
    }
  }
  if (rest !== 0) parts.push(hex(rest));
  return parts.length === 0 ? zero : parts.join("|");
}

const OPEN_FLAG_NAMES: ReadonlyArray<readonly [string, number]> = [
  ["O_TMPFILE", O_TMPFILE],
  ...OPEN_FLAGS.filter(([name]) => name !== "__O_TMPFILE").map(
    ([name, value]) => [name === "__O_SYNC" ? "O_SYNC" : name, value] as const,
  ),
];
const ACCMODE_NAMES = ["O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE"];

function openFlags(value: number): string {
  const rest = flagNames(value & ~O_ACCMODE, OPEN_FLAG_NAMES, "");
  const mode = ACCMODE_NAMES[value & O_ACCMODE]!;
  return rest === "" ? mode : `${mode}|${rest}`;
}

const AT_FLAG_NAMES: ReadonlyArray<readonly [string, number]> = [
  ["AT_SYMLINK_NOFOLLOW", 0x100],
  ["AT_REMOVEDIR", 0x200],
  ["AT_SYMLINK_FOLLOW", 0x400],
  ["AT_NO_AUTOMOUNT", 0x800],
  ["AT_EMPTY_PATH", 0x1000],
  ["AT_STATX_FORCE_SYNC", 0x2000],
  ["AT_STATX_DONT_SYNC", 0x4000],
  ["AT_RECURSIVE", 0x8000],
];
const ACCESS_NAMES: ReadonlyArray<readonly [string, number]> = [
  ["R_OK", 4],
  ["W_OK", 2],
  ["X_OK", 1],
];
const PROT_NAMES: ReadonlyArray<readonly [string, number]> = [
  ["PROT_READ", 1],
  ["PROT_WRITE", 2],
  ["PROT_EXEC", 4],
  ["PROT_SEM", 8],
  ["PROT_BTI", 0x10],
  ["PROT_MTE", 0x20],
  ["PROT_GROWSDOWN", 0x0100_0000],
  ["PROT_GROWSUP", 0x0200_0000],
];
const MAP_TYPE_NAMES = ["0", "MAP_SHARED", "MAP_PRIVATE", "MAP_SHARED_VALIDATE"];
const MAP_FLAG_NAMES: ReadonlyArray<readonly [string, number]> = [
  ["MAP_FIXED", 0x10],
  ["MAP_ANONYMOUS", 0x20],
  ["MAP_GROWSDOWN", 0x100],
  ["MAP_DENYWRITE", 0x800],
  ["MAP_EXECUTABLE", 0x1000],
  ["MAP_LOCKED", 0x2000],
  ["MAP_NORESERVE", 0x4000],
  ["MAP_POPULATE", 0x8000],
  ["MAP_NONBLOCK", 0x10000],
  ["MAP_STACK", 0x20000],
  ["MAP_HUGETLB", 0x40000],
  ["MAP_SYNC", 0x80000],
  ["MAP_FIXED_NOREPLACE", 0x100000],
];

const FLOCK_NAMES: ReadonlyArray<readonly [string, number]> = [
  ["LOCK_SH", LOCK_SH],
  ["LOCK_EX", LOCK_EX],
  ["LOCK_UN", LOCK_UN],
  ["LOCK_NB", LOCK_NB],
];

function schedPolicy(value: number): string {
  const base = value & ~SCHED_RESET_ON_FORK;
  const name = SCHED_POLICY_NAMES[base] ?? String(base);
  return value & SCHED_RESET_ON_FORK ? `${name}|SCHED_RESET_ON_FORK` : name;
}

function signalName(n: number): string {
  if (n > 0 && n < SIGNAL_NAMES.length) return SIGNAL_NAMES[n]!;
  if (n >= SIGRTMIN && n <= 64) return n === SIGRTMIN ? "SIGRTMIN" : `SIGRT_${n - SIGRTMIN}`;
  return String(n);
}

function plain(name: string, args: SyscallArgs, i: number): string {
  switch (name) {
    case "int":
    case "fd":
      return String(args.int(i));
    case "uint":
      return String(args.uint(i));
    case "long":
      return String(args.long(i));
    case "size":
      return args.raw(i).toString();
    case "hex":
      return hex(args.raw(i));
    case "octal":
    case "mode": {
      const mode = args.uint(i);
      return `0${mode.toString(8).padStart(mode === 0 ? 2 : 3, "0")}`;
    }
    case "ptr":
      return pointer(args, i);
    case "dirfd":
      return args.int(i) === AT_FDCWD ? "AT_FDCWD" : String(args.int(i));
    case "oflags":
      return openFlags(args.int(i));
    case "atflags":
      return flagNames(args.int(i), AT_FLAG_NAMES, "0");
    case "amode":
      return flagNames(args.int(i), ACCESS_NAMES, "F_OK");
    case "whence":
      return SEEK_NAMES[args.uint(i)] ?? String(args.uint(i));
    case "signal":
      return signalName(args.int(i));
    case "sighow":
      return SIGPROCMASK_HOW_NAMES[args.uint(i)] ?? String(args.int(i));
    case "clock":
      return CLOCK_NAMES[args.int(i)] ?? String(args.int(i));
    case "ioctl":
      return IOCTL_NAMES[args.uint(i)] ?? hex(args.uint(i));
    case "fcntl":
      return FCNTL_COMMAND_NAMES[args.int(i)] ?? String(args.int(i));
    case "prot":
      return flagNames(args.int(i), PROT_NAMES, "PROT_NONE");
    case "mmapflags": {
      const flags = args.int(i);
      const rest = flagNames(flags & ~0xf, MAP_FLAG_NAMES, "");
      const type = MAP_TYPE_NAMES[flags & 0xf] ?? hex(flags & 0xf);
      return rest === "" ? type : `${type}|${rest}`;
    }
    case "resource":
      return RLIMIT_NAMES[args.uint(i)] ?? String(args.uint(i));
    case "prctl":
      return PRCTL_NAMES[args.int(i)] ?? String(args.int(i));
    case "schedpolicy":
      return schedPolicy(args.int(i));
    case "prio":
      return PRIO_NAMES[args.uint(i)] ?? String(args.int(i));
    case "iopriowho":
      return IOPRIO_WHO_NAMES[args.uint(i)] ?? String(args.int(i));
    case "flock":
      return flagNames(args.int(i), FLOCK_NAMES, "0");
    default:
      return hex(args.raw(i));
  }
}

function guestString(memory: GuestMemory, args: SyscallArgs, i: number): string {
  const address = args.ptr(i);
  if (address === 0) return "NULL";
  const length = memory.cStringLength(address);
  if (length < 0) return hex(args.raw(i));
  return quoteBytes(memory.bytes.subarray(address, address + length));
}

function guestBuffer(memory: GuestMemory, address: number, length: number, raw: bigint): string {
  const shown = Math.min(length, STRING_LIMIT);
  const bytes = memory.viewBytes(address, shown, false);
  if (typeof bytes === "number") return hex(raw);
  return quoteBytes(bytes) + (length > STRING_LIMIT ? "..." : "");
}

function iovecs(memory: GuestMemory, args: SyscallArgs, i: number, count: number, limit: number): string {
  const address = args.ptr(i);
  const entries = memory.readIovec(address, Math.min(Math.max(count, 0), 1024));
  if (typeof entries === "number") return hex(args.raw(i));
  let remaining = limit;
  const parts = entries.map(([base, length]) => {
    const shown = Math.max(0, Math.min(length, remaining));
    remaining -= shown;
    const content = guestBuffer(memory, base, shown, BigInt(base));
    return `{iov_base=${content}, iov_len=${length}}`;
  });
  return `[${parts.join(", ")}]`;
}

/** Linux error result? (-4095..-1) */
export function isErrorResult(result: number): boolean {
  return result < 0 && result >= -MAX_ERRNO;
}

export function formatResult(result: SyscallResult, ret: ResultFormat): string {
  if (typeof result === "object") {
    if (result.control === "signal-pending") return formatResult(result.value, ret);
    return "?";
  }
  if (typeof result === "bigint") return hex(BigInt.asUintN(64, result));
  if (isErrorResult(result)) {
    const errno = -result;
    return `-1 ${ERRNO_NAMES[errno] ?? `E${errno}`} (${ERRNO_MESSAGES[errno] ?? "Unknown error"})`;
  }
  if (ret === "hex") return hex(result < 0 ? BigInt.asUintN(64, BigInt(result)) : result);
  if (ret === "octal") return `0${result.toString(8)}`;
  if (ret === "none") return "?";
  return String(result);
}

/** `name(args…) = result`, reading buffers and strings from guest memory as they are after the call. */
export function formatCall(
  name: string,
  format: CompiledFormat | undefined,
  args: SyscallArgs,
  result: SyscallResult,
  memory: GuestMemory,
): string {
  const parts: string[] = [];
  if (format === undefined) {
    for (let i = 0; i < 6; i++) parts.push(hex(args.raw(i)));
  } else {
    const value = typeof result === "number" ? result : -1;
    format.args.forEach((arg, i) => {
      switch (arg.kind) {
        case "plain":
          parts.push(arg.name === "path" ? guestString(memory, args, i) : plain(arg.name, args, i));
          break;
        case "buf": {
          if (arg.out && value < 0) {
            parts.push(pointer(args, i));
            break;
          }
          const length = arg.out ? value : args.ulong(arg.lengthArg);
          parts.push(guestBuffer(memory, args.ptr(i), length, args.raw(i)));
          break;
        }
        case "iov": {
          if (arg.out && value < 0) {
            parts.push(pointer(args, i));
            break;
          }
          parts.push(iovecs(memory, args, i, args.int(arg.lengthArg), arg.out ? value : STRING_LIMIT * 1024));
          break;
        }
        case "mode-if-creat":
          if (args.int(arg.flagsArg) & O_CREAT || (args.int(arg.flagsArg) & O_TMPFILE) === O_TMPFILE) {
            parts.push(plain("mode", args, i));
          }
          break;
        case "cstr-out":
          parts.push(value < 0 ? pointer(args, i) : guestString(memory, args, i));
          break;
      }
    });
  }
  return `${name}(${parts.join(", ")}) = ${formatResult(result, format?.ret ?? "int")}`;
}
