/**
 * The capabilities the guest runs with: the host process's own (the guest is this process to the host kernel),
 * from /proc/self/status, read once. Being uid 0 is not enough: a container's root often lacks some (here:
 * CAP_SYS_RESOURCE). Without /proc (macOS), uid 0 stands in for every capability.
 */
import { readFileSync } from "node:fs";

type CapabilitySet = "CapEff" | "CapBnd";
const sets = new Map<CapabilitySet, bigint>();

function capabilitySet(name: CapabilitySet, uid: number): bigint {
  let set = sets.get(name);
  if (set === undefined) {
    try {
      const line = new RegExp(`^${name}:\\s*([0-9a-f]+)$`, "m").exec(
        readFileSync("/proc/self/status", "utf8"),
      );
      set = line ? BigInt(`0x${line[1]}`) : 0n;
    } catch {
      set = uid === 0 ? -1n : 0n;
    }
    sets.set(name, set);
  }
  return set;
}

/** Is capability `bit` (capability(7)) in the effective set? */
export function hasCapability(bit: number, uid: number): boolean {
  return (capabilitySet("CapEff", uid) & (1n << BigInt(bit))) !== 0n;
}

/** Is capability `bit` in the bounding set (PR_CAPBSET_READ)? */
export function inBoundingSet(bit: number, uid: number): boolean {
  return (capabilitySet("CapBnd", uid) & (1n << BigInt(bit))) !== 0n;
}
