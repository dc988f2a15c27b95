/**
 * Build the signed runnable the native backend needs: Hypervisor.framework lets a process create a
 * VM only if its executable carries the com.apple.security.hypervisor entitlement.
 *
 *   bun packages/hvf-bindings/scripts/sign.ts [--identity <codesign identity>] [--out <path>]
 *
 * 1. `bun build --compile` of apps/guest/src/main.ts (plus the vCPU worker entry, which the CLI
 *    spawns as a Worker) into .cache/guest-hvf at the repository root;
 * 2. `codesign --sign - --force --entitlements src/hvf/entitlements.plist` (ad hoc unless --identity):
 *    the hypervisor entitlement plus the JIT entitlements Bun's JavaScriptCore needs once re-signed;
 * 3. reads the entitlements back with codesign and fails unless the hypervisor one is there.
 *
 * Then run the guest as `.cache/guest-hvf --backend hvf …`. macOS on Apple Silicon only.
 */
import { mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import {
  ENTITLEMENTS_PLIST,
  HYPERVISOR_ENTITLEMENT,
  hvfSigningStatus,
  SIGNED_EXECUTABLE,
  signingCommands,
} from "../src/hvf/signing.ts";

const root = resolve(import.meta.dir, "..", "..", "..");

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    identity: { type: "string", default: "-" },
    out: { type: "string", default: join(root, SIGNED_EXECUTABLE) },
  },
});

if (process.platform !== "darwin" || process.arch !== "arm64") {
  console.error(
    `sign.ts: nothing to do on ${process.platform}-${process.arch}. The ${HYPERVISOR_ENTITLEMENT} entitlement ` +
      "and codesign exist on macOS only, and the native backend needs Apple Silicon; on this host run the " +
      "guest with `--backend emulator` (no signing needed).",
  );
  process.exit(1);
}

const outfile = resolve(values.out!);
mkdirSync(dirname(outfile), { recursive: true });
const commands = signingCommands({ bun: process.execPath, root, outfile, identity: values.identity });
for (const command of commands) {
  console.error(`$ ${command.join(" ")}`);
  const result = Bun.spawnSync(command, { stdout: "inherit", stderr: "inherit", cwd: root });
  if (result.exitCode !== 0) {
    console.error(`sign.ts: ${command[0]} failed with exit code ${result.exitCode}`);
    process.exit(1);
  }
}

const status = hvfSigningStatus({ executable: outfile });
if (!status.hypervisor) {
  console.error(
    `sign.ts: ${outfile} was signed but codesign does not show ${HYPERVISOR_ENTITLEMENT} (${status.detail ?? JSON.stringify(status.entitlements)}); entitlements file: ${ENTITLEMENTS_PLIST}`,
  );
  process.exit(1);
}
console.error(`sign.ts: ${outfile} carries ${Object.keys(status.entitlements).join(", ")}`);
console.error(`run: ${outfile} --backend hvf <program> [args…]`);
