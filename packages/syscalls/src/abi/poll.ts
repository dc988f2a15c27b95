/** poll/select ABI (asm-generic, identical on arm64 and x86_64). */

/** struct pollfd { int fd; short events; short revents; } */
export const POLLFD = { size: 8, fd: 0, events: 4, revents: 6 } as const;

export const POLLIN = 0x1;
export const POLLPRI = 0x2;
export const POLLOUT = 0x4;
export const POLLERR = 0x8;
export const POLLHUP = 0x10;
export const POLLNVAL = 0x20;
export const POLLRDNORM = 0x40;
export const POLLRDBAND = 0x80;
export const POLLWRNORM = 0x100;
export const POLLWRBAND = 0x200;

/** pselect6's sixth argument: struct { const sigset_t *ss; size_t ss_len; } */
export const SIGSET_ARGPACK = { size: 16, set: 0, length: 8 } as const;

/** fd_set words are longs: select reads and writes ⌈n/64⌉ × 8 bytes of each set. */
export const FD_SET_WORD_BITS = 64;

/** fs/file.c: the first fd table holds BITS_PER_LONG fds; select clamps n to the table's size. */
export const NR_OPEN_DEFAULT = 64;

export const NSEC_PER_SEC = 1_000_000_000;
