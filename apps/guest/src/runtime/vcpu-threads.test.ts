/**
 * Guest threads with a vCPU each, every vCPU in a real Bun Worker, over the scripted fake of
 * Hypervisor.framework (@guest/hvf-bindings' FakeHypervisor): the guest's instructions are scripted exits, the
 * runtime that handles them is the real one. Nothing here runs on Apple hardware.
 */
import { afterEach, expect, test } from "bun:test";
import { type FakeWorkerOptions, type FakeWorkerStep, type HvfVm, loadHvf } from "@guest/hvf-bindings";
import { demoGuestBytes } from "../demo/demo-bytes.ts";
import { GuestProcess } from "./guest-process.ts";
import { STACK_TOP } from "./layout.ts";

const { EXIT_LINE_SIZE, FAKE_WORKER_HOST_MODULE, FakeHypervisor, fakeStep, HvfBackend } = await loadHvf();

const NR = { exit: 93, exit_group: 94, futex: 98, clone: 220, gettid: 178 } as const;
const FUTEX_WAIT_PRIVATE = 128;
const FUTEX_WAKE_PRIVATE = 129;
/** glibc's pthread_create flags: VM, FS, FILES, SIGHAND, THREAD, SYSVSEM, SETTLS, CHILD_CLEARTID. */
const THREAD_FLAGS = 0x100 | 0x200 | 0x400 | 0x800 | 0x10000 | 0x40000 | 0x80000 | 0x200000;

/** Words in the (mapped, writable) main stack that the scripted guest uses. */
const BASE = STACK_TOP - 0x40_0000;
const FUTEX_WORD = BASE;
const CHILD_TID = BASE + 0x10;
/** Flags the test sets (from the trace) that scripted threads spin on, to order their steps deterministically. */
const MAIN_PARKED = BASE + 0x20;
const MAIN_JOINING = BASE + 0x30;
const CHILD_STACK = BASE + 0x10_0000;
const SPINNER_STACK = BASE + 0x20_0000;
const CHILD_TLS = 0x7777_0000;
const SPINNER_TLS = 0x8888_0000;

let cleanup: (() => void)[] = [];
afterEach(() => {
  const steps = cleanup.reverse();
  cleanup = [];
  for (const step of steps) step();
});

interface TraceEntry {
  line: string;
  tid: number;
  name: string;
  result: string;
  sp: bigint;
  tls: bigint;
  x9: bigint;
  /** The host threads owning a vCPU slot then (0: the main thread). */
  owners: number[];
}

/**
 * A GuestProcess over the fake framework. The first thread plays `first` on its vCPU on the main thread until
 * its first clone; from then on the n-th Worker vCPU plays workers[n] (0: the first thread, moved into a Worker
 * by that clone; 1, 2…: the threads in clone order). Every traced syscall is recorded with the registers of
 * the thread that made it (read on the main thread at that moment).
 */
function guestWithThreads(
  first: FakeWorkerStep[],
  workers: FakeWorkerStep[][] = [],
  hostModule = FAKE_WORKER_HOST_MODULE,
) {
  const exitLine = new SharedArrayBuffer(EXIT_LINE_SIZE);
  const fake = new FakeHypervisor({ exitLine });
  const backend = new HvfBackend(fake.host(), {
    hostModule,
    // Handle 0 is the main-thread vCPU's (the shared exit line is indexed by handle).
    hostOptions: (n): FakeWorkerOptions => ({ exitLine, script: workers[n] ?? [], firstHandle: n + 1 }),
  });
  const trace: TraceEntry[] = [];
  const onTrace: ((entry: TraceEntry) => void)[] = [];
  let guest: GuestProcess | null = null;
  guest = new GuestProcess({
    backend,
    executablePath: "/guest-demo",
    executable: demoGuestBytes(),
    argv: ["guest-demo"],
    envp: [],
    execfn: "/guest-demo",
    trace: (line) => {
      const match = /^(\w+)\(.*\) += (\S+)/.exec(line);
      if (!match || !guest) return;
      const vcpu = guest.vcpu;
      const entry: TraceEntry = {
        line,
        tid: guest.runtime.process.currentThread.tid,
        name: match[1]!,
        result: match[2]!,
        sp: vcpu.getRegister("sp"),
        tls: vcpu.getRegister("tpidr_el0"),
        x9: vcpu.getRegister("x9"),
        owners: (guest.vm as HvfVm).shared.slotOwners().map((owner) => owner.thread),
      };
      trace.push(entry);
      for (const listener of onTrace) listener(entry);
    },
  });
  const vm = guest.vm as HvfVm;
  fake.privateBytes = vm.privateBytes;
  fake.script = first.map((step) => fakeStep(step, vm.memory.hostAddress));
  cleanup.push(() => guest.destroy());
  const memory = new DataView(vm.memory.bytes.buffer, vm.memory.bytes.byteOffset);
  return { guest, fake, vm, trace, onTrace, memory };
}

test("clone, a futex wait woken by another thread, thread exit and exit_group, each thread on its own vCPU", () => {
  const { guest, fake, vm, trace, onTrace, memory } = guestWithThreads(
    // The first thread, on the main thread's vCPU: its tid, then the first clone.
    [
      { step: "syscall", number: NR.gettid, pc: 0x40_1000 },
      {
        step: "syscall",
        number: NR.clone,
        args: [THREAD_FLAGS, CHILD_STACK, 0, CHILD_TLS, CHILD_TID],
        pc: 0x40_1004,
      },
    ],
    [
      // The first thread again, now in a Worker: a second clone, a futex wait the first child ends, a join on
      // that child's CLONE_CHILD_CLEARTID word.
      [
        {
          step: "syscall",
          number: NR.clone,
          args: [THREAD_FLAGS, SPINNER_STACK, 0, SPINNER_TLS, 0],
          pc: 0x40_1008,
        },
        { step: "syscall", number: NR.futex, args: [FUTEX_WORD, FUTEX_WAIT_PRIVATE, 0, 0], pc: 0x40_100c },
        { step: "syscall", number: NR.futex, args: [CHILD_TID, FUTEX_WAIT_PRIVATE, 0x55, 0], pc: 0x40_1010 },
        { step: "syscall", number: NR.exit_group, args: [3], pc: 0x40_1014 },
      ],
      // The first child: its tid, then it wakes the parked first thread, then it exits.
      [
        { step: "syscall", number: NR.gettid, pc: 0x40_2000 },
        {
          step: "syscall",
          number: NR.futex,
          args: [FUTEX_WORD, FUTEX_WAKE_PRIVATE, 1],
          pc: 0x40_2004,
          after: { address: MAIN_PARKED, value: 1 },
        },
        {
          step: "syscall",
          number: NR.exit,
          args: [0],
          pc: 0x40_2008,
          after: { address: MAIN_JOINING, value: 1 },
        },
      ],
      // The second child runs guest code without a syscall until something stops it.
      [{ step: "spin-until-kicked", pc: 0x40_3000 }],
    ],
  );
  memory.setUint32(CHILD_TID, 0x55, true);
  const pid = guest.runtime.process.pid;
  // The flags are set once the first thread is parked (its futex line is traced after the handler ran).
  onTrace.push((entry) => {
    if (entry.tid !== pid || entry.name !== "futex") return;
    memory.setUint32(
      trace.filter((e) => e.tid === pid && e.name === "futex").length === 1 ? MAIN_PARKED : MAIN_JOINING,
      1,
      true,
    );
  });

  expect(guest.run()).toEqual({ kind: "exited", status: 3 });

  const lines = trace.map((e) => `${e.tid === pid ? "main" : e.tid}:${e.name}=${e.result}`);
  const [gettid, clone1, clone2] = trace.filter((e) => e.tid === pid);
  expect(gettid).toMatchObject({ name: "gettid", result: String(pid) });
  // Until its first clone the process's one vCPU lives on the main thread (thread 0): no Worker yet.
  expect(gettid!.owners).toEqual([0]);
  // That clone moved it into a Worker, next to the new thread's: two Workers, nothing left on the main thread.
  expect(clone1!.name).toBe("clone");
  expect(clone1!.owners).toHaveLength(2);
  expect(clone1!.owners).not.toContain(0);
  const child = Number(clone1!.result);
  const spinner = Number(clone2!.result);
  expect(new Set([pid, child, spinner]).size).toBe(3);
  expect(clone2!.x9).toBe(BigInt(child)); // the moved thread went on with clone's result in X0

  // The child's first syscall ran on its own vCPU with X0 = 0, the new stack and TLS, and the runtime saw it as
  // the current thread.
  const childCalls = trace.filter((e) => e.tid === child);
  expect(childCalls.map((e) => `${e.name}=${e.result}`)).toEqual([`gettid=${child}`, "futex=1", "exit=?"]);
  expect(childCalls[0]).toMatchObject({ sp: BigInt(CHILD_STACK), tls: BigInt(CHILD_TLS), x9: 0n });

  // The first thread parked in FUTEX_WAIT while the others ran; woken, its next call shows X0 = 0 (X9).
  const mainCalls = trace.filter((e) => e.tid === pid);
  expect(mainCalls.map((e) => e.name)).toEqual(["gettid", "clone", "clone", "futex", "futex", "exit_group"]);
  expect(lines.indexOf(`${child}:futex=1`)).toBeGreaterThan(lines.indexOf("main:futex=?"));
  expect(mainCalls[4]!.x9).toBe(0n);
  expect(mainCalls[4]!.owners).toHaveLength(3);
  // The join: the child's exit cleared its tid word and woke it; that vCPU and its Worker are gone.
  expect(memory.getUint32(CHILD_TID, true)).toBe(0);
  expect(mainCalls[5]!.x9).toBe(0n);
  expect(mainCalls[5]!.owners).toHaveLength(2);
  // exit_group stopped the spinning thread's vCPU (the only hv_vcpus_exit: its handle is 3) and every Worker ended.
  expect(fake.exitsRequested).toEqual([3n]);
  expect(vm.shared.slotOwners()).toEqual([]);
});

test("a signal for a thread parked in a futex wait interrupts it: its handler runs on its own vCPU, then EINTR", () => {
  const SIGUSR1 = 10;
  const HANDLER = 0x40_5000;
  const ACTION = BASE + 0x100; // struct sigaction: handler, flags, restorer, mask
  const MASK = BASE + 0x140;
  const CHILD_PARKED = BASE + 0x40;
  const pid = process.pid; // the runtime's guest pid is the host process's
  const { guest, trace, onTrace, memory } = guestWithThreads(
    // The first thread: a handler for SIGUSR1, a thread, then (in its Worker) SIGUSR1 blocked here and sent to
    // the process once the thread is parked, so only that thread can take it; then it runs until exit_group.
    [
      { step: "syscall", number: 134, args: [SIGUSR1, ACTION, 0, 8], pc: 0x40_1000 }, // rt_sigaction
      {
        step: "syscall",
        number: NR.clone,
        args: [THREAD_FLAGS, CHILD_STACK, 0, CHILD_TLS, 0],
        pc: 0x40_1004,
      },
    ],
    [
      [
        { step: "syscall", number: 135, args: [0, MASK, 0, 8], pc: 0x40_1008 }, // rt_sigprocmask(SIG_BLOCK)
        {
          step: "syscall",
          number: 129, // kill(pid, SIGUSR1)
          args: [pid, SIGUSR1],
          pc: 0x40_100c,
          after: { address: CHILD_PARKED, value: 1 },
        },
        { step: "spin-until-kicked", pc: 0x40_1010 },
      ],
      // The thread parks in FUTEX_WAIT; the signal ends the wait and enters its handler (a gettid there shows
      // the handler's X0), whose rt_sigreturn brings back the interrupted call's result, -EINTR (exit_group's X9).
      [
        { step: "syscall", number: NR.futex, args: [FUTEX_WORD, FUTEX_WAIT_PRIVATE, 0, 0], pc: 0x40_2000 },
        { step: "syscall", number: NR.gettid, pc: HANDLER + 4 },
        { step: "syscall", number: 139, pc: HANDLER + 8 }, // rt_sigreturn
        { step: "syscall", number: NR.exit_group, args: [7], pc: 0x40_2004 },
      ],
    ],
  );
  memory.setBigUint64(ACTION, BigInt(HANDLER), true);
  memory.setBigUint64(MASK, 1n << BigInt(SIGUSR1 - 1), true);
  onTrace.push((entry) => {
    if (entry.tid !== pid && entry.name === "futex") memory.setUint32(CHILD_PARKED, 1, true);
  });

  expect(guest.run()).toEqual({ kind: "exited", status: 7 });

  const child = trace.find((e) => e.tid !== pid)!.tid;
  const calls = (tid: number) => trace.filter((e) => e.tid === tid).map((e) => `${e.name}=${e.result}`);
  expect(calls(pid)).toEqual(["rt_sigaction=0", `clone=${child}`, "rt_sigprocmask=0", "kill=0"]);
  expect(calls(child)).toEqual([
    "futex=?",
    `gettid=${child}`,
    expect.stringMatching(/^rt_sigreturn=/),
    "exit_group=?",
  ]);
  const order = trace.map((e) => `${e.tid === pid ? "main" : "child"}:${e.name}`);
  expect(order.indexOf("main:kill")).toBeGreaterThan(order.indexOf("child:futex"));
  expect(order.indexOf("child:gettid")).toBeGreaterThan(order.indexOf("main:kill"));
  const [, inHandler, , exitGroup] = trace.filter((e) => e.tid === child);
  expect(inHandler!.x9).toBe(BigInt(SIGUSR1)); // the handler was entered on the parked thread with X0 = signal
  expect(inHandler!.sp).toBeLessThan(BigInt(CHILD_STACK)); // its signal frame is on that thread's stack
  expect(exitGroup!.x9).toBe(BigInt.asUintN(64, -4n)); // back from the handler: the wait ended with -EINTR
  expect(exitGroup!.sp).toBe(BigInt(CHILD_STACK)); // rt_sigreturn restored its stack
});

test("a guest that never clones keeps its one vCPU on the main thread: no Worker at all", () => {
  const { guest, vm, trace } = guestWithThreads([
    { step: "syscall", number: NR.gettid, pc: 0x40_1000 },
    { step: "syscall", number: NR.exit_group, args: [9], pc: 0x40_1004 },
  ]);
  expect(guest.run()).toEqual({ kind: "exited", status: 9 });
  expect(trace.map((e) => `${e.name}=${e.result}`)).toEqual([`gettid=${process.pid}`, "exit_group=?"]);
  expect(trace.map((e) => e.owners)).toEqual([[0], [0]]);
  expect(trace[1]!.x9).toBe(BigInt(process.pid));
  expect(vm.shared.slotOwners()).toEqual([]);
});

test("fork answers ENOSYS once the guest's vCPUs live in Workers (a forked child would have only one thread)", () => {
  const SIGCHLD = 17;
  const { guest, trace } = guestWithThreads(
    [
      {
        step: "syscall",
        number: NR.clone,
        args: [THREAD_FLAGS, CHILD_STACK, 0, CHILD_TLS, 0],
        pc: 0x40_1000,
      },
    ],
    [
      [
        { step: "syscall", number: NR.clone, args: [SIGCHLD, 0, 0, 0, 0], pc: 0x40_1004 },
        { step: "syscall", number: NR.exit_group, args: [0], pc: 0x40_1008 },
      ],
      [{ step: "spin-until-kicked", pc: 0x40_2000 }],
    ],
  );
  expect(guest.run()).toEqual({ kind: "exited", status: 0 });
  const pid = process.pid;
  const own = trace.filter((e) => e.tid === pid);
  expect(own.map((e) => e.name)).toEqual(["clone", "clone", "exit_group"]);
  expect(own[1]!.result).toBe("-1"); // the fork
  expect(own[2]!.x9).toBe(BigInt.asUintN(64, -38n)); // the guest saw -ENOSYS
});

test("a parked thread's deadline ends its wait (FUTEX_WAIT with an expired timeout: -ETIMEDOUT) while another runs", () => {
  const TIMESPEC = BASE + 0x200; // { 0 s, 0 ns }: already over when the wait parks
  const { guest, trace, fake } = guestWithThreads(
    [
      {
        step: "syscall",
        number: NR.clone,
        args: [THREAD_FLAGS, CHILD_STACK, 0, CHILD_TLS, 0],
        pc: 0x40_1000,
      },
    ],
    [
      [
        {
          step: "syscall",
          number: NR.futex,
          args: [FUTEX_WORD, FUTEX_WAIT_PRIVATE, 0, TIMESPEC],
          pc: 0x40_1004,
        },
        { step: "syscall", number: NR.exit_group, args: [5], pc: 0x40_1008 },
      ],
      [{ step: "spin-until-kicked", pc: 0x40_2000 }],
    ],
  );
  expect(guest.run()).toEqual({ kind: "exited", status: 5 });
  expect(trace.map((e) => e.name)).toEqual(["clone", "futex", "exit_group"]);
  expect(trace[1]!.result).toBe("?"); // parked, not answered at once: more than one thread
  expect(trace[2]!.x9).toBe(BigInt.asUintN(64, -110n)); // woken by its deadline with ETIMEDOUT
  expect(fake.exitsRequested).toEqual([2n]); // the other thread ran all along, until exit_group stopped it
});

test("a clone that cannot get a vCPU (its Worker does not start) fails with EAGAIN and the process goes on", () => {
  const { guest, trace } = guestWithThreads(
    [
      {
        step: "syscall",
        number: NR.clone,
        args: [THREAD_FLAGS, CHILD_STACK, 0, CHILD_TLS, CHILD_TID],
        pc: 0x40_1000,
      },
      { step: "syscall", number: NR.gettid, pc: 0x40_1004 },
      { step: "syscall", number: NR.exit_group, args: [4], pc: 0x40_1008 },
    ],
    [],
    new URL("./no-such-worker-host.ts", import.meta.url).href,
  );
  expect(guest.run()).toEqual({ kind: "exited", status: 4 });
  const pid = guest.runtime.process.pid;
  expect(trace.map((e) => `${e.name}=${e.result}`)).toEqual(["clone=-1", `gettid=${pid}`, "exit_group=?"]);
  expect(trace[0]!.line).toContain("= -1 EAGAIN");
  expect(guest.runtime.process.threads.size).toBe(1);
});
