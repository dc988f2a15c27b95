/** Linux mmap protection bits (include/uapi/asm-generic/mman-common.h). */
export const PROT_NONE = 0;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const PROT_EXEC = 4;

/** errno returned (negated) when an operation would exceed the region limit or finds no gap. */
export const ENOMEM = 12;

/** Linux's default vm.max_map_count (include/linux/mm.h DEFAULT_MAX_MAP_COUNT). */
export const DEFAULT_MAX_MAP_COUNT = 65530;

export const PAGE_SIZE = 4096;
