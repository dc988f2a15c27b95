import { expect, test } from "bun:test";
import { hvfAvailability, hypervisorUnavailable, loadHypervisor, loadSimdHelper } from "./ffi.ts";
import { FakeHypervisor } from "./testing/fake-hypervisor.ts";

const appleSilicon = process.platform === "darwin" && process.arch === "arm64";

test.skipIf(appleSilicon)(
  "off Apple Silicon the framework is never opened and the reason says what to do",
  () => {
    const reason = `Hypervisor.framework needs macOS on Apple Silicon; this host is ${process.platform}-${process.arch}: use --backend emulator`;
    expect(hvfAvailability()).toEqual({ available: false, reason });
    expect(hypervisorUnavailable()).toBe(reason);
    expect(loadHypervisor()).toBeNull();
    expect(() => loadSimdHelper()).toThrow(/arm64 machine code/);
  },
);

test("availability with an injected symbol table asks for the IPA limit", () => {
  const fake = new FakeHypervisor();
  expect(hvfAvailability(fake.symbols)).toEqual({ available: true });
  (fake.symbols as unknown as Record<string, unknown>).hv_vm_config_get_max_ipa_size = () => 0xfae94006 | 0;
  expect(hvfAvailability(fake.symbols)).toMatchObject({
    available: false,
    reason: expect.stringMatching(/0xfae94006/),
  });
});

test("importing the package works on any host without touching the framework", async () => {
  const pkg = await import("@guest/hvf-bindings");
  expect(typeof pkg.loadNativeHelper).toBe("function");
  const hvf = await pkg.loadHvf();
  expect(await pkg.loadHvf()).toBe(hvf);
  expect(typeof hvf.HvfBackend).toBe("function");
  const backend = new hvf.HvfBackend();
  expect(backend.name).toBe("hvf");
  if (!appleSilicon) {
    expect(backend.availability().available).toBe(false);
    expect(() => backend.createVm({ memorySize: 256 * 1024 * 1024 })).toThrow(/use --backend emulator/);
  }
});
