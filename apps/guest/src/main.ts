#!/usr/bin/env bun
/**
 * The `guest` command's entry. Before the rest of the runtime is even loaded, a start without the fork-safe
 * engine options re-executes itself with them (runtime/fork-safe.ts), so that costs one bare Bun start; then
 * the command (command.ts) runs.
 */
import { ensureForkSafeEngine } from "./runtime/fork-safe.ts";

ensureForkSafeEngine();
const { runCli } = await import("./command.ts");
await runCli();
