export * from "./backend.ts";
