/** Linux mmap protection bits (include/uapi/asm-generic/mman-common.h). */
export const PROT_NONE = 0;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const PROT_EXEC = 4;

/** Linux errno: out of page-table memory. Operations return -ENOMEM. */
export const ENOMEM = 12;
