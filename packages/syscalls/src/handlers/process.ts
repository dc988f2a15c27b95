/** Identity, limits and lifetime of the process: getpid & co, uname, rlimits, exit. */
import { EFAULT, EINVAL, ENOSYS, EPERM, ESRCH } from "../abi/errno.ts";
import { PERSONALITY_QUERY } from "../abi/process.ts";
import {
  CAP_SYS_RESOURCE,
  GRND_INSECURE,
  GRND_NONBLOCK,
  GRND_RANDOM,
  NR_OPEN,
  RLIM_NLIMITS,
  RLIMIT_NOFILE,
  RUSAGE_CHILDREN,
  RUSAGE_SELF,
  RUSAGE_THREAD,
} from "../abi/resource.ts";
import { RLIMIT, ROBUST_LIST_HEAD_SIZE, RUSAGE, SYSINFO, UTSNAME } from "../abi/structs.ts";
import type { SyscallContext, SyscallHandler } from "../context.ts";
import { hasCapability } from "../host/capabilities.ts";
import { type Host, SCRATCH_GENERAL } from "../host/host.ts";
import type { ThreadState } from "../process.ts";

/** What uname reports: Linux 6.18 on arm64, with the host's hostname as nodename. */
export const UNAME = {
  sysname: "Linux",
  release: "6.18.0",
  version: "#1 SMP PREEMPT_DYNAMIC guest",
  machine: "aarch64",
  domainname: "(none)",
} as const;

export const getpid: SyscallHandler = (_args, ctx) => ctx.process.pid;
export const getppid: SyscallHandler = (_args, ctx) => ctx.process.ppid;
export const gettid: SyscallHandler = (_args, ctx) => ctx.process.currentThread.tid;
export const getuid: SyscallHandler = (_args, ctx) => ctx.process.uid;
export const geteuid: SyscallHandler = (_args, ctx) => ctx.process.euid;
export const getgid: SyscallHandler = (_args, ctx) => ctx.process.gid;
export const getegid: SyscallHandler = (_args, ctx) => ctx.process.egid;

export const exit: SyscallHandler = (args) => ({ control: "exit", status: args.int(0) & 0xff, group: false });
export const exitGroup: SyscallHandler = (args) => ({
  control: "exit",
  status: args.int(0) & 0xff,
  group: true,
});

export const setTidAddress: SyscallHandler = (args, ctx) => {
  const thread = ctx.process.currentThread;
  thread.clearChildTid = args.ptr(0);
  return thread.tid;
};

export const setRobustList: SyscallHandler = (args, ctx) => {
  if (args.ulong(1) !== ROBUST_LIST_HEAD_SIZE) return -EINVAL;
  const thread = ctx.process.currentThread;
  thread.robustListHead = args.ptr(0);
  thread.robustListLength = ROBUST_LIST_HEAD_SIZE;
  return 0;
};

export const getRobustList: SyscallHandler = (args, ctx) => {
  const pid = args.int(0);
  const thread = pid === 0 ? ctx.process.currentThread : ctx.process.threads.get(pid);
  if (thread === undefined) return -ESRCH;
  const a = ctx.memory.writeU64(args.ptr(1), thread.robustListHead);
  if (a < 0) return a;
  const b = ctx.memory.writeU64(args.ptr(2), thread.robustListLength);
  return Math.min(b, 0);
};

/** glibc registers rseq when the kernel has it and carries on without: refusing keeps the guest simple. */
export const rseq: SyscallHandler = () => -ENOSYS;

export const uname: SyscallHandler = (args, ctx) => {
  const address = args.ptr(0);
  const bytes = ctx.memory.viewBytes(address, UTSNAME.size, true);
  if (typeof bytes === "number") return bytes;
  bytes.fill(0);
  const encoder = new TextEncoder();
  const put = (offset: number, text: string): void => {
    encoder.encodeInto(text, bytes.subarray(offset, offset + UTSNAME.fieldLength - 1));
  };
  put(UTSNAME.sysname, UNAME.sysname);
  put(UTSNAME.nodename, ctx.nodename);
  put(UTSNAME.release, UNAME.release);
  put(UTSNAME.version, UNAME.version);
  put(UTSNAME.machine, UNAME.machine);
  put(UTSNAME.domainname, UNAME.domainname);
  return 0;
};

/** pid argument of prlimit64 & co: 0 or this process; anything else is another process we do not have. */
function isSelf(ctx: SyscallContext, pid: number): boolean {
  return pid === 0 || pid === ctx.process.pid || ctx.process.threads.has(pid);
}

/** Linux do_prlimit: validate, return old, install new (within the hard limit unless CAP_SYS_RESOURCE). */
function prlimit(ctx: SyscallContext, resource: number, newAddress: number, oldAddress: number): number {
  if (resource < 0 || resource >= RLIM_NLIMITS) return -EINVAL;
  const memory = ctx.memory;
  let next: [bigint, bigint] | null = null;
  if (newAddress !== 0) {
    const cur = memory.readU64Big(newAddress + RLIMIT.cur);
    const max = memory.readU64Big(newAddress + RLIMIT.max);
    if (typeof cur === "number") return cur;
    if (typeof max === "number") return max;
    if (cur > max) return -EINVAL;
    next = [cur, max];
  }
  const limits = ctx.process.rlimits;
  const current = limits[resource]!;
  if (next !== null) {
    if (resource === RLIMIT_NOFILE && next[1] > BigInt(NR_OPEN)) return -EPERM;
    if (next[1] > current[1] && !hasCapability(CAP_SYS_RESOURCE, ctx.process.euid)) return -EPERM;
  }
  const old = [current[0], current[1]] as const;
  if (next !== null) {
    limits[resource] = next;
    if (resource === RLIMIT_NOFILE) ctx.process.fds.limit = Number(next[0]);
  }
  if (oldAddress !== 0) {
    const a = memory.writeU64(oldAddress + RLIMIT.cur, old[0]);
    if (a < 0) return a;
    const b = memory.writeU64(oldAddress + RLIMIT.max, old[1]);
    if (b < 0) return b;
  }
  return 0;
}

export const prlimit64: SyscallHandler = (args, ctx) => {
  if (!isSelf(ctx, args.int(0))) return -ESRCH;
  return prlimit(ctx, args.uint(1), args.ptr(2), args.ptr(3));
};

export const getrlimit: SyscallHandler = (args, ctx) => {
  const address = args.ptr(1);
  if (!ctx.memory.check(address, RLIMIT.size, true)) return args.uint(0) >= RLIM_NLIMITS ? -EINVAL : -EFAULT;
  return prlimit(ctx, args.uint(0), 0, address);
};

export const setrlimit: SyscallHandler = (args, ctx) => {
  const address = args.ptr(1);
  if (!ctx.memory.check(address, RLIMIT.size, false)) return -EFAULT;
  return prlimit(ctx, args.uint(0), address, 0);
};

export const getrusage: SyscallHandler = (args, ctx) => {
  const who = args.int(0);
  if (who !== RUSAGE_SELF && who !== RUSAGE_CHILDREN && who !== RUSAGE_THREAD) return -EINVAL;
  // struct rusage is identical on Linux x86_64 and arm64: the host fills guest memory directly.
  const out = ctx.memory.hostPointer(args.ptr(1), RUSAGE.size, true);
  if (out < 0) return out;
  return ctx.host.sym.host_getrusage(who, out);
};

export const sysinfo: SyscallHandler = (args, ctx) => {
  // struct sysinfo is identical on LP64 Linux arches: the host fills guest memory directly.
  const out = ctx.memory.hostPointer(args.ptr(0), SYSINFO.size, true);
  if (out < 0) return out;
  return ctx.host.sym.host_sysinfo(out);
};

/**
 * The CPUs the guest may use: the runtime's affinity when it started (taken once: later the host thread's mask
 * follows whichever guest thread runs), nr_cpu_ids (highest CPU + 1) and the size Linux copies out, one
 * unsigned long per 64 CPUs (cpumask_size() with CPUMASK_OFFSTACK).
 */
let allowedCpus: { mask: Uint8Array; nrCpuIds: number; bytes: number } | null = null;
function guestCpus(host: Host): { mask: Uint8Array; nrCpuIds: number; bytes: number } | number {
  if (allowedCpus) return allowedCpus;
  const hostBytes = host.sym.host_sched_getaffinity(0, 1024, host.scratchAddress + SCRATCH_GENERAL);
  if (hostBytes < 0) return hostBytes;
  const mask = host.scratch.slice(SCRATCH_GENERAL, SCRATCH_GENERAL + hostBytes);
  let highest = 0;
  mask.forEach((byte, i) => {
    if (byte !== 0) highest = i * 8 + 31 - Math.clz32(byte);
  });
  const nrCpuIds = highest + 1;
  const bytes = Math.ceil(nrCpuIds / 64) * 8;
  allowedCpus = { mask: mask.slice(0, bytes), nrCpuIds, bytes };
  return allowedCpus;
}

/** The host thread runs `thread` now: give it that thread's CPU affinity (each guest thread has its own). */
export function applyThreadAffinity(host: Host, thread: ThreadState): number {
  const cpus = guestCpus(host);
  if (typeof cpus === "number") return cpus;
  const mask = thread.affinity ?? cpus.mask;
  host.scratch.set(mask, SCRATCH_GENERAL);
  return host.sym.host_sched_setaffinity(0, mask.length, host.scratchAddress + SCRATCH_GENERAL);
}

/** pid 0 is the calling thread; a tid of ours names that thread (the pid, the leader). */
const affinityTarget = (ctx: SyscallContext, pid: number): ThreadState | undefined =>
  pid === 0 ? ctx.process.currentThread : ctx.process.threads.get(pid);

export const schedGetaffinity: SyscallHandler = (args, ctx) => {
  const length = args.uint(1);
  const cpus = guestCpus(ctx.host);
  if (typeof cpus === "number") return cpus;
  if (length * 8 < cpus.nrCpuIds) return -EINVAL;
  if (length & 7) return -EINVAL;
  const copied = Math.min(length, cpus.bytes);
  const thread = affinityTarget(ctx, args.int(0));
  let mask: Uint8Array;
  if (thread !== undefined) mask = thread.affinity ?? cpus.mask;
  else {
    // Another process (guest pids are host pids): the host's answer.
    const got = ctx.host.sym.host_sched_getaffinity(
      args.int(0),
      copied,
      ctx.host.scratchAddress + SCRATCH_GENERAL,
    );
    if (got < 0) return got;
    mask = ctx.host.scratch.slice(SCRATCH_GENERAL, SCRATCH_GENERAL + got);
  }
  const w = ctx.memory.writeBytes(args.ptr(2), mask.subarray(0, copied));
  return w < 0 ? w : copied;
};

/**
 * sched_setaffinity(pid, len, mask): the thread's mask becomes `mask` within the allowed CPUs (none of them:
 * EINVAL). Bytes past `len` are zero, bytes past the kernel's cpumask are ignored (get_user_cpu_mask). The
 * host thread takes it at once when the thread is the one running, else when the scheduler switches to it.
 */
export const schedSetaffinity: SyscallHandler = (args, ctx) => {
  const cpus = guestCpus(ctx.host);
  if (typeof cpus === "number") return cpus;
  const length = Math.min(args.uint(1), cpus.bytes);
  const given = ctx.memory.viewBytes(args.ptr(2), length, false);
  if (typeof given === "number") return -EFAULT;
  const mask = new Uint8Array(cpus.bytes);
  mask.set(given);
  let any = false;
  mask.forEach((byte, i) => {
    mask[i] = byte & cpus.mask[i]!;
    if (mask[i] !== 0) any = true;
  });
  if (!any) return -EINVAL;
  const thread = affinityTarget(ctx, args.int(0));
  if (thread === undefined) {
    ctx.host.scratch.set(mask, SCRATCH_GENERAL);
    return ctx.host.sym.host_sched_setaffinity(
      args.int(0),
      mask.length,
      ctx.host.scratchAddress + SCRATCH_GENERAL,
    );
  }
  thread.affinity = mask;
  if (thread === ctx.process.currentThread) return Math.min(applyThreadAffinity(ctx.host, thread), 0);
  return 0;
};

export const schedYield: SyscallHandler = (_args, ctx) => ctx.host.sym.host_sched_yield();

export const getrandom: SyscallHandler = (args, ctx) => {
  const flags = args.uint(2);
  if (flags & ~(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE)) return -EINVAL;
  if (flags & GRND_INSECURE && flags & GRND_RANDOM) return -EINVAL;
  const buf = args.ptr(0);
  const count = Math.min(args.ulong(1), 0x7fff_ffff);
  if (count === 0) return 0;
  const length = ctx.memory.accessiblePrefix(buf, count, true);
  if (length === 0) return -EFAULT;
  return ctx.host.sym.host_getrandom(ctx.memory.hostAddress + buf, length, flags);
};

/** personality(2): returns the previous persona; 0xffffffff only asks. Stored: its flags take effect at execve. */
export const personality: SyscallHandler = (args, ctx) => {
  const previous = ctx.process.personality;
  const next = args.uint(0);
  if (next !== PERSONALITY_QUERY) ctx.process.personality = next;
  return previous;
};
