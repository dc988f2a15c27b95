/**
 * execve (221) and execveat (281): replace the guest's program inside the same VM, as Linux's fs/exec.c does.
 *
 * Everything that can fail is checked first, while the old program is intact (it gets the errno): the path
 * (ENOENT, ENOTDIR, ELOOP, EACCES for a directory, a non-regular or non-executable file), argv/envp copied
 * out of guest memory (EFAULT, E2BIG with Linux's limits), `#!` scripts unwrapped (up to
 * MAX_INTERPRETER_DEPTH levels, else ELOOP; a file that is neither ELF nor script is ENOEXEC), and the final
 * ELF checked by the loader's `prepare` (ENOEXEC). Then the point of no return: the address space is emptied,
 * handlers reset (SIG_IGN survives), the alternate stack dropped, close-on-exec fds closed, comm and
 * /proc/self/exe changed, and the loader maps the new image and sets every register. The syscall does not
 * return: the guest resumes at the new entry point.
 */

import { closeSync, fstatSync, openSync, readFileSync } from "node:fs";
import { E2BIG, EACCES, EFAULT, EINVAL, ELOOP, ENAMETOOLONG, ENOENT, ENOEXEC } from "../abi/errno.ts";
import { ARG_MAX, MAX_ARG_STRINGS, MAX_ARG_STRLEN, MAX_INTERPRETER_DEPTH, STK_LIM } from "../abi/exec.ts";
import {
  AT_EACCESS,
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_SYMLINK_NOFOLLOW,
  O_CLOEXEC,
  O_NOFOLLOW,
  O_PATH,
  X_OK,
} from "../abi/fcntl.ts";
import { SUID_DUMP_USER } from "../abi/process.ts";
import { RLIMIT_STACK } from "../abi/resource.ts";
import { NSIG, SIG_IGN, SIGSEGV } from "../abi/signal.ts";
import { NR } from "../abi/syscalls.ts";
import type { SyscallContext, SyscallResult } from "../context.ts";
import type { Dispatcher } from "../dispatch.ts";
import { hostDirFd, hostPath } from "../handlers/paths.ts";
import { deleteAllTimers } from "../handlers/timers.ts";
import type { AddressSpace } from "../mm/address-space.ts";
import { markExecInForkedChild } from "../proc/handlers.ts";
import { SS_DISABLE } from "../signals/abi.ts";
import type { SignalDelivery } from "../signals/delivery.ts";
import { isScript, parseShebang } from "./script.ts";

/** The program execve settled on, handed to the loader. */
export interface ExecProgram {
  /** Absolute host path of the ELF file that will run (a script's interpreter): /proc/self/exe afterwards. */
  path: string;
  /** The file's bytes. */
  bytes: Uint8Array;
  /** Final argv (a script's interpreter and argument spliced in front) and envp, byte-exact. */
  argv: Uint8Array[];
  envp: Uint8Array[];
  /**
   * Linux's bprm->filename: the path as given, or "/dev/fd/N[/path]" for execveat relative to a dirfd.
   * AT_EXECFN points at it; comm is its basename.
   */
  filename: Uint8Array;
}

/**
 * The loader's side: check `program` without touching the running one and return the function that loads
 * it (segments, stack, registers) once the old image is gone, or -errno (ENOEXEC) to refuse it.
 */
export type ExecPrepare = (program: ExecProgram) => (() => void) | number;

export interface ExecDependencies {
  space: AddressSpace;
  signals: SignalDelivery;
  prepare: ExecPrepare;
}

export function registerExecHandlers(dispatcher: Dispatcher, deps: ExecDependencies): void {
  dispatcher.registerHandler(NR.execve, "execve", (args, ctx) =>
    execveat(ctx, deps, AT_FDCWD, args.ptr(0), args.ptr(1), args.ptr(2), 0),
  );
  dispatcher.registerHandler(NR.execveat, "execveat", (args, ctx) =>
    execveat(ctx, deps, args.int(0), args.ptr(1), args.ptr(2), args.ptr(3), args.int(4)),
  );
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function execveat(
  ctx: SyscallContext,
  deps: ExecDependencies,
  dirfd: number,
  pathAddress: number,
  argvAddress: number,
  envpAddress: number,
  flags: number,
): SyscallResult {
  if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) return -EINVAL;
  const memory = ctx.memory;
  const pathLength = memory.cStringLength(pathAddress);
  if (pathLength < 0) return pathLength;
  const path = memory.bytes.slice(pathAddress, pathAddress + pathLength);
  if (pathLength === 0 && !(flags & AT_EMPTY_PATH)) return -ENOENT;

  // 1. The file (alloc_bprm → do_open_execat).
  let opened: number;
  if (pathLength === 0) {
    const hostFd = ctx.process.hostDirFd(dirfd);
    if (hostFd < 0) return hostFd;
    opened = openHost(ctx, ctx.host.cString(`/proc/self/fd/${hostFd}`), -100, false);
  } else {
    const hostPathAddress = hostPath(ctx, pathAddress);
    if (hostPathAddress < 0) return hostPathAddress;
    const hostDir = hostDirFd(ctx, dirfd, pathAddress);
    if (hostDir < 0 && hostDir !== -100) return hostDir;
    opened = openHost(ctx, hostPathAddress, hostDir, (flags & AT_SYMLINK_NOFOLLOW) !== 0);
  }
  if (opened < 0) return opened;
  let file = readExecutable(ctx, opened);
  if (typeof file === "number") return file;

  // bprm->filename: what AT_EXECFN shows and comm is named after.
  const fdBased = dirfd !== AT_FDCWD && path[0] !== 0x2f;
  const filename = fdBased
    ? pathLength === 0
      ? encoder.encode(`/dev/fd/${dirfd}`)
      : concatBytes(encoder.encode(`/dev/fd/${dirfd}/`), path)
    : path;

  // 2. The arguments (count, bprm_stack_limits, copy_strings).
  const argv = copyStrings(ctx, argvAddress);
  if (typeof argv === "number") return argv;
  const envp = copyStrings(ctx, envpAddress);
  if (typeof envp === "number") return envp;
  const tooBig = checkArgumentSpace(ctx, filename, argv, envp);
  if (tooBig < 0) return tooBig;
  // Linux >= 5.18: an empty argv becomes { "" }, so argv[0] always exists.
  if (argv.length === 0) argv.push(new Uint8Array(0));

  // 3. Binary handlers: #! scripts hand over to their interpreter, which must in the end be an ELF file.
  let interp: Uint8Array = filename;
  for (let depth = 0; ; depth++) {
    if (depth > MAX_INTERPRETER_DEPTH) return -ELOOP;
    if (!isScript(file.bytes)) break;
    const line = parseShebang(file.bytes);
    if (line === null) return -ENOEXEC;
    // The interpreter will reopen the script by name: a /dev/fd path whose fd closes at exec is no use.
    if (depth === 0 && fdBased && ctx.process.fds.get(dirfd)?.cloexec) return -ENOENT;
    argv.splice(0, 1, ...(line.argument ? [line.interpreter, line.argument] : [line.interpreter]), interp);
    interp = line.interpreter;
    const name = ctx.host.cString(decoder.decode(line.interpreter));
    if (name < 0) return name;
    const interpreter = openHost(ctx, name, ctx.process.cwdFd, false);
    if (interpreter < 0) return interpreter;
    file = readExecutable(ctx, interpreter);
    if (typeof file === "number") return file;
  }
  if (!isElf(file.bytes)) return -ENOEXEC;

  const program: ExecProgram = { path: file.path, bytes: file.bytes, argv, envp, filename };
  const load = deps.prepare(program);
  if (typeof load === "number") return load;

  // 4. The point of no return.
  // comm: the basename of the name as given; for a made-up /dev/fd name, the file's own name (Linux 6.14).
  const comm = fdBased ? encoder.encode(file.path) : filename;
  flushOldExec(ctx, deps, program, comm.subarray(comm.lastIndexOf(0x2f) + 1));
  try {
    load();
  } catch (error) {
    // Past the point of no return Linux kills the process (force_fatal_sig) when loading fails.
    return { control: "fatal-signal", signal: SIGSEGV, detail: `execve: ${(error as Error).message}` };
  }
  return { control: "registers-set" };
}

/** Open `path` (a host string pointer) relative to `hostDir` as an O_PATH fd, or -errno. */
function openHost(ctx: SyscallContext, path: number, hostDir: number, noFollow: boolean): number {
  if (path < 0) return path;
  const flags = ctx.flags.toHost(O_PATH | O_CLOEXEC | (noFollow ? O_NOFOLLOW : 0));
  return ctx.host.sym.host_openat(hostDir, path, flags, 0);
}

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

/**
 * do_open_execat's checks on an opened O_PATH fd (closed here): a regular file the caller may execute
 * (EACCES otherwise, ELOOP for a symlink under AT_SYMLINK_NOFOLLOW); then its bytes and host path.
 */
function readExecutable(ctx: SyscallContext, hostFd: number): { path: string; bytes: Uint8Array } | number {
  try {
    const mode = fstatSync(hostFd).mode;
    if ((mode & S_IFMT) === S_IFLNK) return -ELOOP;
    if ((mode & S_IFMT) !== S_IFREG) return -EACCES;
    const empty = ctx.host.cString("");
    if (ctx.host.sym.host_faccessat(hostFd, empty, X_OK, AT_EMPTY_PATH | AT_EACCESS) < 0) return -EACCES;
    const path = ctx.host.fdPath(hostFd);
    if (path === null) return -ENOENT;
    let readable: number;
    try {
      // Linux needs no read permission to exec; we must read the file to load it (an exec-only file: EACCES).
      readable = openSync(`/proc/self/fd/${hostFd}`, "r");
    } catch {
      return -EACCES;
    }
    try {
      // A view of the Buffer's own memory: new Uint8Array(buffer) would copy the whole file once more (in a
      // forked child that is ~150 page faults for a small static program).
      const data = readFileSync(readable);
      return { path, bytes: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
    } finally {
      closeSync(readable);
    }
  } catch {
    return -EACCES;
  } finally {
    ctx.host.sym.host_close(hostFd);
  }
}

function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function isElf(bytes: Uint8Array): boolean {
  return (
    bytes.length >= 4 && bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46
  );
}

/** A NULL-terminated array of string pointers (count + copy_strings): NULL itself is an empty array. */
function copyStrings(ctx: SyscallContext, address: number): Uint8Array[] | number {
  const out: Uint8Array[] = [];
  if (address === 0) return out;
  const memory = ctx.memory;
  for (let at = address; ; at += 8) {
    if (out.length >= MAX_ARG_STRINGS) return -E2BIG;
    if (!memory.check(at, 8, false)) return -EFAULT;
    const pointer = memory.readU64(at);
    if (pointer === 0) return out;
    const length = memory.cStringLength(pointer, MAX_ARG_STRLEN);
    if (length === -ENAMETOOLONG) return -E2BIG;
    if (length < 0) return -EFAULT;
    out.push(memory.bytes.slice(pointer, pointer + length));
  }
}

/**
 * bprm_stack_limits: the strings (filename, envp, argv, NULs included) and their pointers must fit in a
 * quarter of RLIMIT_STACK, at most 3/4 of _STK_LIM, at least ARG_MAX.
 */
function checkArgumentSpace(
  ctx: SyscallContext,
  filename: Uint8Array,
  argv: Uint8Array[],
  envp: Uint8Array[],
): number {
  const stackLimit = ctx.process.rlimits[RLIMIT_STACK]![0];
  const quarter = stackLimit / 4n > BigInt(STK_LIM) ? STK_LIM : Number(stackLimit / 4n);
  const limit = Math.max(Math.min((STK_LIM / 4) * 3, quarter), ARG_MAX);
  const pointers = (Math.max(argv.length, 1) + envp.length) * 8;
  if (limit <= pointers) return -E2BIG;
  let total = filename.length + 1;
  for (const s of envp) total += s.length + 1;
  for (const s of argv) total += s.length + 1;
  return total > limit - pointers ? -E2BIG : 0;
}

/** begin_new_exec: drop the old program and reset what exec resets; keep what it keeps. */
function flushOldExec(
  ctx: SyscallContext,
  deps: ExecDependencies,
  program: ExecProgram,
  comm: Uint8Array,
): void {
  const process = ctx.process;
  deps.space.reset();
  // mm_release: a vfork parent waits for exactly this moment.
  process.releaseVforkParent();
  markExecInForkedChild(ctx);
  for (const [fd, entry] of [...process.fds.open()]) {
    if (!entry.cloexec) continue;
    process.fds.remove(fd);
    ctx.host.sym.host_close(entry.hostFd);
  }
  // flush_signal_handlers(force_default = 0): handlers become SIG_DFL, SIG_IGN stays; flags, masks and
  // restorers are cleared. The blocked mask and pending signals are kept.
  const actions = process.signalActions;
  for (let signal = 1; signal <= NSIG; signal++) {
    const handler = actions.handler(signal) === SIG_IGN ? SIG_IGN : 0n;
    actions.write(signal, handler, 0n, 0n, 0n);
  }
  process.childSignalChanged();
  // exit_itimers: POSIX timers do not survive exec.
  deleteAllTimers(process, ctx.host);
  deps.signals.altStack = { sp: 0n, size: 0n, flags: SS_DISABLE };
  const thread = process.currentThread;
  // de_thread: every other thread of the process is gone, and the exec'ing thread becomes the leader (tid = pid).
  process.keepOnlyCurrentThread();
  thread.clearChildTid = 0;
  thread.robustListHead = 0;
  thread.robustListLength = 0;
  thread.keepCaps = false; // PR_SET_KEEPCAPS does not survive execve
  process.dumpable = SUID_DUMP_USER;
  process.exePath = program.path;
  thread.setComm(comm);
}
