export * from "./abi.ts";
export * from "./descriptor.ts";
export { type DescriptorInfo, PageTable, type PageTableOptions, type Translation } from "./pagetable.ts";
export { DEFAULT_MAX_BYTES, DEFAULT_MAX_RANGES, InvalidationBatch } from "./tlb.ts";
