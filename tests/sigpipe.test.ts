/**
 * A guest writing to a pipe nobody reads gets EPIPE *and* SIGPIPE, whose default action ends it: status 141
 * in a shell, as `yes | head -1` shows. Compared with qemu-aarch64-static in the same situation.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { ensureFixtures } from "../scripts/fixtures.ts";

const QEMU = "qemu-aarch64-static";
const cli = join(import.meta.dir, "..", "apps", "guest", "src", "main.ts");
const fixtures = await ensureFixtures();
const busybox = fixtures.busybox;
const skip = !busybox ? "busybox fixture missing" : !Bun.which(QEMU) ? `${QEMU} missing` : null;
if (skip) console.warn(`[sigpipe] skipped: ${skip}`);

/** Run `command` with stdout into a pipe whose reader goes away after the first chunk; return the status. */
async function statusWhenReaderLeaves(
  command: string[],
): Promise<{ code: number | null; firstChunk: string }> {
  const child = Bun.spawn(command, { stdin: "ignore", stdout: "pipe", stderr: "ignore", timeout: 20_000 });
  const reader = child.stdout.getReader();
  const { value } = await reader.read();
  await reader.cancel(); // closes the read end: the next writes find no reader
  const code = await child.exited;
  return { code, firstChunk: new TextDecoder().decode(value ?? new Uint8Array()).split("\n")[0]! };
}

describe.skipIf(skip !== null)("SIGPIPE", () => {
  test("busybox yes into a closed pipe dies of SIGPIPE (141) under both", async () => {
    const qemu = await statusWhenReaderLeaves([QEMU, busybox!, "yes"]);
    const guest = await statusWhenReaderLeaves(["bun", cli, busybox!, "yes"]);
    expect(qemu).toEqual({ code: 141, firstChunk: "y" });
    expect(guest).toEqual({ code: 141, firstChunk: "y" });
  });
});
