#!/usr/bin/env bun
/**
 * `bun run test`: make sure the test tools exist (apt-get when root, otherwise the command to run), build
 * the guest fixtures once (cached under .cache/fixtures), then run every *.test.ts with `bun test`.
 * Ends with the plain summary line `tests: N passed, N failed, N skipped` and bun test's exit code.
 * Extra arguments go to `bun test` (e.g. `bun run test packages/loader`).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { consola } from "consola";
import { setup } from "./setup.ts";

const root = join(import.meta.dir, "..");
const toolsReady = await setup({ tests: true });
if (!toolsReady)
  consola.warn("Some test tools are missing: tests that need them will report themselves skipped.");

const fixturesModule = join(import.meta.dir, "fixtures.ts");
if (existsSync(fixturesModule)) {
  const { ensureFixtures } = await import(fixturesModule);
  try {
    await ensureFixtures();
  } catch (error) {
    consola.warn(`Fixtures not built: ${(error as Error).message}`);
  }
}

const child = Bun.spawn(["bun", "test", ...process.argv.slice(2)], {
  cwd: root,
  stdin: "ignore",
  stdout: "pipe",
  stderr: "pipe",
  env: { ...process.env, FORCE_COLOR: process.env.FORCE_COLOR ?? "0" },
});

let transcript = "";
async function pump(stream: ReadableStream<Uint8Array>, sink: NodeJS.WriteStream): Promise<void> {
  const decoder = new TextDecoder();
  for await (const chunk of stream) {
    const text = decoder.decode(chunk, { stream: true });
    transcript += text;
    sink.write(text);
  }
}
await Promise.all([pump(child.stdout, process.stdout), pump(child.stderr, process.stderr)]);
const code = await child.exited;

const count = (word: string): number =>
  Number(transcript.match(new RegExp(`^\\s*(\\d+) ${word}$`, "m"))?.[1] ?? 0);
const passed = count("pass");
const failed = count("fail");
const skipped = count("skip");
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(code !== 0 ? code : passed === 0 ? 1 : 0);
