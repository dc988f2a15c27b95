/**
 * Everything the strace-style trace renders with: the per-syscall format table and the formatters. Loaded on
 * first use only (`traceFormatting()` in dispatch.ts), so a run without --trace never parses it.
 */
export * from "./format.ts";
export * from "./formats.ts";
