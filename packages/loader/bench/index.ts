/**
 * Loader benchmarks: validation + planning of a busybox-sized static binary, segment writing, and the
 * initial stack. The binary is $GUEST_BENCH_ELF, else /tmp/pk/x/bin/busybox when present, else a static
 * program built with the cross compiler.
 */
import { existsSync, readFileSync } from "node:fs";
import { bench, do_not_optimize, group, run } from "mitata";
import { buildInitialStack, parseElf, planLoad, UNICORN_MAX_CPU_HWCAP, writeSegments } from "../src/index.ts";
import { buildFixtures } from "../src/test-support/fixtures.ts";

function benchBinary(): { name: string; bytes: Uint8Array } {
  const candidates = [process.env.GUEST_BENCH_ELF, "/tmp/pk/x/bin/busybox"].filter((p): p is string => !!p);
  for (const path of candidates)
    if (existsSync(path)) return { name: path, bytes: new Uint8Array(readFileSync(path)) };
  const fixtures = buildFixtures();
  if (fixtures === null)
    throw new Error("no benchmark binary: set GUEST_BENCH_ELF or install aarch64-linux-gnu-gcc");
  return { name: "static probe", bytes: fixtures.staticExe.bytes };
}

const { name, bytes } = benchBinary();
const image = parseElf(bytes);
const plan = planLoad(image);
const memory = new Uint8Array(plan.imageEnd);

group(`ELF (${name}, ${(bytes.length / 1024).toFixed(0)} KiB, ${image.phnum} phdrs)`, () => {
  bench("parseElf", () => do_not_optimize(parseElf(bytes)));
  bench("parseElf + planLoad", () => do_not_optimize(planLoad(parseElf(bytes))));
  bench("writeSegments (copy + BSS zero)", () => writeSegments(plan, bytes, memory));
});

const stackMemory = new Uint8Array(1 << 20);
const random = new Uint8Array(16);
const argv = ["/bin/busybox", "sh", "-c", "echo hello world"];
const envp = Array.from({ length: 30 }, (_, i) => `VARIABLE_${i}=${"value".repeat(1 + (i % 5))}`);

group("initial stack", () => {
  bench("buildInitialStack (4 args, 30 env vars)", () =>
    do_not_optimize(
      buildInitialStack({
        memory: stackMemory,
        stackTop: 1 << 20,
        argv,
        envp,
        execfn: "/bin/busybox",
        phdr: plan.phdrAddress,
        phent: plan.phent,
        phnum: plan.phnum,
        entry: plan.entry,
        hwcap: UNICORN_MAX_CPU_HWCAP,
        random,
        sysinfoEhdr: 0xf000,
      }),
    ),
  );
});

await run(process.env.BENCH_JSON ? { format: "json" } : {});
