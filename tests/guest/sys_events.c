// fixture: native
/* eventfd, timerfd and membarrier (issue 5's list), one line per check; native-proven. */
#include "check.h"

#include <linux/membarrier.h>
#include <poll.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static void eventfds(void) {
  int fd = eventfd(3, EFD_CLOEXEC | EFD_NONBLOCK);
  CHECK("eventfd with EFD_CLOEXEC|EFD_NONBLOCK", fd >= 0);
  uint64_t value = 0;
  CHECK("read returns the counter", read(fd, &value, 8) == 8 && value == 3);
  CHECK_ERRNO("a second read would block: EAGAIN", read(fd, &value, 8), EAGAIN);
  value = 5;
  CHECK("write adds to it", write(fd, &value, 8) == 8);
  struct pollfd p = {fd, POLLIN, 0};
  CHECK("poll says readable", poll(&p, 1, 0) == 1 && (p.revents & POLLIN));
  CHECK_ERRNO("a 4-byte read is EINVAL", read(fd, &value, 4), EINVAL);
  close(fd);
  int sem = eventfd(2, EFD_SEMAPHORE);
  CHECK("EFD_SEMAPHORE reads 1 at a time", read(sem, &value, 8) == 8 && value == 1 && read(sem, &value, 8) == 8);
  close(sem);
  CHECK_ERRNO("unknown eventfd flags", eventfd(0, 0x4), EINVAL);
}

static void timerfds(void) {
  int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
  CHECK("timerfd_create on CLOCK_MONOTONIC", fd >= 0);
  struct itimerspec spec = {{0, 5 * 1000 * 1000}, {0, 5 * 1000 * 1000}}, now;
  CHECK("armed with a 5 ms interval", timerfd_settime(fd, 0, &spec, NULL) == 0);
  uint64_t expirations = 0;
  CHECK("a blocking read waits for an expiry", read(fd, &expirations, 8) == 8 && expirations >= 1);
  CHECK("gettime shows the interval", timerfd_gettime(fd, &now) == 0 && now.it_interval.tv_nsec == 5 * 1000 * 1000);
  struct itimerspec off = {{0, 0}, {0, 0}};
  CHECK("disarmed", timerfd_settime(fd, 0, &off, NULL) == 0 && timerfd_gettime(fd, &now) == 0 &&
                        now.it_value.tv_sec == 0 && now.it_value.tv_nsec == 0);
  close(fd);
  CHECK_ERRNO("an unknown clock", timerfd_create(12345, 0), EINVAL);
}

static void membarriers(void) {
  long supported = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
  CHECK("QUERY offers the private expedited barrier",
        supported > 0 && (supported & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
            (supported & MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED));
  CHECK_ERRNO("the private expedited barrier before registering",
              syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0), EPERM);
  CHECK("register, then the private expedited barrier",
        syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0 &&
            syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0);
  CHECK_ERRNO("flags on a command", syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 1, 0), EINVAL);
}

int main(void) {
  eventfds();
  timerfds();
  membarriers();
  return finish();
}
