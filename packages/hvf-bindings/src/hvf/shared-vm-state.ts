/**
 * The part of a VM's state that every thread holding one of its vCPUs must see: the translation
 * root, the queued TLB/I-cache maintenance and the vCPU slot table. It lives in a SharedArrayBuffer
 * so a Worker that attached to the VM (`attachHvfVm`) and the thread that created it share it.
 *
 * Maintenance is queued per VM and taken by whichever vCPU enters the guest next: the shim performs
 * it with the inner-shareable forms (TLBI VMALLE1IS, TLBI VAAE1IS, IC IALLUIS), which act on every
 * PE of the VM, so one vCPU doing it suffices.
 */
import { ACTION, MAX_VCPUS, TLBI_PAGES_MAX } from "../shim/layout.ts";

/** Int32 word indices. */
const WORD = {
  LOCK: 0,
  /** Slot table: one word per vCPU slot, 0 free, else the owning thread's id + 1. */
  SLOTS: 16,
} as const;
const INT32_WORDS = WORD.SLOTS + MAX_VCPUS;
/** Byte offsets of the 8-byte fields (after the Int32 words). */
const FIELD = {
  TRANSLATION_ROOT: INT32_WORDS * 4,
  ACTION: INT32_WORDS * 4 + 8,
  PAGE: INT32_WORDS * 4 + 16,
  COUNT: INT32_WORDS * 4 + 24,
} as const;
export const SHARED_VM_STATE_SIZE = FIELD.COUNT + 8;

/** Merged TLB/I-cache work waiting for the next shim entry. */
export interface QueuedActions {
  action: bigint;
  page: bigint;
  count: bigint;
}

const bigMin = (a: bigint, b: bigint): bigint => (a < b ? a : b);
const bigMax = (a: bigint, b: bigint): bigint => (a > b ? a : b);

export class SharedVmState {
  readonly buffer: SharedArrayBuffer;
  private readonly words: Int32Array;
  private readonly view: DataView;

  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(SHARED_VM_STATE_SIZE)) {
    if (buffer.byteLength < SHARED_VM_STATE_SIZE) throw new RangeError("shared VM state buffer too small");
    this.buffer = buffer;
    this.words = new Int32Array(buffer, 0, INT32_WORDS);
    this.view = new DataView(buffer);
  }

  // Critical sections are a handful of loads and stores: spin, yielding through a 0-ms wait.
  private lock(): void {
    while (Atomics.compareExchange(this.words, WORD.LOCK, 0, 1) !== 0)
      Atomics.wait(this.words, WORD.LOCK, 1, 0);
  }
  private unlock(): void {
    Atomics.store(this.words, WORD.LOCK, 0);
    Atomics.notify(this.words, WORD.LOCK, 1);
  }

  get translationRoot(): number {
    this.lock();
    const root = this.view.getFloat64(FIELD.TRANSLATION_ROOT, true);
    this.unlock();
    return root;
  }
  set translationRoot(root: number) {
    this.lock();
    this.view.setFloat64(FIELD.TRANSLATION_ROOT, root, true);
    this.unlock();
  }

  /** Add maintenance to the queue: two page ranges merge when they fit in one, else become a full flush. */
  queueAction(action: bigint, page = 0n, count = 0n): void {
    this.lock();
    try {
      const v = this.view;
      let queued = v.getBigUint64(FIELD.ACTION, true);
      if (action & ACTION.TLBI_PAGES) {
        if (queued & ACTION.TLBI_PAGES) {
          const qPage = v.getBigUint64(FIELD.PAGE, true);
          const qCount = v.getBigUint64(FIELD.COUNT, true);
          const start = bigMin(qPage, page);
          const end = bigMax(qPage + qCount, page + count);
          if (end - start <= BigInt(TLBI_PAGES_MAX) && !(page > qPage + qCount || qPage > page + count)) {
            v.setBigUint64(FIELD.PAGE, start, true);
            v.setBigUint64(FIELD.COUNT, end - start, true);
          } else {
            queued = (queued & ~ACTION.TLBI_PAGES) | ACTION.TLBI_ALL;
          }
        } else {
          v.setBigUint64(FIELD.PAGE, page, true);
          v.setBigUint64(FIELD.COUNT, count, true);
        }
      }
      queued |= action;
      if (queued & ACTION.TLBI_ALL) queued &= ~ACTION.TLBI_PAGES;
      v.setBigUint64(FIELD.ACTION, queued, true);
    } finally {
      this.unlock();
    }
  }

  /** Take (and clear) the queued maintenance. */
  takeActions(): QueuedActions {
    const v = this.view;
    // Unlocked peek: the common case is an empty queue, and a racing producer is seen next entry.
    if (v.getBigUint64(FIELD.ACTION, true) === 0n) return { action: 0n, page: 0n, count: 0n };
    this.lock();
    const taken = {
      action: v.getBigUint64(FIELD.ACTION, true),
      page: v.getBigUint64(FIELD.PAGE, true),
      count: v.getBigUint64(FIELD.COUNT, true),
    };
    v.setBigUint64(FIELD.ACTION, 0n, true);
    v.setBigUint64(FIELD.PAGE, 0n, true);
    v.setBigUint64(FIELD.COUNT, 0n, true);
    this.unlock();
    return taken;
  }

  /** Claim the lowest free vCPU slot for `thread`; -1 when all are taken. */
  claimSlot(thread: number): number {
    for (let i = 0; i < MAX_VCPUS; i++) {
      if (Atomics.compareExchange(this.words, WORD.SLOTS + i, 0, thread + 1) === 0) return i;
    }
    return -1;
  }

  releaseSlot(index: number): void {
    Atomics.store(this.words, WORD.SLOTS + index, 0);
  }

  /** Thread ids owning each claimed slot. */
  slotOwners(): { slot: number; thread: number }[] {
    const owners: { slot: number; thread: number }[] = [];
    for (let i = 0; i < MAX_VCPUS; i++) {
      const word = Atomics.load(this.words, WORD.SLOTS + i);
      if (word !== 0) owners.push({ slot: i, thread: word - 1 });
    }
    return owners;
  }
}
