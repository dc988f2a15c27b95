/**
 * The code-signing side of Hypervisor.framework: a process may create a VM only if its executable
 * carries the `com.apple.security.hypervisor` entitlement. A Bun/JSC binary additionally needs its
 * JIT entitlements once it is re-signed (src/hvf/entitlements.plist; see scripts/sign.ts).
 *
 * `hvfSigningStatus()` asks `codesign -d --entitlements - <executable>` (macOS only, memoised per
 * executable). The parsing is separate and pure so it is tested with recorded codesign output.
 */
import { join } from "node:path";

export const HYPERVISOR_ENTITLEMENT = "com.apple.security.hypervisor";
/** What scripts/sign.ts signs with. */
export const ENTITLEMENTS_PLIST = join(import.meta.dir, "entitlements.plist");
/** Repo-relative: the signed runnable scripts/sign.ts produces, and the script itself. */
export const SIGNED_EXECUTABLE = ".cache/guest-hvf";
export const SIGN_SCRIPT = "packages/hvf-bindings/scripts/sign.ts";
/** Repo-relative entry points of the signed runnable: the CLI and the vCPU worker it spawns. */
export const VCPU_WORKER_ENTRY = "packages/hvf-bindings/src/hvf/vcpu-worker.ts";
export const SIGNED_ENTRY_POINTS = ["apps/guest/src/main.ts", VCPU_WORKER_ENTRY];
/** Where a compiled binary's embedded entry points live (built with `--root <repo>`). */
export const BUNFS_ROOT = "/$bunfs/root/";

export const UNSIGNED_REASON = `Hypervisor.framework needs the ${HYPERVISOR_ENTITLEMENT} entitlement: run \`bun ${SIGN_SCRIPT}\` and use ${SIGNED_EXECUTABLE}`;

export interface CodesignOutput {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface HvfSigningStatus {
  executable: string;
  /** The executable has a code signature at all. */
  signed: boolean;
  /** Boolean entitlements as codesign printed them. */
  entitlements: Record<string, boolean>;
  /** The signature grants com.apple.security.hypervisor. */
  hypervisor: boolean;
  /** codesign's complaint when it could not show a signature. */
  detail?: string;
}

/**
 * Boolean entitlements from `codesign -d --entitlements -` output, in either form codesign prints:
 * an XML plist (`<key>k</key><true/>`, older macOS or `--xml`) or the key/value dump of macOS 12+
 * (`[Key] k` / `[Value]` / `[Bool] true`).
 */
export function parseCodesignEntitlements(output: string): Record<string, boolean> {
  const entitlements: Record<string, boolean> = {};
  for (const match of output.matchAll(/<key>\s*([^<]+?)\s*<\/key>\s*<(true|false)\s*\/>/g)) {
    entitlements[match[1]!] = match[2] === "true";
  }
  let key: string | null = null;
  for (const line of output.split("\n")) {
    const keyMatch = /^\s*\[Key\]\s*(\S+)\s*$/.exec(line);
    if (keyMatch) {
      key = keyMatch[1]!;
      continue;
    }
    const boolMatch = /^\s*\[Bool\]\s*(true|false)\s*$/.exec(line);
    if (boolMatch && key) {
      entitlements[key] = boolMatch[1] === "true";
      key = null;
    } else if (/^\s*\[(Dict|Array|String|Number|Data)\]/.test(line)) {
      key = null; // a non-boolean value: not an entitlement we interpret
    }
  }
  return entitlements;
}

/** Interpret one codesign run on `executable`. */
export function signingStatusFromCodesign(executable: string, output: CodesignOutput): HvfSigningStatus {
  const text = `${output.stdout}\n${output.stderr}`;
  if (output.exitCode !== 0) {
    const detail = output.stderr.trim().split("\n").pop() || `codesign exited with ${output.exitCode}`;
    return { executable, signed: false, entitlements: {}, hypervisor: false, detail };
  }
  const entitlements = parseCodesignEntitlements(text);
  return {
    executable,
    signed: true,
    entitlements,
    hypervisor: entitlements[HYPERVISOR_ENTITLEMENT] === true,
  };
}

/** Why this process cannot create a VM for signing reasons, or null when it can. */
export function signingUnavailableReason(status: HvfSigningStatus): string | null {
  return status.hypervisor ? null : UNSIGNED_REASON;
}

function runCodesign(executable: string): CodesignOutput {
  try {
    const result = Bun.spawnSync(["codesign", "-d", "--entitlements", "-", executable], {
      stdout: "pipe",
      stderr: "pipe",
    });
    return {
      exitCode: result.exitCode ?? 1,
      stdout: result.stdout.toString(),
      stderr: result.stderr.toString(),
    };
  } catch (error) {
    return { exitCode: 127, stdout: "", stderr: `cannot run codesign: ${(error as Error).message}` };
  }
}

const memo = new Map<string, HvfSigningStatus>();

/**
 * Whether `executable` (default: this process's) carries the hypervisor entitlement. Memoised per
 * executable; `codesign` replaces the real tool (tests), and bypasses the memo.
 */
export function hvfSigningStatus(
  options: { executable?: string; codesign?: (executable: string) => CodesignOutput } = {},
): HvfSigningStatus {
  const executable = options.executable ?? process.execPath;
  if (options.codesign) return signingStatusFromCodesign(executable, options.codesign(executable));
  const known = memo.get(executable);
  if (known) return known;
  const status =
    process.platform === "darwin"
      ? signingStatusFromCodesign(executable, runCodesign(executable))
      : {
          executable,
          signed: false,
          entitlements: {},
          hypervisor: false,
          detail: `code signatures and entitlements exist on macOS only; this host is ${process.platform}`,
        };
  memo.set(executable, status);
  return status;
}

/** The two commands that make the signed runnable (scripts/sign.ts runs them on macOS). */
export function signingCommands(options: {
  bun: string;
  root: string;
  outfile: string;
  identity?: string;
  entitlements?: string;
}): string[][] {
  return [
    [
      options.bun,
      "build",
      "--compile",
      "--root",
      options.root,
      ...SIGNED_ENTRY_POINTS.map((entry) => join(options.root, entry)),
      "--outfile",
      options.outfile,
    ],
    [
      "codesign",
      "--sign",
      options.identity ?? "-",
      "--force",
      "--entitlements",
      options.entitlements ?? ENTITLEMENTS_PLIST,
      options.outfile,
    ],
  ];
}
