/** @guest/syscalls: the Linux arm64 syscall ABI layer (tables, host shim, fd/process state, handlers, dispatcher). */

export * as clockAbi from "./abi/clock.ts";
export * as cloneAbi from "./abi/clone.ts";
export * as errno from "./abi/errno.ts";
export { ERRNO_MESSAGES, ERRNO_NAMES } from "./abi/errno.ts";
export * as execAbi from "./abi/exec.ts";
export * as fcntlAbi from "./abi/fcntl.ts";
export * as ioctlAbi from "./abi/ioctl.ts";
export * as processAbi from "./abi/process.ts";
export * as resourceAbi from "./abi/resource.ts";
export * as signalAbi from "./abi/signal.ts";
export { SIGNAL_NAMES } from "./abi/signal.ts";
export * as structs from "./abi/structs.ts";
export { NR, NR_SYSCALLS, SYSCALL_NAMES, type SyscallName } from "./abi/syscalls.ts";
export * from "./context.ts";
export {
  createDispatcher,
  type Dispatcher,
  type DispatcherOptions,
  syscallName,
  type TraceFormatting,
  traceFormatting,
} from "./dispatch.ts";
export {
  type ExecDependencies,
  type ExecPrepare,
  type ExecProgram,
  registerExecHandlers,
} from "./exec/handlers.ts";
export { parseShebang, type ShebangLine } from "./exec/script.ts";
export { BUILTIN_HANDLERS } from "./handlers/index.ts";
export { applyThreadAffinity, UNAME } from "./handlers/process.ts";
export { hostErrnoToLinux } from "./host/ffi.ts";
export { createFlagTranslator, type FlagTranslator } from "./host/flags.ts";
export { Host, hostDieBySignal, hostExit, hostFork, sharedHost } from "./host/host.ts";
export { GuestMemory, type GuestMemorySource } from "./memory.ts";
export * from "./mm/abi.ts";
export {
  AddressSpace,
  type AddressSpaceBackend,
  type AddressSpaceLayout,
  type MappableFile,
  type MapRequest,
} from "./mm/address-space.ts";
export { registerMemoryHandlers, resolveMappableFile } from "./mm/handlers.ts";
export { type ForkProvider, registerProcessControl } from "./proc/handlers.ts";
export {
  CAUGHT_HOST_SIGNALS,
  type HostSignal,
  HostSignalBridge,
  sharedHostSignals,
} from "./proc/host-signals.ts";
export { cloneThread, pollBlockedThreads, type ThreadSpawner, wakeWaiters } from "./proc/threads.ts";
export {
  type ArgsArea,
  type FdEntry,
  FdTable,
  type ProcessOptions,
  ProcessState,
  SignalActions,
  ThreadState,
} from "./process.ts";
export { createGuestRuntime, type GuestRuntime, type GuestRuntimeOptions } from "./runtime.ts";
export * as signalFrameAbi from "./signals/abi.ts";
export {
  type DeliveryOutcome,
  type RegisterAccess,
  SignalDelivery,
  type SignalInfo,
} from "./signals/delivery.ts";
export { registerSignalHandlers } from "./signals/handlers.ts";
// The trace's formatters (formatCall, formatResult, quoteBytes) and format table (SYSCALL_FORMATS) are loaded
// on first use: `traceFormatting()`. A run without --trace never parses them.
export type { SyscallFormatSpec } from "./trace/formats.ts";
