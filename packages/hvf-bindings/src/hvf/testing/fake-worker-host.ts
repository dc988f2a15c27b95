/**
 * The scripted fake framework *inside a vCPU Worker* (vcpu-worker.ts loads this module when given
 * `hostModule`). Scripts cross the thread boundary as data, so the steps are described here and
 * played by a FakeHypervisor living on the worker thread. Its hv_vcpus_exit line is shared with the
 * main thread's fake, so the main thread's requestStop really interrupts a run in the worker.
 */
import { toArrayBuffer } from "bun:ffi";
import { threadId } from "node:worker_threads";
import { FRAME, HVC, PRIVATE_SIZE } from "../../shim/layout.ts";
import { HV_SYS_REG } from "../constants.ts";
import { EC } from "../syndrome-constants.ts";
import type { HvfHost, HvfVmDescriptor } from "../vm.ts";
import { FakeHypervisor, type FakeVcpu, type Step } from "./fake-hypervisor.ts";

export type FakeWorkerStep =
  /**
   * `svc #0` at `pc` with X8 = number and X0.. = args. X9 receives the X0 the shim found in the
   * frame on re-entry (the previous syscall's result as the guest sees it), X10 the vCPU's TTBR0_EL1,
   * X11 its TPIDR_EL0. SP_EL0 stays what it was. With `after`, the guest first spins until the u32 at that
   * guest address holds that value (a guest waiting on a flag in shared memory).
   */
  | {
      step: "syscall";
      number: number;
      args?: number[];
      pc: number;
      after?: { address: number; value: number };
    }
  /** The guest spins at EL0 until hv_vcpus_exit kicks it; it is then at `pc`. */
  | { step: "spin-until-kicked"; pc: number }
  /** A store to `address` faulted (translation fault, level 3). */
  | { step: "store-fault"; address: number; pc: number };

export interface FakeWorkerOptions {
  exitLine: SharedArrayBuffer;
  /** The first vCPU handle of this worker's fake (distinct per worker when several share the exit line). */
  firstHandle?: number;
  script: FakeWorkerStep[];
  /** Replay the last step forever once the script is done (benchmarks). */
  repeatLast?: boolean;
}

const syndrome = (ec: number, iss = 0) => (BigInt(ec) << 26n) | (1n << 25n) | BigInt(iss);
/** ISS of a level-3 translation fault on a write (WnR). */
const STORE_TRANSLATION_FAULT = (1 << 6) | 0x07;

/** A step description as the fake's Step (`guestMemory`: host address of guest memory, for `after`). */
export function fakeStep(description: FakeWorkerStep, guestMemory: number): Step {
  switch (description.step) {
    case "syscall":
      return (vcpu: FakeVcpu, fake: FakeHypervisor) => {
        if (description.after) {
          const { address, value } = description.after;
          const word = new Uint32Array(toArrayBuffer(guestMemory, address, 4));
          while (Atomics.load(word, 0) !== value >>> 0) Bun.sleepSync(1);
        }
        const frame = fake.frameOf(vcpu);
        const x: Record<number, bigint> = {
          8: BigInt(description.number),
          9: frame.getBigUint64(FRAME.X0, true),
          10: vcpu.sysregs.get(HV_SYS_REG.TTBR0_EL1) ?? 0n,
          11: vcpu.sysregs.get(HV_SYS_REG.TPIDR_EL0) ?? 0n,
        };
        description.args?.forEach((value, n) => {
          x[n] = BigInt(value);
        });
        const sp = frame.getBigUint64(FRAME.SP_EL0, true);
        fake.shimExits(vcpu, HVC.SYSCALL, { esr: syndrome(EC.SVC64), elr: BigInt(description.pc), x, sp });
      };
    case "spin-until-kicked":
      return (vcpu, fake) => fake.runUntilKicked(vcpu, BigInt(description.pc));
    case "store-fault":
      return (vcpu, fake) =>
        fake.shimExits(vcpu, HVC.ABORT, {
          esr: syndrome(EC.DABT_LOWER, STORE_TRANSLATION_FAULT),
          elr: BigInt(description.pc),
          far: BigInt(description.address),
        });
  }
}

/** This module, for `hostModule` (the worker imports it). */
export const FAKE_WORKER_HOST_MODULE = import.meta.url;

export function createHvfHost(descriptor: HvfVmDescriptor, options: FakeWorkerOptions): HvfHost {
  const fake = new FakeHypervisor({ exitLine: options.exitLine, firstHandle: options.firstHandle });
  fake.thread = threadId;
  fake.privateBytes = new Uint8Array(toArrayBuffer(descriptor.privateAddress, 0, PRIVATE_SIZE));
  fake.script = options.script.map((step) => fakeStep(step, descriptor.memoryAddress));
  if (options.repeatLast && fake.script.length > 0) fake.idleStep = fake.script[fake.script.length - 1]!;
  return fake.host();
}
