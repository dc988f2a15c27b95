/**
 * `guest` (entry: main.ts): run a static aarch64 Linux program. Exit status: the guest's; death by signal N when it dies of N;
 * 127 when the program is not found, 126 when it cannot be executed (like a shell); 2 for usage errors.
 */
import { accessSync, constants, readFileSync, statSync } from "node:fs";
import { delimiter, join, resolve } from "node:path";
import { ElfError } from "@guest/loader";
import { hostDieBySignal, hostExit } from "@guest/syscalls";
import { guestEnvironment, type ParsedCommandLine, parseCommandLine, UsageError } from "./cli.ts";
import { demoGuestBytes } from "./demo/demo-bytes.ts";
import { selectBackend, signedRunnableFor } from "./runtime/backends.ts";
import { GuestProcess, outcomeToExitCode, traceToStderr } from "./runtime/guest-process.ts";

export const EXIT_USAGE = 2;
export const EXIT_CANNOT_EXECUTE = 126;
export const EXIT_NOT_FOUND = 127;

class ProgramError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/** Resolve the program like a shell: a name without "/" is looked up in PATH. */
function resolveProgram(program: string, path: string | undefined): string {
  if (program.includes("/")) return resolve(program);
  for (const dir of (path ?? "").split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, program);
    try {
      if (statSync(candidate).isFile()) return candidate;
    } catch {}
  }
  throw new ProgramError(`${program}: command not found`, EXIT_NOT_FOUND);
}

function readProgram(path: string, shown: string): Uint8Array {
  let stat: ReturnType<typeof statSync>;
  try {
    stat = statSync(path);
  } catch {
    throw new ProgramError(`${shown}: No such file or directory`, EXIT_NOT_FOUND);
  }
  if (stat.isDirectory()) throw new ProgramError(`${shown}: Is a directory`, EXIT_CANNOT_EXECUTE);
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new ProgramError(`${shown}: Permission denied`, EXIT_CANNOT_EXECUTE);
  }
  try {
    // A plain Uint8Array over the Buffer's own memory: copying the whole file costs ~1 ms on every start.
    const bytes = readFileSync(path);
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  } catch (error) {
    throw new ProgramError(`${shown}: ${(error as Error).message}`, EXIT_CANNOT_EXECUTE);
  }
}

export async function main(argv: string[]): Promise<number> {
  let parsed: ParsedCommandLine;
  try {
    parsed = parseCommandLine(argv);
  } catch (error) {
    if (error instanceof UsageError) {
      // Imported only here: consola costs ~20 ms of start-up that a successful run never needs.
      const { consola } = await import("consola");
      consola.error(error.message);
      return EXIT_USAGE;
    }
    throw error;
  }
  if (parsed.help) {
    const { helpText } = await import("./help.ts");
    process.stdout.write(await helpText());
    return 0;
  }

  let executablePath: string;
  let executable: Uint8Array;
  let guestArgv: string[];
  try {
    if (parsed.program === null) {
      executablePath = "/guest-demo";
      executable = demoGuestBytes();
      guestArgv = ["guest-demo"];
    } else {
      executablePath = resolveProgram(parsed.program, process.env.PATH);
      executable = readProgram(executablePath, parsed.program);
      guestArgv = [parsed.program, ...parsed.programArgs];
    }
  } catch (error) {
    if (error instanceof ProgramError) {
      process.stderr.write(`guest: ${error.message}\n`);
      return error.exitCode;
    }
    throw error;
  }

  const signed = signedRunnableFor(parsed.backend);
  if (signed) {
    // Hand over to the entitled, signed build of this same CLI (see packages/hvf-bindings/scripts/sign.ts).
    const child = Bun.spawnSync([signed, ...argv], {
      stdio: ["inherit", "inherit", "inherit"],
      env: { ...process.env, GUEST_SIGNED_RUNNABLE: "1" },
    });
    return child.exitCode ?? 128 + 9;
  }
  const backend = await selectBackend(parsed.backend);
  if (typeof backend === "string") {
    process.stderr.write(`guest: ${backend}\n`);
    return EXIT_CANNOT_EXECUTE;
  }

  let guest: GuestProcess;
  try {
    guest = new GuestProcess({
      backend,
      executablePath,
      executable,
      argv: guestArgv,
      execfn:
        parsed.program === null
          ? executablePath
          : parsed.program.includes("/")
            ? parsed.program
            : executablePath,
      envp: guestEnvironment(parsed, process.env),
      trace: parsed.trace ? traceToStderr : undefined,
      ownsProcess: true,
    });
  } catch (error) {
    if (error instanceof ElfError) {
      process.stderr.write(`guest: ${parsed.program ?? executablePath}: cannot execute: ${error.message}\n`);
      return EXIT_CANNOT_EXECUTE;
    }
    throw error;
  }
  let outcome: ReturnType<GuestProcess["run"]>;
  try {
    outcome = guest.run();
  } catch (error) {
    if (!guest.forkedChild) throw error;
    // A forked child is a copy of Bun that must not run Bun's exit path (its helper threads are gone).
    process.stderr.write(
      `guest: internal error (a bug in guest, not in the program): ${(error as Error)?.stack}\n`,
    );
    hostExit(EXIT_INTERNAL_ERROR);
  }
  if (guest.forkedChild) {
    // The parent's wait sees exactly the guest's end: its exit status, or death by the very signal.
    if (outcome.kind === "signaled") hostDieBySignal(outcome.signal);
    hostExit(outcome.status);
  }
  guest.destroy();
  // A signal death is the host process's own, by the same signal, as on Linux (and as qemu-user does it): the
  // shell that started us reports it, and its status is exactly the guest's.
  if (outcome.kind === "signaled") hostDieBySignal(outcome.signal);
  return outcomeToExitCode(outcome);
}

/** EX_SOFTWARE (sysexits.h): the runtime failed, not the guest program. */
export const EXIT_INTERNAL_ERROR = 70;

/** The whole CLI run: main() with the internal-error net, then the process exit. */
export async function runCli(): Promise<never> {
  let code: number;
  try {
    code = await main(process.argv.slice(2));
  } catch (error) {
    // A bug in guest itself must not pass for the program's own failure: say so, with the details.
    process.stderr.write(
      `guest: internal error (a bug in guest, not in the program): ${(error as Error)?.stack ?? String(error)}\n`,
    );
    code = EXIT_INTERNAL_ERROR;
  }
  process.exit(code);
}
