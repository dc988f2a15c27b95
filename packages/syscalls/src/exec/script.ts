/**
 * The `#!` line of a script, split as Linux's fs/binfmt_script.c does: within the first BINPRM_BUF_SIZE
 * bytes, the interpreter path and at most one argument (everything after the first space/tab run, trailing
 * spaces and tabs trimmed, inner ones kept). A line with no newline in the buffer is used only if the
 * interpreter path is visibly complete (followed by a space, tab or NUL): a truncated path is ENOEXEC.
 */
import { BINPRM_BUF_SIZE } from "../abi/exec.ts";

export interface ShebangLine {
  interpreter: Uint8Array;
  /** The optional argument, or null. */
  argument: Uint8Array | null;
}

const HASH = 0x23;
const BANG = 0x21;
const NEWLINE = 0x0a;
const isSpaceTab = (c: number): boolean => c === 0x20 || c === 0x09;

/** True when the file starts with "#!". */
export function isScript(head: Uint8Array): boolean {
  return head.length >= 2 && head[0] === HASH && head[1] === BANG;
}

/** Parse the first bytes of a `#!` file; null means ENOEXEC (no usable interpreter name). */
export function parseShebang(head: Uint8Array): ShebangLine | null {
  if (!isScript(head)) return null;
  // bprm->buf: the first BINPRM_BUF_SIZE bytes, NUL-padded when the file is shorter.
  const buf = new Uint8Array(BINPRM_BUF_SIZE);
  buf.set(head.subarray(0, BINPRM_BUF_SIZE));
  const last = BINPRM_BUF_SIZE - 1;
  const nextNonSpaceTab = (from: number, to: number): number => {
    for (let i = from; i <= to; i++) if (!isSpaceTab(buf[i]!)) return i;
    return -1;
  };
  const nextTerminator = (from: number, to: number): number => {
    for (let i = from; i <= to; i++) if (isSpaceTab(buf[i]!) || buf[i] === 0) return i;
    return -1;
  };
  let end = buf.indexOf(NEWLINE);
  if (end < 0) {
    const first = nextNonSpaceTab(2, last);
    if (first < 0) return null; // the whole buffer is spaces and tabs
    if (nextTerminator(first, last) < 0) return null; // the interpreter path is truncated
    end = last;
  }
  while (isSpaceTab(buf[end - 1]!)) end--;
  const name = nextNonSpaceTab(2, end);
  if (name < 0 || name === end) return null;
  // Linux ends each string at the first NUL: the name at its terminator, the argument at i_end.
  const separator = nextTerminator(name, end);
  let argument: Uint8Array | null = null;
  let nameEnd = end;
  if (separator >= 0) {
    nameEnd = separator;
    if (buf[separator] !== 0) {
      const argStart = nextNonSpaceTab(separator, end);
      if (argStart >= 0) argument = cString(buf.subarray(argStart, end));
    }
  }
  return { interpreter: cString(buf.subarray(name, nameEnd)), argument };
}

function cString(bytes: Uint8Array): Uint8Array {
  const nul = bytes.indexOf(0);
  return bytes.slice(0, nul < 0 ? bytes.length : nul);
}
