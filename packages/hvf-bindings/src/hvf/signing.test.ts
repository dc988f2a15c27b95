import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { hvfAvailability } from "./ffi.ts";
import {
  ENTITLEMENTS_PLIST,
  HYPERVISOR_ENTITLEMENT,
  hvfSigningStatus,
  parseCodesignEntitlements,
  SIGNED_ENTRY_POINTS,
  signingCommands,
  signingStatusFromCodesign,
  UNSIGNED_REASON,
} from "./signing.ts";
import { FakeHypervisor } from "./testing/fake-hypervisor.ts";

const repoRoot = resolve(import.meta.dir, "..", "..", "..", "..");

// What codesign prints (macOS 12+ key/value dump; older releases and --xml print the plist).
const DUMP_ENTITLED = `Executable=/Users/me/guest/.cache/guest-hvf
[Dict]
	[Key] com.apple.security.cs.allow-jit
	[Value]
		[Bool] true
	[Key] com.apple.security.cs.disable-library-validation
	[Value]
		[Bool] true
	[Key] com.apple.security.hypervisor
	[Value]
		[Bool] true
`;
const DUMP_BUN_RELEASE = `Executable=/opt/homebrew/bin/bun
[Dict]
	[Key] com.apple.security.cs.allow-jit
	[Value]
		[Bool] true
	[Key] com.apple.security.cs.allow-unsigned-executable-memory
	[Value]
		[Bool] true
	[Key] com.apple.security.get-task-allow
	[Value]
		[Bool] false
`;
const XML_HYPERVISOR_FALSE = `<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict><key>com.apple.security.hypervisor</key><false/><key>com.apple.security.cs.allow-jit</key><true/></dict></plist>`;
const NOT_SIGNED = "/tmp/a.out: code object is not signed at all\n";

test("codesign's key/value dump and its XML plist parse to the same booleans", () => {
  expect(parseCodesignEntitlements(DUMP_ENTITLED)).toEqual({
    "com.apple.security.cs.allow-jit": true,
    "com.apple.security.cs.disable-library-validation": true,
    [HYPERVISOR_ENTITLEMENT]: true,
  });
  expect(parseCodesignEntitlements(XML_HYPERVISOR_FALSE)).toEqual({
    [HYPERVISOR_ENTITLEMENT]: false,
    "com.apple.security.cs.allow-jit": true,
  });
  // A key whose value is not a boolean is not taken for the next boolean.
  expect(
    parseCodesignEntitlements(
      "[Dict]\n\t[Key] com.apple.application-identifier\n\t[Value]\n\t\t[String] X.y\n\t[Key] a.b\n\t[Value]\n\t\t[Bool] true\n",
    ),
  ).toEqual({ "a.b": true });
});

test("unsigned, signed without the entitlement, and entitled executables", () => {
  const unsigned = signingStatusFromCodesign("/tmp/a.out", { exitCode: 1, stdout: "", stderr: NOT_SIGNED });
  expect(unsigned).toMatchObject({
    signed: false,
    hypervisor: false,
    detail: "/tmp/a.out: code object is not signed at all",
  });
  const bun = signingStatusFromCodesign("/opt/homebrew/bin/bun", {
    exitCode: 0,
    stdout: DUMP_BUN_RELEASE,
    stderr: "",
  });
  expect(bun).toMatchObject({ signed: true, hypervisor: false });
  expect(bun.entitlements["com.apple.security.get-task-allow"]).toBe(false);
  const signed = signingStatusFromCodesign("/x/guest-hvf", {
    exitCode: 0,
    stdout: "",
    stderr: DUMP_ENTITLED,
  });
  expect(signed).toMatchObject({ signed: true, hypervisor: true });
});

test("availability says how to sign when the entitlement is missing, and passes when it is there", () => {
  const fake = new FakeHypervisor();
  const reason =
    "Hypervisor.framework needs the com.apple.security.hypervisor entitlement: run `bun packages/hvf-bindings/scripts/sign.ts` and use .cache/guest-hvf";
  expect(UNSIGNED_REASON).toBe(reason);
  for (const output of [
    { exitCode: 1, stdout: "", stderr: NOT_SIGNED },
    { exitCode: 0, stdout: DUMP_BUN_RELEASE, stderr: "" },
    { exitCode: 0, stdout: XML_HYPERVISOR_FALSE, stderr: "" },
  ]) {
    const status = hvfSigningStatus({ executable: "/bin/x", codesign: () => output });
    expect(hvfAvailability(fake.symbols, status)).toEqual({ available: false, reason });
  }
  const entitled = hvfSigningStatus({
    executable: "/x/guest-hvf",
    codesign: (path) => ({
      exitCode: 0,
      stdout: DUMP_ENTITLED.replace("/Users/me/guest/.cache/guest-hvf", path),
      stderr: "",
    }),
  });
  expect(entitled.executable).toBe("/x/guest-hvf");
  expect(hvfAvailability(fake.symbols, entitled)).toEqual({ available: true });
});

test.skipIf(process.platform === "darwin")(
  "off macOS the signing status says why, without running codesign",
  () => {
    const status = hvfSigningStatus();
    expect(status).toMatchObject({ executable: process.execPath, signed: false, hypervisor: false });
    expect(status.detail).toContain(`this host is ${process.platform}`);
    expect(hvfSigningStatus()).toBe(status); // memoised
  },
);

test("the committed entitlements grant the hypervisor and what Bun's JIT needs once re-signed", () => {
  expect(parseCodesignEntitlements(readFileSync(ENTITLEMENTS_PLIST, "utf8"))).toEqual({
    [HYPERVISOR_ENTITLEMENT]: true,
    "com.apple.security.cs.allow-jit": true,
    "com.apple.security.cs.allow-unsigned-executable-memory": true,
    "com.apple.security.cs.disable-library-validation": true,
  });
});

test("sign.ts compiles the CLI with the vCPU worker entry, then signs ad hoc with the committed plist", () => {
  const [build, sign] = signingCommands({
    bun: "/usr/bin/bun",
    root: repoRoot,
    outfile: "/r/.cache/guest-hvf",
  });
  expect(build).toEqual([
    "/usr/bin/bun",
    "build",
    "--compile",
    "--root",
    repoRoot,
    join(repoRoot, "apps/guest/src/main.ts"),
    join(repoRoot, "packages/hvf-bindings/src/hvf/vcpu-worker.ts"),
    "--outfile",
    "/r/.cache/guest-hvf",
  ]);
  expect(sign).toEqual([
    "codesign",
    "--sign",
    "-",
    "--force",
    "--entitlements",
    ENTITLEMENTS_PLIST,
    "/r/.cache/guest-hvf",
  ]);
  for (const entry of SIGNED_ENTRY_POINTS) expect(Bun.file(join(repoRoot, entry)).size).toBeGreaterThan(0);
});

test.skipIf(process.platform === "darwin")("sign.ts explains and fails off macOS", () => {
  const result = Bun.spawnSync([process.execPath, join(import.meta.dir, "..", "..", "scripts", "sign.ts")], {
    stdout: "pipe",
    stderr: "pipe",
  });
  expect(result.exitCode).toBe(1);
  expect(result.stderr.toString()).toMatch(/macOS only.*Apple Silicon.*--backend emulator/s);
});
