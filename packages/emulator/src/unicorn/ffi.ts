/**
 * The libunicorn symbol table (everything we call, in one place).
 *
 * Library search order: $GUEST_UNICORN_LIB, then the copy `scripts/setup.ts` extracts into the repository's
 * `.cache/unicorn/` (Debian trixie's 2.1.1 on hosts whose distribution ships 2.0.x), then the system's
 * libunicorn.so.2 / libunicorn.2.dylib.
 */

import { dlopen, FFIType } from "bun:ffi";
import { existsSync } from "node:fs";
import { join } from "node:path";

const symbols = {
  uc_version: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.u32 },
  uc_open: { args: [FFIType.u32, FFIType.u32, FFIType.ptr], returns: FFIType.i32 },
  uc_close: { args: [FFIType.ptr], returns: FFIType.i32 },
  uc_strerror: { args: [FFIType.i32], returns: FFIType.cstring },
  uc_emu_start: {
    args: [FFIType.ptr, FFIType.u64, FFIType.u64, FFIType.u64, FFIType.u64],
    returns: FFIType.i32,
  },
  uc_emu_stop: { args: [FFIType.ptr], returns: FFIType.i32 },
  uc_reg_read: { args: [FFIType.ptr, FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
  uc_context_alloc: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  uc_context_save: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  uc_context_restore: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  uc_context_free: { args: [FFIType.ptr], returns: FFIType.i32 },
  uc_reg_write: { args: [FFIType.ptr, FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
  uc_reg_read_batch: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  uc_reg_write_batch: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  uc_mem_map_ptr: {
    args: [FFIType.ptr, FFIType.u64, FFIType.u64, FFIType.u32, FFIType.ptr],
    returns: FFIType.i32,
  },
  uc_query: { args: [FFIType.ptr, FFIType.u32, FFIType.ptr], returns: FFIType.i32 },
  uc_mem_unmap: { args: [FFIType.ptr, FFIType.u64, FFIType.u64], returns: FFIType.i32 },
  // Variadic: never called from JS (the x86-64 and Apple arm64 variadic ABIs differ); handed to the C core as pointers.
  uc_ctl: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  uc_hook_add: {
    args: [FFIType.ptr, FFIType.ptr, FFIType.i32, FFIType.ptr, FFIType.ptr, FFIType.u64, FFIType.u64],
    returns: FFIType.i32,
  },
  uc_hook_del: { args: [FFIType.ptr, FFIType.u64], returns: FFIType.i32 },
} as const;

export type UnicornLibrary = ReturnType<typeof dlopen<typeof symbols>>;

function candidatePaths(): string[] {
  const fromEnv = process.env.GUEST_UNICORN_LIB;
  if (fromEnv) return [fromEnv];
  const repoCache = join(import.meta.dir, "..", "..", "..", "..", ".cache", "unicorn");
  const paths = [
    join(repoCache, "usr", "lib", "x86_64-linux-gnu", "libunicorn.so.2"),
    join(repoCache, "usr", "lib", "aarch64-linux-gnu", "libunicorn.so.2"),
  ].filter((path) => existsSync(path));
  if (process.platform === "darwin") paths.push("libunicorn.2.dylib", "/opt/homebrew/lib/libunicorn.2.dylib");
  else paths.push("libunicorn.so.2");
  return paths;
}

let cached: { lib: UnicornLibrary; path: string } | null = null;
let loadError: string | null = null;

/** Open libunicorn once; returns null (with `unicornLoadError()` saying why) when no usable library exists. */
export function loadUnicorn(): { lib: UnicornLibrary; path: string } | null {
  if (cached || loadError) return cached;
  const failures: string[] = [];
  for (const path of candidatePaths()) {
    try {
      cached = { lib: dlopen(path, symbols), path };
      return cached;
    } catch (error) {
      failures.push(`${path}: ${(error as Error).message.split("\n")[0]}`);
    }
  }
  loadError = `libunicorn 2.1 not found (${failures.join("; ")}). Run \`bun install\` (its setup step fetches it) or set GUEST_UNICORN_LIB.`;
  return null;
}

export function unicornLoadError(): string | null {
  loadUnicorn();
  return loadError;
}
