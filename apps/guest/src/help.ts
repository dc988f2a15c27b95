/**
 * --help: citty defines the options and renders the usage; loaded only when help is asked for, so a normal
 * run does not pay for it.
 */
import { defineCommand, renderUsage } from "citty";

export const command = defineCommand({
  meta: {
    name: "guest",
    description: "Run a static aarch64 Linux program (natively on Apple Silicon, emulated elsewhere).",
  },
  args: {
    backend: {
      type: "string",
      description: "Execution backend: auto (hvf on macOS/Apple Silicon, emulator elsewhere), hvf, emulator",
      default: "auto",
      valueHint: "auto|hvf|emulator",
    },
    trace: { type: "boolean", description: "Log every syscall to stderr, strace style", default: false },
    env: { type: "string", description: "Set a guest environment variable (repeatable)", valueHint: "K=V" },
    "clear-env": {
      type: "boolean",
      description: "Start the guest with an empty environment (then apply --env)",
      default: false,
    },
    help: { type: "boolean", alias: "h", description: "Show this help" },
    program: {
      type: "positional",
      description: "The static aarch64 ELF to run (default: the built-in demo)",
      required: false,
    },
  },
});

export const EXAMPLES = `
Examples:
  guest                                   run the built-in demo guest
  guest ./hello                           run a static aarch64 program
  guest ./busybox ls -la /                arguments after the program go to the guest
  guest --trace ./busybox echo hi         log syscalls: write(1, "hi\\n", 3) = 3
  guest --env LANG=C --clear-env ./prog   run with exactly LANG=C
  guest --backend emulator ./prog         force the software backend`;

export async function helpText(): Promise<string> {
  return `${await renderUsage(command)}\n${EXAMPLES}\n`;
}
