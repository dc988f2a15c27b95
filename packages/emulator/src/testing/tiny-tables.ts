/**
 * A deliberately small, independent AArch64 table writer for the emulator's own tests (so they do not
 * depend on @guest/pagetable): 4 KiB pages only, tables bump-allocated from a pool.
 */
export const PAGE = 4096;

export class TinyTables {
  private next: number;
  readonly root: number;
  private readonly view: DataView;
  constructor(memory: Uint8Array, poolBase: number) {
    this.view = new DataView(memory.buffer, memory.byteOffset, memory.byteLength);
    this.root = poolBase;
    this.next = poolBase + PAGE;
    memory.fill(0, poolBase, poolBase + PAGE);
  }
  private tableFor(address: number): number {
    let table = this.root;
    for (let level = 0; level < 3; level++) {
      const index = Math.floor(address / 2 ** (39 - 9 * level)) % 512;
      const slot = table + index * 8;
      const desc = this.view.getBigUint64(slot, true);
      if ((desc & 3n) === 3n) {
        table = Number(desc & 0x0000fffffffff000n);
        continue;
      }
      const fresh = this.next;
      this.next += PAGE;
      new Uint8Array(this.view.buffer, this.view.byteOffset + fresh, PAGE).fill(0);
      this.view.setBigUint64(slot, BigInt(fresh) | 3n, true);
      table = fresh;
    }
    return table;
  }
  /** Map [address, address+length) identity with EL0 permissions r/w/x (false,false,false = invalid). */
  map(address: number, length: number, read: boolean, write: boolean, exec: boolean): void {
    for (let page = address; page < address + length; page += PAGE) {
      const slot = this.tableFor(page) + (Math.floor(page / PAGE) % 512) * 8;
      if (!read && !write && !exec) {
        this.view.setBigUint64(slot, 0n, true);
        continue;
      }
      let desc = BigInt(page) | 3n | (1n << 10n) | (1n << 53n);
      if (read || write) desc |= 1n << 6n;
      if (!write) desc |= 1n << 7n;
      if (!exec) desc |= 1n << 54n;
      this.view.setBigUint64(slot, desc, true);
    }
  }
}
