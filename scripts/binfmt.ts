#!/usr/bin/env bun
/**
 * Registers qemu-aarch64 with the host kernel's binfmt_misc, for the oracle side of the tests only.
 *
 * qemu-aarch64-static runs one aarch64 program; when that program execve()s another aarch64 binary (a shell
 * running `$BB echo`), the host kernel gets the execve and refuses an ELF for another machine (ENOEXEC)
 * unless binfmt_misc hands such ELFs to qemu. Our runtime never needs this: it performs a guest's execve
 * itself.
 *
 * `ensureQemuBinfmt()` mounts /proc/sys/fs/binfmt_misc when it is not mounted and registers Debian's
 * qemu-aarch64 line (/usr/lib/binfmt.d/qemu-aarch64.conf, from qemu-user-static or qemu-user-binfmt), or,
 * when that file or the interpreter it names is missing, an equivalent line using qemu-aarch64-static with
 * flag F (the kernel opens the interpreter at registration, so it works from any mount namespace).
 * Idempotent: an existing registration is kept (re-enabled if it was disabled). Needs root to change
 * anything; the registration is system-wide and lasts until reboot or `echo -1 > …/qemu-aarch64`.
 *
 * `bun scripts/binfmt.ts` does it from the command line and exits 1 with the reason when it cannot.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";

export const BINFMT_MISC_DIR = "/proc/sys/fs/binfmt_misc";
export const QEMU_AARCH64_ENTRY = "qemu-aarch64";
const DEBIAN_CONF = "/usr/lib/binfmt.d/qemu-aarch64.conf";
const QEMU = "qemu-aarch64-static";

/**
 * The aarch64 ELF header pattern and mask: ELFCLASS64, little endian, version 1, ET_EXEC or ET_DYN (the
 * mask's 0xfe on e_type), e_machine 183. Written with \x escapes, which the kernel's parser decodes.
 */
const AARCH64_MAGIC =
  "\\x7f\\x45\\x4c\\x46\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xb7\\x00";
const AARCH64_MASK =
  "\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff";

/** `:name:type:offset:magic:mask:interpreter:flags`, as binfmt_misc's register file takes it. */
interface BinfmtRule {
  name: string;
  type: string;
  offset: string;
  magic: string;
  mask: string;
  interpreter: string;
  flags: string;
}

function parseRule(line: string): BinfmtRule | null {
  const separator = line[0];
  if (separator === undefined) return null;
  const fields = line.slice(1).split(separator);
  if (fields.length !== 7) return null;
  const [name, type, offset, magic, mask, interpreter, flags] = fields as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  return { name, type, offset, magic, mask, interpreter, flags };
}

function formatRule(rule: BinfmtRule): string {
  return `:${rule.name}:${rule.type}:${rule.offset}:${rule.magic}:${rule.mask}:${rule.interpreter}:${rule.flags}`;
}

/** Debian's rule when its interpreter exists, else the same match with qemu-aarch64-static and flag F. */
export function qemuAarch64Rule(): { rule: string } | { problem: string } {
  if (existsSync(DEBIAN_CONF)) {
    const line = readFileSync(DEBIAN_CONF, "utf8")
      .split("\n")
      .map((text) => text.trim())
      .find((text) => text.length > 0 && !text.startsWith("#"));
    const rule = line === undefined ? null : parseRule(line);
    if (rule && existsSync(rule.interpreter)) return { rule: formatRule(rule) };
  }
  const qemu = Bun.which(QEMU);
  if (qemu === null)
    return { problem: `${QEMU} not found: install it with \`apt-get install qemu-user-static\`` };
  return {
    rule: formatRule({
      name: QEMU_AARCH64_ENTRY,
      type: "M",
      offset: "",
      magic: AARCH64_MAGIC,
      mask: AARCH64_MASK,
      interpreter: qemu,
      flags: "F",
    }),
  };
}

function isMounted(): boolean {
  return existsSync(`${BINFMT_MISC_DIR}/register`);
}

/** The state of the qemu-aarch64 entry: "enabled", "disabled", or null when not registered. */
function entryState(): "enabled" | "disabled" | null {
  const entry = `${BINFMT_MISC_DIR}/${QEMU_AARCH64_ENTRY}`;
  if (!existsSync(entry)) return null;
  return readFileSync(entry, "utf8").split("\n")[0]?.trim() === "enabled" ? "enabled" : "disabled";
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

const notRoot = (): boolean => typeof process.getuid === "function" && process.getuid() !== 0;

/**
 * Make the host kernel run aarch64 ELFs through qemu. Returns null when that is (now) the case, else why it
 * cannot be done here.
 */
export function ensureQemuBinfmt(): string | null {
  if (process.platform !== "linux") return `binfmt_misc is Linux-only (this is ${process.platform})`;
  const hint = notRoot() ? " (needs root)" : "";
  if (!isMounted()) {
    const mount = Bun.spawnSync(["mount", "binfmt_misc", "-t", "binfmt_misc", BINFMT_MISC_DIR], {
      stdout: "pipe",
      stderr: "pipe",
    });
    if (!isMounted()) {
      const output = `${mount.stdout.toString()}${mount.stderr.toString()}`.trim();
      return `cannot mount binfmt_misc on ${BINFMT_MISC_DIR}${hint}: ${output || `mount exited ${mount.exitCode}`}`;
    }
  }
  const state = entryState();
  if (state === "enabled") return null;
  if (state === "disabled") {
    try {
      writeFileSync(`${BINFMT_MISC_DIR}/${QEMU_AARCH64_ENTRY}`, "1");
    } catch (error) {
      return `cannot enable the binfmt_misc entry ${QEMU_AARCH64_ENTRY}${hint}: ${describeError(error)}`;
    }
    return entryState() === "enabled" ? null : `the binfmt_misc entry ${QEMU_AARCH64_ENTRY} stays disabled`;
  }
  const chosen = qemuAarch64Rule();
  if ("problem" in chosen) return chosen.problem;
  try {
    writeFileSync(`${BINFMT_MISC_DIR}/register`, chosen.rule);
  } catch (error) {
    // Another process may have registered it meanwhile (EEXIST): that is as good.
    if (entryState() === "enabled") return null;
    return `cannot register ${QEMU_AARCH64_ENTRY} with binfmt_misc${hint}: ${describeError(error)}`;
  }
  return entryState() === "enabled" ? null : `registering ${QEMU_AARCH64_ENTRY} left no enabled entry`;
}

if (import.meta.main) {
  const problem = ensureQemuBinfmt();
  if (problem) {
    console.error(problem);
    process.exit(1);
  }
  console.log(readFileSync(`${BINFMT_MISC_DIR}/${QEMU_AARCH64_ENTRY}`, "utf8").trim());
}
