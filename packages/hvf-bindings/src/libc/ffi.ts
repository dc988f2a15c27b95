/**
 * The few libc calls the HVF backend needs to own its memory (mmap/munmap), opened lazily.
 * Library: $GUEST_LIBC, else libSystem on macOS and glibc's libc.so.6 on Linux (tests use Linux).
 */
import { dlopen, FFIType, type Pointer, toArrayBuffer } from "bun:ffi";

const isDarwin = process.platform === "darwin";

/** mmap constants; the MAP_* values differ between macOS and Linux. */
export const MMAP = {
  PROT_READ: 1,
  PROT_WRITE: 2,
  MAP_PRIVATE: 2,
  MAP_ANON: isDarwin ? 0x1000 : 0x20,
  MAP_NORESERVE: isDarwin ? 0x40 : 0x4000,
} as const;

const errnoSymbol = isDarwin ? "__error" : "__errno_location";

const symbols = {
  // void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t offset): -1 on failure
  mmap: {
    args: [FFIType.ptr, FFIType.u64, FFIType.i32, FFIType.i32, FFIType.i32, FFIType.i64],
    returns: FFIType.i64_fast,
  },
  munmap: { args: [FFIType.ptr, FFIType.u64], returns: FFIType.i32 },
  [errnoSymbol]: { args: [], returns: FFIType.ptr },
} as const;

type Libc = ReturnType<typeof dlopen<typeof symbols>>;
let libc: Libc | null = null;

function load(): Libc {
  libc ??= dlopen(process.env.GUEST_LIBC || (isDarwin ? "/usr/lib/libSystem.B.dylib" : "libc.so.6"), symbols);
  return libc;
}

function errno(): number {
  const where = load().symbols[errnoSymbol]!() as number | null;
  return where ? new Int32Array(toArrayBuffer(where, 0, 4))[0]! : 0;
}

/** Reserve `size` bytes of zeroed, lazily backed, page-aligned host memory. */
export function mapAnonymous(size: number): number {
  const address = Number(
    load().symbols.mmap(
      null,
      size,
      MMAP.PROT_READ | MMAP.PROT_WRITE,
      MMAP.MAP_PRIVATE | MMAP.MAP_ANON | MMAP.MAP_NORESERVE,
      -1,
      0,
    ),
  );
  if (address === -1 || address === 0) throw new Error(`mmap of ${size} bytes failed (errno ${errno()})`);
  return address;
}

export function unmap(address: number, size: number): void {
  if (load().symbols.munmap(address as Pointer, size) !== 0)
    throw new Error(`munmap failed (errno ${errno()})`);
}
