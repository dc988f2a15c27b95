/*
 * The initial process state a static aarch64 Linux program sees: auxiliary vector and initial stack.
 * Built static and static-pie.
 * Prints only facts that must hold on Linux (and therefore under qemu and our runtime), never raw addresses.
 */
// fixture: static-pie
#define _GNU_SOURCE
#include <elf.h>
#include <link.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "check.h"

#ifndef HWCAP_FP
#define HWCAP_FP (1 << 0)
#endif
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1 << 1)
#endif

extern const ElfW(Ehdr) __ehdr_start; /* the linker's symbol for our own ELF header, mapped by the first PT_LOAD */
extern char _start[];

static const ElfW(Phdr) *iterated_phdr;
static size_t iterated_phnum;

static int first_object(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  (void)data;
  iterated_phdr = info->dlpi_phdr;
  iterated_phnum = info->dlpi_phnum;
  return 1;
}

int main(int argc, char **argv, char **envp) {
  (void)envp;
  CHECK("pagesz 4096", getauxval(AT_PAGESZ) == 4096);
  CHECK("sysconf pagesize 4096", sysconf(_SC_PAGESIZE) == 4096);

  const ElfW(Ehdr) *ehdr = &__ehdr_start;
  CHECK("ehdr magic", memcmp(ehdr->e_ident, ELFMAG, SELFMAG) == 0);
  CHECK("ehdr machine aarch64", ehdr->e_machine == EM_AARCH64);
  const ElfW(Phdr) *phdr = (const ElfW(Phdr) *)((const char *)ehdr + ehdr->e_phoff);
  CHECK("phdr", getauxval(AT_PHDR) == (uintptr_t)phdr);
  CHECK("phent 56", getauxval(AT_PHENT) == sizeof(ElfW(Phdr)));
  CHECK("phnum", getauxval(AT_PHNUM) == ehdr->e_phnum);
  dl_iterate_phdr(first_object, NULL);
  CHECK("dl_iterate_phdr", iterated_phdr == phdr && iterated_phnum == ehdr->e_phnum);

  /* Load bias: 0 for ET_EXEC; for static-pie, where the first PT_LOAD (file offset 0) actually went. */
  uintptr_t load_bias = 0;
  if (ehdr->e_type == ET_DYN) {
    for (size_t i = 0; i < ehdr->e_phnum; i++) {
      if (phdr[i].p_type == PT_LOAD && phdr[i].p_offset == 0) {
        load_bias = (uintptr_t)ehdr - phdr[i].p_vaddr;
        break;
      }
    }
  }
  for (size_t i = 0; i < ehdr->e_phnum; i++)
    if (phdr[i].p_type == PT_PHDR) CHECK("pt_phdr matches", load_bias + phdr[i].p_vaddr == (uintptr_t)phdr);

  CHECK("entry is _start", getauxval(AT_ENTRY) == (uintptr_t)_start);
  CHECK("entry matches e_entry", getauxval(AT_ENTRY) == load_bias + ehdr->e_entry);

  const unsigned char *random_bytes = (const unsigned char *)getauxval(AT_RANDOM);
  CHECK("random present", random_bytes != NULL);
  if (random_bytes) {
    unsigned char copy[16];
    memcpy(copy, random_bytes, sizeof copy); /* must be readable: a fault here kills the test */
    int nonzero = 0;
    for (size_t i = 0; i < sizeof copy; i++) nonzero |= copy[i];
    CHECK("random 16 bytes readable", nonzero != 0);
  }

  const char *execfn = (const char *)getauxval(AT_EXECFN);
  CHECK("execfn equals argv[0]", execfn != NULL && strcmp(execfn, argv[0]) == 0);

  const char *platform = (const char *)getauxval(AT_PLATFORM);
  CHECK("platform aarch64", platform != NULL && strcmp(platform, "aarch64") == 0);

  unsigned long hwcap = getauxval(AT_HWCAP);
  CHECK("hwcap fp", (hwcap & HWCAP_FP) != 0);
  CHECK("hwcap asimd", (hwcap & HWCAP_ASIMD) != 0);

  CHECK("clktck 100", getauxval(AT_CLKTCK) == 100);
  CHECK("secure 0", getauxval(AT_SECURE) == 0);
  CHECK("uid matches", getauxval(AT_UID) == getuid());
  CHECK("euid matches", getauxval(AT_EUID) == geteuid());
  CHECK("gid matches", getauxval(AT_GID) == getgid());
  CHECK("egid matches", getauxval(AT_EGID) == getegid());

  /* argc sits at the initial stack pointer, argv right above it; Linux keeps sp 16-byte aligned at entry. */
  const long *initial_sp = (const long *)(argv - 1);
  CHECK("argc on stack", *initial_sp == argc);
  CHECK("sp aligned 16", ((uintptr_t)initial_sp & 15) == 0);

  /* auxv follows envp's NULL; the stack vectors are in order argv, envp, auxv. */
  char **e = argv + argc + 1;
  while (*e) e++;
  const ElfW(auxv_t) *auxv = (const ElfW(auxv_t) *)(e + 1);
  int found_pagesz = 0;
  size_t entries = 0;
  for (const ElfW(auxv_t) *a = auxv; a->a_type != AT_NULL && entries < 64; a++, entries++)
    if (a->a_type == AT_PAGESZ && a->a_un.a_val == 4096) found_pagesz = 1;
  CHECK("auxv after envp", found_pagesz);
  CHECK("auxv terminated", entries < 64);

  return finish();
}
