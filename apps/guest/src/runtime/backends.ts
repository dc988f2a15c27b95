/**
 * Backend choice. `auto` picks Hypervisor.framework on macOS/Apple Silicon and the emulator elsewhere.
 * Resolves to the backend, or a one-line reason a user can act on.
 */

import { existsSync } from "node:fs";
import { join } from "node:path";
import { EmulatorBackend } from "@guest/emulator";
import { type Backend, hvfSigningStatus, loadHvf, SIGNED_EXECUTABLE } from "@guest/hvf-bindings";
import type { BackendChoice } from "../cli.ts";

export function autoBackendName(
  platform: string = process.platform,
  arch: string = process.arch,
): "hvf" | "emulator" {
  return platform === "darwin" && arch === "arm64" ? "hvf" : "emulator";
}

export async function selectBackend(choice: BackendChoice): Promise<Backend | string> {
  const name = choice === "auto" ? autoBackendName() : choice;
  if (name === "hvf") {
    // Loaded only here: the Hypervisor.framework implementation is ~8 ms of modules an emulator start never needs.
    const { hvfAvailability, HvfBackend } = await loadHvf();
    const availability = hvfAvailability();
    if (!availability.available) return availability.reason ?? "Hypervisor.framework is not available";
    return new HvfBackend();
  }
  const backend = new EmulatorBackend();
  const availability = backend.availability();
  if (!availability.available) return availability.reason ?? "the emulator backend is not available";
  return backend;
}

/** The signed runnable scripts/sign.ts builds (repo-root relative path from @guest/hvf-bindings). */
export const SIGNED_RUNNABLE = join(import.meta.dir, "..", "..", "..", "..", SIGNED_EXECUTABLE);

/**
 * On Apple Silicon the process that creates a VM needs the com.apple.security.hypervisor entitlement, which
 * a plain `bun` lacks: when the hvf backend is wanted and this process is not entitled but the signed
 * runnable exists, the CLI runs through it instead. Pure decision, for tests.
 */
export function shouldUseSignedRunnable(facts: {
  platform: string;
  arch: string;
  choice: BackendChoice;
  entitled: boolean;
  signedRunnableExists: boolean;
  alreadySigned: boolean;
}): boolean {
  if (facts.alreadySigned || facts.entitled) return false;
  if (facts.platform !== "darwin" || facts.arch !== "arm64") return false;
  if (facts.choice === "emulator") return false;
  return facts.signedRunnableExists;
}

/** Whether this run should hand over to the signed runnable (consults codesign only on Apple Silicon). */
export function signedRunnableFor(choice: BackendChoice): string | null {
  if (process.platform !== "darwin" || process.arch !== "arm64" || choice === "emulator") return null;
  const use = shouldUseSignedRunnable({
    platform: process.platform,
    arch: process.arch,
    choice,
    entitled: hvfSigningStatus().hypervisor,
    signedRunnableExists: existsSync(SIGNED_RUNNABLE),
    alreadySigned: process.env.GUEST_SIGNED_RUNNABLE === "1",
  });
  return use ? SIGNED_RUNNABLE : null;
}
