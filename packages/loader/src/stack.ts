/**
 * The initial process stack, laid out exactly as Linux 6.18 arm64 does it (fs/exec.c copy_strings +
 * fs/binfmt_elf.c create_elf_tables, without stack randomisation). From the top down:
 *
 *   stackTop - 8 .. stackTop      8 zero bytes (bprm->p starts one pointer below the top)
 *   execfn string                 the filename passed to execve (AT_EXECFN points here)
 *   envp strings                  envp[envc-1] highest … envp[0] lowest
 *   argv strings                  argv[argc-1] highest … argv[0] lowest (= mm->arg_start)
 *   (align down to 16)            arch_align_stack without its random offset
 *   platform string "aarch64\0"   AT_PLATFORM
 *   16 random bytes               AT_RANDOM
 *   (gap)                         whatever STACK_ROUND leaves
 *   auxv pairs … AT_NULL
 *   NULL, envp[], NULL, argv[], argc   ← sp (16-byte aligned)
 *
 * auxv order (Linux: ARCH_DLINFO first, then the generic list):
 *   AT_SYSINFO_EHDR (when a vDSO is given), AT_MINSIGSTKSZ (AT_IGNORE when 0), AT_HWCAP, AT_PAGESZ,
 *   AT_CLKTCK, AT_PHDR, AT_PHENT, AT_PHNUM, AT_BASE, AT_FLAGS, AT_ENTRY, AT_UID, AT_EUID, AT_GID, AT_EGID,
 *   AT_SECURE, AT_RANDOM, AT_HWCAP2, AT_HWCAP3, AT_EXECFN, AT_PLATFORM, [AT_EXECFD], [AT_RSEQ_FEATURE_SIZE,
 *   AT_RSEQ_ALIGN], AT_NULL.
 */
import {
  ARG_MAX,
  AT,
  DEFAULT_MINSIGSTKSZ,
  E2BIG,
  EFAULT,
  EINVAL,
  LINUX_ARM64_PAGE_SIZE,
  LINUX_ARM64_PLATFORM,
  LINUX_CLOCKS_PER_SEC,
  MAX_ARG_STRINGS,
  MAX_ARG_STRLEN,
  STK_LIM,
} from "./auxv-abi.ts";
import { hex, StackError } from "./errors.ts";

export type StackString = string | Uint8Array;

export interface InitialStackOptions {
  /** guest memory; index = guest address */
  readonly memory: Uint8Array;
  /** one past the highest stack address (the top of the stack mapping) */
  readonly stackTop: number;
  readonly argv: readonly StackString[];
  readonly envp: readonly StackString[];
  /** the filename given to execve (AT_EXECFN) */
  readonly execfn: StackString;
  /** AT_PHDR / AT_PHENT / AT_PHNUM / AT_ENTRY: from the load plan */
  readonly phdr: number;
  readonly phent: number;
  readonly phnum: number;
  readonly entry: number;
  /** AT_BASE: interpreter base, 0 for static programs */
  readonly base?: number;
  readonly pagesz?: number;
  readonly uid?: number;
  readonly euid?: number;
  readonly gid?: number;
  readonly egid?: number;
  readonly secure?: boolean | number;
  /** AT_FLAGS */
  readonly flags?: number;
  readonly hwcap?: bigint | number;
  readonly hwcap2?: bigint | number;
  /** AT_HWCAP3 (Linux >= 6.16 arm64 always reports it); null omits the entry */
  readonly hwcap3?: bigint | number | null;
  readonly clktck?: number;
  readonly platform?: string;
  /** 16 bytes for AT_RANDOM */
  readonly random: Uint8Array;
  /** AT_SYSINFO_EHDR: the vDSO's address; omitted when undefined */
  readonly sysinfoEhdr?: number;
  /** AT_MINSIGSTKSZ (default 5120); 0 emits AT_IGNORE as Linux does */
  readonly minsigstksz?: number;
  /** AT_EXECFD (binfmt_misc open-binary); omitted when undefined */
  readonly execfd?: number;
  /** AT_RSEQ_FEATURE_SIZE / AT_RSEQ_ALIGN, only when the runtime implements rseq(2) */
  readonly rseq?: { readonly featureSize: number; readonly align: number };
  /** RLIMIT_STACK soft limit (default 8 MiB): bounds the argument area like Linux bprm_stack_limits() */
  readonly stackRlimit?: number;
  /** lowest address the stack may use (default stackTop - stackRlimit) */
  readonly stackBottom?: number;
}

export interface InitialStack {
  /** initial SP: 16-byte aligned, pointing at argc */
  readonly sp: number;
  readonly argc: number;
  readonly argvAddress: number;
  readonly envpAddress: number;
  readonly auxvAddress: number;
  readonly execfnAddress: number;
  readonly platformAddress: number;
  readonly randomAddress: number;
  /** mm->arg_start/arg_end/env_start/env_end (for /proc/self/cmdline and /proc/self/environ) */
  readonly argStart: number;
  readonly argEnd: number;
  readonly envStart: number;
  readonly envEnd: number;
  /** the auxiliary vector as written, AT_NULL included (for /proc/self/auxv and PR_GET_AUXV) */
  readonly auxv: ReadonlyArray<readonly [number, bigint]>;
}

const encoder = new TextEncoder();

function stringBytes(s: StackString, what: string): number {
  if (typeof s === "string") {
    if (s.includes("\0")) throw new StackError("EINVAL", EINVAL, `${what} contains a NUL character`);
    return Buffer.byteLength(s, "utf8");
  }
  if (s.indexOf(0) >= 0) throw new StackError("EINVAL", EINVAL, `${what} contains a NUL byte`);
  return s.length;
}

function writeString(memory: Uint8Array, at: number, s: StackString, length: number): void {
  if (typeof s === "string") encoder.encodeInto(s, memory.subarray(at, at + length));
  else memory.set(s, at);
  memory[at + length] = 0;
}

const toBig = (v: bigint | number): bigint => (typeof v === "bigint" ? v : BigInt(v));

export function buildInitialStack(options: InitialStackOptions): InitialStack {
  const { memory, stackTop, envp, execfn } = options;
  // Linux >= 5.18 turns an empty argv into { "" } so argv[0] always exists.
  const argv = options.argv.length === 0 ? [""] : options.argv;
  const argc = argv.length;
  const envc = envp.length;
  if (options.random.length !== 16) {
    throw new StackError("EINVAL", EINVAL, `AT_RANDOM needs 16 bytes, got ${options.random.length}`);
  }
  if (!Number.isSafeInteger(stackTop) || stackTop <= 0 || stackTop > memory.length || stackTop % 16 !== 0) {
    throw new StackError(
      "EFAULT",
      EFAULT,
      `stack top ${hex(stackTop)} must be 16-byte aligned and inside guest memory (${hex(memory.length)} bytes)`,
    );
  }
  if (argc > MAX_ARG_STRINGS || envc > MAX_ARG_STRINGS) {
    throw new StackError("E2BIG", E2BIG, "argument list too long");
  }

  // bprm_stack_limits(): the strings plus one pointer per string may use a quarter of the stack rlimit
  // (capped at 3/4 of 8 MiB, never below ARG_MAX).
  const rlimit = options.stackRlimit ?? STK_LIM;
  let limit = Math.max(Math.min(Math.floor((STK_LIM / 4) * 3), Math.floor(rlimit / 4)), ARG_MAX);
  const pointerBytes = (argc + envc) * 8;
  if (limit <= pointerBytes) throw new StackError("E2BIG", E2BIG, "argument list too long");
  limit -= pointerBytes;
  const stringsTop = stackTop - 8;
  const argMin = stringsTop - limit;

  // Measure everything before writing anything.
  const execfnLength = stringBytes(execfn, "execfn");
  const envLengths = new Array<number>(envc);
  const argLengths = new Array<number>(argc);
  let total = execfnLength + 1;
  const tooLong = (len: number) => len + 1 > MAX_ARG_STRLEN;
  if (tooLong(execfnLength)) throw new StackError("E2BIG", E2BIG, "argument list too long (execfn)");
  for (let i = 0; i < envc; i++) {
    const len = stringBytes(envp[i]!, `envp[${i}]`);
    if (tooLong(len)) throw new StackError("E2BIG", E2BIG, `argument list too long (envp[${i}])`);
    envLengths[i] = len;
    total += len + 1;
  }
  for (let i = 0; i < argc; i++) {
    const len = stringBytes(argv[i]!, `argv[${i}]`);
    if (tooLong(len)) throw new StackError("E2BIG", E2BIG, `argument list too long (argv[${i}])`);
    argLengths[i] = len;
    total += len + 1;
  }
  if (stringsTop - total < argMin) {
    throw new StackError(
      "E2BIG",
      E2BIG,
      `argument list too long (${total} bytes of strings, limit ${limit} with a ${rlimit}-byte stack rlimit)`,
    );
  }

  const platform = options.platform ?? LINUX_ARM64_PLATFORM;
  const platformLength = stringBytes(platform, "platform");
  const auxv = buildAuxv(options, 0, 0, 0); // addresses patched below; the count is what matters now
  const items = argc + 1 + (envc + 1) + 1;
  const stringsBottom = stringsTop - total;
  // arch_align_stack() without its random offset: round down to 16 (numbers, not int32 bit ops: addresses exceed 2^31).
  const platformAddress = Math.floor(stringsBottom / 16) * 16 - (platformLength + 1);
  const randomAddress = platformAddress - 16;
  const sp = Math.floor((randomAddress - auxv.length * 16 - items * 8) / 16) * 16;
  const stackBottom = options.stackBottom ?? stackTop - rlimit;
  if (sp < Math.max(stackBottom, 0)) {
    throw new StackError(
      "EFAULT",
      EFAULT,
      `initial stack at ${hex(sp)} falls below the stack bottom ${hex(stackBottom)}`,
    );
  }

  // Fresh stack pages read as zero in Linux; memory may be recycled.
  memory.fill(0, sp, stackTop);

  let p = stringsTop;
  p -= execfnLength + 1;
  const execfnAddress = p;
  writeString(memory, p, execfn, execfnLength);
  const envAddresses = new Array<number>(envc);
  for (let i = envc - 1; i >= 0; i--) {
    p -= envLengths[i]! + 1;
    envAddresses[i] = p;
    writeString(memory, p, envp[i]!, envLengths[i]!);
  }
  const envStart = envc > 0 ? envAddresses[0]! : p;
  const argAddresses = new Array<number>(argc);
  for (let i = argc - 1; i >= 0; i--) {
    p -= argLengths[i]! + 1;
    argAddresses[i] = p;
    writeString(memory, p, argv[i]!, argLengths[i]!);
  }
  const argStart = p;
  writeString(memory, platformAddress, platform, platformLength);
  memory.set(options.random, randomAddress);

  const view = new DataView(memory.buffer, memory.byteOffset, memory.byteLength);
  const put = (at: number, value: number) => {
    view.setUint32(at, value >>> 0, true);
    view.setUint32(at + 4, Math.floor(value / 0x1_0000_0000), true);
  };
  let q = sp;
  put(q, argc);
  q += 8;
  const argvAddress = q;
  for (let i = 0; i < argc; i++, q += 8) put(q, argAddresses[i]!);
  q += 8; // NULL (already zero)
  const envpAddress = q;
  for (let i = 0; i < envc; i++, q += 8) put(q, envAddresses[i]!);
  q += 8;
  const auxvAddress = q;
  const finalAuxv = buildAuxv(options, randomAddress, execfnAddress, platformAddress);
  for (const [type, value] of finalAuxv) {
    put(q, type);
    view.setBigUint64(q + 8, value, true);
    q += 16;
  }

  return {
    sp,
    argc,
    argvAddress,
    envpAddress,
    auxvAddress,
    execfnAddress,
    platformAddress,
    randomAddress,
    argStart,
    argEnd: envStart,
    envStart,
    envEnd: execfnAddress,
    auxv: finalAuxv,
  };
}

function buildAuxv(
  o: InitialStackOptions,
  randomAddress: number,
  execfnAddress: number,
  platformAddress: number,
): Array<readonly [number, bigint]> {
  const entries: Array<readonly [number, bigint]> = [];
  const add = (type: number, value: bigint | number) => entries.push([type, toBig(value)] as const);
  // ARCH_DLINFO (arm64)
  if (o.sysinfoEhdr !== undefined) add(AT.SYSINFO_EHDR, o.sysinfoEhdr);
  const minsigstksz = o.minsigstksz ?? DEFAULT_MINSIGSTKSZ;
  if (minsigstksz !== 0) add(AT.MINSIGSTKSZ, minsigstksz);
  else add(AT.IGNORE, 0);
  // create_elf_tables()
  add(AT.HWCAP, o.hwcap ?? 0n);
  add(AT.PAGESZ, o.pagesz ?? LINUX_ARM64_PAGE_SIZE);
  add(AT.CLKTCK, o.clktck ?? LINUX_CLOCKS_PER_SEC);
  add(AT.PHDR, o.phdr);
  add(AT.PHENT, o.phent);
  add(AT.PHNUM, o.phnum);
  add(AT.BASE, o.base ?? 0);
  add(AT.FLAGS, o.flags ?? 0);
  add(AT.ENTRY, o.entry);
  add(AT.UID, o.uid ?? 0);
  add(AT.EUID, o.euid ?? o.uid ?? 0);
  add(AT.GID, o.gid ?? 0);
  add(AT.EGID, o.egid ?? o.gid ?? 0);
  add(AT.SECURE, o.secure === true ? 1 : o.secure === false || o.secure === undefined ? 0 : o.secure);
  add(AT.RANDOM, randomAddress);
  add(AT.HWCAP2, o.hwcap2 ?? 0n);
  const hwcap3 = o.hwcap3 === undefined ? 0n : o.hwcap3;
  if (hwcap3 !== null) add(AT.HWCAP3, hwcap3);
  add(AT.EXECFN, execfnAddress);
  add(AT.PLATFORM, platformAddress);
  if (o.execfd !== undefined) add(AT.EXECFD, o.execfd);
  if (o.rseq !== undefined) {
    add(AT.RSEQ_FEATURE_SIZE, o.rseq.featureSize);
    add(AT.RSEQ_ALIGN, o.rseq.align);
  }
  add(AT.NULL, 0);
  return entries;
}
