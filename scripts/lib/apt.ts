/**
 * Debian package helpers for setup: detect what is installed, install with apt-get when we may, and
 * fetch single packages from another suite or architecture through a *private* apt configuration under
 * .cache/apt, so the machine's own sources, architectures and installed packages are never changed.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { consola } from "consola";

export const REPO_ROOT = join(import.meta.dir, "..", "..");
export const CACHE_DIR = join(REPO_ROOT, ".cache");
const DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg";

export function run(
  command: string[],
  options: { quiet?: boolean; cwd?: string } = {},
): { ok: boolean; output: string } {
  const result = Bun.spawnSync(command, {
    cwd: options.cwd,
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
  const output = `${result.stdout.toString()}${result.stderr.toString()}`;
  if (!result.success && !options.quiet) consola.debug(`${command.join(" ")} failed:\n${output}`);
  return { ok: result.success, output };
}

export function hasCommand(name: string): boolean {
  return Bun.which(name) !== null;
}

export function isRoot(): boolean {
  return typeof process.getuid === "function" && process.getuid() === 0;
}

export function dpkgInstalled(pkg: string): boolean {
  if (!hasCommand("dpkg-query")) return false;
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax, not a JS template.
  const { ok, output } = run(["dpkg-query", "-W", "-f=${Status}", pkg], { quiet: true });
  return ok && output.includes("install ok installed");
}

export function canUseApt(): boolean {
  return hasCommand("apt-get") && hasCommand("dpkg");
}

let aptUpdated = false;

/** apt-get install the missing packages (root only); returns false with the command to run otherwise. */
export function aptInstall(packages: string[], why: string): boolean {
  const missing = packages.filter((pkg) => !dpkgInstalled(pkg));
  if (missing.length === 0) return true;
  const command = `apt-get install -y ${missing.join(" ")}`;
  if (!canUseApt() || !isRoot()) {
    consola.warn(
      `${why} needs: ${missing.join(", ")}. Install them with:\n  sudo apt-get update && sudo ${command}`,
    );
    return false;
  }
  consola.start(`Installing ${missing.join(", ")} (${why})…`);
  if (!aptUpdated) {
    const update = run(["apt-get", "update"]);
    if (!update.ok) consola.warn(`apt-get update reported problems:\n${update.output.slice(-2000)}`);
    aptUpdated = true;
  }
  const result = run(["apt-get", "install", "-y", "--no-install-recommends", ...missing]);
  if (!result.ok) {
    consola.error(`${command} failed:\n${result.output.slice(-3000)}`);
    return false;
  }
  consola.success(`Installed ${missing.join(", ")}`);
  return true;
}

export function hostDebianArch(): string | null {
  if (!hasCommand("dpkg")) return null;
  const { ok, output } = run(["dpkg", "--print-architecture"], { quiet: true });
  return ok ? output.trim() : null;
}

/**
 * Download `pkg` for `arch` from Debian `suite` into `.cache/apt/debs` with a private apt state, and unpack it
 * into `destination`. Works without root and without touching /etc/apt. Returns the unpack folder or null.
 */
export function fetchDebianPackage(
  pkg: string,
  suite: string,
  arch: string,
  destination: string,
): string | null {
  if (!hasCommand("apt-get") || !hasCommand("dpkg-deb")) {
    consola.warn(`apt-get/dpkg-deb not found: cannot fetch ${pkg} from Debian ${suite}`);
    return null;
  }
  if (!existsSync(DEBIAN_KEYRING)) {
    consola.warn(
      `${DEBIAN_KEYRING} not found (package debian-archive-keyring): cannot verify Debian's ${suite} archive`,
    );
    return null;
  }
  const state = join(CACHE_DIR, "apt", `${suite}-${arch}`);
  const lists = join(state, "lists");
  const archives = join(state, "archives");
  mkdirSync(join(lists, "partial"), { recursive: true });
  mkdirSync(join(archives, "partial"), { recursive: true });
  const sourcesFile = join(state, "sources.list");
  writeFileSync(
    sourcesFile,
    `deb [arch=${arch} signed-by=${DEBIAN_KEYRING}] http://deb.debian.org/debian ${suite} main\n`,
  );
  const options = [
    "-o",
    `Dir::Etc::SourceList=${sourcesFile}`,
    "-o",
    "Dir::Etc::SourceParts=/nonexistent",
    "-o",
    `Dir::State::Lists=${lists}`,
    "-o",
    `Dir::State::Status=${join(state, "status")}`,
    "-o",
    `Dir::Cache=${state}`,
    "-o",
    `Dir::Cache::Archives=${archives}`,
    "-o",
    `APT::Architecture=${arch}`,
    "-o",
    `APT::Architectures=${arch}`,
    "-o",
    "Debug::NoLocking=1",
    "-o",
    "APT::Sandbox::User=root",
  ];
  writeFileSync(join(state, "status"), "");
  consola.start(`Fetching ${pkg} (${arch}) from Debian ${suite}…`);
  const update = run(["apt-get", ...options, "update"]);
  if (!update.ok) {
    consola.error(`apt-get update for Debian ${suite} failed:\n${update.output.slice(-2000)}`);
    return null;
  }
  const download = run(["apt-get", ...options, "download", `${pkg}:${arch}`], { cwd: archives });
  if (!download.ok) {
    consola.error(`apt-get download ${pkg} failed:\n${download.output.slice(-2000)}`);
    return null;
  }
  const deb = readdirSync(archives).find((name) => name.startsWith(`${pkg}_`) && name.endsWith(".deb"));
  if (!deb) {
    consola.error(`apt-get download ${pkg} left no .deb in ${archives}`);
    return null;
  }
  mkdirSync(destination, { recursive: true });
  const unpack = run(["dpkg-deb", "-x", join(archives, deb), destination]);
  if (!unpack.ok) {
    consola.error(`dpkg-deb -x ${deb} failed:\n${unpack.output}`);
    return null;
  }
  consola.success(`${deb} unpacked into ${destination}`);
  return destination;
}
