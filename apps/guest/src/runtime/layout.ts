/**
 * The guest address-space layout (architecture.md, "Memory layout"). One 4 GiB slab: JavaScriptCore caps a
 * single ArrayBuffer view between 4 and 8 GiB, and one zero-copy view of all guest memory keeps every host
 * access a plain index. Larger guests need windowed views (future work, noted in the README).
 */
export const GUEST_MEMORY_SIZE = 2 ** 32;
/** Runtime-private window at the top: the page-table pool. Never a guest region. */
export const RESERVED_SIZE = 16 * 1024 * 1024;
export const RESERVED_START = GUEST_MEMORY_SIZE - RESERVED_SIZE;
/** vm.mmap_min_addr: nothing is ever mapped below it (null-pointer guard). */
export const MMAP_MIN_ADDR = 0x10000;
/** Where static-PIE executables are placed (ET_EXEC loads at its own addresses). */
export const PIE_LOAD_BASE = 0x400000;
/** Top of the main thread's stack, one 64 KiB gap below the reserved window. */
export const STACK_TOP = RESERVED_START - 0x10000;
/** RLIMIT_STACK default (8 MiB): the whole stack is mapped up front; its pages cost nothing until touched. */
export const STACK_SIZE = 8 * 1024 * 1024;
/** Linux keeps at least 128 MiB between the stack top and mmap_base (mm/util.c mmap_base, MIN_GAP). */
export const MMAP_BASE = STACK_TOP - 128 * 1024 * 1024;
/** The [vdso] page (one page just above the top-down mmap area): holds the rt_sigreturn trampoline. */
export const VDSO_BASE = MMAP_BASE;
