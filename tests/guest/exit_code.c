/* Exits with the status given as argv[1] (default 0): checks that exit_group's status reaches the host. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  int status = argc > 1 ? atoi(argv[1]) : 0;
  printf("exiting with %d\n", status);
  return status;
}
