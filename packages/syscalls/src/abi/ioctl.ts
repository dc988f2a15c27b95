/** Terminal and file ioctl request numbers (asm-generic ioctls.h: arm64 and x86_64 agree on all of these). */

export const TCGETS = 0x5401;
export const TCSETS = 0x5402;
export const TCSETSW = 0x5403;
export const TCSETSF = 0x5404;
export const TIOCGPGRP = 0x540f;
export const TIOCSPGRP = 0x5410;
export const TIOCGWINSZ = 0x5413;
export const TIOCSWINSZ = 0x5414;
export const FIONREAD = 0x541b;
export const FIONBIO = 0x5421;
export const FIOCLEX = 0x5451;
export const FIONCLEX = 0x5450;

export const IOCTL_NAMES: Readonly<Record<number, string>> = {
  21505: "TCGETS",
  21506: "TCSETS",
  21507: "TCSETSW",
  21508: "TCSETSF",
  21519: "TIOCGPGRP",
  21520: "TIOCSPGRP",
  21523: "TIOCGWINSZ",
  21524: "TIOCSWINSZ",
  21531: "FIONREAD",
  21537: "FIONBIO",
  21584: "FIONCLEX",
  21585: "FIOCLEX",
};

/** tcsetattr actions as the host C layer numbers them (TCSANOW / TCSADRAIN / TCSAFLUSH). */
export const TERMIOS_ACTION = { [TCSETS]: 0, [TCSETSW]: 1, [TCSETSF]: 2 } as const;
