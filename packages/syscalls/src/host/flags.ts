/**
 * Open-flag translation between the arm64 guest and the host. Bits that mean the same thing on both
 * sides pass through; the four bits arm64 moved (O_DIRECTORY, O_NOFOLLOW, O_DIRECT, O_LARGEFILE) are
 * remapped. Built once from the table in abi/fcntl.ts, applied with a handful of bit operations.
 */
import { OPEN_FLAGS } from "../abi/fcntl.ts";
import { HOST_FLAG_ARCH, type HostFlagArch } from "./ffi.ts";

export interface FlagTranslator {
  /** Guest open flags → host open flags. */
  toHost(flags: number): number;
  /** Host open flags (F_GETFL) → guest open flags. */
  toGuest(flags: number): number;
}

export function createFlagTranslator(hostArch: HostFlagArch = HOST_FLAG_ARCH): FlagTranslator {
  let movedGuest = 0;
  let movedHost = 0;
  const pairs: Array<[guest: number, host: number]> = [];
  for (const [, guest, x86] of OPEN_FLAGS) {
    const host = hostArch === "x86_64" ? x86 : guest;
    if (guest === host) continue;
    movedGuest |= guest;
    movedHost |= host;
    pairs.push([guest, host]);
  }
  if (pairs.length === 0) return { toHost: (f) => f, toGuest: (f) => f };
  return {
    toHost(flags) {
      let out = flags & ~movedGuest;
      for (const [guest, host] of pairs) if (flags & guest) out |= host;
      return out;
    },
    toGuest(flags) {
      let out = flags & ~movedHost;
      for (const [guest, host] of pairs) if (flags & host) out |= guest;
      return out;
    },
  };
}
