export type { EmulatorVm } from "./emulator.ts";
export {
  EmulatorBackend,
  EmulatorError,
  emulatorAvailability,
  MIN_UNICORN_VERSION,
  unicornVersion,
} from "./emulator.ts";
