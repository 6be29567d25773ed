/*
** wait_linux.c — wait.h on Linux futexes (futex(2)): the word is the
** futex; FUTEX_*_PRIVATE since every waiter is in this process.
*/
#include "wait.h"

#if defined(GORO_WAIT_BACKEND_LINUX)

#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

void wait_on(_Atomic uint32_t *addr, uint32_t val, int64_t timeout_ns) {
  struct timespec ts, *rel = NULL;
  if (timeout_ns >= 0) {
    ts.tv_sec = (time_t)(timeout_ns / 1000000000);
    ts.tv_nsec = (long)(timeout_ns % 1000000000);
    rel = &ts;
  }
  syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, rel, NULL, 0);
}

void wait_wake(_Atomic uint32_t *addr, bool all) {
  syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, all ? INT_MAX : 1, NULL, NULL, 0);
}

#endif
