import { bench, do_not_optimize, group, run } from "mitata";
import { PAGE_SIZE, PROT_EXEC, PROT_READ, PROT_WRITE, type Region, RegionTracker } from "../src/index.ts";

const P = PAGE_SIZE;
const FLAGS = { shared: false, anonymous: true, noreserve: false, growsDown: false, locked: false };
const SLOT = 8 * P; // each region: 4 pages, then a 4-page gap
/**
 * Length of every precomputed access sequence. It must be long: the branch predictor learns much of
 * a repeating sequence of a few thousand, which flatters the small trackers and inflates the 64k/1k
 * ratio (the previous branchy search measured find at 1k as 13 ns with 4,096 entries, 72 ns with
 * 65,536).
 */
const SEQ = 1 << 16;
const MASK = SEQ - 1;

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

function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x >>> 8;
  };
}

/** Slots drawn uniformly from all n (the same pattern at every size). */
function randomSlots(n: number): Int32Array {
  const next = lcg(12345);
  const out = new Int32Array(SEQ);
  for (let i = 0; i < SEQ; i++) out[i] = next() % n;
  return out;
}

/** A random walk: each slot within 4 of the previous one (a program touching nearby memory). */
function nearbySlots(n: number): Int32Array {
  const next = lcg(54321);
  const out = new Int32Array(SEQ);
  let s = next() % n;
  for (let i = 0; i < SEQ; i++) {
    s = (s + (next() % 9) - 4 + n) % n;
    out[i] = s;
  }
  return out;
}

/** Addresses at a random page of each slot: half fall inside the region, half in the gap after it. */
function addresses(slots: Int32Array): Float64Array {
  const next = lcg(777);
  const out = new Float64Array(SEQ);
  for (let i = 0; i < SEQ; i++) out[i] = slots[i] * SLOT + (next() & 7) * P;
  return out;
}

/** The measured operations on one tracker, each over its access sequence. */
function operations(n: number): [string, () => void][] {
  const t = populated(n);
  const random = randomSlots(n);
  const nearby = nearbySlots(n);
  const randomAddrs = addresses(random);
  const nearbyAddrs = addresses(nearby);
  let k = 0;
  return [
    ["find, random addresses", () => do_not_optimize(t.find(randomAddrs[k++ & MASK]))],
    ["find, nearby addresses", () => do_not_optimize(t.find(nearbyAddrs[k++ & MASK]))],
    [
      "insert + remove a region in a gap",
      () => {
        const s = random[k++ & MASK];
        t.insert(region(s * SLOT + 5 * P, s * SLOT + 6 * P, PROT_EXEC));
        do_not_optimize(t.remove(s * SLOT + 5 * P, s * SLOT + 6 * P));
      },
    ],
    [
      "split + re-merge (mprotect a middle page and back)",
      () => {
        const s = random[k++ & MASK];
        const prot = s & 1 ? PROT_READ : PROT_READ | PROT_WRITE;
        t.update(s * SLOT + P, s * SLOT + 2 * P, { prot: PROT_EXEC });
        do_not_optimize(t.update(s * SLOT + P, s * SLOT + 2 * P, { prot }));
      },
    ],
    [
      "isFullyMapped + everyHasProt, random",
      () => {
        const s = random[k++ & MASK];
        do_not_optimize(
          t.isFullyMapped(s * SLOT, s * SLOT + 4 * P) && t.everyHasProt(s * SLOT, s * SLOT + 4 * P, 1),
        );
      },
    ],
    [
      "isFullyMapped + everyHasProt, nearby",
      () => {
        const s = nearby[k++ & MASK];
        do_not_optimize(
          t.isFullyMapped(s * SLOT, s * SLOT + 4 * P) && t.everyHasProt(s * SLOT, s * SLOT + 4 * P, 1),
        );
      },
    ],
    [
      "findFreeGap top-down, window around a random slot",
      () => {
        const s = random[k++ & MASK];
        do_not_optimize(
          t.findFreeGap({ length: 4 * P, topDown: true, low: s * SLOT, high: s * SLOT + 16 * P }),
        );
      },
    ],
  ];
}

// Warm-up: run every operation until the JIT has optimised the tracker. Without it the first group
// sometimes measured tier-up (split + re-merge at 1k read 740 ns instead of 450 ns in a third of runs).
for (const [, op] of operations(1000)) for (let i = 0; i < 200_000; i++) op();

for (const n of [1000, 10_000, 64_000]) {
  group(`${n} regions`, () => {
    for (const [name, op] of operations(n)) bench(`${name} @${n}`, op);
  });
}

await run(process.env.BENCH_JSON ? { format: "json" } : {});
