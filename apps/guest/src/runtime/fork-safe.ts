/**
 * The guest's fork is the host's fork of this whole Bun process (see GuestProcess.forkHost). A child of fork
 * has only the forking thread, so neither JavaScriptCore nor Bun's allocator may wait for a helper thread:
 * no concurrent JIT compiler threads, no concurrent or parallel GC marking, no GC block warm-up thread, no
 * background purging in mimalloc (each of these hung or crashed children in experiments; see
 * apps/guest/README.md). Those are start-up options of the engine and the allocator,
 * read from the environment when Bun starts; `bun run guest` sets them (package.json), and a runtime started
 * any other way re-executes itself once with them (execve: same pid, same fds).
 */
import { dlopen, FFIType, ptr } from "bun:ffi";

export const FORK_SAFE_ENGINE_OPTIONS: Readonly<Record<string, string>> = {
  BUN_JSC_useConcurrentJIT: "0",
  BUN_JSC_useConcurrentGC: "0",
  BUN_JSC_numberOfGCMarkers: "1",
  // The "JSCWarmUp" thread prepares GC blocks ahead of the allocator; a child waits for it forever.
  BUN_JSC_useWarmUpMarkedBlocks: "0",
  BUN_JSC_useParallelMarkingConstraintSolver: "0",
  // mimalloc's "mi-scavenger" thread returns freed memory to the OS under mimalloc's locks: not in a child.
  MIMALLOC_PURGE_DELAY: "-1",
};

export function engineIsForkSafe(env: NodeJS.ProcessEnv = process.env): boolean {
  return Object.entries(FORK_SAFE_ENGINE_OPTIONS).every(([name, value]) => env[name] === value);
}

/** NUL-terminated C string array for execve, with the buffers kept alive by `keep`. */
function cStringArray(strings: readonly string[], keep: Uint8Array[]): BigUint64Array {
  const array = new BigUint64Array(new ArrayBuffer((strings.length + 1) * 8));
  strings.forEach((text, i) => {
    const bytes = new Uint8Array(new ArrayBuffer(Buffer.byteLength(text) + 1));
    bytes.set(Buffer.from(text));
    keep.push(bytes);
    array[i] = BigInt(ptr(bytes));
  });
  return array;
}

/**
 * Re-execute this runtime with the fork-safe engine options if they are missing. Returns only if no re-exec
 * was needed (or GUEST_NO_REEXEC=1 asks not to: then the guest's fork may hang or crash the child).
 */
export function ensureForkSafeEngine(): void {
  if (engineIsForkSafe() || process.env.GUEST_NO_REEXEC === "1" || process.platform !== "linux") return;
  const libc = dlopen(process.platform === "linux" ? "libc.so.6" : "libc.dylib", {
    execve: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  });
  const keep: Uint8Array[] = [];
  const argv = [process.execPath, ...process.execArgv, ...process.argv.slice(1)];
  const env = { ...process.env, ...FORK_SAFE_ENGINE_OPTIONS };
  const envp = Object.entries(env).map(([name, value]) => `${name}=${value}`);
  const path = new Uint8Array(new ArrayBuffer(Buffer.byteLength(process.execPath) + 1));
  path.set(Buffer.from(process.execPath));
  const argvArray = cStringArray(argv, keep);
  const envArray = cStringArray(envp, keep);
  libc.symbols.execve(ptr(path), ptr(argvArray), ptr(envArray));
  // execve returned: it failed. Carry on without fork safety rather than not at all.
  libc.close();
}
