/**
 * Pure decoders: hv_vcpu_exit_t, ESR syndromes, and the mapping from an EL0 exception (as the shim
 * reports it) to the backend's `VcpuExit`. No FFI here; everything is unit-tested on any host.
 */
import type { AccessKind, VcpuExit } from "../backend.ts";
import { HV_EXIT_REASON_NAMES, HV_VCPU_EXIT } from "./constants.ts";
import { EC, EC_NAMES, ESR, FSC } from "./syndrome-constants.ts";

/** hv_vcpu_exit_t, read field by field. */
export interface HvExitInfo {
  reason: number;
  syndrome: bigint;
  virtualAddress: bigint;
  physicalAddress: bigint;
}

/** Read hv_vcpu_exit_t from a view over the framework-owned struct (32 bytes, little-endian). */
export function readExitInfo(view: DataView): HvExitInfo {
  return {
    reason: view.getUint32(HV_VCPU_EXIT.reason, true),
    syndrome: view.getBigUint64(HV_VCPU_EXIT.syndrome, true),
    virtualAddress: view.getBigUint64(HV_VCPU_EXIT.virtualAddress, true),
    physicalAddress: view.getBigUint64(HV_VCPU_EXIT.physicalAddress, true),
  };
}

export function exitReasonName(reason: number): string {
  return HV_EXIT_REASON_NAMES[reason] ?? `unknown exit reason ${reason}`;
}

export type FaultStatusKind =
  | "address-size"
  | "translation"
  | "access-flag"
  | "permission"
  | "alignment"
  | "external"
  | "tlb-conflict"
  | "other";

export interface FaultStatus {
  code: number;
  kind: FaultStatusKind;
  /** Translation table level for address-size/translation/access-flag/permission faults. */
  level?: number;
}

/** DFSC/IFSC (ISS[5:0]). */
export function decodeFaultStatus(code: number): FaultStatus {
  const fsc = code & ESR.FSC_MASK;
  if (fsc <= 0x0f) {
    const kinds: FaultStatusKind[] = ["address-size", "translation", "access-flag", "permission"];
    return { code: fsc, kind: kinds[fsc >> 2]!, level: fsc & 3 };
  }
  if (fsc === FSC.ALIGNMENT) return { code: fsc, kind: "alignment" };
  if (fsc === FSC.TLB_CONFLICT) return { code: fsc, kind: "tlb-conflict" };
  if (
    fsc === FSC.SYNC_EXTERNAL ||
    (fsc >= 0x14 && fsc <= 0x17) ||
    fsc === 0x18 ||
    (fsc >= 0x1c && fsc <= 0x1f)
  ) {
    return { code: fsc, kind: "external" };
  }
  return { code: fsc, kind: "other" };
}

export interface DecodedSyndrome {
  raw: bigint;
  /** Exception class, ESR[31:26]. */
  ec: number;
  ecName: string;
  /** 32-bit instruction (IL = 1). */
  il: boolean;
  /** ESR[24:0]. */
  iss: number;
  /** SVC/HVC/SMC/BRK immediate (ISS[15:0]); undefined for other classes. */
  immediate?: number;
  /** Instruction and data aborts only. */
  abort?: {
    status: FaultStatus;
    /** Data aborts: the access was a write (WnR set and not a cache-maintenance instruction). */
    write: boolean;
    /** WnR bit as reported. */
    wnr: boolean;
    /** The fault happened on a stage-1 table walk's stage-2 access. */
    s1ptw: boolean;
    /** A cache maintenance instruction faulted. */
    cm: boolean;
    /** FAR is not valid. */
    fnv: boolean;
    /** External abort. */
    ea: boolean;
  };
}

const bit = (value: number, index: number): boolean => ((value >>> index) & 1) === 1;

export function decodeSyndrome(syndrome: bigint | number): DecodedSyndrome {
  const raw = BigInt.asUintN(64, BigInt(syndrome));
  const low = Number(raw & 0xffff_ffffn);
  const ec = (low >>> ESR.EC_SHIFT) & ESR.EC_MASK;
  const iss = low & ESR.ISS_MASK;
  const decoded: DecodedSyndrome = {
    raw,
    ec,
    ecName: EC_NAMES[ec] ?? `EC 0x${ec.toString(16)}`,
    il: bit(low, ESR.IL_BIT),
    iss,
  };
  if (ec === EC.SVC64 || ec === EC.HVC64 || ec === EC.SMC64 || ec === EC.BRK64) {
    decoded.immediate = iss & ESR.IMM16_MASK;
  }
  const isData = ec === EC.DABT_LOWER || ec === EC.DABT_SAME;
  if (isData || ec === EC.IABT_LOWER || ec === EC.IABT_SAME) {
    const wnr = isData && bit(iss, ESR.WNR_BIT);
    const cm = isData && bit(iss, ESR.CM_BIT);
    decoded.abort = {
      status: decodeFaultStatus(iss),
      wnr,
      cm,
      write: wnr && !cm,
      s1ptw: bit(iss, ESR.S1PTW_BIT),
      fnv: bit(iss, ESR.FNV_BIT),
      ea: bit(iss, ESR.EA_BIT),
    };
  }
  return decoded;
}

/** The kind of access an abort was (Linux's rule: instruction abort = exec; WnR && !CM = write). */
export function abortAccess(decoded: DecodedSyndrome): AccessKind {
  if (decoded.ec === EC.IABT_LOWER || decoded.ec === EC.IABT_SAME) return "exec";
  return decoded.abort?.write ? "write" : "read";
}

/** Top-byte-ignore is on for EL0 (TCR.TBI0): the tag byte is not part of the address. */
const ADDRESS_MASK = (1n << 56n) - 1n;

function hex(value: bigint | number): string {
  return `0x${value.toString(16)}`;
}

/**
 * What a synchronous exception taken from EL0 means for the runtime. `far` and `elr` are FAR_EL1
 * and ELR_EL1 as the shim saved them (ELR is the faulting instruction for aborts, brk and undefined
 * instructions, which is the PC convention of `VcpuExit`).
 */
export function el0ExceptionToVcpuExit(syndrome: bigint | number, far: bigint, elr: bigint): VcpuExit {
  const decoded = decodeSyndrome(syndrome);
  const pc = Number(elr & ADDRESS_MASK);
  switch (decoded.ec) {
    case EC.SVC64:
      return { kind: "syscall" };
    case EC.IABT_LOWER:
    case EC.DABT_LOWER: {
      const abort = decoded.abort!;
      const kind = abort.status.kind;
      if (kind === "translation" || kind === "address-size") {
        return {
          kind: "fault",
          address: Number(far & ADDRESS_MASK),
          access: abortAccess(decoded),
          mapped: false,
        };
      }
      if (kind === "permission" || kind === "access-flag") {
        return {
          kind: "fault",
          address: Number(far & ADDRESS_MASK),
          access: abortAccess(decoded),
          mapped: true,
        };
      }
      // Alignment and external aborts are SIGBUS in Linux; VcpuExit has no such kind yet.
      return {
        kind: "backend-error",
        message: `unsupported guest exception: ${decoded.ecName}, ${kind} fault (FSC ${hex(abort.status.code)}) at ${hex(far)}, pc ${hex(elr)}`,
      };
    }
    case EC.BRK64:
      return { kind: "breakpoint", pc };
    case EC.UNKNOWN:
    case EC.ILLEGAL_STATE:
    case EC.SYS64:
    case EC.SVE_ACCESS:
    case EC.SIMD_FP_ACCESS:
    case EC.WFX:
    case EC.HVC64:
    case EC.SMC64:
      // Linux delivers SIGILL for all of these at EL0 (it does emulate some MRS of ID registers,
      // which this backend does not yet).
      return { kind: "undefined-instruction", pc };
    default:
      return {
        kind: "backend-error",
        message: `unsupported guest exception: ${decoded.ecName} (ESR ${hex(decoded.raw)}) at pc ${hex(elr)}, FAR ${hex(far)}`,
      };
  }
}
