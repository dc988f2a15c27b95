/* The smallest guest: one line on stdout, exit 0. Also built as static-pie (see the fixture tag). */
// fixture: static-pie
#include <stdio.h>

int main(void) {
  printf("hello, world\n");
  return 0;
}
