/*
 * The emulator's native core, compiled at start-up by Bun's built-in C compiler (bun:ffi `cc`).
 *
 * Why C and not JS callbacks for everything: Unicorn asks for a translation on every TLB miss and
 * reports every `svc`. A TLB fill answered in C costs a few loads (a walk of the real AArch64 tables
 * in guest memory); the same answer from a JSCallback would cost a JS entry each time. Syscalls still
 * need JS, so the interrupt hook gathers X0..X8 into `frame`, calls the JS dispatcher once and writes
 * X0 back — no uc_emu_start/stop per syscall.
 *
 * Only <stdint.h>/<stdbool.h> are included: the few libc and Unicorn entry points are declared here or
 * reached through pointers handed in by JS, so no system headers are needed at run time.
 */
#include <stdint.h>
#include <stdbool.h>

typedef void uc_engine;
typedef int (*uc_emu_start_fn)(uc_engine *, uint64_t, uint64_t, uint64_t, uint64_t);
typedef int (*uc_emu_stop_fn)(uc_engine *);
typedef int (*uc_reg_batch_fn)(uc_engine *, int *, void **, int);
typedef int (*uc_reg_fn)(uc_engine *, int, void *);
typedef int (*uc_ctl_fn)(uc_engine *, int, ...);
typedef int (*uc_hook_add_fn)(uc_engine *, uint64_t *, int, void *, void *, uint64_t, uint64_t, ...);
typedef int (*svc_callback_fn)(void);

void *mmap(void *, unsigned long, int, int, int, long);
int munmap(void *, unsigned long);
int madvise(void *, unsigned long, int);
#ifndef __APPLE__
void *mremap(void *, unsigned long, unsigned long, int, ...);
#endif
int mincore(void *, unsigned long, unsigned char *);
void *memset(void *, int, unsigned long);
#ifdef __APPLE__
int *__error(void);
#define HOST_ERRNO (*__error())
#define SLAB_MAP_FLAGS (0x0002 | 0x1000) /* MAP_PRIVATE | MAP_ANON */
#define SLAB_DISCARD_ADVICE 5            /* MADV_FREE; the caller re-zeroes where it must */
#define SLAB_FIXED 0x0010                /* MAP_FIXED */
#define SLAB_SHARED_FIXED (0x0001 | 0x0010) /* MAP_SHARED | MAP_FIXED */
#define SLAB_PRIVATE_FIXED (0x0002 | 0x0010) /* MAP_PRIVATE | MAP_FIXED */
#else
int *__errno_location(void);
#define HOST_ERRNO (*__errno_location())
#define SLAB_MAP_FLAGS (0x02 | 0x20 | 0x4000) /* MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE */
#define SLAB_DISCARD_ADVICE 4                 /* MADV_DONTNEED: private anonymous pages read back as zeroes */
#define SLAB_FIXED 0x10                       /* MAP_FIXED */
#define SLAB_SHARED_FIXED (0x01 | 0x10)       /* MAP_SHARED | MAP_FIXED */
#define SLAB_PRIVATE_FIXED (0x02 | 0x10)      /* MAP_PRIVATE | MAP_FIXED */
#endif

/* Exit kinds shared with core.ts (EXIT_*). */
enum {
  EXIT_NONE = 0,
  EXIT_SYSCALL = 1,
  EXIT_FAULT = 2,
  EXIT_UNDEFINED = 3,
  EXIT_BREAKPOINT = 4,
  EXIT_STOPPED = 5,
  EXIT_EXCEPTION = 6,
};

/* QEMU arm exception numbers (target/arm/cpu.h). */
enum { EXCP_UDEF = 1, EXCP_SWI = 2, EXCP_PREFETCH_ABORT = 3, EXCP_DATA_ABORT = 4, EXCP_BKPT = 7 };

/* uc_mem_type of the TLB-fill hook. */
enum { MEM_READ = 16, MEM_WRITE = 17, MEM_FETCH = 18 };

/* AArch64 stage-1 descriptor bits, as written by @guest/pagetable (descriptor.ts). */
#define DESC_VALID 1ULL
#define DESC_TABLE_OR_PAGE 2ULL
#define DESC_AP_EL0 (1ULL << 6)
#define DESC_AP_RO (1ULL << 7)
#define DESC_UXN (1ULL << 54)
#define DESC_OA_MASK 0x0000fffffffff000ULL

/* Anonymous fault-around: host pages are populated 64 KiB at a time on the first write. */
#define CHUNK_SHIFT 16
#define CHUNK_SIZE (1ULL << CHUNK_SHIFT)
#define MADV_POPULATE_WRITE_ADVICE 23

/*
 * The populate helper: one host thread (per host process) that populates half of each fault-around window of
 * eight chunks or more while the engine thread populates the other half. Allocating and zeroing a host page is
 * the whole cost of a first touch (about 1.3 µs per 4 KiB on a virtualised host, nearly all of it in the host
 * kernel and hypervisor), and it scales with cores, so two threads halve the wait. Linux only: elsewhere there
 * is no MADV_POPULATE_WRITE to hand over. The helper never touches Unicorn or JS, only madvise on the slab.
 *
 * Handover without locks: `state` is 0 (idle) or 1 (a job is posted or running). Only the engine thread
 * posts (0 -> 1, after writing the job) and only the helper finishes (1 -> 0); both sides sleep on the word
 * with futex. Populating zero-fill memory ahead is invisible to the guest (the pages read as zero either way),
 * so only changes of the slab's host mapping (a file overlay, a restore, destroy) wait for the helper first.
 */
#if defined(__linux__) && (defined(__x86_64__) || defined(__aarch64__))
#define POPULATE_HELPER 1
int pthread_create(void *, const void *, void *(*)(void *), void *);
int pthread_detach(unsigned long);
int pthread_sigmask(int, const void *, void *);
long syscall(long, ...);
int getpid(void);
long sysconf(int);
#define SC_NPROCESSORS_ONLN 84
#if defined(__x86_64__)
#define SYS_FUTEX 202
#else
#define SYS_FUTEX 98
#endif
#define FUTEX_WAIT_PRIVATE 128
#define FUTEX_WAKE_PRIVATE 129
#if defined(__TINYC__)
/* TinyCC lowers __atomic_* to library calls it does not have; x86-64 orders plain loads and stores (TSO)
   and every handover is followed by a futex syscall, so volatile accesses suffice there. */
#if !defined(__x86_64__)
#undef POPULATE_HELPER
#endif
#define LOAD_ACQUIRE(p) (*(volatile uint32_t *)(p))
#define STORE_RELEASE(p, v) (*(volatile uint32_t *)(p) = (v))
#else
#define LOAD_ACQUIRE(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE_RELEASE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#endif
#endif

#ifdef POPULATE_HELPER
/* Windows from 512 KiB: smaller ones take too little time to be worth a handover, and a short-lived program
   (a shell's child that execs and exits) never pays for the thread. */
#define HELPER_MIN_CHUNKS 8

static struct {
  uint32_t state;      /* 0 idle, 1 busy (futex word) */
  int owner_pid;       /* the process whose helper thread this is; a forked child starts its own */
  int disabled;        /* one CPU, or the thread could not be created */
  int switched_off;    /* core_set_populate_helper(0) */
  uint8_t *job_start;  /* written by the engine thread before state 0 -> 1 */
  uint64_t job_length;
  uint64_t jobs;       /* statistics: jobs finished, bytes populated by the helper */
  uint64_t bytes;
  uint64_t busy, windows;
} helper;

static void *populate_helper_main(void *unused) {
  (void)unused;
  for (;;) {
    while (LOAD_ACQUIRE(&helper.state) == 0) syscall(SYS_FUTEX, &helper.state, FUTEX_WAIT_PRIVATE, 0, 0, 0, 0);
    madvise(helper.job_start, helper.job_length, MADV_POPULATE_WRITE_ADVICE);
    helper.jobs++;
    helper.bytes += helper.job_length;
    STORE_RELEASE(&helper.state, 0);
    syscall(SYS_FUTEX, &helper.state, FUTEX_WAKE_PRIVATE, 1, 0, 0, 0);
  }
  return 0;
}

enum { HELPER_NONE, HELPER_BUSY, HELPER_IDLE };

/* The helper of this process (not a forked copy of another's), started on first use. */
static int populate_helper_state(void) {
  if (helper.disabled || helper.switched_off) return HELPER_NONE;
  int pid = getpid();
  if (helper.owner_pid != pid) {
    /* First use, or a forked child: the parent's thread is not here, whatever its state said. */
    helper.owner_pid = pid;
    helper.state = 0;
    if (sysconf(SC_NPROCESSORS_ONLN) < 2) {
      helper.disabled = 1;
      return HELPER_NONE;
    }
    /* Every signal blocked in the helper, so host signals keep reaching the engine thread's waits. */
    uint64_t all[16], previous[16];
    for (int i = 0; i < 16; i++) all[i] = ~0ULL;
    pthread_sigmask(2 /* SIG_SETMASK */, all, previous);
    unsigned long thread = 0;
    int failed = pthread_create(&thread, 0, populate_helper_main, 0);
    pthread_sigmask(2, previous, 0);
    if (failed) {
      helper.disabled = 1;
      return HELPER_NONE;
    }
    pthread_detach(thread);
  }
  if (LOAD_ACQUIRE(&helper.state) == 0) return HELPER_IDLE;
  helper.busy++;
  return HELPER_BUSY;
}

static void populate_helper_post(uint8_t *start, uint64_t length) {
  helper.job_start = start;
  helper.job_length = length;
  STORE_RELEASE(&helper.state, 1);
  syscall(SYS_FUTEX, &helper.state, FUTEX_WAKE_PRIVATE, 1, 0, 0, 0);
}

/* Wait until the helper has no job (before the slab's host mapping changes under it). */
static void populate_helper_quiesce(void) {
  if (helper.owner_pid != getpid()) return;
  while (LOAD_ACQUIRE(&helper.state) != 0) syscall(SYS_FUTEX, &helper.state, FUTEX_WAIT_PRIVATE, 1, 0, 0, 0);
}
#else
static void populate_helper_quiesce(void) {}
#endif

/* Turn the helper off (0) or on again (1): benchmarks compare the two; off, windows are populated whole here. */
void core_set_populate_helper(int enabled) {
#ifdef POPULATE_HELPER
  populate_helper_quiesce();
  helper.switched_off = !enabled;
#else
  (void)enabled;
#endif
}

/* Statistics: out[0] = jobs the helper finished, out[1] = bytes it populated, out[2] = windows it was busy for.
   Returns 1 if this process has a helper. */
int core_populate_helper_stats(uint64_t *out) {
#ifdef POPULATE_HELPER
  populate_helper_quiesce();
  out[0] = helper.jobs;
  out[1] = helper.bytes;
  out[2] = helper.busy;
  return helper.owner_pid == getpid() && !helper.disabled;
#else
  out[0] = 0;
  out[1] = 0;
  out[2] = 0;
  return 0;
#endif
}

/* The layout is mirrored by CORE_* offsets in core.ts: append only, keep 8-byte fields. */
struct core {
  uc_engine *uc;              /*   0 */
  uc_emu_start_fn emu_start;  /*   8 */
  uc_emu_stop_fn emu_stop;    /*  16 */
  uc_reg_batch_fn read_batch; /*  24 */
  uc_reg_fn reg_write;        /*  32 */
  uc_ctl_fn ctl;              /*  40 */
  uc_hook_add_fn hook_add;    /*  48 */
  uint8_t *mem;               /*  56: host address of guest physical memory */
  uint64_t mem_size;          /*  64 */
  uint64_t ttbr;              /*  72: guest PA of the L0 table; 0 = nothing mapped */
  svc_callback_fn on_svc;     /*  80: JS dispatcher, or 0 to leave run() on every svc */
  uint64_t exit_kind;         /*  88 */
  uint64_t fault_address;     /*  96: page-aligned, as Unicorn reports it */
  uint64_t fault_access;      /* 104: MEM_READ / MEM_WRITE / MEM_FETCH */
  uint64_t fault_mapped;      /* 112: 1 = permission fault, 0 = no valid translation, 2 = none recorded */
  uint64_t intno;             /* 120 */
  uint64_t stop_requested;    /* 128: set by JS (requestStop) or by the svc handler's LEAVE */
  uint64_t stopping;          /* 136: a stop is in progress: answer stray fills harmlessly */
  uint64_t code_probe;        /* 144: core_remove_code is translating an address that may not be fetchable */
  uint64_t fills;             /* 152: statistics */
  uint64_t svcs;              /* 160 */
  uint64_t frame[9];          /* 168: X0..X8 for the JS dispatcher */
  int frame_ids[9];           /* 240: uc register ids of X0..X8 */
  void *frame_ptrs[9];        /* 280: &frame[i] for uc_reg_read_batch */
  uint8_t *populated;         /* 352: one bit per 64 KiB chunk of the slab: populated (or not to populate) */
  uint64_t populate_enabled;  /* 360: MADV_POPULATE_WRITE works on this host (cleared on its first failure) */
  uint64_t populate_next;     /* 368: the chunk right after the last populated window (sequential detection) */
  uint64_t populate_window;   /* 376: chunks in the next window: 1, doubling while writes stay sequential */
  uint64_t slice_count;       /* 384: blocks run in this time slice (guest threads: preemption) */
  uint64_t slice_limit;       /* 392: blocks per slice; 0 = no preemption */
  uint64_t preempted;         /* 400: the last run ended because its slice ran out */
  uint64_t block_hook;        /* 408: the UC_HOOK_BLOCK handle, once installed */
  uint64_t interrupt;         /* 416: set asynchronously (a host signal): stop at the next block boundary */
};

static void stop(struct core *c, uint64_t kind) {
  c->exit_kind = kind;
  c->stopping = 1;
  c->emu_stop(c->uc);
}

static void on_interrupt(uc_engine *uc, uint32_t intno, void *user) {
  struct core *c = user;
  c->intno = intno;
  if (intno == EXCP_SWI) {
    c->svcs++;
    if (!c->on_svc) {
      stop(c, EXIT_SYSCALL);
      return;
    }
    c->read_batch(uc, c->frame_ids, c->frame_ptrs, 9);
    int leave = c->on_svc();
    if (leave) {
      stop(c, EXIT_STOPPED);
      return;
    }
    c->reg_write(uc, c->frame_ids[0], &c->frame[0]);
    if (c->stop_requested) stop(c, EXIT_STOPPED);
    return;
  }
  if (intno == EXCP_UDEF) stop(c, EXIT_UNDEFINED);
  else if (intno == EXCP_BKPT) stop(c, EXIT_BREAKPOINT);
  else if (intno == EXCP_DATA_ABORT || intno == EXCP_PREFETCH_ABORT) stop(c, EXIT_FAULT);
  else stop(c, EXIT_EXCEPTION);
}

/*
 * A denied access ends the run (Unicorn raises the abort and uc_emu_start returns UC_ERR_EXCEPTION with PC
 * on the instruction). After the denial Unicorn may still ask for one more translation (a fetch at a bogus
 * address), so the first denial of a run is the one that counts.
 */
static void record_fault(struct core *c, uint64_t va, int type, uint64_t mapped) {
  if (c->fault_mapped != 2) return;
  c->fault_address = va;
  c->fault_access = type;
  c->fault_mapped = mapped;
}

static bool chunk_marked(const struct core *c, uint64_t chunk) {
  return c->populated[chunk >> 3] & (1u << (chunk & 7));
}

/*
 * First write into a chunk not yet populated: populate a window from it. Like readahead, writes that keep
 * landing right after the last window double it (up to 2 MiB), so a sequential first touch costs one call per
 * window; anything else starts again at one chunk. With the helper, this thread populates the front half (the
 * guest writes there first) while the helper does the back half; if the helper is still busy with the last
 * window, only the front half is done now and the rest starts the next window.
 */
static void fault_around(struct core *c, uint64_t chunk) {
  c->populate_window = chunk != c->populate_next ? 1 : c->populate_window < 32 ? c->populate_window * 2 : 32;
  uint64_t last = chunk + c->populate_window;
  uint64_t limit = c->mem_size >> CHUNK_SHIFT;
  if (last > limit) last = limit;
  uint64_t end = chunk;
  /* Stop at the first chunk already done (or an overlay), which must not be populated again. */
  while (end < last && !chunk_marked(c, end)) end++;
  uint8_t *start = c->mem + (chunk << CHUNK_SHIFT);
  uint64_t mine = end - chunk;
#ifdef POPULATE_HELPER
  int helper_state = c->populate_enabled && mine >= HELPER_MIN_CHUNKS ? populate_helper_state() : HELPER_NONE;
  if (helper_state != HELPER_NONE) {
    uint64_t front = mine / 2;
    if (helper_state == HELPER_IDLE)
      populate_helper_post(start + (front << CHUNK_SHIFT), (mine - front) << CHUNK_SHIFT);
    else
      end = chunk + front;
    mine = front;
  }
#endif
  for (uint64_t i = chunk; i < end; i++) c->populated[i >> 3] |= (uint8_t)(1u << (i & 7));
  c->populate_next = end;
  if (c->populate_enabled && madvise(start, mine << CHUNK_SHIFT, MADV_POPULATE_WRITE_ADVICE) != 0)
    c->populate_enabled = 0; /* older kernels: plain page faults from now on */
}

/* Walk the guest's stage-1 tables (identity-mapped, in guest memory) for an EL0 access. */
static bool on_tlb_fill(uc_engine *uc, uint64_t va, int type, uint64_t *entry, void *user) {
  struct core *c = user;
  c->fills++;
  if (c->stopping) {
    /*
     * Unicorn may look up one more fetch after a stop request; it is never executed. Answer "no
     * translation" without recording a fault: nothing bogus gets cached, so no TLB flush is needed after
     * the run (a flush lets QEMU shrink its TLB once its 100 ms sizing window has passed).
     */
    return false;
  }
  if (c->code_probe) {
    /* Unicorn asks for the physical address of the start of a range whose translated code is being dropped;
       guest memory is identity-mapped, and the entry is flushed right after (core_remove_code). */
    entry[0] = va;
    ((uint32_t *)entry)[2] = 4;
    return true;
  }
  uint64_t table = c->ttbr;
  uint64_t desc = 0;
  int level = 0;
  bool found = false;
  if ((va >> 48) == 0 && table != 0) {
    for (level = 0; level <= 3; level++) {
      if (table + 4096 > c->mem_size) break;
      uint64_t index = (va >> (39 - 9 * level)) & 511;
      desc = *(uint64_t *)(c->mem + table + index * 8);
      if (!(desc & DESC_VALID)) break;
      if (level < 3 && (desc & DESC_TABLE_OR_PAGE)) {
        table = desc & DESC_OA_MASK;
        continue;
      }
      /* A block at L1/L2 or a page at L3; an L0 block or an L3 "block" encoding is reserved (invalid). */
      found = (level == 1 || level == 2) ? true : (level == 3 && (desc & DESC_TABLE_OR_PAGE));
      break;
    }
  }
  if (!found) {
    record_fault(c, va, type, 0);
    return false;
  }
  uint64_t block = level == 1 ? (1ULL << 30) : level == 2 ? (1ULL << 21) : 4096;
  /* Keep every offset bit below the block: Unicorn's own page may be smaller than 4 KiB (1 KiB on arm64
     unless UC_CTL_UC_PAGE_SIZE raised it), so `va` is not necessarily 4 KiB aligned. */
  uint64_t pa = ((desc & DESC_OA_MASK) & ~(block - 1)) | (va & (block - 1));
  if (pa + 4096 > c->mem_size) {
    record_fault(c, va, type, 0);
    return false;
  }
  uint32_t perms = 0;
  if (desc & DESC_AP_EL0) {
    perms |= 1;
    if (!(desc & DESC_AP_RO)) perms |= 2;
  }
  if (!(desc & DESC_UXN)) perms |= 4;
  uint32_t needed = type == MEM_WRITE ? 2 : type == MEM_FETCH ? 4 : 1;
  if (!(perms & needed)) record_fault(c, va, type, 1);
  else if (type == MEM_WRITE && c->populated) {
    /*
     * First write into a 64 KiB chunk: have the host populate the whole chunk in one call instead of taking a
     * page fault per 4 KiB page (each costs microseconds on a virtualised host). Chunks backed by a shared
     * file overlay are pre-marked so file pages are never dirtied this way.
     */
    uint64_t chunk = pa >> CHUNK_SHIFT;
    if (!(c->populated[chunk >> 3] & (1u << (chunk & 7)))) {
      fault_around(c, chunk);
    }
  }
  entry[0] = pa;
  ((uint32_t *)entry)[2] = perms;
  return true;
}

int core_struct_size(void) { return (int)sizeof(struct core); }

static void on_block(uc_engine *uc, uint64_t address, uint32_t size, void *user) {
  (void)address;
  (void)size;
  struct core *c = user;
  /*
   * At a block boundary the PC is exact (Unicorn synchronises it before calling block hooks), so stopping here
   * is safe — unlike uc_emu_stop from a signal handler, which can leave the PC of an earlier block behind.
   */
  if (c->interrupt) {
    c->interrupt = 0;
    c->preempted = 1;
    c->emu_stop(uc);
    return;
  }
  if (c->slice_limit == 0 || ++c->slice_count < c->slice_limit) return;
  c->slice_count = 0;
  c->preempted = 1;
  c->emu_stop(uc);
}

/* Install the block hook (once) and set the slice: `blocks` per slice, 0 = no slices, interrupts only. */
int core_set_time_slice(struct core *c, uint64_t blocks, int flush) {
  c->slice_limit = blocks;
  c->slice_count = 0;
  if (c->block_hook) return 0;
  uint64_t hook = 0;
  int err = c->hook_add(c->uc, &hook, 1 << 3 /* UC_HOOK_BLOCK */, (void *)on_block, c, 1, 0);
  if (err) return err;
  c->block_hook = hook ? hook : 1;
  return flush ? c->ctl(c->uc, 1073741834 /* UC_CTL_WRITE(TB_FLUSH) */) : 0;
}

int core_attach(struct core *c) {
  uint64_t hook;
  for (int i = 0; i < 9; i++) {
    c->frame_ids[i] = 199 + i; /* UC_ARM64_REG_X0 + i */
    c->frame_ptrs[i] = &c->frame[i];
  }
  int err = c->ctl(c->uc, 1140850700 /* UC_CTL_WRITE(TLB_TYPE) */, 1 /* UC_TLB_VIRTUAL */);
  if (err) return err;
  err = c->hook_add(c->uc, &hook, 1 /* UC_HOOK_INTR */, (void *)on_interrupt, c, 1, 0);
  if (err) return err;
  return c->hook_add(c->uc, &hook, 1 << 17 /* UC_HOOK_TLB_FILL */, (void *)on_tlb_fill, c, 1, 0);
}

int core_set_cpu_model(uc_engine *uc, uc_ctl_fn ctl, int model) {
  return ctl(uc, 1140850695 /* UC_CTL_WRITE(CPU_MODEL) */, model);
}

/* Unicorn's softmmu page size; must be set before any memory is mapped. */
int core_set_page_size(uc_engine *uc, uc_ctl_fn ctl, uint32_t size) {
  return ctl(uc, 1140850689 /* UC_CTL_WRITE(UC_PAGE_SIZE) */, size);
}

/* Runs until an exit; returns the uc_err of uc_emu_start (the exit kind is in the struct). */
int core_run(struct core *c, uint64_t pc) {
  c->exit_kind = EXIT_NONE;
  c->stopping = 0;
  c->fault_mapped = 2;
  c->preempted = 0;
  int err = c->emu_start(c->uc, pc, 0xfffffffffffffffcULL, 0, 0);
  if (c->exit_kind == EXIT_NONE && c->preempted) c->exit_kind = EXIT_STOPPED;
  c->stopping = 0;
  c->stop_requested = 0;
  return err;
}

int core_flush_tlb(struct core *c) {
  return c->ctl(c->uc, 1073741835 /* UC_CTL_WRITE(TLB_FLUSH) */);
}

/*
 * Drop translated code for [begin, end). Unicorn first translates `begin` as an instruction fetch, and a fetch
 * that the guest's tables refuse (a guard page, a page without PROT_EXEC, nothing mapped) raises a prefetch
 * abort right out of this call, which lands on whatever guest instruction is current. Guest memory is
 * identity-mapped, so the fill hook answers that one lookup with the identity itself, and the TLB entry it
 * leaves behind is flushed.
 */
int core_remove_code(struct core *c, uint64_t begin, uint64_t end) {
  if (begin >= c->mem_size) return 0;
  if (end > c->mem_size) end = c->mem_size;
  c->code_probe = 1;
  int err = c->ctl(c->uc, 1207959561 /* UC_CTL_WRITE(TB_REMOVE_CACHE, 2) */, begin, end);
  c->code_probe = 0;
  int flushed = core_flush_tlb(c);
  return err ? err : flushed;
}

/* Guest physical memory: a private, lazily backed, never-reserved anonymous mapping. */
int64_t core_slab_create(uint64_t size) {
  void *p = mmap(0, size, 3 /* PROT_READ|PROT_WRITE */, SLAB_MAP_FLAGS, -1, 0);
  if (p == (void *)-1) return -(int64_t)HOST_ERRNO;
  return (int64_t)p;
}

/* Largest range zeroed in place by core_slab_discard; larger ones are given back to the host. */
#define ZERO_IN_PLACE_LIMIT (256ULL << 10)

/*
 * Make [offset, offset+length) read as zero. Small ranges keep their host pages: only the resident ones are
 * zeroed (mincore), so the next mapping there costs no page faults. Large ranges are handed back to the host
 * and their fully covered chunks become "not populated" again.
 */
int core_slab_discard(uint8_t *base, uint64_t offset, uint64_t length, uint8_t *populated) {
  if (length <= ZERO_IN_PLACE_LIMIT && (offset & 4095) == 0 && (length & 4095) == 0) {
    unsigned char resident[64];
    if (mincore(base + offset, length, resident) == 0) {
      for (uint64_t page = 0; page < length / 4096; page++) {
        if (resident[page] & 1) memset(base + offset + page * 4096, 0, 4096);
      }
      return 0;
    }
  }
  if (madvise(base + offset, length, SLAB_DISCARD_ADVICE)) return -HOST_ERRNO;
  if (populated) {
    uint64_t first = (offset + CHUNK_SIZE - 1) >> CHUNK_SHIFT;
    uint64_t end = (offset + length) >> CHUNK_SHIFT;
    for (uint64_t chunk = first; chunk < end; chunk++) populated[chunk >> 3] &= (uint8_t)~(1u << (chunk & 7));
  }
  return 0;
}

/* Mark chunks as populated (shared file overlays: never populate them from the fill hook). */
void core_slab_mark_populated(uint8_t *populated, uint64_t offset, uint64_t length) {
  uint64_t first = offset >> CHUNK_SHIFT;
  uint64_t end = (offset + length + CHUNK_SIZE - 1) >> CHUNK_SHIFT;
  for (uint64_t chunk = first; chunk < end; chunk++) populated[chunk >> 3] |= (uint8_t)(1u << (chunk & 7));
}

/* Back part of the slab with a host file, shared: guest stores go straight to the page cache. */
int core_slab_map_file(uint8_t *base, uint64_t offset, uint64_t length, int fd, int64_t file_offset, int writable) {
  populate_helper_quiesce();
  int prot = writable ? 3 : 1; /* PROT_READ|PROT_WRITE : PROT_READ */
  void *p = mmap(base + offset, length, prot, SLAB_SHARED_FIXED, fd, file_offset);
  return p == (void *)-1 ? -HOST_ERRNO : 0;
}

/*
 * Move the shared host mapping at [from, from+length) to `to` inside the slab (mremap of a MAP_SHARED area):
 * the same object then backs `to`. With keep_source (MREMAP_DONTUNMAP) the source stays mapped to it as well;
 * otherwise the hole the move leaves is filled with private zero-filled memory again.
 */
int core_slab_move_shared(uint8_t *base, uint64_t from, uint64_t to, uint64_t length, int keep_source) {
#ifdef __APPLE__
  (void)base, (void)from, (void)to, (void)length, (void)keep_source;
  return -78; /* ENOSYS: no mremap; EmulatorMemory offers the capability on Linux only */
#else
  populate_helper_quiesce();
  int flags = 1 /* MREMAP_MAYMOVE */ | 2 /* MREMAP_FIXED */ | (keep_source ? 4 /* MREMAP_DONTUNMAP */ : 0);
  void *p = mremap(base + from, length, length, flags, base + to);
  if (p == (void *)-1) return -HOST_ERRNO;
  if (keep_source) return 0;
  p = mmap(base + from, length, 3, SLAB_MAP_FLAGS | SLAB_FIXED, -1, 0);
  return p == (void *)-1 ? -HOST_ERRNO : 0;
#endif
}

/*
 * Back part of the slab with a host file, privately (MAP_PRIVATE): until a page is written it is the file's
 * page cache page, so the guest sees later changes to the file as on Linux; a store copies it.
 */
int core_slab_map_private_file(uint8_t *base, uint64_t offset, uint64_t length, int fd, int64_t file_offset) {
  populate_helper_quiesce();
  void *p = mmap(base + offset, length, 3 /* PROT_READ|PROT_WRITE */, SLAB_PRIVATE_FIXED, fd, file_offset);
  return p == (void *)-1 ? -HOST_ERRNO : 0;
}

/* Put private zero-filled memory back over [offset, offset+length) (undoes core_slab_map_file). */
int core_slab_restore(uint8_t *base, uint64_t offset, uint64_t length) {
  populate_helper_quiesce();
  void *p = mmap(base + offset, length, 3, SLAB_MAP_FLAGS | SLAB_FIXED, -1, 0);
  return p == (void *)-1 ? -HOST_ERRNO : 0;
}

int core_slab_destroy(uint8_t *base, uint64_t size) {
  populate_helper_quiesce();
  return munmap(base, size) ? -HOST_ERRNO : 0;
}
