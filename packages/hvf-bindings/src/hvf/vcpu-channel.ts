/**
 * A vCPU that lives in its own Worker, driven from the main thread through one SharedArrayBuffer
 * (layout: vcpu-channel-layout.ts). Independent of Hypervisor.framework: the worker side serves any
 * `Vcpu`; the main side (`VcpuWorkerHost`) is itself a `Vcpu`, so the runtime cannot tell the
 * difference except that `requestStop()` works while `runAsync()` is pending.
 *
 * Why: Hypervisor.framework binds a vCPU to the thread that created it, and `hv_vcpu_run` blocks that
 * thread while the guest runs. Each vCPU therefore gets a Worker that creates it and runs it; the
 * main thread keeps the runtime (syscalls, memory map) and handles every exit. Exits cross as an
 * Atomics.wait/notify handshake: the worker parks after an exit, the main thread handles it and
 * notifies to resume. Registers cross as SharedArrayBuffer words: X0..X8 (the syscall frame) are
 * published with every exit, the rest are fetched on demand from the parked worker. The only call
 * made on a vCPU from another thread is the backend's cross-thread stop (hv_vcpus_exit), through the
 * `stop` function given to `VcpuWorkerHost.spawn`.
 *
 * Waiting: both sides may spin on the word for a bounded number of loads before sleeping in
 * Atomics.wait, because a futex wake-up costs more than a typical syscall's handling (DEFAULT_SPIN).
 */
import { availableParallelism } from "node:os";
import {
  isMainThread,
  MessageChannel,
  type MessagePort,
  receiveMessageOnPort,
  threadId,
} from "node:worker_threads";
import {
  type ConcurrentVcpu,
  type GeneralRegister,
  type InlineSyscallHandler,
  SYSCALL_LEAVE,
  SYSCALL_RESUME,
  type Vcpu,
  type VcpuExit,
} from "../backend.ts";
import {
  ACCESS_CODE,
  ACCESS_NAME,
  CHANNEL_SIZE,
  COMMAND,
  DOORBELL_SIZE,
  EVENT,
  EXIT_KIND_CODE,
  EXIT_KIND_NAME,
  FRAME_REGISTERS,
  FRAME_WORDS,
  GENERAL_REGISTERS,
  MESSAGE_MAX,
  OFFSET,
  REGISTER_INDEX,
  STATUS,
  WORD,
  WORKER_STATE,
} from "./vcpu-channel-layout.ts";

/**
 * Loads of the handshake word before falling back to Atomics.wait. Spinning only pays when the
 * other side has a core of its own; on a host with two or fewer it steals that core (measured: the
 * bare handshake went from ≈ 20 µs to ≈ 33 µs on a loaded 2-core Linux VM), so it is off there.
 */
export const DEFAULT_SPIN = availableParallelism() > 2 ? 2000 : 0;
/** Atomics.wait slice: between slices the main thread checks that the worker still exists. */
const WAIT_SLICE_MS = 500;
/** How long a synchronous spawn waits for a worker to create its vCPU before giving up on it. */
const SPAWN_LIMIT_MS = 30_000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Typed views over one channel buffer, shared by both ends. */
class ChannelViews {
  readonly ctl: Int32Array;
  readonly view: DataView;
  readonly frame: Uint32Array;
  readonly vector: Uint8Array;
  readonly message: Uint8Array;
  constructor(readonly buffer: SharedArrayBuffer) {
    if (buffer.byteLength < CHANNEL_SIZE) throw new RangeError("vCPU channel buffer too small");
    this.ctl = new Int32Array(buffer, 0, WORD.COUNT);
    this.view = new DataView(buffer);
    this.frame = new Uint32Array(buffer, OFFSET.FRAME, FRAME_WORDS);
    this.vector = new Uint8Array(buffer, OFFSET.VECTOR, 16);
    this.message = new Uint8Array(buffer, OFFSET.MESSAGE, MESSAGE_MAX);
  }
  writeMessage(text: string): void {
    const { written } = encoder.encodeInto(text, this.message);
    Atomics.store(this.ctl, WORD.MESSAGE_LENGTH, written);
  }
  readMessage(): string {
    // TextDecoder refuses views of shared memory: copy first.
    return decoder.decode(this.message.slice(0, Atomics.load(this.ctl, WORD.MESSAGE_LENGTH)));
  }
}

function spinWhile(ctl: Int32Array, index: number, value: number, spin: number): boolean {
  for (let i = 0; i < spin; i++) if (Atomics.load(ctl, index) !== value) return true;
  return false;
}

/**
 * One shared counter that every worker of a group bumps (and notifies) whenever it answers: the main
 * thread's way to sleep until *any* of several vCPUs has something to report. Read `count` before
 * polling the vCPUs, then `wait(count)`: an answer that came in between makes the wait return at once.
 */
export class VcpuDoorbell {
  private readonly word: Int32Array;
  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(DOORBELL_SIZE)) {
    this.word = new Int32Array(buffer, 0, 1);
  }
  get count(): number {
    return Atomics.load(this.word, 0);
  }
  /** Worker side: something happened. */
  ring(): void {
    Atomics.add(this.word, 0, 1);
    Atomics.notify(this.word, 0);
  }
  /** Sleep until the count is no longer `seen` or `timeoutMs` passed; true if it moved. */
  wait(seen: number, timeoutMs: number): boolean {
    if (Atomics.load(this.word, 0) !== seen) return true;
    if (!(timeoutMs > 0)) return false;
    return Atomics.wait(this.word, 0, seen, timeoutMs) !== "timed-out";
  }
}

// ---------------------------------------------------------------------------------------------
// Worker side

export class VcpuWorkerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "VcpuWorkerError";
  }
}

/**
 * Serve `vcpu` over the channel until DESTROY (which destroys it). Blocks the calling thread: call it
 * in the Worker that created the vCPU, after telling the main thread it is ready.
 */
export function serveVcpu(
  buffer: SharedArrayBuffer,
  vcpu: Vcpu,
  spin = DEFAULT_SPIN,
  doorbell: SharedArrayBuffer | null = null,
): void {
  const ch = new ChannelViews(buffer);
  const bell = doorbell ? new VcpuDoorbell(doorbell) : null;
  const { ctl, view } = ch;
  // The last request answered (not the last one sent: the main thread may already have sent one).
  let seen = Atomics.load(ctl, WORD.RESPONSE);
  let destroyRequested = false;

  const nextRequest = (): number => {
    if (!spinWhile(ctl, WORD.REQUEST, seen, spin)) {
      while (Atomics.load(ctl, WORD.REQUEST) === seen) Atomics.wait(ctl, WORD.REQUEST, seen);
    }
    seen = Atomics.load(ctl, WORD.REQUEST);
    return Atomics.load(ctl, WORD.COMMAND);
  };
  const respond = (event: number, status: number = STATUS.OK): void => {
    Atomics.store(ctl, WORD.EVENT, event);
    Atomics.store(ctl, WORD.STATUS, status);
    Atomics.store(ctl, WORD.RESPONSE, seen);
    Atomics.notify(ctl, WORD.RESPONSE);
    bell?.ring();
  };
  const fail = (error: unknown): void => {
    ch.writeMessage(error instanceof Error ? error.message : String(error));
    respond(EVENT.REPLY, STATUS.ERROR);
  };

  const publishFrame = (): void => {
    for (let n = 0; n < FRAME_REGISTERS; n++) {
      const value = vcpu.getRegister(GENERAL_REGISTERS[n]!);
      ch.frame[2 * n] = Number(value & 0xffff_ffffn);
      ch.frame[2 * n + 1] = Number(value >> 32n);
    }
    Atomics.store(ctl, WORD.FRAME_DIRTY, 0);
  };
  const writeBackFrame = (): void => {
    for (let n = 0; n < FRAME_REGISTERS; n++) {
      vcpu.setRegister(
        GENERAL_REGISTERS[n]!,
        (BigInt(ch.frame[2 * n + 1]!) << 32n) | BigInt(ch.frame[2 * n]!),
      );
    }
    Atomics.store(ctl, WORD.FRAME_DIRTY, 0);
  };
  const publishExit = (exit: VcpuExit): void => {
    Atomics.store(ctl, WORD.EXIT_KIND, EXIT_KIND_CODE[exit.kind]);
    switch (exit.kind) {
      case "fault":
        view.setFloat64(OFFSET.EXIT_ADDRESS, exit.address, true);
        Atomics.store(ctl, WORD.EXIT_ACCESS, ACCESS_CODE[exit.access]);
        Atomics.store(ctl, WORD.EXIT_MAPPED, exit.mapped ? 1 : 0);
        break;
      case "undefined-instruction":
      case "breakpoint":
        view.setFloat64(OFFSET.EXIT_PC, exit.pc, true);
        break;
      case "backend-error":
        ch.writeMessage(exit.message);
        break;
    }
    try {
      publishFrame();
    } catch {
      // A vCPU in a failed state may refuse register reads; the exit itself still goes out.
    }
  };

  /** Register and vector commands: valid both between runs and while parked in a syscall. */
  const serveRegisterCommand = (command: number): void => {
    switch (command) {
      case COMMAND.PING:
        break;
      case COMMAND.GET_REGISTER:
        view.setBigUint64(
          OFFSET.VALUE,
          vcpu.getRegister(GENERAL_REGISTERS[Atomics.load(ctl, WORD.REGISTER)]!),
          true,
        );
        break;
      case COMMAND.SET_REGISTER:
        vcpu.setRegister(
          GENERAL_REGISTERS[Atomics.load(ctl, WORD.REGISTER)]!,
          view.getBigUint64(OFFSET.VALUE, true),
        );
        break;
      case COMMAND.GET_VECTOR:
        ch.vector.set(vcpu.getVector(Atomics.load(ctl, WORD.ARGUMENT)));
        break;
      case COMMAND.SET_VECTOR:
        vcpu.setVector(Atomics.load(ctl, WORD.ARGUMENT), ch.vector.slice());
        break;
      default:
        throw new VcpuWorkerError(`vCPU channel: command ${command} is not valid now`);
    }
    respond(EVENT.REPLY);
  };

  /** The in-line handler installed on the worker's vCPU: park, let the main thread decide. */
  const parkInSyscall: InlineSyscallHandler = (frame) => {
    ch.frame.set(frame);
    Atomics.store(ctl, WORD.FRAME_DIRTY, 0);
    respond(EVENT.SYSCALL);
    for (;;) {
      const command = nextRequest();
      if (command === COMMAND.RESUME) {
        frame.set(ch.frame);
        return Atomics.load(ctl, WORD.ARGUMENT) === SYSCALL_RESUME ? SYSCALL_RESUME : SYSCALL_LEAVE;
      }
      if (command === COMMAND.DESTROY) {
        destroyRequested = true; // leave run() first; the RUN handler below destroys and replies
        return SYSCALL_LEAVE;
      }
      try {
        serveRegisterCommand(command);
      } catch (error) {
        fail(error);
      }
    }
  };

  for (;;) {
    const command = nextRequest();
    try {
      switch (command) {
        case COMMAND.RUN: {
          if (Atomics.load(ctl, WORD.FRAME_DIRTY)) writeBackFrame();
          const exit = vcpu.run();
          if (destroyRequested) {
            vcpu.destroy();
            respond(EVENT.REPLY);
            return;
          }
          publishExit(exit);
          respond(EVENT.EXIT);
          break;
        }
        case COMMAND.SET_HANDLER:
          vcpu.setSyscallHandler(Atomics.load(ctl, WORD.ARGUMENT) ? parkInSyscall : null);
          respond(EVENT.REPLY);
          break;
        case COMMAND.DESTROY:
          vcpu.destroy();
          respond(EVENT.REPLY);
          return;
        case COMMAND.RESUME:
          throw new VcpuWorkerError("vCPU channel: RESUME while not parked in a syscall");
        default:
          serveRegisterCommand(command);
      }
    } catch (error) {
      if (destroyRequested) {
        try {
          vcpu.destroy();
        } catch {}
        fail(error);
        return;
      }
      fail(error);
    }
  }
}

/** What a worker entry's factory returns: the vCPU (created on this thread) and how to stop it from another. */
export interface WorkerVcpu {
  vcpu: Vcpu;
  /** Structured-cloneable; the main thread passes it to its `stop` function. */
  stopToken: unknown;
}

interface InitMessage {
  buffer: SharedArrayBuffer;
  spin: number;
  init: unknown;
  /** The group's doorbell (VcpuDoorbell), rung with every answer; null: none. */
  doorbell: SharedArrayBuffer | null;
  /** Where to say ready (a synchronous spawn reads it with receiveMessageOnPort); null: the worker's own port. */
  port: MessagePort | null;
}

type ReadyMessage =
  | { type: "ready"; id: number; stopToken: unknown; thread: number }
  | { type: "error"; message: string };

/**
 * The body of a vCPU worker entry module: wait for the init message, create the vCPU *on this
 * thread*, report ready, then serve the channel until DESTROY.
 */
export function startVcpuWorker(create: (init: unknown) => WorkerVcpu | Promise<WorkerVcpu>): void {
  if (isMainThread) throw new Error("startVcpuWorker runs in a Worker: the vCPU must live on that thread");
  const port = globalThis as unknown as {
    onmessage: ((event: MessageEvent<InitMessage>) => void) | null;
    postMessage(message: unknown): void;
  };
  port.onmessage = async (event) => {
    port.onmessage = null;
    const { buffer, spin, init, doorbell, port: replyPort } = event.data;
    const reply = (message: ReadyMessage) => (replyPort ?? port).postMessage(message);
    const ctl = new Int32Array(buffer, 0, WORD.COUNT);
    try {
      const { vcpu, stopToken } = await create(init);
      // The message first: a synchronous spawn reads it as soon as it sees SERVING.
      reply({ type: "ready", id: vcpu.id, stopToken, thread: threadId });
      Atomics.store(ctl, WORD.WORKER_STATE, WORKER_STATE.SERVING);
      Atomics.notify(ctl, WORD.WORKER_STATE);
      serveVcpu(buffer, vcpu, spin, doorbell);
    } catch (error) {
      reply({ type: "error", message: error instanceof Error ? error.message : String(error) });
    } finally {
      Atomics.store(ctl, WORD.WORKER_STATE, WORKER_STATE.GONE);
      Atomics.notify(ctl, WORD.WORKER_STATE);
      Atomics.notify(ctl, WORD.RESPONSE);
      if (doorbell) new VcpuDoorbell(doorbell).ring();
    }
  };
}

// ---------------------------------------------------------------------------------------------
// Main-thread side

export interface VcpuWorkerOptions {
  /** The worker entry module (it calls `startVcpuWorker`). */
  workerUrl: string | URL;
  /** Passed to the entry's factory (structured clone). */
  init: unknown;
  /** Stop the vCPU from this thread, given the worker's stop token (HVF: hv_vcpus_exit). */
  stop: (token: unknown) => void;
  spin?: number;
  /** Rung by the worker with every answer (shared by a group of vCPUs: see VcpuDoorbell). */
  doorbell?: VcpuDoorbell;
}

type HostState = "idle" | "running" | "destroyed";

/** The main thread's handle on a vCPU living in a Worker; a `Vcpu` itself. */
export class VcpuWorkerHost implements ConcurrentVcpu {
  /** X0..X8 in shared memory: valid after every exit and inside the in-line handler. */
  readonly syscallFrame: Uint32Array;
  private readonly ch: ChannelViews;
  private state: HostState = "idle";
  private handler: InlineSyscallHandler | null = null;
  private sequence = 0;
  /** The RUN request `start()` sent, whose answer `poll()` waits for (null: none outstanding). */
  private started: number | null = null;
  /** requestStop() was called and no exit has been taken since (destroy() does not kick twice). */
  private stopRequested = false;

  private constructor(
    private readonly worker: Worker,
    buffer: SharedArrayBuffer,
    readonly id: number,
    /** The worker's thread id: the thread that owns the vCPU. */
    readonly vcpuThread: number,
    private readonly stopToken: unknown,
    private readonly stopVcpu: (token: unknown) => void,
    private readonly spin: number,
  ) {
    this.ch = new ChannelViews(buffer);
    this.syscallFrame = this.ch.frame;
  }

  /** Start the worker and let it create its vCPU; resolves once it serves the channel. */
  static spawn(options: VcpuWorkerOptions): Promise<VcpuWorkerHost> {
    const buffer = new SharedArrayBuffer(CHANNEL_SIZE);
    const spin = options.spin ?? DEFAULT_SPIN;
    const worker = new Worker(options.workerUrl);
    return new Promise((resolve, reject) => {
      const onError = (event: ErrorEvent) => {
        worker.terminate();
        reject(new VcpuWorkerError(`vCPU worker failed to start: ${event.message}`));
      };
      worker.addEventListener("error", onError);
      worker.addEventListener("message", function onMessage(event: MessageEvent) {
        worker.removeEventListener("message", onMessage);
        worker.removeEventListener("error", onError);
        try {
          resolve(VcpuWorkerHost.fromReady(worker, buffer, event.data as ReadyMessage, options, spin));
        } catch (error) {
          reject(error);
        }
      });
      worker.postMessage(VcpuWorkerHost.initMessage(buffer, spin, options, null));
    });
  }

  /**
   * `spawn` without giving up the thread: blocks until the worker has created its vCPU (or failed to).
   * For callers that cannot await, such as a syscall handler creating a vCPU for a guest clone. The
   * worker runs on its own event loop, so this thread's loop need not turn: the answer comes through
   * the channel's WORKER_STATE word and a MessagePort read with receiveMessageOnPort. A worker whose
   * entry module does not even load never answers: after SPAWN_LIMIT_MS it is terminated and this throws.
   */
  static spawnSync(options: VcpuWorkerOptions): VcpuWorkerHost {
    const buffer = new SharedArrayBuffer(CHANNEL_SIZE);
    const ctl = new Int32Array(buffer, 0, WORD.COUNT);
    const spin = options.spin ?? DEFAULT_SPIN;
    const { port1, port2 } = new MessageChannel();
    const worker = new Worker(options.workerUrl);
    try {
      // node:worker_threads' MessagePort is transferable to a Worker; the DOM typing does not know it.
      const transfer = [port2] as unknown as Parameters<Worker["postMessage"]>[1];
      worker.postMessage(VcpuWorkerHost.initMessage(buffer, spin, options, port2), transfer);
      const limit = performance.now() + SPAWN_LIMIT_MS;
      let received: { message: unknown } | undefined;
      for (;;) {
        received = receiveMessageOnPort(port1);
        if (received) break;
        // GONE without a message: the worker ended abnormally (the message always precedes GONE).
        if (Atomics.load(ctl, WORD.WORKER_STATE) === WORKER_STATE.GONE)
          received = receiveMessageOnPort(port1);
        if (received) break;
        const left = limit - performance.now();
        if (left <= 0 || Atomics.load(ctl, WORD.WORKER_STATE) === WORKER_STATE.GONE) {
          throw new VcpuWorkerError(
            `vCPU worker failed to start: no answer from ${String(options.workerUrl)} within ${SPAWN_LIMIT_MS} ms`,
          );
        }
        Atomics.wait(ctl, WORD.WORKER_STATE, Atomics.load(ctl, WORD.WORKER_STATE), Math.min(left, 50));
      }
      return VcpuWorkerHost.fromReady(worker, buffer, received.message as ReadyMessage, options, spin);
    } catch (error) {
      worker.terminate();
      throw error;
    } finally {
      port1.close();
    }
  }

  private static initMessage(
    buffer: SharedArrayBuffer,
    spin: number,
    options: VcpuWorkerOptions,
    port: MessagePort | null,
  ): InitMessage {
    return { buffer, spin, init: options.init, doorbell: options.doorbell?.buffer ?? null, port };
  }

  private static fromReady(
    worker: Worker,
    buffer: SharedArrayBuffer,
    message: ReadyMessage,
    options: VcpuWorkerOptions,
    spin: number,
  ): VcpuWorkerHost {
    if (message.type === "error") {
      worker.terminate();
      throw new VcpuWorkerError(`vCPU worker failed to start: ${message.message}`);
    }
    return new VcpuWorkerHost(
      worker,
      buffer,
      message.id,
      message.thread,
      message.stopToken,
      options.stop,
      spin,
    );
  }

  // ---- handshake ----------------------------------------------------------------------------

  private send(command: number): number {
    const ctl = this.ch.ctl;
    if (this.state === "destroyed") throw new VcpuWorkerError(`vCPU ${this.id}: used after destroy()`);
    if (Atomics.load(ctl, WORD.WORKER_STATE) === WORKER_STATE.GONE) {
      throw new VcpuWorkerError(`vCPU ${this.id}: its worker has stopped`);
    }
    Atomics.store(ctl, WORD.COMMAND, command);
    this.sequence = (this.sequence + 1) | 0;
    const sequence = this.sequence;
    Atomics.store(ctl, WORD.REQUEST, sequence);
    Atomics.notify(ctl, WORD.REQUEST);
    return sequence;
  }

  private awaitResponse(sequence: number): number {
    const ctl = this.ch.ctl;
    for (let i = 0; i < this.spin; i++)
      if (Atomics.load(ctl, WORD.RESPONSE) === sequence) return this.takeResponse();
    for (;;) {
      const current = Atomics.load(ctl, WORD.RESPONSE);
      if (current === sequence) break;
      this.checkWorkerAlive();
      Atomics.wait(ctl, WORD.RESPONSE, current, WAIT_SLICE_MS);
    }
    return this.takeResponse();
  }

  private async awaitResponseAsync(sequence: number): Promise<number> {
    const ctl = this.ch.ctl;
    for (;;) {
      const current = Atomics.load(ctl, WORD.RESPONSE);
      if (current === sequence) break;
      this.checkWorkerAlive();
      const waited = Atomics.waitAsync(ctl, WORD.RESPONSE, current, WAIT_SLICE_MS);
      if (waited.async) await waited.value;
    }
    return this.takeResponse();
  }

  private checkWorkerAlive(): void {
    if (Atomics.load(this.ch.ctl, WORD.WORKER_STATE) === WORKER_STATE.GONE) {
      this.state = "destroyed";
      throw new VcpuWorkerError(`vCPU ${this.id}: its worker stopped without answering`);
    }
  }

  private takeResponse(): number {
    if (Atomics.load(this.ch.ctl, WORD.STATUS) === STATUS.ERROR) {
      throw new VcpuWorkerError(
        `vCPU ${this.id} (worker thread ${this.vcpuThread}): ${this.ch.readMessage()}`,
      );
    }
    return Atomics.load(this.ch.ctl, WORD.EVENT);
  }

  private call(command: number): number {
    this.assertNotStarted();
    return this.awaitResponse(this.send(command));
  }

  /** Between start() and the exit poll() takes, the worker is inside run(): no other request may go. */
  private assertNotStarted(): void {
    if (this.started !== null)
      throw new VcpuWorkerError(`vCPU ${this.id}: register access while run() is in progress`);
  }

  private readExit(): VcpuExit {
    const { ctl, view } = this.ch;
    const kind = EXIT_KIND_NAME[Atomics.load(ctl, WORD.EXIT_KIND)];
    switch (kind) {
      case "fault":
        return {
          kind,
          address: view.getFloat64(OFFSET.EXIT_ADDRESS, true),
          access: ACCESS_NAME[Atomics.load(ctl, WORD.EXIT_ACCESS)]!,
          mapped: Atomics.load(ctl, WORD.EXIT_MAPPED) === 1,
        };
      case "undefined-instruction":
      case "breakpoint":
        return { kind, pc: view.getFloat64(OFFSET.EXIT_PC, true) };
      case "backend-error":
        return { kind, message: this.ch.readMessage() };
      case "syscall":
      case "stopped":
        return { kind };
      default:
        throw new VcpuWorkerError(`vCPU ${this.id}: unknown exit code ${Atomics.load(ctl, WORD.EXIT_KIND)}`);
    }
  }

  private enterRun(): void {
    if (this.state === "running") throw new VcpuWorkerError(`vCPU ${this.id}: run() while already running`);
    if (this.state === "destroyed") throw new VcpuWorkerError(`vCPU ${this.id}: used after destroy()`);
    this.state = "running";
  }

  /** The main-thread handler ran on a parked syscall; its verdict (or LEAVE if it threw). */
  private handleSyscall(): { code: number; error?: unknown } {
    try {
      return { code: this.handler!(this.syscallFrame) === SYSCALL_RESUME ? SYSCALL_RESUME : SYSCALL_LEAVE };
    } catch (error) {
      return { code: SYSCALL_LEAVE, error };
    }
  }

  private resume(code: number): number {
    Atomics.store(this.ch.ctl, WORD.ARGUMENT, code);
    return this.send(COMMAND.RESUME);
  }

  // ---- Vcpu ---------------------------------------------------------------------------------

  /** Run until an exit, blocking this thread; in-line syscalls are handled here between handshakes. */
  run(): VcpuExit {
    this.enterRun();
    try {
      let event = this.call(COMMAND.RUN);
      let failure: { error: unknown } | null = null;
      while (event === EVENT.SYSCALL) {
        const verdict = this.handleSyscall();
        if ("error" in verdict) failure = { error: verdict.error };
        event = this.awaitResponse(this.resume(verdict.code));
      }
      if (failure) throw failure.error;
      return this.readExit();
    } finally {
      if (this.state === "running") this.state = "idle";
    }
  }

  /** `run()` without blocking this thread: other vCPUs' exits, timers and `requestStop()` keep working. */
  async runAsync(): Promise<VcpuExit> {
    this.enterRun();
    try {
      let event = await this.awaitResponseAsync(this.send(COMMAND.RUN));
      let failure: { error: unknown } | null = null;
      while (event === EVENT.SYSCALL) {
        const verdict = this.handleSyscall();
        if ("error" in verdict) failure = { error: verdict.error };
        event = await this.awaitResponseAsync(this.resume(verdict.code));
      }
      if (failure) throw failure.error;
      return this.readExit();
    } finally {
      if (this.state === "running") this.state = "idle";
    }
  }

  /**
   * Start running and return at once (no in-line handler: every syscall is an exit). X0..X8 as they
   * stand in `syscallFrame` are the guest's (written back on entry). The exit comes through `poll()`;
   * meanwhile only `requestStop()` may be used. With a doorbell, the worker rings it when it exits.
   */
  start(): void {
    if (this.handler) throw new VcpuWorkerError(`vCPU ${this.id}: start() with an in-line handler set`);
    this.enterRun();
    Atomics.store(this.ch.ctl, WORD.FRAME_DIRTY, 1);
    try {
      this.started = this.send(COMMAND.RUN);
    } catch (error) {
      this.state = "idle";
      throw error;
    }
  }

  /** After `start()`: the exit, once the vCPU has one (the vCPU is then idle), else null. Never blocks. */
  poll(): VcpuExit | null {
    if (this.started === null) throw new VcpuWorkerError(`vCPU ${this.id}: poll() without start()`);
    if (Atomics.load(this.ch.ctl, WORD.RESPONSE) !== this.started) {
      this.checkWorkerAlive();
      return null;
    }
    this.started = null;
    this.stopRequested = false;
    this.state = "idle";
    this.takeResponse();
    return this.readExit();
  }

  /** Started and its exit not yet taken by `poll()`. */
  get running(): boolean {
    return this.started !== null;
  }

  /** Cross-thread stop: the backend's kick (hv_vcpus_exit), no handshake. Callable while running. */
  requestStop(): void {
    if (this.state === "destroyed") return;
    this.stopRequested = true;
    this.stopVcpu(this.stopToken);
  }

  setSyscallHandler(handler: InlineSyscallHandler | null): void {
    this.assertIdle("setSyscallHandler");
    Atomics.store(this.ch.ctl, WORD.ARGUMENT, handler ? 1 : 0);
    this.call(COMMAND.SET_HANDLER);
    this.handler = handler;
  }

  /** One bare request/response through the channel (benchmarks, liveness). */
  ping(): void {
    this.assertIdle("ping");
    this.call(COMMAND.PING);
  }

  private assertIdle(call: string): void {
    if (this.state === "running")
      throw new VcpuWorkerError(`vCPU ${this.id}: ${call} while run() is in progress`);
  }

  private registerIndex(name: GeneralRegister): number {
    const index = REGISTER_INDEX.get(name);
    if (index === undefined) throw new RangeError(`no register ${name}`);
    return index;
  }

  getRegister(name: GeneralRegister): bigint {
    const index = this.registerIndex(name);
    if (index < FRAME_REGISTERS) {
      this.assertNotStarted();
      const f = this.syscallFrame;
      return (BigInt(f[2 * index + 1]!) << 32n) | BigInt(f[2 * index]!);
    }
    Atomics.store(this.ch.ctl, WORD.REGISTER, index);
    this.call(COMMAND.GET_REGISTER);
    return this.ch.view.getBigUint64(OFFSET.VALUE, true);
  }

  setRegister(name: GeneralRegister, value: bigint): void {
    const index = this.registerIndex(name);
    const v = BigInt.asUintN(64, value);
    if (index < FRAME_REGISTERS) {
      this.assertNotStarted();
      this.syscallFrame[2 * index] = Number(v & 0xffff_ffffn);
      this.syscallFrame[2 * index + 1] = Number(v >> 32n);
      Atomics.store(this.ch.ctl, WORD.FRAME_DIRTY, 1);
      return;
    }
    Atomics.store(this.ch.ctl, WORD.REGISTER, index);
    this.ch.view.setBigUint64(OFFSET.VALUE, v, true);
    this.call(COMMAND.SET_REGISTER);
  }

  getVector(index: number): Uint8Array {
    Atomics.store(this.ch.ctl, WORD.ARGUMENT, index);
    this.call(COMMAND.GET_VECTOR);
    return this.ch.vector.slice();
  }

  setVector(index: number, value: Uint8Array): void {
    if (value.length !== 16) throw new RangeError(`q${index} takes 16 bytes, got ${value.length}`);
    this.ch.vector.set(value);
    Atomics.store(this.ch.ctl, WORD.ARGUMENT, index);
    this.call(COMMAND.SET_VECTOR);
  }

  /** Destroy the vCPU on its thread, then end the worker. A `start()`ed vCPU is stopped and awaited first. */
  destroy(): void {
    if (this.state === "destroyed") return;
    if (this.started !== null) {
      if (!this.stopRequested) this.requestStop();
      try {
        this.awaitResponse(this.started);
      } catch {
        // Its exit or its failure: either way it is no longer running.
      }
      this.started = null;
      this.state = "idle";
    }
    this.assertIdle("destroy");
    try {
      if (Atomics.load(this.ch.ctl, WORD.WORKER_STATE) !== WORKER_STATE.GONE) this.call(COMMAND.DESTROY);
    } finally {
      this.state = "destroyed";
      this.worker.terminate();
    }
  }
}
