/**
 * Backend choice. `auto` picks Hypervisor.framework on macOS/Apple Silicon and the emulator elsewhere.
 * Returns the backend, or a one-line reason a user can act on.
 */
import { EmulatorBackend } from "@guest/emulator";
import { type Backend, HvfBackend, hvfAvailability } from "@guest/hvf-bindings";
import type { BackendChoice } from "../cli.ts";

export function autoBackendName(
  platform: string = process.platform,
  arch: string = process.arch,
): "hvf" | "emulator" {
  return platform === "darwin" && arch === "arm64" ? "hvf" : "emulator";
}

export function selectBackend(choice: BackendChoice): Backend | string {
  const name = choice === "auto" ? autoBackendName() : choice;
  if (name === "hvf") {
    const availability = hvfAvailability();
    if (!availability.available) return availability.reason ?? "Hypervisor.framework is not available";
    return new HvfBackend();
  }
  const backend = new EmulatorBackend();
  const availability = backend.availability();
  if (!availability.available) return availability.reason ?? "the emulator backend is not available";
  return backend;
}
