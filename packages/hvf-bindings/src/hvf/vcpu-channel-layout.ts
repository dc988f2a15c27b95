/**
 * The vCPU channel's shared-memory layout and codes (one SharedArrayBuffer per vCPU Worker).
 * Logic lives in vcpu-channel.ts; this file is the table both sides agree on.
 *
 * Handshake: the main thread writes a command and its arguments, then bumps REQUEST and notifies;
 * the worker performs it, writes the result, sets RESPONSE to the same sequence number and notifies.
 * Every request gets exactly one response. RUN and RESUME are answered by the next event: the vCPU
 * exited (EVENT.EXIT), or it is parked inside an in-line syscall (EVENT.SYSCALL) and serves further
 * commands (registers) until the main thread RESUMEs it with the handler's verdict.
 */
import { type AccessKind, GENERAL_REGISTER_NAMES, type VcpuExit } from "../backend.ts";

/** Int32 word indices. */
export const WORD = {
  REQUEST: 0,
  RESPONSE: 1,
  COMMAND: 2,
  STATUS: 3,
  EVENT: 4,
  EXIT_KIND: 5,
  EXIT_ACCESS: 6,
  EXIT_MAPPED: 7,
  /** Register index (GENERAL_REGISTERS) of GET/SET_REGISTER. */
  REGISTER: 8,
  /** Vector index, handler verdict, or handler on/off. */
  ARGUMENT: 9,
  MESSAGE_LENGTH: 10,
  WORKER_STATE: 11,
  /** Set by the main thread when it wrote X0..X8 in FRAME outside a syscall: the worker writes them back. */
  FRAME_DIRTY: 12,
  COUNT: 16,
} as const;

/** Byte offsets. */
export const OFFSET = {
  /** f64: VcpuExit address (fault) and pc (undefined-instruction, breakpoint). */
  EXIT_ADDRESS: 64,
  EXIT_PC: 72,
  /** u64: register value in or out. */
  VALUE: 80,
  /** 16 bytes: a Q register in or out. */
  VECTOR: 96,
  /** X0..X8 as 18 little-endian u32 words, the in-line syscall frame. */
  FRAME: 128,
  /** UTF-8: the error or backend-error message. */
  MESSAGE: 256,
} as const;
export const FRAME_WORDS = 18;
export const CHANNEL_SIZE = 4096;
/** The doorbell a group of vCPU workers shares (VcpuDoorbell): one Int32 counter. */
export const DOORBELL_SIZE = 8;
export const MESSAGE_MAX = CHANNEL_SIZE - OFFSET.MESSAGE;

export const COMMAND = {
  /** No work: measures the bare handshake. */
  PING: 1,
  RUN: 2,
  /** Leave the in-line syscall with ARGUMENT = SYSCALL_RESUME or SYSCALL_LEAVE. */
  RESUME: 3,
  GET_REGISTER: 4,
  SET_REGISTER: 5,
  GET_VECTOR: 6,
  SET_VECTOR: 7,
  /** ARGUMENT 1: syscalls park in the worker's in-line handler; 0: they end run(). */
  SET_HANDLER: 8,
  DESTROY: 9,
} as const;

export const STATUS = { OK: 0, ERROR: 1 } as const;

export const EVENT = {
  /** A command other than RUN/RESUME completed. */
  REPLY: 1,
  /** run() returned: the exit is in EXIT_*. */
  EXIT: 2,
  /** Parked inside an in-line syscall: FRAME holds X0..X8. */
  SYSCALL: 3,
} as const;

export const WORKER_STATE = { STARTING: 0, SERVING: 1, GONE: 2 } as const;

export const EXIT_KIND_CODE: Record<VcpuExit["kind"], number> = {
  syscall: 1,
  fault: 2,
  "undefined-instruction": 3,
  breakpoint: 4,
  stopped: 5,
  "backend-error": 6,
};
export const EXIT_KIND_NAME = Object.fromEntries(
  Object.entries(EXIT_KIND_CODE).map(([name, code]) => [code, name]),
) as Record<number, VcpuExit["kind"]>;

export const ACCESS_CODE: Record<AccessKind, number> = { read: 0, write: 1, exec: 2 };
export const ACCESS_NAME: readonly AccessKind[] = ["read", "write", "exec"];

/** Register numbering on the channel. X0..X8 never go through GET/SET_REGISTER: they are FRAME. */
export const GENERAL_REGISTERS = GENERAL_REGISTER_NAMES;
export const REGISTER_INDEX = new Map(GENERAL_REGISTERS.map((name, index) => [name, index]));
/** Registers X0..X8 (indices 0..8) live in FRAME. */
export const FRAME_REGISTERS = 9;
