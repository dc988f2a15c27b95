import { bench, do_not_optimize, group, run } from "mitata";
import { PAGE_SIZE, PROT_EXEC, PROT_READ, PROT_WRITE, type Region, RegionTracker } from "../src/index.ts";

const P = PAGE_SIZE;
const FLAGS = { shared: false, anonymous: true, noreserve: false, growsDown: false, locked: false };
const SLOT = 8 * P; // each region: 4 pages, then a 4-page gap

function region(start: number, end: number, prot: number): Region {
  return { start, end, prot, flags: FLAGS, mappingId: 1, mayHoldGuards: false };
}

/** n regions of 4 pages with alternating protections (never mergeable), separated by gaps. */
function populated(n: number): RegionTracker {
  const t = new RegionTracker();
  for (let i = 0; i < n; i++) {
    t.insert(region(i * SLOT, i * SLOT + 4 * P, i & 1 ? PROT_READ : PROT_READ | PROT_WRITE));
  }
  return t;
}

/** A fixed pseudo-random sequence of slot indexes (no Math.random inside the measured loop). */
function slots(n: number): Int32Array {
  const out = new Int32Array(4096);
  let x = 12345;
  for (let i = 0; i < out.length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x % n;
  }
  return out;
}

for (const n of [1000, 10_000, 64_000]) {
  group(`${n} regions`, () => {
    const t = populated(n);
    const seq = slots(n);
    let k = 0;
    bench(`find @${n}`, () => {
      const s = seq[k++ & 4095];
      do_not_optimize(t.find(s * SLOT + 2 * P));
    });
    bench(`insert + remove a region in a gap @${n}`, () => {
      const s = seq[k++ & 4095];
      t.insert(region(s * SLOT + 5 * P, s * SLOT + 6 * P, PROT_EXEC));
      do_not_optimize(t.remove(s * SLOT + 5 * P, s * SLOT + 6 * P));
    });
    bench(`split + re-merge (mprotect a middle page and back) @${n}`, () => {
      const s = seq[k++ & 4095];
      const prot = s & 1 ? PROT_READ : PROT_READ | PROT_WRITE;
      t.update(s * SLOT + P, s * SLOT + 2 * P, { prot: PROT_EXEC });
      do_not_optimize(t.update(s * SLOT + P, s * SLOT + 2 * P, { prot }));
    });
    bench(`isFullyMapped + everyHasProt @${n}`, () => {
      const s = seq[k++ & 4095];
      do_not_optimize(
        t.isFullyMapped(s * SLOT, s * SLOT + 4 * P) && t.everyHasProt(s * SLOT, s * SLOT + 4 * P, 1),
      );
    });
    bench(`findFreeGap top-down, window around a random slot @${n}`, () => {
      const s = seq[k++ & 4095];
      do_not_optimize(
        t.findFreeGap({ length: 4 * P, topDown: true, low: s * SLOT, high: s * SLOT + 16 * P }),
      );
    });
  });
}

await run(process.env.BENCH_JSON ? { format: "json" } : {});
