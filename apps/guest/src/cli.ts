/**
 * Command-line parsing for `guest [options] [--] program [args…]`.
 *
 * Options are read only up to the program name (or `--`): everything after it belongs to the guest, so
 * `guest ./busybox ls -la` passes `-la` to ls. The --help text (citty) lives in help.ts, loaded only for --help.
 */

import { FORK_SAFE_ENGINE_OPTIONS } from "./runtime/fork-safe.ts";

export const BACKEND_CHOICES = ["auto", "hvf", "emulator"] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

export interface ParsedCommandLine {
  backend: BackendChoice;
  trace: boolean;
  env: string[];
  clearEnv: boolean;
  help: boolean;
  program: string | null;
  programArgs: string[];
}

export class UsageError extends Error {}

const VALUE_OPTIONS = new Set(["--backend", "--env"]);
const FLAG_OPTIONS = new Set(["--trace", "--clear-env", "--help", "-h"]);

export function parseCommandLine(argv: string[]): ParsedCommandLine {
  const parsed: ParsedCommandLine = {
    backend: "auto",
    trace: false,
    env: [],
    clearEnv: false,
    help: false,
    program: null,
    programArgs: [],
  };
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      i++;
      break;
    }
    if (!arg.startsWith("-") || arg === "-") break;
    const [name, inlineValue] = arg.includes("=")
      ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)]
      : [arg, undefined];
    if (VALUE_OPTIONS.has(name)) {
      const value = inlineValue ?? argv[++i];
      if (value === undefined) throw new UsageError(`${name} needs a value`);
      if (name === "--backend") {
        if (!(BACKEND_CHOICES as readonly string[]).includes(value)) {
          throw new UsageError(`--backend must be one of ${BACKEND_CHOICES.join(", ")} (got "${value}")`);
        }
        parsed.backend = value as BackendChoice;
      } else {
        if (!value.includes("=")) throw new UsageError(`--env takes KEY=VALUE (got "${value}")`);
        parsed.env.push(value);
      }
    } else if (FLAG_OPTIONS.has(name)) {
      if (inlineValue !== undefined) throw new UsageError(`${name} takes no value`);
      if (name === "--trace") parsed.trace = true;
      else if (name === "--clear-env") parsed.clearEnv = true;
      else parsed.help = true;
    } else {
      throw new UsageError(`unknown option ${arg} (see --help)`);
    }
  }
  if (i < argv.length) {
    parsed.program = argv[i]!;
    parsed.programArgs = argv.slice(i + 1);
  }
  return parsed;
}

/** The guest environment: the host's (unless cleared), then --env overrides, in order. */
export function guestEnvironment(
  parsed: ParsedCommandLine,
  hostEnv: Record<string, string | undefined>,
): string[] {
  const env = new Map<string, string>();
  if (!parsed.clearEnv) {
    for (const [key, value] of Object.entries(hostEnv)) {
      // The engine options the runtime runs with (fork-safe.ts) are the runtime's, not the program's.
      if (value !== undefined && !(key in FORK_SAFE_ENGINE_OPTIONS)) env.set(key, value);
    }
  }
  for (const entry of parsed.env) {
    const eq = entry.indexOf("=");
    env.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  return [...env].map(([key, value]) => `${key}=${value}`);
}
