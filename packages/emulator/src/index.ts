export { type MemoryAccess, memoryAccessOf, type RegisterReader } from "./decode/decode.ts";
export type { EmulatorVm } from "./emulator.ts";
export {
  EmulatorBackend,
  EmulatorError,
  emulatorAvailability,
  MIN_UNICORN_VERSION,
  type PopulateHelperStatistics,
  populateHelperStatistics,
  setPopulateHelper,
  unicornVersion,
} from "./emulator.ts";
