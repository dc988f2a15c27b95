/**
 * Credentials, groups, process groups and sessions. The guest's identity is the host process's: the
 * getters answer with the host's values, and the setters accept exactly what leaves the credentials as
 * they are. A change Linux would refuse gets Linux's error; a change Linux would allow but that would
 * mean changing the runtime's own credentials gets -EPERM (we do not make it, and do not pretend to).
 */
import { EFAULT, EINVAL, EPERM } from "../abi/errno.ts";
import { ID_UNCHANGED, NGROUPS_MAX } from "../abi/process.ts";
import type { SyscallContext, SyscallHandler } from "../context.ts";
import { SCRATCH_GENERAL, SCRATCH_GENERAL_SIZE } from "../host/host.ts";

/** Three u32 written in order (Linux's put_user sequence: the first fault wins, earlier ones stay written). */
function writeIds(
  ctx: SyscallContext,
  addresses: [number, number, number],
  ids: [number, number, number],
): number {
  for (let i = 0; i < 3; i++) {
    const r = ctx.memory.writeU32(addresses[i]!, ids[i]!);
    if (r < 0) return r;
  }
  return 0;
}

export const getresuid: SyscallHandler = (args, ctx) => {
  const p = ctx.process;
  return writeIds(ctx, [args.ptr(0), args.ptr(1), args.ptr(2)], [p.uid, p.euid, p.suid]);
};

export const getresgid: SyscallHandler = (args, ctx) => {
  const p = ctx.process;
  return writeIds(ctx, [args.ptr(0), args.ptr(1), args.ptr(2)], [p.gid, p.egid, p.sgid]);
};

type Ids = [real: number, effective: number, saved: number];

/** The outcome of a credential change Linux has already permitted: 0 if nothing changes, else -EPERM. */
function applyIds(current: Ids, next: Ids): number {
  return current[0] === next[0] && current[1] === next[1] && current[2] === next[2] ? 0 : -EPERM;
}

/** CAP_SETUID / CAP_SETGID: the guest has them when the host process runs as root. */
function privileged(ctx: SyscallContext): boolean {
  return ctx.process.euid === 0;
}

/** Linux __sys_setuid / __sys_setgid. */
function setId(ctx: SyscallContext, id: number, current: Ids): number {
  if (id === ID_UNCHANGED) return -EINVAL;
  if (privileged(ctx)) return applyIds(current, [id, id, id]);
  if (id === current[0] || id === current[2]) return applyIds(current, [current[0], id, current[2]]);
  return -EPERM;
}

/** Linux __sys_setreuid / __sys_setregid. */
function setReId(ctx: SyscallContext, real: number, effective: number, current: Ids): number {
  const [r, e, s] = current;
  const next: Ids = [r, e, s];
  const cap = privileged(ctx);
  if (real !== ID_UNCHANGED) {
    if (!cap && real !== r && real !== e) return -EPERM;
    next[0] = real;
  }
  if (effective !== ID_UNCHANGED) {
    if (!cap && effective !== r && effective !== e && effective !== s) return -EPERM;
    next[1] = effective;
  }
  if (real !== ID_UNCHANGED || (effective !== ID_UNCHANGED && effective !== r)) next[2] = next[1];
  return applyIds(current, next);
}

/** Linux __sys_setresuid / __sys_setresgid: unprivileged, every new value must be one of the current three. */
function setResId(ctx: SyscallContext, wanted: Ids, current: Ids): number {
  const cap = privileged(ctx);
  const next: Ids = [current[0], current[1], current[2]];
  for (let i = 0; i < 3; i++) {
    const id = wanted[i]!;
    if (id === ID_UNCHANGED) continue;
    if (!cap && !current.includes(id)) return -EPERM;
    next[i] = id;
  }
  return applyIds(current, next);
}

const uids = (ctx: SyscallContext): Ids => [ctx.process.uid, ctx.process.euid, ctx.process.suid];
const gids = (ctx: SyscallContext): Ids => [ctx.process.gid, ctx.process.egid, ctx.process.sgid];

export const setuid: SyscallHandler = (args, ctx) => setId(ctx, args.uint(0), uids(ctx));
export const setgid: SyscallHandler = (args, ctx) => setId(ctx, args.uint(0), gids(ctx));
export const setreuid: SyscallHandler = (args, ctx) => setReId(ctx, args.uint(0), args.uint(1), uids(ctx));
export const setregid: SyscallHandler = (args, ctx) => setReId(ctx, args.uint(0), args.uint(1), gids(ctx));
export const setresuid: SyscallHandler = (args, ctx) =>
  setResId(ctx, [args.uint(0), args.uint(1), args.uint(2)], uids(ctx));
export const setresgid: SyscallHandler = (args, ctx) =>
  setResId(ctx, [args.uint(0), args.uint(1), args.uint(2)], gids(ctx));

/** The host's supplementary groups, sorted (left in scratch), or -errno. */
function hostGroups(ctx: SyscallContext): Uint32Array | number {
  const capacity = Math.min(NGROUPS_MAX, SCRATCH_GENERAL_SIZE / 4);
  const n = ctx.host.sym.host_getgroups(capacity, ctx.host.scratchAddress + SCRATCH_GENERAL);
  if (n < 0) return n;
  const scratch = ctx.host.scratch;
  return new Uint32Array(scratch.buffer, scratch.byteOffset + SCRATCH_GENERAL, n);
}

export const getgroups: SyscallHandler = (args, ctx) => {
  const size = args.int(0);
  if (size < 0) return -EINVAL;
  const groups = hostGroups(ctx);
  if (typeof groups === "number") return groups;
  if (size === 0) return groups.length;
  if (size < groups.length) return -EINVAL;
  const r = ctx.memory.writeBytes(
    args.ptr(1),
    new Uint8Array(groups.buffer, groups.byteOffset, groups.length * 4),
  );
  return r < 0 ? r : groups.length;
};

export const setgroups: SyscallHandler = (args, ctx) => {
  // Linux checks the capability before anything else.
  if (!privileged(ctx)) return -EPERM;
  const size = args.int(0);
  if (size < 0 || size > NGROUPS_MAX) return -EINVAL;
  const list = size === 0 ? new Uint8Array(0) : ctx.memory.readBytes(args.ptr(1), size * 4);
  if (typeof list === "number") return -EFAULT;
  const wanted = [...new Set(new Uint32Array(list.slice().buffer))].sort((a, b) => a - b);
  const groups = hostGroups(ctx);
  if (typeof groups === "number") return groups;
  const current = [...new Set(groups)].sort((a, b) => a - b);
  const same = wanted.length === current.length && wanted.every((g, i) => g === current[i]);
  return same ? 0 : -EPERM;
};
