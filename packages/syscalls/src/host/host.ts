/**
 * The host layer as the handlers use it: the shim's symbols plus its static scratch area, carved into
 * fixed slots so no call allocates. Slots: a general area (host iovec arrays, structures on their way
 * between layouts) and two path slots (for paths the handlers build or rewrite, e.g. /proc/self/fd/N).
 */

import { type Pointer, toArrayBuffer } from "bun:ffi";
import { ENAMETOOLONG } from "../abi/errno.ts";
import { AT_EMPTY_PATH } from "../abi/fcntl.ts";
import { STATX_BASIC_STATS } from "../abi/structs.ts";
import { type HostSymbols, loadHost } from "./ffi.ts";

export const SCRATCH_GENERAL = 0;
export const SCRATCH_GENERAL_SIZE = 0x10000;
export const SCRATCH_PATH_A = 0x10000;
export const SCRATCH_PATH_B = 0x18000;
export const SCRATCH_PATH_SIZE = 0x8000;

const encoder = new TextEncoder();

export class Host {
  readonly sym: HostSymbols;
  /** Host address of the scratch area. */
  readonly scratchAddress: number;
  readonly scratch: Uint8Array;
  readonly scratchView: DataView;

  constructor(sym: HostSymbols = loadHost()) {
    this.sym = sym;
    this.scratchAddress = sym.host_scratch();
    const size = sym.host_scratch_size();
    this.scratch = new Uint8Array(toArrayBuffer(this.scratchAddress as Pointer, 0, size));
    this.scratchView = new DataView(this.scratch.buffer, this.scratch.byteOffset, this.scratch.byteLength);
  }

  /**
   * A struct timespec of `ms` milliseconds (negative: zero) written into scratch at `offset`; returns its host
   * address, for the host calls that take a timeout.
   */
  timespec(offset: number, ms: number): number {
    const whole = Math.max(0, ms);
    const seconds = Math.floor(whole / 1000);
    this.scratchView.setBigInt64(offset, BigInt(seconds), true);
    this.scratchView.setBigInt64(offset + 8, BigInt(Math.floor((whole - seconds * 1000) * 1e6)), true);
    return this.scratchAddress + offset;
  }

  /** Writes `text` + NUL into a path slot and returns its host address (-ENAMETOOLONG past the slot). */
  cString(text: string, slot: number = SCRATCH_PATH_A): number {
    const { written } = encoder.encodeInto(text, this.scratch.subarray(slot, slot + SCRATCH_PATH_SIZE - 1));
    if (written === undefined || written >= SCRATCH_PATH_SIZE - 1) return -ENAMETOOLONG;
    this.scratch[slot + written] = 0;
    return this.scratchAddress + slot;
  }

  /**
   * statx(2) of a host fd itself (empty path, AT_EMPTY_PATH) into the general scratch slot: 0 or -errno; the
   * struct statx is then read from `scratchView` at SCRATCH_GENERAL (field offsets in STATX).
   */
  statFd(hostFd: number): number {
    return this.sym.host_statx(
      hostFd,
      this.cString(""),
      AT_EMPTY_PATH,
      STATX_BASIC_STATS,
      this.scratchAddress + SCRATCH_GENERAL,
    );
  }

  /** The absolute path a host fd refers to, or null. */
  fdPath(hostFd: number): string | null {
    const at = SCRATCH_PATH_B;
    const n = this.sym.host_fd_path(hostFd, this.scratchAddress + at, SCRATCH_PATH_SIZE);
    if (n < 0) return null;
    return new TextDecoder().decode(this.scratch.subarray(at, at + n));
  }
}

let shared: Host | null = null;
/** The process-wide host layer (one shim per process). */
export function sharedHost(): Host {
  shared ??= new Host();
  return shared;
}

/**
 * fork(2) of the whole runtime (Linux hosts): the child's pid, 0 in the child, or -errno. The child is a full
 * copy of this process, guest memory included (copy-on-write); see host_fork in host.c for what makes Bun
 * survive it.
 */
export function hostFork(): number {
  return sharedHost().sym.host_fork();
}

/** End this host process at once with `status` (_exit: no exit handlers, which a forked Bun must not run). */
export function hostExit(status: number): never {
  sharedHost().sym.host_exit(status);
  throw new Error("_exit returned");
}

/** End this host process by signal `signal` for real (default action, no core file), as qemu-user does. */
export function hostDieBySignal(signal: number): never {
  sharedHost().sym.host_die_by_signal(signal);
  throw new Error(`signal ${signal} did not end the process`);
}
