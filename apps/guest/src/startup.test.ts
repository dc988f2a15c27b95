/**
 * What a start loads: the command's module graph, as a fresh Bun process sees it after importing command.ts.
 * Every module parsed costs start-up time (~45 µs per KB of source), so code that only some runs need is
 * loaded on demand; these tests keep it that way.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";

const COMMAND = join(import.meta.dir, "command.ts");
const REPO = join(import.meta.dir, "..", "..", "..");

/** The source modules (repo-relative) a fresh process has loaded after `await import(command.ts)`. */
function modulesLoadedByCommand(): string[] {
  const script = `await import(${JSON.stringify(COMMAND)}); console.log(JSON.stringify(Object.keys(require.cache)));`;
  const child = Bun.spawnSync([process.execPath, "-e", script], { cwd: REPO, stderr: "pipe" });
  expect(child.stderr.toString()).toBe("");
  expect(child.exitCode).toBe(0);
  const loaded = JSON.parse(child.stdout.toString()) as string[];
  return loaded.filter((path) => path.startsWith(`${REPO}/`)).map((path) => path.slice(REPO.length + 1));
}

test("the command's graph holds the emulator path: runtime, syscalls, loader, emulator", () => {
  const loaded = modulesLoadedByCommand();
  for (const module of [
    "apps/guest/src/runtime/guest-process.ts",
    "packages/emulator/src/emulator.ts",
    "packages/syscalls/src/dispatch.ts",
    "packages/loader/src/elf.ts",
    "packages/hvf-bindings/src/backend.ts",
  ])
    expect(loaded).toContain(module);
});

test("the Hypervisor.framework implementation is not loaded until the hvf backend is chosen", () => {
  const hvf = modulesLoadedByCommand().filter((path) => path.startsWith("packages/hvf-bindings/src/"));
  // signing.ts holds the signed runnable's path the CLI checks before choosing a backend.
  expect(hvf.sort()).toEqual([
    "packages/hvf-bindings/src/backend.ts",
    "packages/hvf-bindings/src/hvf/signing.ts",
    "packages/hvf-bindings/src/index.ts",
    "packages/hvf-bindings/src/native.ts",
  ]);
});

test("the trace's formatters are not loaded by a start without --trace", () => {
  const trace = modulesLoadedByCommand().filter((path) => path.startsWith("packages/syscalls/src/trace/"));
  expect(trace).toEqual([]);
});
