/**
 * Synthetic /proc files of the guest process (/proc/self/maps, …): rendered from the runtime's own state at
 * open time into a private snapshot file, whose host path replaces the guest's path. Each open gets its own
 * snapshot; the previous one is unlinked (an fd still open on it keeps reading it), and close() removes all.
 */
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ProcessState } from "./process.ts";

/**
 * The directory of this process's snapshots, made on the first synthetic open. node:os (for tmpdir) is loaded
 * only then: a run that never opens a /proc file does not load it (~0.3 ms of every start).
 */
function snapshotDirectory(): string {
  const { tmpdir } = require("node:os") as typeof import("node:os");
  return mkdtempSync(join(tmpdir(), "guest-proc-"));
}

/** name under /proc/<pid>/ → its current contents, or null when this process has no such file. */
export type ProcFileProvider = (name: string) => Uint8Array | string | null;

interface Snapshots {
  provider: ProcFileProvider;
  directory: string | null;
  last: string | null;
  lastFdDirectory: string | null;
  count: number;
}

const registry = new WeakMap<ProcessState, Snapshots>();

export function registerProcFiles(process: ProcessState, provider: ProcFileProvider): void {
  registry.set(process, { provider, directory: null, last: null, lastFdDirectory: null, count: 0 });
}

/** The host path of a fresh snapshot of /proc/<self>/<name>, or null when it is not synthetic. */
export function procFileSnapshot(process: ProcessState, name: string): string | null {
  const snapshots = registry.get(process);
  if (!snapshots) return null;
  const content = snapshots.provider(name);
  if (content === null) return null;
  snapshots.directory ??= snapshotDirectory();
  const path = join(snapshots.directory, `${name}.${snapshots.count++}`);
  writeFileSync(`${path}.tmp`, content, { mode: 0o444 });
  renameSync(`${path}.tmp`, path);
  if (snapshots.last) {
    try {
      unlinkSync(snapshots.last);
    } catch {}
  }
  snapshots.last = path;
  return path;
}

/**
 * A fresh snapshot of the /proc/<self>/fd directory: one symlink per open guest fd, named by the guest's number
 * and pointing where Linux's would (a path, "pipe:[ino]", "socket:[ino]", …). Lookups of /proc/self/fd/N by
 * path never reach it (they are rewritten to the host fd); listing and *at() lookups relative to it do.
 */
export function procFdDirectorySnapshot(
  process: ProcessState,
  entries: ReadonlyArray<readonly [fd: number, target: string]>,
): string | null {
  const snapshots = registry.get(process);
  if (!snapshots) return null;
  snapshots.directory ??= snapshotDirectory();
  const path = join(snapshots.directory, `fd.${snapshots.count++}`);
  mkdirSync(path, { mode: 0o700 });
  for (const [fd, target] of entries) symlinkSync(target, join(path, String(fd)));
  if (snapshots.lastFdDirectory) rmSync(snapshots.lastFdDirectory, { recursive: true, force: true });
  snapshots.lastFdDirectory = path;
  return path;
}

export function closeProcFiles(process: ProcessState): void {
  const snapshots = registry.get(process);
  if (snapshots?.directory) rmSync(snapshots.directory, { recursive: true, force: true });
  registry.delete(process);
}
