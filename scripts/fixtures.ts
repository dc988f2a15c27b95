#!/usr/bin/env bun
/**
 * Guest test fixtures, built once and cached under .cache/fixtures:
 *
 * - every tests/guest/*.c, cross-compiled static for aarch64    → .cache/fixtures/aarch64/<name>
 * - sources tagged `// fixture: static-pie` also as static-pie   → .cache/fixtures/aarch64/<name>-static-pie
 * - sources tagged `// fixture: native`, built with the host gcc → .cache/fixtures/x86_64/<name>
 *   (run natively, they prove that the expectations in those tests are Linux's, not an emulator's)
 * - Debian's arm64 busybox (package busybox-static)             → .cache/fixtures/busybox/bin/busybox
 * - Debian's arm64 bash (package bash-static)                   → .cache/fixtures/bash/bin/bash-static
 *   (or usr/bin/bash-static, wherever the package puts it); both are fetched once and kept
 * - Debian's arm64 shfmt (package shfmt, a static Go program)    → .cache/fixtures/shfmt/usr/bin/shfmt
 *
 * A build is redone only when its key changes: the SHA-256 of the compiler's identity, the flags, the source
 * and every tests/guest/*.h, stored beside the binary as <binary>.sha256. So CI builds once per change.
 *
 * `bun scripts/fixtures.ts` builds everything and exits 1 if anything could not be made;
 * `import { ensureFixtures } from "scripts/fixtures.ts"` does the same and returns the absolute paths, with
 * what could not be made listed in `problems` (tests use it to skip with that reason).
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { consola } from "consola";

export const REPO_ROOT = join(import.meta.dir, "..");
export const GUEST_SOURCES_DIR = join(REPO_ROOT, "tests", "guest");
export const FIXTURES_DIR = join(REPO_ROOT, ".cache", "fixtures");

const CROSS_CC = "aarch64-linux-gnu-gcc";
const NATIVE_CC = "gcc";
const COMMON_FLAGS = ["-O2", "-Wall"];
const BUSYBOX_PACKAGE = "busybox-static";
const BASH_PACKAGE = "bash-static";
const EM_AARCH64 = 183;

/** Which apt package provides each tool, for error messages. */
const PROVIDED_BY: Record<string, string> = {
  [CROSS_CC]: "gcc-aarch64-linux-gnu",
  [NATIVE_CC]: "gcc",
  "apt-get": "apt",
  "dpkg-deb": "dpkg",
  "qemu-aarch64-static": "qemu-user-static",
};
/** The C library headers/static libraries each compiler needs. */
const LIBC_DEV_FOR: Record<string, string> = {
  [CROSS_CC]: "libc6-dev-arm64-cross",
  [NATIVE_CC]: "libc6-dev",
};

export interface Fixtures {
  /** .cache/fixtures (absolute). */
  root: string;
  /** Static aarch64 builds by name: every tests/guest/<name>.c, plus "<name>-static-pie" for tagged ones. */
  aarch64: Record<string, string>;
  /** Native x86_64 builds of the sources tagged `// fixture: native`, by name. */
  x86_64: Record<string, string>;
  /** Debian's static arm64 busybox, or null when it could not be fetched (see problems). */
  busybox: string | null;
  /** Debian's static arm64 bash (bash-static), or null when it could not be fetched (see problems). */
  bash: string | null;
  /** Debian's arm64 shfmt (static Go), or null when it could not be fetched (see problems). */
  shfmt: string | null;
  /** One line per thing that could not be built or fetched, naming the tool or package to install. */
  problems: string[];
}

export interface EnsureFixturesOptions {
  /** Fetch busybox too (default true). */
  busybox?: boolean;
  /** Fetch bash-static too (default: the same as `busybox`). */
  bash?: boolean;
  /** Fetch shfmt too (default: false; the threads test asks for it). */
  shfmt?: boolean;
}

interface GuestSource {
  name: string;
  path: string;
  tags: Set<string>;
}

interface BuildJob {
  label: string;
  compiler: string;
  flags: string[];
  source: GuestSource;
  output: string;
}

export function missingToolMessage(tool: string, extra?: string): string {
  const pkg = PROVIDED_BY[tool];
  const packages = [pkg, extra].filter(Boolean).join(" ");
  return `${tool} not found: install it with \`apt-get install ${packages}\``;
}

/** tests/guest/*.c with their `// fixture: tag tag…` tags. */
export function listGuestSources(): GuestSource[] {
  if (!existsSync(GUEST_SOURCES_DIR)) return [];
  return readdirSync(GUEST_SOURCES_DIR)
    .filter((file) => file.endsWith(".c"))
    .sort()
    .map((file) => {
      const path = join(GUEST_SOURCES_DIR, file);
      const tags = new Set<string>();
      for (const match of readFileSync(path, "utf8").matchAll(/^\s*\/\/\s*fixture:\s*(.+)$/gm)) {
        for (const tag of match[1].trim().split(/\s+/)) tags.add(tag);
      }
      return { name: basename(file, ".c"), path, tags };
    });
}

const compilerIdentity = new Map<string, string>();
function identify(compiler: string): string {
  let identity = compilerIdentity.get(compiler);
  if (identity === undefined) {
    const result = Bun.spawnSync([compiler, "--version"], { stdout: "pipe", stderr: "pipe" });
    identity = result.stdout.toString().split("\n")[0] ?? compiler;
    compilerIdentity.set(compiler, identity);
  }
  return identity;
}

function sharedHeaders(): string {
  return readdirSync(GUEST_SOURCES_DIR)
    .filter((file) => file.endsWith(".h"))
    .sort()
    .map((file) => `${file}\n${readFileSync(join(GUEST_SOURCES_DIR, file), "utf8")}`)
    .join("\n");
}

function buildKey(job: BuildJob, headers: string): string {
  return createHash("sha256")
    .update(identify(job.compiler))
    .update("\0")
    .update(job.flags.join(" "))
    .update("\0")
    .update(readFileSync(job.source.path))
    .update("\0")
    .update(headers)
    .digest("hex");
}

async function compile(job: BuildJob): Promise<string | null> {
  mkdirSync(join(job.output, ".."), { recursive: true });
  // Build beside the target and rename: a concurrent reader never sees a half-written binary.
  const temporary = `${job.output}.tmp-${process.pid}`;
  const child = Bun.spawn([job.compiler, ...job.flags, "-o", temporary, job.source.path], {
    cwd: GUEST_SOURCES_DIR,
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stderr, code] = await Promise.all([new Response(child.stderr).text(), child.exited]);
  if (code !== 0) {
    rmSync(temporary, { force: true });
    if (/fatal error: [^:]+\.h: No such file/.test(stderr)) {
      return `${job.label}: ${job.compiler} has no C library headers: install ${LIBC_DEV_FOR[job.compiler]}\n${stderr.trim()}`;
    }
    return `${job.label}: ${job.compiler} failed (exit ${code}):\n${stderr.trim()}`;
  }
  renameSync(temporary, job.output);
  return null;
}

async function runLimited<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await work(items[next++]);
  });
  await Promise.all(workers);
}

async function buildGuestPrograms(fixtures: Fixtures): Promise<void> {
  const sources = listGuestSources();
  if (sources.length === 0) {
    fixtures.problems.push(`no guest sources in ${GUEST_SOURCES_DIR}`);
    return;
  }
  const jobs: BuildJob[] = [];
  const crossAvailable = Bun.which(CROSS_CC) !== null;
  const nativeAvailable = Bun.which(NATIVE_CC) !== null;
  if (!crossAvailable) fixtures.problems.push(missingToolMessage(CROSS_CC, LIBC_DEV_FOR[CROSS_CC]));
  const wantsNative = sources.some((source) => source.tags.has("native"));
  if (wantsNative && !nativeAvailable)
    fixtures.problems.push(missingToolMessage(NATIVE_CC, LIBC_DEV_FOR[NATIVE_CC]));
  for (const source of sources) {
    if (crossAvailable) {
      jobs.push({
        label: `aarch64/${source.name}`,
        compiler: CROSS_CC,
        flags: ["-static", ...COMMON_FLAGS],
        source,
        output: join(FIXTURES_DIR, "aarch64", source.name),
      });
      if (source.tags.has("static-pie")) {
        jobs.push({
          label: `aarch64/${source.name}-static-pie`,
          compiler: CROSS_CC,
          flags: ["-static-pie", ...COMMON_FLAGS],
          source,
          output: join(FIXTURES_DIR, "aarch64", `${source.name}-static-pie`),
        });
      }
    }
    // The native builds only make sense on an x86_64 Linux host (their directory says what they are).
    if (
      source.tags.has("native") &&
      nativeAvailable &&
      process.platform === "linux" &&
      process.arch === "x64"
    ) {
      jobs.push({
        label: `x86_64/${source.name}`,
        compiler: NATIVE_CC,
        flags: COMMON_FLAGS,
        source,
        output: join(FIXTURES_DIR, "x86_64", source.name),
      });
    }
  }

  const headers = sharedHeaders();
  const stale = jobs.filter((job) => {
    const keyFile = `${job.output}.sha256`;
    const key = buildKey(job, headers);
    return !(existsSync(job.output) && existsSync(keyFile) && readFileSync(keyFile, "utf8").trim() === key);
  });
  if (stale.length > 0) consola.start(`Building ${stale.length} of ${jobs.length} guest test programs…`);
  let built = 0;
  await runLimited(stale, 2, async (job) => {
    const problem = await compile(job);
    if (problem) {
      fixtures.problems.push(problem);
      return;
    }
    writeFileSync(`${job.output}.sha256`, `${buildKey(job, headers)}\n`);
    built++;
  });
  if (stale.length > 0) consola.success(`Built ${built} guest test programs into ${FIXTURES_DIR}`);

  const failed = new Set(stale.map((job) => job.output).filter((output) => !existsSync(output)));
  for (const job of jobs) {
    if (failed.has(job.output)) continue;
    const [arch, name] = job.label.split("/");
    (arch === "aarch64" ? fixtures.aarch64 : fixtures.x86_64)[name] = job.output;
  }
}

function run(command: string[], cwd?: string): { ok: boolean; output: string } {
  const result = Bun.spawnSync(command, {
    cwd,
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
  return { ok: result.success, output: `${result.stdout.toString()}${result.stderr.toString()}`.trim() };
}

function isAarch64Elf(path: string): boolean {
  const header = readFileSync(path).subarray(0, 20);
  return (
    header.length === 20 &&
    header[0] === 0x7f &&
    header.toString("latin1", 1, 4) === "ELF" &&
    header.readUInt16LE(18) === EM_AARCH64
  );
}

/** A static arm64 program taken from a Debian package. */
interface DebianStaticProgram {
  /** Fixture name: its folder under .cache/fixtures and the label of its problems. */
  name: string;
  package: string;
  /** Where the package may put the binary (the first that exists wins), relative to the unpacked tree. */
  binaries: string[];
}

const BUSYBOX: DebianStaticProgram = { name: "busybox", package: BUSYBOX_PACKAGE, binaries: ["bin/busybox"] };
// bookworm ships bin/bash-static, later releases usr/bin/bash-static.
const BASH: DebianStaticProgram = {
  name: "bash",
  package: BASH_PACKAGE,
  binaries: ["bin/bash-static", "usr/bin/bash-static"],
};
const SHFMT: DebianStaticProgram = { name: "shfmt", package: "shfmt", binaries: ["usr/bin/shfmt"] };

function findAarch64Binary(destination: string, program: DebianStaticProgram): string | null {
  for (const relative of program.binaries) {
    const binary = join(destination, relative);
    if (existsSync(binary) && isAarch64Elf(binary)) return binary;
  }
  return null;
}

/** apt-get download <package>:arm64 and unpack it, once; returns the binary or pushes a problem and returns null. */
function fetchDebianStatic(fixtures: Fixtures, program: DebianStaticProgram): string | null {
  const { name, package: pkg } = program;
  const destination = join(FIXTURES_DIR, name);
  const cached = findAarch64Binary(destination, program);
  if (cached) return cached;
  for (const tool of ["apt-get", "dpkg-deb"]) {
    if (Bun.which(tool) === null) {
      fixtures.problems.push(`${name}: ${missingToolMessage(tool)} (it fetches Debian's ${pkg}:arm64)`);
      return null;
    }
  }
  const debs = join(FIXTURES_DIR, `debs-${name}`);
  rmSync(debs, { recursive: true, force: true });
  mkdirSync(debs, { recursive: true });
  consola.start(`Fetching Debian's ${pkg}:arm64…`);
  // Run as root, apt drops to the _apt user for downloads, which cannot write into our cache folder.
  const download = ["apt-get", "-o", "APT::Sandbox::User=root", "download", `${pkg}:arm64`];
  let attempt = run(download, debs);
  if (!attempt.ok) {
    const enable = "dpkg --add-architecture arm64 && apt-get update";
    const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
    if (!isRoot) {
      fixtures.problems.push(
        `${name}: \`apt-get download ${pkg}:arm64\` failed. Enable arm64 packages once, then retry:\n` +
          `  sudo ${enable.replace("&& ", "&& sudo ")}\n  bun scripts/fixtures.ts\n${attempt.output.slice(-1500)}`,
      );
      return null;
    }
    consola.info(`apt cannot find ${pkg}:arm64 yet: running \`${enable}\``);
    const add = run(["dpkg", "--add-architecture", "arm64"]);
    const update = add.ok ? run(["apt-get", "update"]) : add;
    if (!update.ok) {
      fixtures.problems.push(`${name}: \`${enable}\` failed:\n${update.output.slice(-1500)}`);
      return null;
    }
    attempt = run(download, debs);
    if (!attempt.ok) {
      fixtures.problems.push(
        `${name}: \`apt-get download ${pkg}:arm64\` failed:\n${attempt.output.slice(-1500)}`,
      );
      return null;
    }
  }
  const deb = readdirSync(debs).find((file) => file.startsWith(`${pkg}_`) && file.endsWith(".deb"));
  if (!deb) {
    fixtures.problems.push(`${name}: apt-get download left no ${pkg} .deb in ${debs}`);
    return null;
  }
  rmSync(destination, { recursive: true, force: true });
  const unpack = run(["dpkg-deb", "-x", join(debs, deb), destination]);
  const binary = unpack.ok ? findAarch64Binary(destination, program) : null;
  if (!binary) {
    fixtures.problems.push(
      `${name}: dpkg-deb -x ${deb} did not yield an aarch64 ${program.binaries.join(" or ")} in ${destination}:\n${unpack.output}`,
    );
    return null;
  }
  rmSync(debs, { recursive: true, force: true });
  consola.success(`${name} ready: ${binary} (from ${deb})`);
  return binary;
}

/** Memoised per set of options, so each combination is built at most once per process. */
const pending = new Map<string, Promise<Fixtures>>();

/** Build (or reuse) every fixture. Never throws for a missing tool: see `problems`. */
export function ensureFixtures(options: EnsureFixturesOptions = {}): Promise<Fixtures> {
  const withBusybox = options.busybox ?? true;
  // Whoever turns the Debian download of busybox off (memory.test.ts) does not want bash fetched either.
  const withBash = options.bash ?? withBusybox;
  const withShfmt = options.shfmt ?? false;
  const key = `${withBusybox}/${withBash}/${withShfmt}`;
  let fixtures = pending.get(key);
  if (fixtures === undefined) {
    fixtures = buildFixtures(withBusybox, withBash, withShfmt);
    pending.set(key, fixtures);
  }
  return fixtures;
}

async function buildFixtures(withBusybox: boolean, withBash: boolean, withShfmt: boolean): Promise<Fixtures> {
  const fixtures: Fixtures = {
    root: FIXTURES_DIR,
    aarch64: {},
    x86_64: {},
    busybox: null,
    bash: null,
    shfmt: null,
    problems: [],
  };
  mkdirSync(FIXTURES_DIR, { recursive: true });
  await buildGuestPrograms(fixtures);
  if (withBusybox) fixtures.busybox = fetchDebianStatic(fixtures, BUSYBOX);
  if (withBash) fixtures.bash = fetchDebianStatic(fixtures, BASH);
  if (withShfmt) fixtures.shfmt = fetchDebianStatic(fixtures, SHFMT);
  for (const problem of fixtures.problems) consola.warn(problem);
  return fixtures;
}

if (import.meta.main) {
  const fixtures = await ensureFixtures({ shfmt: true });
  const count = Object.keys(fixtures.aarch64).length + Object.keys(fixtures.x86_64).length;
  consola.info(
    `${count} guest programs in ${fixtures.root}; busybox: ${fixtures.busybox ?? "missing"}; bash: ${fixtures.bash ?? "missing"}; shfmt: ${fixtures.shfmt ?? "missing"}`,
  );
  if (fixtures.problems.length > 0) process.exit(1);
}
