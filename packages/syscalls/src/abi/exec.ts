/** execve(2) limits of Linux 6.18 (include/uapi/linux/binfmts.h, fs/exec.c, fs/binfmt_script.c). */

/** Bytes of the file the binary handlers see first (BINPRM_BUF_SIZE): a #! line must fit in them. */
export const BINPRM_BUF_SIZE = 256;
/** Longest single argument or environment string, NUL included (MAX_ARG_STRLEN = 32 pages). */
export const MAX_ARG_STRLEN = 32 * 4096;
/** Most argv or envp entries (MAX_ARG_STRINGS). */
export const MAX_ARG_STRINGS = 0x7fffffff;
/** ARG_MAX: the argument space every process gets whatever its stack limit. */
export const ARG_MAX = 32 * 4096;
/** _STK_LIM: the argument space is at most 3/4 of this (and at most a quarter of RLIMIT_STACK). */
export const STK_LIM = 8 * 1024 * 1024;
/** exec_binprm: interpreter rewrites (#! scripts, binfmt_misc) beyond this depth fail with ELOOP. */
export const MAX_INTERPRETER_DEPTH = 5;
