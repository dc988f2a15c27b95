import { describe, expect, test } from "bun:test";
import { ProcessState, ThreadState } from "../process.ts";
import { registerForkWarmUp, runForkWarmUp, warmForkChildPath } from "./fork-warmup.ts";

describe("fork warm-up", () => {
  test("every step runs on its scratch objects (a failing step means children compile that code again)", () => {
    expect(runForkWarmUp()).toEqual([]);
  });

  test("the scratch process is what ProcessState.afterFork expects: afterFork keeps exactly one thread", () => {
    // The same receiver shape the warm-up builds, checked for the effect afterFork must have on it.
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
    process.afterFork(1);
    expect(process.pid).toBe(2);
    expect(process.ppid).toBe(1);
    expect([...process.threads.keys()]).toEqual([2]);
    expect(thread.tid).toBe(2);
  });

  test("warmForkChildPath can be called before every fork (it runs once)", () => {
    warmForkChildPath();
    warmForkChildPath();
    expect(runForkWarmUp()).toEqual([]);
  });
});

describe("registered warm-ups", () => {
  test("a registered warm-up runs, and a failing one is reported by name without stopping the others", () => {
    const ran: string[] = [];
    registerForkWarmUp({ name: "test: runs", run: () => ran.push("runs") });
    registerForkWarmUp({
      name: "test: fails",
      run: () => {
        throw new Error("scratch object out of date");
      },
    });
    registerForkWarmUp({ name: "test: runs after", run: () => ran.push("after") });
    expect(runForkWarmUp()).toEqual(["test: fails"]);
    expect(ran).toEqual(["runs", "after"]);
  });
});
