/**
 * Guest path arguments → host path pointers. A guest path is validated in place (NUL within PATH_MAX,
 * every byte accessible) and handed to the host as a pointer into guest memory, with no copy. Only the
 * /proc entries that name this process are rewritten (through a scratch slot), because on the host they
 * would name the runtime: /proc/self/exe, /proc/self/cwd and /proc/self/fd/N.
 */
import { EBADF, ENOENT } from "../abi/errno.ts";
import type { SyscallContext } from "../context.ts";
import { SCRATCH_PATH_A } from "../host/host.ts";
import { procFdDirectorySnapshot, procFileSnapshot } from "../procfs.ts";

/** Host address of a permanently empty C string (the last byte of the scratch area, never written). */
export function emptyPath(ctx: SyscallContext): number {
  return ctx.host.scratchAddress + ctx.host.scratch.length - 1;
}

const SLASH = 0x2f;
const PROC = [0x2f, 0x70, 0x72, 0x6f, 0x63, 0x2f]; // "/proc/"

/** What a /proc path that names this process refers to. */
export type ProcSelfLink =
  | { kind: "exe" }
  | { kind: "cwd" }
  | { kind: "fd"; fd: number; rest: string }
  | null;

/** Parses "/proc/self/…", "/proc/thread-self/…" and "/proc/<own pid or tid>/…" for the magic links. */
export function procSelfLink(ctx: SyscallContext, path: string): ProcSelfLink {
  const match = /^\/proc\/(self|thread-self|\d+)\/(exe|cwd|fd\/(\d+))(\/.*)?$/.exec(path);
  if (match === null) return null;
  if (!isSelf(ctx, match[1]!)) return null;
  if (match[2] === "exe") return match[4] === undefined ? { kind: "exe" } : null;
  if (match[2] === "cwd") return { kind: "cwd" };
  return { kind: "fd", fd: Number(match[3]), rest: match[4] ?? "" };
}

/**
 * The host path pointer for the guest string at `address`, or -errno. `nullIsEmpty`: a NULL pointer
 * means "" (statx/fstatat with AT_EMPTY_PATH since Linux 6.11).
 */
export function hostPath(
  ctx: SyscallContext,
  address: number,
  slot = SCRATCH_PATH_A,
  nullIsEmpty = false,
): number {
  if (address === 0 && nullIsEmpty) return emptyPath(ctx);
  const memory = ctx.memory;
  const length = memory.cStringLength(address);
  if (length < 0) return length;
  const bytes = memory.bytes;
  if (length > 6 && bytes[address] === SLASH && isProcPrefix(bytes, address)) {
    const rewritten = rewriteProc(ctx, memory.readCString(address) as string, slot);
    if (rewritten !== null) return rewritten;
  }
  if (length > 8 && bytes[address] === SLASH && bytes[address + 1] === D && bytes[address + 4] === SLASH) {
    const rewritten = rewriteDevFd(ctx, memory.readCString(address) as string, slot);
    if (rewritten !== null) return rewritten;
  }
  return memory.hostAddress + address;
}

const D = 0x64;
/** /dev/fd/N and /dev/std{in,out,err}: on Linux symlinks into /proc/self/fd, i.e. the guest's own fds. */
const DEV_FD = /^\/dev\/(?:fd\/(\d+)(\/.*)?|(stdin|stdout|stderr))$/;
const STDIO_FD: Record<string, number> = { stdin: 0, stdout: 1, stderr: 2 };

function rewriteDevFd(ctx: SyscallContext, path: string, slot: number): number | null {
  const match = DEV_FD.exec(path);
  if (match === null) return null;
  const fd = match[3] !== undefined ? STDIO_FD[match[3]]! : Number(match[1]);
  const entry = ctx.process.fds.get(fd);
  if (entry === undefined) return -ENOENT;
  return ctx.host.cString(`/proc/self/fd/${entry.hostFd}${match[2] ?? ""}`, slot);
}

function isProcPrefix(bytes: Uint8Array, address: number): boolean {
  for (let i = 1; i < PROC.length; i++) if (bytes[address + i] !== PROC[i]) return false;
  return true;
}

/** /proc/<self>/<file> names rendered by the runtime (procfs.ts) rather than read from the host. */
const SYNTHETIC_PROC_FILE = /^\/proc\/(self|thread-self|\d+)\/(maps|stat|status|cmdline|environ|comm)$/;

/** /proc/<self>/fd itself: the guest's fd table, not the runtime's. */
const PROC_FD_DIRECTORY = /^\/proc\/(self|thread-self|\d+)\/fd\/?$/;

/** A /proc/<who> that names this process: "self", "thread-self", its pid or one of its tids. */
function isSelf(ctx: SyscallContext, who: string): boolean {
  return (
    who === "self" ||
    who === "thread-self" ||
    Number(who) === ctx.process.pid ||
    ctx.process.threads.has(Number(who))
  );
}

function rewriteProc(ctx: SyscallContext, path: string, slot: number): number | null {
  const fdDirectory = PROC_FD_DIRECTORY.exec(path);
  if (fdDirectory !== null && isSelf(ctx, fdDirectory[1]!)) {
    const entries: Array<[number, string]> = [];
    for (const [fd, entry] of ctx.process.fds.open())
      entries.push([fd, ctx.host.fdPath(entry.hostFd) ?? entry.path]);
    // Linux lists the directory's own fd too (the one an open is about to return).
    const next = ctx.process.fds.peek();
    if (next >= 0) entries.push([next, `/proc/${ctx.process.pid}/fd`]);
    const snapshot = procFdDirectorySnapshot(ctx.process, entries);
    if (snapshot !== null) return ctx.host.cString(snapshot, slot);
  }
  const synthetic = SYNTHETIC_PROC_FILE.exec(path);
  if (synthetic !== null) {
    const snapshot = isSelf(ctx, synthetic[1]!) ? procFileSnapshot(ctx.process, synthetic[2]!) : null;
    if (snapshot !== null) return ctx.host.cString(snapshot, slot);
  }
  const link = procSelfLink(ctx, path);
  if (link === null) return null;
  if (link.kind === "exe") return ctx.host.cString(ctx.process.exePath, slot);
  if (link.kind === "cwd") return ctx.host.cString(ctx.process.cwdPath, slot);
  const entry = ctx.process.fds.get(link.fd);
  if (entry === undefined) return -ENOENT;
  return ctx.host.cString(`/proc/self/fd/${entry.hostFd}${link.rest}`, slot);
}

/**
 * The host dirfd for a *at() call. Linux ignores dirfd for absolute paths (even a bad one), so an
 * absolute path gets the host's AT_FDCWD whatever the guest passed.
 */
export function hostDirFd(ctx: SyscallContext, dirfd: number, pathAddress: number): number {
  const hostFd = ctx.process.hostDirFd(dirfd);
  if (hostFd >= 0) return hostFd;
  const memory = ctx.memory;
  if (
    pathAddress > 0 &&
    pathAddress < memory.size &&
    memory.check(pathAddress, 1, false) &&
    memory.bytes[pathAddress] === SLASH
  ) {
    return -100;
  }
  return -EBADF;
}

/** Decodes a guest path for bookkeeping (fd table, traces); "" when unreadable. */
export function guestPathText(ctx: SyscallContext, address: number): string {
  const text = ctx.memory.readCString(address);
  return typeof text === "string" ? text : "";
}
