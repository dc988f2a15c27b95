import { HV_DENIED, HV_RETURN_NAMES } from "./constants.ts";
import { UNSIGNED_REASON } from "./signing.ts";

/** Name of an hv_return_t ("HV_BAD_ARGUMENT"), or "unknown hv_return_t" for codes not in our table. */
export function hvReturnName(code: number): string {
  return HV_RETURN_NAMES[code >>> 0] ?? "unknown hv_return_t";
}

export function hvReturnHex(code: number): string {
  return `0x${(code >>> 0).toString(16).padStart(8, "0")}`;
}

/** A Hypervisor.framework call failed: "hv_vcpu_run failed: HV_BAD_ARGUMENT (0xfae94003)". */
export class HvfError extends Error {
  readonly code: number;
  constructor(
    readonly call: string,
    code: number,
    detail?: string,
  ) {
    const unsigned = code >>> 0;
    let message = `${call} failed: ${hvReturnName(unsigned)} (${hvReturnHex(unsigned)})`;
    if (unsigned === HV_DENIED && call.startsWith("hv_vm_create")) {
      message += `: this process lacks the com.apple.security.hypervisor entitlement; ${UNSIGNED_REASON.split(": ")[1]}`;
    }
    if (detail) message += `: ${detail}`;
    super(message);
    this.name = "HvfError";
    this.code = unsigned;
  }
}

/** Throw HvfError unless `code` is HV_SUCCESS. */
export function check(call: string, code: number): void {
  if (code !== 0) throw new HvfError(call, code);
}

/** A vCPU was used from a thread other than the one that created it (Hypervisor.framework forbids it). */
export class HvfThreadError extends Error {
  constructor(call: string, vcpuId: number, ownerThread: number, currentThread: number) {
    super(
      `${call} on vCPU ${vcpuId} from thread ${currentThread}, but the vCPU belongs to thread ${ownerThread}: ` +
        "Hypervisor.framework lets only the creating thread touch a vCPU (only hv_vcpus_exit crosses threads; use remoteStopToken())",
    );
    this.name = "HvfThreadError";
  }
}
