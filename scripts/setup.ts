#!/usr/bin/env bun
/**
 * Makes this machine able to run guests (and, with --tests, the test suite). Run by `bun install`
 * (postinstall) and by `bun run test`. Idempotent and quick when everything is already there.
 *
 * - macOS on Apple Silicon: the runtime needs nothing (Hypervisor.framework ships with the OS).
 * - Linux: the emulator backend needs Unicorn 2.1. A system libunicorn >= 2.1 is used as it is; otherwise
 *   Debian trixie's libunicorn2t64 (only dependency: libc6 >= 2.34) is fetched into .cache/unicorn through
 *   a private apt configuration — nothing on the system is upgraded or reconfigured.
 * - --tests: qemu-user-static (the oracle), gcc-aarch64-linux-gnu and libc6-dev-arm64-cross (guest test
 *   programs), installed with apt-get when running as root, otherwise the exact command is printed.
 */
import { existsSync, mkdirSync, renameSync } from "node:fs";
import { dirname, join } from "node:path";
import { consola } from "consola";
import {
  aptInstall,
  CACHE_DIR,
  canUseApt,
  fetchDebianPackage,
  hostDebianArch,
  REPO_ROOT,
  run,
} from "./lib/apt.ts";

const UNICORN_SUITE = "trixie";
const UNICORN_PACKAGE = "libunicorn2t64";

async function unicornStatus(): Promise<{ available: boolean; reason?: string }> {
  // Imported lazily so `bun install` never fails on a package that is still being linked.
  const { emulatorAvailability } = await import("@guest/emulator");
  return emulatorAvailability();
}

async function ensureUnicorn(): Promise<boolean> {
  const forceDownload = process.env.GUEST_SETUP_FETCH_UNICORN === "1";
  const status = await unicornStatus();
  if (status.available && !forceDownload) {
    consola.success("Unicorn 2.1 is available for the emulator backend");
    return true;
  }
  if (!forceDownload) consola.info(status.reason);
  const arch = hostDebianArch();
  if (!arch || !canUseApt()) {
    consola.error(
      "Install Unicorn 2.1 or newer (libunicorn.so.2), e.g. Debian trixie's libunicorn2t64 or `brew install unicorn`, or point GUEST_UNICORN_LIB at it.",
    );
    return false;
  }
  const destination = join(CACHE_DIR, "unicorn");
  if (!fetchDebianPackage(UNICORN_PACKAGE, UNICORN_SUITE, arch, destination)) {
    consola.error(
      `Could not fetch ${UNICORN_PACKAGE} from Debian ${UNICORN_SUITE}. Alternatives: apt-get install ${UNICORN_PACKAGE} from ${UNICORN_SUITE}, or set GUEST_UNICORN_LIB to a libunicorn.so.2 of version 2.1+.`,
    );
    return false;
  }
  const library = join(
    destination,
    "usr",
    "lib",
    `${arch === "arm64" ? "aarch64" : "x86_64"}-linux-gnu`,
    "libunicorn.so.2",
  );
  if (!existsSync(library)) {
    consola.error(`${UNICORN_PACKAGE} unpacked, but ${library} is missing`);
    return false;
  }
  consola.success(`Unicorn 2.1 ready at ${library}`);
  return true;
}

/** The C helpers loaded at start-up; prebuilt here so each run skips an in-process compile. */
const NATIVE_HELPERS = ["packages/emulator/src/core/core.c", "packages/syscalls/src/host/host.c"];

/**
 * Compile the native helpers with the system C compiler into .cache/native (named by content hash, so an
 * edited source is rebuilt and a stale object is never loaded). Optional: without a compiler the runtime
 * compiles them in-process with bun:ffi's cc, a few tens of milliseconds slower per start.
 */
async function buildNativeHelpers(): Promise<void> {
  const compiler = ["cc", "gcc", "clang"].find((name) => Bun.which(name));
  if (!compiler) {
    consola.info("No C compiler found: native helpers will be compiled at run time (slower start-up)");
    return;
  }
  const { prebuiltPathFor } = await import("@guest/hvf-bindings");
  for (const relative of NATIVE_HELPERS) {
    const source = join(REPO_ROOT, relative);
    const output = prebuiltPathFor(source);
    if (existsSync(output)) continue;
    mkdirSync(dirname(output), { recursive: true });
    const temporary = `${output}.${process.pid}.tmp`;
    const result = run([compiler, "-O2", "-shared", "-fPIC", "-o", temporary, source]);
    if (!result.ok) {
      consola.warn(
        `${compiler} could not build ${relative} (run-time compile will be used):\n${result.output.slice(-1500)}`,
      );
      continue;
    }
    renameSync(temporary, output);
    consola.success(`Prebuilt ${relative}`);
  }
}

function ensureTestTools(): boolean {
  if (!canUseApt()) {
    const missing = ["qemu-aarch64-static", "aarch64-linux-gnu-gcc"].filter((tool) => !Bun.which(tool));
    if (missing.length > 0) {
      consola.warn(
        `Tests need ${missing.join(" and ")} (Debian/Ubuntu: qemu-user-static, gcc-aarch64-linux-gnu, libc6-dev-arm64-cross).`,
      );
      return false;
    }
    return true;
  }
  return aptInstall(
    ["qemu-user-static", "gcc-aarch64-linux-gnu", "libc6-dev-arm64-cross", "gcc", "libc6-dev"],
    "the test suite",
  );
}

export async function setup(options: { tests: boolean }): Promise<boolean> {
  let ok = true;
  if (process.platform === "darwin" && process.arch === "arm64") {
    consola.success(
      "macOS on Apple Silicon: the hvf backend needs nothing more (the emulator backend needs `brew install unicorn`)",
    );
  } else if (process.platform === "linux") {
    ok = (await ensureUnicorn()) && ok;
  } else {
    consola.warn(
      `${process.platform}-${process.arch}: only the emulator backend can work here; install Unicorn 2.1 and set GUEST_UNICORN_LIB`,
    );
  }
  if (options.tests) ok = ensureTestTools() && ok;
  await buildNativeHelpers();
  return ok;
}

if (import.meta.main) {
  const tests = process.argv.includes("--tests");
  const ok = await setup({ tests });
  // `bun install` must not fail on a machine that only wants to read the code; `bun run test` must.
  if (!ok && (tests || process.argv.includes("--strict"))) process.exit(1);
}
