import { bench, do_not_optimize, group, run } from "mitata";
import { L2_SPAN, PAGE_SIZE, PageTable, PROT_READ, PROT_WRITE } from "../src/index.ts";

const MiB = 1024 * 1024;
const POOL_BASE = 1 * MiB;
const POOL_SIZE = 8 * MiB;
const RW = PROT_READ | PROT_WRITE;

/** Each table set gets its own guest memory: the benches are all set up before any runs. */
function fresh(): PageTable {
  const memory = new Uint8Array(POOL_BASE + POOL_SIZE);
  return new PageTable({ memory, poolBase: POOL_BASE, poolSize: POOL_SIZE });
}

group("pagetable", () => {
  {
    const pt = fresh();
    const base = 64 * MiB;
    pt.map(base, L2_SPAN, RW);
    pt.protect(base, PAGE_SIZE, PROT_READ); // an L3 table that stays non-uniform
    let i = 0;
    bench("PTE update: protect one page (4 KiB)", () => {
      i++;
      do_not_optimize(pt.protect(base + 100 * PAGE_SIZE, PAGE_SIZE, i & 1 ? PROT_READ : RW));
      pt.takeInvalidations();
    });
  }
  {
    const pt = fresh();
    const base = 128 * MiB;
    bench("2 MiB block split: map block + protect one page inside", () => {
      pt.map(base, L2_SPAN, RW);
      do_not_optimize(pt.protect(base + 7 * PAGE_SIZE, PAGE_SIZE, PROT_READ));
      pt.takeInvalidations();
    });
  }
  {
    const pt = fresh();
    const base = 192 * MiB;
    pt.map(base, L2_SPAN, RW);
    bench("split + merge round trip (protect a page, then restore it)", () => {
      pt.protect(base + 7 * PAGE_SIZE, PAGE_SIZE, PROT_READ);
      do_not_optimize(pt.protect(base + 7 * PAGE_SIZE, PAGE_SIZE, RW));
      pt.takeInvalidations();
    });
  }
  {
    const pt = fresh();
    pt.map(256 * MiB, 4 * MiB, PROT_READ); // keep upper tables alive
    const base = 256 * MiB + 64 * 1024 * 3;
    bench("map + unmap 64 KiB", () => {
      pt.map(base, 64 * 1024, RW);
      do_not_optimize(pt.unmap(base, 64 * 1024));
      pt.takeInvalidations();
    });
  }
  {
    const pt = fresh();
    const base = 512 * MiB;
    pt.map(base, 64 * MiB, RW);
    let i = 0;
    bench("protect 64 MiB (2 MiB aligned: 32 blocks)", () => {
      i++;
      do_not_optimize(pt.protect(base, 64 * MiB, i & 1 ? PROT_READ : RW));
      pt.takeInvalidations();
    });
  }
  {
    const pt = fresh();
    const base = 1024 * MiB;
    pt.map(base, 66 * MiB, RW);
    let i = 0;
    bench("protect 64 MiB (page aligned: 31 blocks + 2 partial L3 tables)", () => {
      i++;
      do_not_optimize(pt.protect(base + 4 * PAGE_SIZE, 64 * MiB, i & 1 ? PROT_READ : RW));
      pt.takeInvalidations();
    });
  }
  {
    const pt = fresh();
    const base = 2048 * MiB;
    pt.map(base, 64 * MiB, RW);
    // One guard page per 2 MiB keeps all 32 chunks as (unmergeable) L3 tables.
    for (let c = 0; c < 32; c++) pt.installGuard(base + c * L2_SPAN, PAGE_SIZE);
    let i = 0;
    bench("protect 64 MiB of L3 tables (16384 PTEs rewritten)", () => {
      i++;
      do_not_optimize(pt.protect(base, 64 * MiB, i & 1 ? PROT_READ : RW));
      pt.takeInvalidations();
    });
  }
  {
    const pt = fresh();
    const base = 64 * MiB;
    pt.map(base, L2_SPAN, RW);
    pt.protect(base, PAGE_SIZE, PROT_READ);
    bench("translate (L3 page)", () => do_not_optimize(pt.protectionAt(base + 33 * PAGE_SIZE)));
  }
});

await run(process.env.BENCH_JSON ? { format: "json" } : {});
