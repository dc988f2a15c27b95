/**
 * Native helpers (small C files inside the packages) are loaded from a shared object prebuilt for exactly that
 * source when one exists — `.cache/native/<name>-<hash>.so`, built by `scripts/setup.ts` with the system C
 * compiler — and compiled in-process with bun:ffi's `cc` (TinyCC) otherwise. The prebuilt path saves the
 * compile (~8 ms for the emulator core, ~25 ms for the syscall host layer) on every start.
 * The returned library must stay referenced: collecting it frees the compiled code.
 */

import { cc, dlopen, type FFIFunction } from "bun:ffi";
import { existsSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";

/** Where prebuilt helpers live: $GUEST_NATIVE_CACHE, else the repository's .cache/native. */
export function nativeCacheDir(): string {
  return process.env.GUEST_NATIVE_CACHE ?? join(import.meta.dir, "..", "..", "..", ".cache", "native");
}

/** The prebuilt shared object for this exact source text (a content hash in the name keeps stale builds out). */
export function prebuiltPathFor(sourcePath: string): string {
  const hash = Bun.hash(readFileSync(sourcePath)).toString(16).padStart(16, "0");
  const suffix = process.platform === "darwin" ? "dylib" : "so";
  return join(nativeCacheDir(), `${basename(sourcePath, ".c")}-${hash}.${suffix}`);
}

/**
 * Load a native helper: `overridePath` (an env var's value) if given, else the matching prebuilt object, else
 * compile `sourcePath` with bun:ffi's cc.
 */
export function loadNativeHelper<Fns extends Record<string, FFIFunction>>(
  sourcePath: string,
  symbols: Fns,
  overridePath?: string,
): ReturnType<typeof dlopen<Fns>> {
  if (overridePath) return dlopen(overridePath, symbols);
  const prebuilt = prebuiltPathFor(sourcePath);
  if (existsSync(prebuilt)) {
    try {
      return dlopen(prebuilt, symbols);
    } catch {
      // A prebuilt object that does not load (other libc, missing symbol) is ignored: compile instead.
    }
  }
  return cc({ source: sourcePath, symbols }) as unknown as ReturnType<typeof dlopen<Fns>>;
}
