/**
 * A forked child is a copy of the parent's JavaScript engine: every function the parent has already run is
 * compiled in the copy, but a function only children run is parsed and compiled from scratch in every child,
 * and that compilation writes to hundreds of pages the child shares copy-on-write with its parent (measured
 * on fork_wait: the dozen functions of a child's fork-return and exit path cost ~360 page faults and ~0.7 ms
 * per child, a sixth of a fork+exit+wait cycle). JavaScriptCore keeps one compiled body per function,
 * whatever object it runs on, so before its first fork the parent runs that code once on scratch objects
 * (never on the real process, memory or address space): the children then start with it compiled.
 *
 * Only code with no effect outside the scratch objects is run here; a function that fails on a scratch
 * object (its shape changed) only loses the warm-up, never the fork.
 */

import { SyscallArgs } from "../context.ts";
import { exit, exitGroup } from "../handlers/process.ts";
import type { Host } from "../host/host.ts";
import { GuestMemory } from "../memory.ts";
import { AddressSpace } from "../mm/address-space.ts";
import { ProcessState, ThreadState } from "../process.ts";
import { exitRobustList } from "./robust.ts";

let warmed = false;
/**
 * JavaScriptCore sets up some of a call site's data (call link info, profile predictions) only when the site
 * runs a second time, and more later: three rounds left the fewest copy-on-write faults in children (fork_wait:
 * ~25 fewer per cycle than one round; ten rounds no fewer than three).
 */
const WARM_UP_ROUNDS = 3;

/** A warm-up: runs code a forked child will run, on scratch objects only (see the file comment). */
export interface ForkWarmUp {
  name: string;
  run(): void;
}

const warmUps: ForkWarmUp[] = [];

/**
 * Add a warm-up for code of yours that forked children run and the parent may never have run (an exec path, a
 * child-only cleanup). `run` must touch scratch objects only: it runs in the parent, before its first fork.
 */
export function registerForkWarmUp(warmUp: ForkWarmUp): void {
  warmUps.push(warmUp);
}

/** Once per process tree: compile, in the parent, the code each forked child runs (see the file comment). */
export function warmForkChildPath(): void {
  if (warmed) return;
  warmed = true;
  for (let round = 0; round < WARM_UP_ROUNDS; round++) runForkWarmUp();
}

/**
 * Every warm-up, each on its own scratch objects. Returns the names of those that failed (a scratch object no
 * longer fits the code it stands in for: that code is then compiled in each child again).
 */
export function runForkWarmUp(): string[] {
  const failed: string[] = [];
  for (const warmUp of warmUps) {
    try {
      warmUp.run();
    } catch {
      failed.push(warmUp.name);
    }
  }
  return failed;
}

registerForkWarmUp({
  // The exit path's robust-list walk over an empty list (head.next == head), as glibc registers for every
  // thread, with the guest-memory accessors it uses; the write is CLONE_CHILD_SETTID's.
  name: "robust list",
  run() {
    const memory = new GuestMemory({
      bytes: new Uint8Array(new ArrayBuffer(64)),
      hostAddress: 0,
      isAccessible: () => true,
    });
    const head = 16;
    memory.writeU32(head, head);
    const thread = new ThreadState(1);
    thread.robustListHead = head;
    exitRobustList({ memory, host: { sym: {} } as unknown as Host, wakeLocal: () => 0 }, thread);
  },
});

registerForkWarmUp({
  // The exit handlers (their results are plain objects).
  name: "exit handlers",
  run() {
    const args = new SyscallArgs(new Uint32Array(18));
    exit(args, undefined as never);
    exitGroup(args, undefined as never);
  },
});

/**
 * A scratch process for ProcessState.afterFork: pid 1 with threads 1 (current) and 3, its own host stub whose
 * getpid answers 2 (exported for the test that checks afterFork's effect on exactly this shape).
 */
export function scratchProcess(): ProcessState {
  const process = Object.create(ProcessState.prototype) as ProcessState;
  const thread = new ThreadState(1);
  Object.assign(process, {
    host: { sym: { host_getpid: () => 2 } },
    threads: new Map([
      [1, thread],
      [3, new ThreadState(3)],
    ]),
    currentThread: thread,
    pid: 1,
    ppid: 0,
    sharedPending: 0n,
  });
  return process;
}

registerForkWarmUp({
  name: "ProcessState.afterFork",
  run() {
    scratchProcess().afterFork(1);
  },
});

registerForkWarmUp({
  // AddressSpace.afterForkInChild on a scratch space, with what prepareFork usually finds: nothing to drop or
  // wipe (the scan itself runs in the parent, in prepareFork).
  name: "AddressSpace.afterForkInChild",
  run() {
    const space = Object.create(AddressSpace.prototype) as AddressSpace;
    Object.assign(space, { tables: { hasPendingInvalidations: false }, pendingCode: [] });
    space.afterForkInChild({ dropped: [], wiped: [] });
  },
});
