import { afterEach, describe, expect, test } from "bun:test";
import { sharedHost } from "../host/host.ts";
import { CAUGHT_HOST_SIGNALS, HostSignalBridge } from "./host-signals.ts";

const SIGUSR1 = 10;
const SIGUSR2 = 12;
const SIGSEGV = 11;
const SIGPIPE = 13;

describe("host signal bridge", () => {
  const bridge = new HostSignalBridge(sharedHost());
  afterEach(() => bridge.uninstall());

  test("catches what other processes send, leaves the runtime's own faults and SIGPIPE alone", () => {
    const caught = (signal: number) => (CAUGHT_HOST_SIGNALS >> BigInt(signal - 1)) & 1n;
    expect(caught(SIGUSR1)).toBe(1n);
    expect(caught(17)).toBe(1n); // SIGCHLD
    expect(caught(SIGSEGV)).toBe(0n);
    expect(caught(SIGPIPE)).toBe(0n);
    expect(caught(9)).toBe(0n);
  });

  test("records a signal with its sender, once, until taken", () => {
    expect(bridge.install()).toBe(0);
    expect(bridge.recorded).toBe(false);
    process.kill(process.pid, "SIGUSR1");
    process.kill(process.pid, "SIGUSR2");
    expect(bridge.recorded).toBe(true);
    const taken = bridge.take();
    expect(taken.map((record) => record.signal)).toEqual([SIGUSR1, SIGUSR2]);
    expect(taken[0]!.pid).toBe(process.pid);
    expect(taken[0]!.code).toBe(0); // SI_USER
    expect(bridge.recorded).toBe(false);
    expect(bridge.take()).toEqual([]);
    bridge.uninstall();
    expect(bridge.active).toBe(false);
  });
});
