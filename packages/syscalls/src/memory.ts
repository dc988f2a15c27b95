/**
 * Bounds-checked access to guest memory for the handlers. Every method fails with -EFAULT (never
 * throws, never touches host memory outside the slab) when the guest range is not accessible; the
 * runtime decides accessibility from its region tracker / page tables (a guard page or unmapped page
 * is not accessible).
 *
 * Identity model: guest address == offset into `bytes`; host address == hostAddress + guest address.
 */
import { EFAULT, ENAMETOOLONG } from "./abi/errno.ts";
import { PATH_MAX } from "./abi/fcntl.ts";

export interface GuestMemorySource {
  /** The whole slab: index == guest address. */
  readonly bytes: Uint8Array;
  /** Host address of bytes[0]. */
  readonly hostAddress: number;
  /** May the guest (hence a syscall on its behalf) access [address, address+length) for reading / writing? */
  isAccessible(address: number, length: number, write: boolean): boolean;
}

const PAGE_SIZE = 4096;
const decoder = new TextDecoder("utf-8", { fatal: false });
const encoder = new TextEncoder();

export class GuestMemory {
  readonly bytes: Uint8Array;
  readonly hostAddress: number;
  readonly size: number;
  private readonly view: DataView;
  private readonly source: GuestMemorySource;

  constructor(source: GuestMemorySource) {
    this.source = source;
    this.bytes = source.bytes;
    this.hostAddress = source.hostAddress;
    this.size = source.bytes.length;
    this.view = new DataView(source.bytes.buffer, source.bytes.byteOffset, source.bytes.byteLength);
  }

  /** Whole range inside the slab and accessible. Length 0 is always fine (Linux never faults on it). */
  check(address: number, length: number, write: boolean): boolean {
    if (length === 0) return true;
    if (!(address >= 0 && length > 0 && address + length <= this.size)) return false;
    return this.source.isAccessible(address, length, write);
  }

  /**
   * How many bytes from `address` (up to `length`) are accessible: what a host read/write may use
   * before the first fault, as Linux copies up to the fault and returns the partial count.
   */
  accessiblePrefix(address: number, length: number, write: boolean): number {
    if (this.check(address, length, write)) return length;
    if (!(address >= 0 && address < this.size)) return 0;
    let end = address;
    const limit = Math.min(address + length, this.size);
    while (end < limit) {
      const next = Math.min(limit, (Math.floor(end / PAGE_SIZE) + 1) * PAGE_SIZE);
      if (!this.source.isAccessible(end, next - end, write)) break;
      end = next;
    }
    return end - address;
  }

  /** Host pointer for [address, address+length), or -EFAULT. */
  hostPointer(address: number, length: number, write: boolean): number {
    return this.check(address, length, write) ? this.hostAddress + address : -EFAULT;
  }

  readU8(address: number): number {
    return this.check(address, 1, false) ? this.bytes[address]! : -EFAULT;
  }

  readU16(address: number): number {
    return this.check(address, 2, false) ? this.view.getUint16(address, true) : -EFAULT;
  }

  readU32(address: number): number {
    return this.check(address, 4, false) ? this.view.getUint32(address, true) : -EFAULT;
  }

  readI32(address: number): number {
    // An i32 can itself be -14, so callers that need both check() first and then use this.
    return this.check(address, 4, false) ? this.view.getInt32(address, true) : -EFAULT;
  }

  /** u64 as a number: exact below 2^53, larger values become Infinity (fail closed in range checks). */
  readU64(address: number): number {
    if (!this.check(address, 8, false)) return -EFAULT;
    const hi = this.view.getUint32(address + 4, true);
    return hi >= 0x20_0000
      ? Number.POSITIVE_INFINITY
      : hi * 0x1_0000_0000 + this.view.getUint32(address, true);
  }

  /** u64 exactly, or -EFAULT as a number. */
  readU64Big(address: number): bigint | number {
    return this.check(address, 8, false) ? this.view.getBigUint64(address, true) : -EFAULT;
  }

  /** i64 as a number (exact for |v| < 2^53), or -EFAULT; check() first when the value may be negative. */
  readI64(address: number): number {
    if (!this.check(address, 8, false)) return -EFAULT;
    return this.view.getInt32(address + 4, true) * 0x1_0000_0000 + this.view.getUint32(address, true);
  }

  writeU8(address: number, value: number): number {
    if (!this.check(address, 1, true)) return -EFAULT;
    this.bytes[address] = value;
    return 0;
  }

  writeU16(address: number, value: number): number {
    if (!this.check(address, 2, true)) return -EFAULT;
    this.view.setUint16(address, value, true);
    return 0;
  }

  writeU32(address: number, value: number): number {
    if (!this.check(address, 4, true)) return -EFAULT;
    this.view.setUint32(address, value >>> 0, true);
    return 0;
  }

  /** Writes a u64 from a number (negative numbers are written as two's complement) or a bigint. */
  writeU64(address: number, value: number | bigint): number {
    if (!this.check(address, 8, true)) return -EFAULT;
    if (typeof value === "bigint") {
      this.view.setBigUint64(address, BigInt.asUintN(64, value), true);
    } else {
      this.view.setUint32(address, value >>> 0, true);
      this.view.setUint32(address + 4, Math.floor(value / 0x1_0000_0000) >>> 0, true);
    }
    return 0;
  }

  /** A copy of guest bytes, or -EFAULT. */
  readBytes(address: number, length: number): Uint8Array | number {
    if (!this.check(address, length, false)) return -EFAULT;
    return this.bytes.slice(address, address + length);
  }

  /** A zero-copy view of guest bytes (valid until the guest changes them), or -EFAULT. */
  viewBytes(address: number, length: number, write: boolean): Uint8Array | number {
    if (!this.check(address, length, write)) return -EFAULT;
    return this.bytes.subarray(address, address + length);
  }

  writeBytes(address: number, data: Uint8Array): number {
    if (!this.check(address, data.length, true)) return -EFAULT;
    // Nothing to copy: the address may be anything (even Infinity, an unrepresentable pointer), as on Linux.
    if (data.length > 0) this.bytes.set(data, address);
    return 0;
  }

  /**
   * Length of the NUL-terminated string at `address` (without the NUL), or -EFAULT / -ENAMETOOLONG
   * when no NUL is found within `max` bytes (PATH_MAX, including the NUL, for paths).
   * Scans page by page so a string that ends just before an inaccessible page is fine.
   */
  cStringLength(address: number, max: number = PATH_MAX): number {
    if (!(address >= 0 && address < this.size)) return -EFAULT;
    let at = address;
    const limit = Math.min(address + max, this.size);
    while (at < limit) {
      const pageEnd = Math.min(limit, (Math.floor(at / PAGE_SIZE) + 1) * PAGE_SIZE);
      if (!this.source.isAccessible(at, pageEnd - at, false)) return -EFAULT;
      const nul = this.bytes.subarray(at, pageEnd).indexOf(0);
      if (nul >= 0) return at + nul - address;
      at = pageEnd;
    }
    return address + max > this.size ? -EFAULT : -ENAMETOOLONG;
  }

  /** The NUL-terminated string at `address` decoded as UTF-8, or -EFAULT / -ENAMETOOLONG. */
  readCString(address: number, max: number = PATH_MAX): string | number {
    const length = this.cStringLength(address, max);
    if (length < 0) return length;
    return decoder.decode(this.bytes.subarray(address, address + length));
  }

  /** Writes `text` as UTF-8 plus a NUL; returns bytes written (with the NUL) or -EFAULT. */
  writeCString(address: number, text: string): number {
    const data = encoder.encode(`${text}\0`);
    const r = this.writeBytes(address, data);
    return r < 0 ? r : data.length;
  }

  /**
   * Reads an iovec array: returns [base, len] pairs, or -EFAULT. Lengths are u64; anything that does not
   * fit a number comes back as Infinity, which callers treat as EINVAL (Linux: total > SSIZE_MAX).
   */
  readIovec(address: number, count: number): Array<[base: number, length: number]> | number {
    if (!this.check(address, count * 16, false)) return -EFAULT;
    const out: Array<[number, number]> = new Array(count);
    for (let i = 0; i < count; i++) {
      out[i] = [this.readU64(address + 16 * i), this.readU64(address + 16 * i + 8)];
    }
    return out;
  }
}
