/**
 * The exact faulting address (Linux's si_addr / FAR_EL1) from the page Unicorn's TLB-fill hook saw and the
 * decoded access of the instruction at PC.
 */
import type { MemoryAccess } from "./decode.ts";

/**
 * The first byte of `access` inside the faulting guest page, or null when the access does not touch the
 * Unicorn page that faulted (`faultPage`, `unicornPageSize` bytes) — a decoder gap or a stale instruction;
 * the caller then keeps the page address.
 *
 * An access that starts below the faulting page (an unaligned load crossing into an unmapped page, an LDP
 * whose second half crosses) reports the faulting guest page's first byte, not its own start. The guest
 * page (`guestPageSize`, 4 KiB) and not Unicorn's (1 KiB on arm64) bounds this: a store at page+0x3fc
 * that crosses a 1 KiB boundary inside one read-only 4 KiB page faults at page+0x3fc, as on hardware.
 */
export function exactFaultAddress(
  access: MemoryAccess | null,
  faultPage: bigint,
  unicornPageSize: number,
  guestPageSize: number,
): bigint | null {
  if (!access) return null;
  const start = access.address;
  const end = start + BigInt(access.size); // not reduced mod 2^64: a wrapping access misses every page
  if (end <= faultPage || start >= faultPage + BigInt(unicornPageSize)) return null;
  const guestPage = faultPage & ~BigInt(guestPageSize - 1);
  return start > guestPage ? start : guestPage;
}
