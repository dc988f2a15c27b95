/*
 * Prints argc, every argv entry, the whole environment (sorted), and a few variables by name. The harness
 * gives qemu and our runtime the same argv and the same small fixed environment, so every byte must match.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

static int compare_strings(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void show_var(const char *name) {
  const char *value = getenv(name);
  if (value)
    printf("getenv %s=[%s]\n", name, value);
  else
    printf("getenv %s unset\n", name);
}

int main(int argc, char **argv, char **envp) {
  printf("argc %d\n", argc);
  /* argv[0] is the path the harness passed; print it too, qemu and our runtime must agree on it. */
  for (int i = 0; i < argc; i++) printf("argv[%d]=[%s]\n", i, argv[i]);
  printf("argv[argc] %s\n", argv[argc] == NULL ? "null" : "NOT NULL");
  /*
   * Sorted, not in stack order: Linux keeps the execve order, but qemu-aarch64 7.2 (the oracle) hands the
   * guest its environment reversed, so the order itself cannot be compared against qemu.
   */
  int count = 0;
  while (envp[count]) count++;
  char **sorted = calloc(count + 1, sizeof *sorted);
  memcpy(sorted, envp, count * sizeof *sorted);
  qsort(sorted, count, sizeof *sorted, compare_strings);
  for (int i = 0; i < count; i++) printf("env (sorted) [%s]\n", sorted[i]);
  printf("envc %d\n", count);
  free(sorted);
  /* envp sits right after argv's terminating NULL on the initial stack (Linux's layout). */
  printf("envp follows argv %s\n", envp == argv + argc + 1 ? "yes" : "no");
  printf("environ is envp %s\n", environ == envp ? "yes" : "no");
  show_var("GUEST_TEST_VAR");
  show_var("GUEST_TEST_EMPTY");
  show_var("GUEST_TEST_UNSET");
  show_var("PATH");
  show_var("HOME");
  return 0;
}
