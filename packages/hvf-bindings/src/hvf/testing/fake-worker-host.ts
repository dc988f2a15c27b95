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
   * frame on re-entry (the previous syscall's result as the guest sees it), X10 the vCPU's TTBR0_EL1.
   */
  | { step: "syscall"; number: number; args?: number[]; pc: number }
  /** The guest spins at EL0 until hv_vcpus_exit kicks it; it is then at `pc`. */
  | { step: "spin-until-kicked"; pc: number }
  /** A store to `address` faulted (translation fault, level 3). */
  | { step: "store-fault"; address: number; pc: number };

export interface FakeWorkerOptions {
  exitLine: SharedArrayBuffer;
  script: FakeWorkerStep[];
  /** Replay the last step forever once the script is done (benchmarks). */
  repeatLast?: boolean;
}

const syndrome = (ec: number, iss = 0) => (BigInt(ec) << 26n) | (1n << 25n) | BigInt(iss);
/** ISS of a level-3 translation fault on a write (WnR). */
const STORE_TRANSLATION_FAULT = (1 << 6) | 0x07;

function play(description: FakeWorkerStep): Step {
  switch (description.step) {
    case "syscall":
      return (vcpu: FakeVcpu, fake: FakeHypervisor) => {
        const previousResult = fake.frameOf(vcpu).getBigUint64(FRAME.X0, true);
        const x: Record<number, bigint> = {
          8: BigInt(description.number),
          9: previousResult,
          10: vcpu.sysregs.get(HV_SYS_REG.TTBR0_EL1) ?? 0n,
        };
        description.args?.forEach((value, n) => {
          x[n] = BigInt(value);
        });
        fake.shimExits(vcpu, HVC.SYSCALL, { esr: syndrome(EC.SVC64), elr: BigInt(description.pc), x });
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

export function createHvfHost(descriptor: HvfVmDescriptor, options: FakeWorkerOptions): HvfHost {
  const fake = new FakeHypervisor({ exitLine: options.exitLine });
  fake.thread = threadId;
  fake.privateBytes = new Uint8Array(toArrayBuffer(descriptor.privateAddress, 0, PRIVATE_SIZE));
  fake.script = options.script.map(play);
  if (options.repeatLast && fake.script.length > 0) fake.idleStep = fake.script[fake.script.length - 1]!;
  return fake.host();
}
