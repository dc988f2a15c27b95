/**
 * The syscall dispatcher: a dense array indexed by syscall number, so a call is one bounds check, one
 * load and one call. The SyscallArgs wrapper is reused (its frame is re-pointed per call): nothing is
 * allocated on the untraced path. Tracing swaps in a second dispatch function, so the fast one carries
 * no "is tracing on?" test.
 */
import { ENOSYS } from "./abi/errno.ts";
import { NR, NR_SYSCALLS, SYSCALL_NAMES } from "./abi/syscalls.ts";
import { SyscallArgs, type SyscallContext, type SyscallHandler, type SyscallResult } from "./context.ts";
import { BUILTIN_HANDLERS } from "./handlers/index.ts";
import { createFlagTranslator } from "./host/flags.ts";
import { type Host, sharedHost } from "./host/host.ts";
import type { GuestMemory } from "./memory.ts";
import type { ProcessState } from "./process.ts";
import type { CompiledFormat } from "./trace/format.ts";
import type { SyscallFormatSpec } from "./trace/formats.ts";

/** The trace's format table and formatters (trace/formatting.ts). */
export type TraceFormatting = typeof import("./trace/formatting.ts");
let formatting: TraceFormatting | null = null;

/**
 * The trace's format table and formatters, loaded (synchronously) on first use: a traced call, or a caller
 * asking. A run without --trace never parses them: ~1 ms of every start.
 */
export function traceFormatting(): TraceFormatting {
  formatting ??= require("./trace/formatting.ts") as TraceFormatting;
  return formatting;
}

export interface DispatcherOptions {
  memory: GuestMemory;
  process: ProcessState;
  /** strace-style line per syscall. Omit for the fast path. */
  trace?: (line: string) => void;
  /** Called once per syscall number the guest uses that has no handler (whether or not tracing is on). */
  onUnimplemented?: (nr: number, name: string) => void;
  /** uname's nodename; defaults to the host's hostname. */
  nodename?: string;
  host?: Host;
}

export interface Dispatcher {
  /** Handle the syscall in `frame` (X0..X8 as u32 lo/hi pairs). The caller writes the result to X0. */
  dispatch(frame: Uint32Array): SyscallResult;
  /** Install (or replace) the handler of `nr`; `argFormat` drives its trace line (default: the built-in table). */
  registerHandler(nr: number, name: string, handler: SyscallHandler, argFormat?: SyscallFormatSpec): void;
  /** Turn tracing on or off. */
  setTrace(trace: ((line: string) => void) | undefined): void;
  /** Whether `nr` has a handler. */
  isImplemented(nr: number): boolean;
  /** The handler of `nr` (to wrap it), or undefined when there is none. */
  handlerOf(nr: number): SyscallHandler | undefined;
  readonly context: SyscallContext;
}

/** Syscalls that, when they succeed, leave nothing of the caller's memory to format the trace line from. */
const REPLACES_IMAGE = new Set<number>([NR.execve, NR.execveat]);

/** Table size: covers every Linux 6.18 number, rounded up to a power of two. */
const TABLE_SIZE = 512;

/** The name strace would print for a number (`syscall_0x…` for holes). */
export function syscallName(nr: number): string {
  return SYSCALL_NAMES[nr] ?? `syscall_0x${nr.toString(16)}`;
}

function readHostname(host: Host): string {
  const address = host.scratchAddress;
  const r = host.sym.host_gethostname(address, 256);
  if (r < 0) return "localhost";
  const bytes = host.scratch.subarray(0, 256);
  const end = bytes.indexOf(0);
  return new TextDecoder().decode(bytes.subarray(0, end < 0 ? 256 : end));
}

export function createDispatcher(options: DispatcherOptions): Dispatcher {
  const host = options.host ?? sharedHost();
  const context: SyscallContext = {
    memory: options.memory,
    process: options.process,
    host,
    flags: createFlagTranslator(),
    nodename: options.nodename ?? readHostname(host),
  };

  const unimplementedSeen = new Uint8Array(TABLE_SIZE + 1);
  const onUnimplemented = options.onUnimplemented;
  let trace = options.trace;

  const unimplemented: SyscallHandler = (args) => {
    const nr = args.number;
    const slot = Math.min(nr, TABLE_SIZE);
    if (unimplementedSeen[slot] === 0) {
      unimplementedSeen[slot] = 1;
      const name = syscallName(nr);
      onUnimplemented?.(nr, name);
      trace?.(`[guest] syscall ${nr} (${name}) is not implemented: -ENOSYS from now on`);
    }
    return -ENOSYS;
  };

  const handlers: SyscallHandler[] = new Array(TABLE_SIZE).fill(unimplemented);
  // Names are for the trace and the unimplemented notice: the table's own names now, `syscall_0x…` for holes
  // only when one is asked for (building all 512 strings up front cost ~1 ms of every start).
  const names: Array<string | undefined> = new Array(TABLE_SIZE).fill(undefined);
  // Argument formats matter only to the trace: each is looked up and compiled on the first traced call of its
  // syscall, so a run without --trace never builds them. The spec is the one registerHandler was given, else
  // the built-in table's for the syscall's name; none: a plain "name(0x…, …) = result" line.
  const givenSpecs: Array<SyscallFormatSpec | undefined> = new Array(TABLE_SIZE).fill(undefined);
  const formats: Array<CompiledFormat | null | undefined> = new Array(TABLE_SIZE).fill(undefined);
  const formatOf = (
    nr: number,
    { SYSCALL_FORMATS, compileFormat }: TraceFormatting,
  ): CompiledFormat | undefined => {
    if (nr >= TABLE_SIZE) return undefined;
    let format = formats[nr];
    if (format === undefined) {
      const name = names[nr];
      const spec = givenSpecs[nr] ?? (name === undefined ? undefined : SYSCALL_FORMATS[name]);
      formats[nr] = format = spec === undefined ? null : compileFormat(spec);
    }
    return format ?? undefined;
  };
  for (let nr = 0; nr < NR_SYSCALLS; nr++) {
    const name = SYSCALL_NAMES[nr];
    if (name === undefined) continue;
    const handler = BUILTIN_HANDLERS[name as keyof typeof BUILTIN_HANDLERS];
    if (handler !== undefined) handlers[nr] = handler;
    names[nr] = name;
  }

  const args = new SyscallArgs(new Uint32Array(18));

  const fast = (frame: Uint32Array): SyscallResult => {
    args.frame = frame;
    // X8 as a C int: Linux reads w8, so the high word is ignored and "negative" numbers are out of range.
    const nr = frame[16]!;
    return (nr < TABLE_SIZE ? handlers[nr]! : unimplemented)(args, context);
  };

  const traced = (frame: Uint32Array): SyscallResult => {
    args.frame = frame;
    const nr = frame[16]!;
    const name = (nr < TABLE_SIZE ? names[nr] : undefined) ?? syscallName(nr);
    const formatting = traceFormatting();
    const { formatCall } = formatting;
    const format = formatOf(nr, formatting);
    // A successful execve replaces the memory its arguments live in: render the line first, as "= 0".
    const before = REPLACES_IMAGE.has(nr) ? formatCall(name, format, args, 0, context.memory) : null;
    const result = (nr < TABLE_SIZE ? handlers[nr]! : unimplemented)(args, context);
    // Read the frame again: the handler may have re-pointed args (nested dispatch is not expected, but cheap to guard).
    args.frame = frame;
    trace?.(
      before !== null && typeof result === "object"
        ? before
        : formatCall(name, format, args, result, context.memory),
    );
    return result;
  };

  const dispatcher: Dispatcher = {
    dispatch: trace ? traced : fast,
    registerHandler(nr, name, handler, argFormat) {
      if (!(Number.isInteger(nr) && nr >= 0 && nr < TABLE_SIZE))
        throw new RangeError(`syscall number ${nr} out of range`);
      handlers[nr] = handler;
      names[nr] = name;
      givenSpecs[nr] = argFormat;
      formats[nr] = undefined;
    },
    setTrace(next) {
      trace = next;
      dispatcher.dispatch = next ? traced : fast;
    },
    isImplemented(nr) {
      return nr >= 0 && nr < TABLE_SIZE && handlers[nr] !== unimplemented;
    },
    handlerOf(nr) {
      return nr >= 0 && nr < TABLE_SIZE && handlers[nr] !== unimplemented ? handlers[nr] : undefined;
    },
    context,
  };
  return dispatcher;
}
