/**
 * Test and bench helpers: a guest memory over a plain Uint8Array (its host address from bun:ffi), a
 * dispatcher around it, and a `call(name, ...args)` that fills an X0..X8 frame. Not part of the API.
 */
import { ptr } from "bun:ffi";
import { NR, type SyscallName } from "./abi/syscalls.ts";
import type { SyscallResult } from "./context.ts";
import { createDispatcher, type Dispatcher } from "./dispatch.ts";
import { GuestMemory } from "./memory.ts";
import { ProcessState } from "./process.ts";

export const PAGE = 4096;

export interface FakeGuest {
  bytes: Uint8Array;
  memory: GuestMemory;
  process: ProcessState;
  dispatcher: Dispatcher;
  /** Pages (by index) that are unmapped (no access at all). Page 0 is unmapped. */
  unmapped: Set<number>;
  /** Pages that are read-only. */
  readonly: Set<number>;
  frame: Uint32Array;
  call(name: SyscallName | number, ...args: Array<number | bigint>): SyscallResult;
  /** Bump-allocates guest bytes (16-byte aligned) from the heap area; returns the guest address. */
  alloc(length: number): number;
  /** Allocates and writes a NUL-terminated string. */
  cstr(text: string): number;
  text(address: number, length: number): string;
  close(): void;
}

export function createFakeGuest(
  options: { size?: number; exePath?: string; cwd?: string; trace?: (line: string) => void } = {},
): FakeGuest {
  const size = options.size ?? 1 << 20;
  const bytes = new Uint8Array(size);
  const unmapped = new Set<number>([0]);
  const readonlyPages = new Set<number>();
  const memory = new GuestMemory({
    bytes,
    hostAddress: ptr(bytes),
    isAccessible(address, length, write) {
      const last = Math.floor((address + length - 1) / PAGE);
      for (let page = Math.floor(address / PAGE); page <= last; page++) {
        if (unmapped.has(page)) return false;
        if (write && readonlyPages.has(page)) return false;
      }
      return true;
    },
  });
  const process = new ProcessState({
    exePath: options.exePath ?? "/usr/local/bin/guest-program",
    cwd: options.cwd,
  });
  const dispatcher = createDispatcher({ memory, process, trace: options.trace });
  const frame = new Uint32Array(18);
  let heap = PAGE;
  const guest: FakeGuest = {
    bytes,
    memory,
    process,
    dispatcher,
    unmapped,
    readonly: readonlyPages,
    frame,
    call(name, ...args) {
      frame.fill(0);
      for (let i = 0; i < args.length; i++) {
        const value = BigInt.asUintN(64, BigInt(args[i]!));
        frame[2 * i] = Number(value & 0xffff_ffffn);
        frame[2 * i + 1] = Number(value >> 32n);
      }
      frame[16] = typeof name === "number" ? name : NR[name];
      return dispatcher.dispatch(frame);
    },
    alloc(length) {
      const address = heap;
      heap += Math.ceil(length / 16) * 16;
      if (heap > size) throw new Error("fake guest heap exhausted");
      bytes.fill(0, address, address + length);
      return address;
    },
    cstr(text) {
      const data = new TextEncoder().encode(`${text}\0`);
      const address = guest.alloc(data.length);
      bytes.set(data, address);
      return address;
    },
    text(address, length) {
      return new TextDecoder().decode(bytes.subarray(address, address + length));
    },
    close() {
      process.closeAll();
    },
  };
  return guest;
}
