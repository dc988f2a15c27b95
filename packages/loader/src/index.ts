/** @guest/loader: ELF64 validation and loading, and the initial stack, for static aarch64 Linux programs. */
export * from "./auxv-abi.ts";
export * from "./elf.ts";
export * from "./elf-abi.ts";
export { ElfError, type ElfErrorReason, StackError } from "./errors.ts";
export * from "./plan.ts";
export * from "./stack.ts";
