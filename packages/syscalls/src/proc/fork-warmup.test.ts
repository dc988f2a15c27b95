import { describe, expect, test } from "bun:test";
import { registerForkWarmUp, runForkWarmUp, scratchProcess, warmForkChildPath } from "./fork-warmup.ts";

describe("fork warm-up", () => {
  test("every step runs on its scratch objects (a failing step means children compile that code again)", () => {
    expect(runForkWarmUp()).toEqual([]);
  });

  test("the scratch process is what ProcessState.afterFork expects: afterFork keeps exactly one thread", () => {
    // The receiver the warm-up builds, checked for the effect afterFork must have on it.
    const process = scratchProcess();
    const thread = process.currentThread;
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
