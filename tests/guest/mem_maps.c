/*
 * /proc/self/maps (memory-semantics.md §1): the kernel's exact format, and what it shows for fresh mappings,
 * splits, merges, file mappings (offset, device, inode, path), shared mappings, [heap] and [stack]. Built
 * for x86_64 too and run natively: every expectation is Linux's.
 *
 * Format (fs/proc/task_mmu.c): "%08lx-%08lx %c%c%c%c %08llx %02x:%02x %lu " then, when the region has a
 * name, spaces up to column 72, one more space and the name (so names start at column 73); a region without
 * a name ends with the space after the inode.
 *
 * Where Linux differs from memory-semantics.md §1 ("a mapping id, so /proc/self/maps keeps mmap
 * boundaries"): Linux merges adjacent compatible regions even when they came from separate mmap calls
 * (anonymous ones, and file ones with contiguous offsets), and merges the pieces of a split back once their
 * attributes match again. /proc/self/maps shows regions, not mmap calls. Linux wins: the checks below assert it.
 */
// fixture: native
#include "mem_check.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

/* Read with raw syscalls into a static buffer: no allocation, so reading cannot change the maps. */
static char maps[1 << 20];

static long read_maps(void) {
  int fd = open("/proc/self/maps", O_RDONLY);
  if (fd < 0) return -1;
  long total = 0;
  for (;;) {
    ssize_t n = read(fd, maps + total, sizeof maps - 1 - (size_t)total);
    if (n <= 0) break;
    total += n;
  }
  close(fd);
  maps[total] = 0;
  return total;
}

struct region {
  unsigned long start, end, offset, inode;
  char perms[5];
  unsigned major, minor;
  const char *name; /* points into a copy of the line; "" when there is none */
  size_t name_column;
};

/* Parses one line (without its '\n'); returns 0 when it does not have the kernel's shape. */
static int parse_line(const char *line, struct region *r) {
  int consumed = 0;
  if (sscanf(line, "%lx-%lx %4c %lx %x:%x %lu %n", &r->start, &r->end, r->perms, &r->offset, &r->major, &r->minor,
             &r->inode, &consumed) < 7)
    return 0;
  r->perms[4] = 0;
  r->name = line + consumed;
  r->name_column = (size_t)consumed;
  return 1;
}

/* The line the kernel would print for these fields. */
static void render_line(const struct region *r, char *out, size_t size) {
  int n = snprintf(out, size, "%08lx-%08lx %s %08lx %02x:%02x %lu ", r->start, r->end, r->perms, r->offset, r->major,
                   r->minor, r->inode);
  if (*r->name) {
    while (n < 72 && (size_t)n < size - 1) out[n++] = ' ';
    snprintf(out + n, size - (size_t)n, " %s", r->name);
  }
}

/* Walks the maps text line by line: copies line i into `line`, returns 0 past the end. */
static int nth_line(int i, char *line, size_t size) {
  const char *p = maps;
  for (; i > 0 && *p; i--) {
    p = strchr(p, '\n');
    if (!p) return 0;
    p++;
  }
  if (!*p) return 0;
  const char *end = strchr(p, '\n');
  size_t len = end ? (size_t)(end - p) : strlen(p);
  if (len >= size) len = size - 1;
  memcpy(line, p, len);
  line[len] = 0;
  return 1;
}

/* The regions overlapping [start, end), in order, parsed into out[]; returns how many (at most max). */
static char region_lines[8][512];
static int regions_in(uintptr_t start, uintptr_t end, struct region *out, int max) {
  read_maps();
  int found = 0;
  char line[512];
  for (int i = 0; nth_line(i, line, sizeof line); i++) {
    struct region r;
    if (!parse_line(line, &r)) continue;
    if (r.end <= start || r.start >= end) continue;
    if (found == max) return max + 1;
    memcpy(region_lines[found], line, sizeof line);
    parse_line(region_lines[found], &out[found]);
    found++;
  }
  return found;
}

static int region_is(const struct region *r, uintptr_t start, uintptr_t end, const char *perms, unsigned long offset) {
  return r->start == start && r->end == end && strcmp(r->perms, perms) == 0 && r->offset == offset;
}

static int is_anonymous(const struct region *r) {
  return r->major == 0 && r->minor == 0 && r->inode == 0 && *r->name == 0;
}

static void test_format(void) {
  CHECK("read /proc/self/maps", read_maps() > 0);
  char line[512], again[512];
  int lines = 0, shaped = 0, exact = 0, ordered = 1;
  unsigned long previous_end = 0;
  for (int i = 0; nth_line(i, line, sizeof line); i++) {
    lines++;
    struct region r;
    if (!parse_line(line, &r)) {
      printf("unparsable line %d\n", i);
      continue;
    }
    shaped++;
    render_line(&r, again, sizeof again);
    if (strcmp(line, again) == 0) exact++;
    else if (!under_qemu) printf("line %d is not in the kernel's layout\n", i);
    if (r.start < previous_end || r.start >= r.end) ordered = 0;
    previous_end = r.end;
  }
  CHECK("/proc/self/maps has lines", lines > 3);
  CHECK("every line has the kernel's fields", shaped == lines);
  /* qemu 7.2 pads to another column, and pads nameless lines too. */
  if (!qemu_skips("exact /proc/self/maps layout"))
    CHECK("every line has the kernel's exact layout (names at column 73)", exact == lines);
  CHECK("regions are ordered and do not overlap", ordered);
  CHECK("the text ends with a newline", maps[strlen(maps) - 1] == '\n');
}

static void test_anonymous(void) {
  uintptr_t base = free_range(3 * PAGE, 4);
  unsigned char *p = mmap((void *)base, 3 * PAGE, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  CHECK("mmap 3 pages", p == (void *)base);
  if (p != (void *)base) return;
  struct region r[8];
  int n = regions_in(base, base + 3 * PAGE, r, 3);
  CHECK("a fresh mapping is one line", n == 1);
  CHECK("fresh mapping: start, end, rw-p, offset 0", n == 1 && region_is(&r[0], base, base + 3 * PAGE, "rw-p", 0));
  CHECK("fresh mapping: no device, inode or name", n == 1 && is_anonymous(&r[0]));
  char expected[128];
  snprintf(expected, sizeof expected, "%08lx-%08lx rw-p 00000000 00:00 0 ", (unsigned long)base,
           (unsigned long)(base + 3 * PAGE));
  if (!qemu_skips("exact line of a fresh mapping"))
    CHECK("fresh mapping: the exact line", n == 1 && strcmp(region_lines[0], expected) == 0);

  p[0] = 1; /* populated or not, the line is the same */
  mprotect(p + PAGE, PAGE, PROT_READ);
  n = regions_in(base, base + 3 * PAGE, r, 3);
  CHECK("mprotect of the middle page: 3 lines", n == 3);
  CHECK("split: rw-p, r--p, rw-p at the page boundaries",
        n == 3 && region_is(&r[0], base, base + PAGE, "rw-p", 0) &&
            region_is(&r[1], base + PAGE, base + 2 * PAGE, "r--p", 0) &&
            region_is(&r[2], base + 2 * PAGE, base + 3 * PAGE, "rw-p", 0));
  mprotect(p + PAGE, PAGE, PROT_READ | PROT_WRITE);
  n = regions_in(base, base + 3 * PAGE, r, 3);
  CHECK("mprotect back: the pieces merge into one line (Linux)",
        n == 1 && region_is(&r[0], base, base + 3 * PAGE, "rw-p", 0));

  /* A second mmap right after the first, same attributes: one region (Linux merges). */
  void *next = mmap(p + 3 * PAGE, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                    -1, 0);
  n = regions_in(base, base + 5 * PAGE, r, 3);
  CHECK("an adjacent mmap with the same attributes merges (Linux)",
        next == p + 3 * PAGE && n == 1 && region_is(&r[0], base, base + 5 * PAGE, "rw-p", 0));

  /* Every permission letter. */
  mprotect(p, PAGE, PROT_NONE);
  mprotect(p + PAGE, PAGE, PROT_READ | PROT_EXEC);
  mprotect(p + 2 * PAGE, PAGE, PROT_READ);
  mprotect(p + 3 * PAGE, PAGE, PROT_READ | PROT_WRITE | PROT_EXEC);
  n = regions_in(base, base + 5 * PAGE, r, 5);
  /* qemu 7.2 shows r--p as r-xp and rw-p next to rwxp as rwxp (and merges them). */
  if (!qemu_skips("permission letters of mixed PROT_READ/PROT_EXEC regions"))
    CHECK("permissions ---p r-xp r--p rwxp rw-p",
          n == 5 && strcmp(r[0].perms, "---p") == 0 && strcmp(r[1].perms, "r-xp") == 0 &&
              strcmp(r[2].perms, "r--p") == 0 && strcmp(r[3].perms, "rwxp") == 0 && strcmp(r[4].perms, "rw-p") == 0);
  munmap(p, 5 * PAGE);
  n = regions_in(base, base + 5 * PAGE, r, 5);
  CHECK("munmap removes the lines", n == 0);
}

static void test_file(void) {
  char path[] = "/tmp/guest-maps-XXXXXX";
  int fd = mkstemp(path);
  CHECK("create a temp file", fd >= 0);
  if (fd < 0) return;
  unsigned char page[PAGE];
  memset(page, 1, sizeof page);
  for (int i = 0; i < 6; i++) write(fd, page, sizeof page);
  struct stat st;
  fstat(fd, &st);
  uintptr_t base = free_range(4 * PAGE, 4);
  void *p = mmap((void *)base, 2 * PAGE, PROT_READ, MAP_PRIVATE | MAP_FIXED_NOREPLACE, fd, 2 * PAGE);
  CHECK("mmap the file at offset 2 pages", p == (void *)base);
  struct region r[8];
  int n = regions_in(base, base + 4 * PAGE, r, 3);
  CHECK("file mapping: one line, r--p, offset 00002000",
        n == 1 && region_is(&r[0], base, base + 2 * PAGE, "r--p", 2 * PAGE));
  CHECK("file mapping: device and inode are fstat's",
        n == 1 && r[0].major == major(st.st_dev) && r[0].minor == minor(st.st_dev) && r[0].inode == st.st_ino);
  CHECK("file mapping: the name is the path", n == 1 && strcmp(r[0].name, path) == 0);
  CHECK("file mapping: the name starts at column 73", n == 1 && r[0].name_column == 73);

  /* The next pages of the file mapped right after: contiguous offsets, one region (Linux merges). */
  void *q = mmap((void *)(base + 2 * PAGE), PAGE, PROT_READ, MAP_PRIVATE | MAP_FIXED_NOREPLACE, fd, 4 * PAGE);
  n = regions_in(base, base + 4 * PAGE, r, 3);
  CHECK("a file mapping continuing the offsets merges (Linux)",
        q == (void *)(base + 2 * PAGE) && n == 1 && region_is(&r[0], base, base + 3 * PAGE, "r--p", 2 * PAGE));
  /* A gap in the offsets: two regions. */
  void *g = mmap((void *)(base + 3 * PAGE), PAGE, PROT_READ, MAP_PRIVATE | MAP_FIXED_NOREPLACE, fd, 0);
  n = regions_in(base, base + 4 * PAGE, r, 3);
  CHECK("a file mapping with other offsets is its own line",
        g == (void *)(base + 3 * PAGE) && n == 2 && region_is(&r[1], base + 3 * PAGE, base + 4 * PAGE, "r--p", 0));
  munmap((void *)base, 4 * PAGE);

  void *s = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, PAGE);
  n = s == MAP_FAILED ? 0 : regions_in((uintptr_t)s, (uintptr_t)s + PAGE, r, 3);
  CHECK("shared file mapping: rw-s at offset 00001000",
        n == 1 && region_is(&r[0], (uintptr_t)s, (uintptr_t)s + PAGE, "rw-s", PAGE) && strcmp(r[0].name, path) == 0);
  if (s != MAP_FAILED) munmap(s, PAGE);
  void *sa = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  n = sa == MAP_FAILED ? 0 : regions_in((uintptr_t)sa, (uintptr_t)sa + PAGE, r, 3);
  CHECK("shared anonymous mapping: rw-s named /dev/zero (deleted)",
        n == 1 && strcmp(r[0].perms, "rw-s") == 0 && strcmp(r[0].name, "/dev/zero (deleted)") == 0);
  if (sa != MAP_FAILED) munmap(sa, PAGE);

  /* Once the file is unlinked, its mappings say so. */
  void *u = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
  unlink(path);
  close(fd);
  n = u == MAP_FAILED ? 0 : regions_in((uintptr_t)u, (uintptr_t)u + PAGE, r, 3);
  char deleted[64];
  snprintf(deleted, sizeof deleted, "%s (deleted)", path);
  CHECK("a mapping of an unlinked file is named \"path (deleted)\"", n == 1 && strcmp(r[0].name, deleted) == 0);
  if (u != MAP_FAILED) munmap(u, PAGE);
}

static void test_named(void) {
  int local = 0;
  struct region r[8];
  uintptr_t here = (uintptr_t)&local;
  int n = regions_in(here, here + 1, r, 1);
  CHECK("a local variable lies in [stack]", n == 1 && strcmp(r[0].name, "[stack]") == 0);
  CHECK("[stack] is rw-p", n == 1 && strcmp(r[0].perms, "rw-p") == 0);
  uintptr_t brk_now = (uintptr_t)syscall(SYS_brk, 0);
  n = regions_in(brk_now - 1, brk_now, r, 1);
  /* qemu 7.2 does not name the heap. */
  if (!qemu_skips("[heap]")) {
    CHECK("the byte below the break lies in [heap]", n == 1 && strcmp(r[0].name, "[heap]") == 0);
    CHECK("[heap] ends at the break, page aligned", n == 1 && r[0].end == ((brk_now + PAGE - 1) & ~(PAGE - 1)));
  }
  uintptr_t code = (uintptr_t)&test_named;
  n = regions_in(code, code + 1, r, 1);
  CHECK("this code lies in an r-xp region named with the program's absolute path",
        n == 1 && strcmp(r[0].perms, "r-xp") == 0 && r[0].name[0] == '/' && r[0].inode != 0);
}

int main(int argc, char **argv) {
  mem_init(argc, argv, NULL);
  test_format();
  test_anonymous();
  test_file();
  test_named();
  test_format();
  return finish();
}
