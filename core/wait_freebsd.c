/*
** wait_freebsd.c — wait.h on FreeBSD's _umtx_op(2): UMTX_OP_WAIT_UINT
** compares a 32-bit word; _PRIVATE since every waiter is in this process.
*/
#include "wait.h"

#if defined(GORO_WAIT_BACKEND_FREEBSD)

#include <limits.h>
#include <sys/types.h>
#include <sys/umtx.h>
#include <time.h>

void wait_on(_Atomic uint32_t *addr, uint32_t val, int64_t timeout_ns) {
  if (timeout_ns < 0) {
    _umtx_op((void *)addr, UMTX_OP_WAIT_UINT_PRIVATE, val, NULL, NULL);
    return;
  }
  /* a relative timeout on the monotonic clock (no UMTX_ABSTIME) */
  struct _umtx_time ut;
  ut._timeout.tv_sec = (time_t)(timeout_ns / 1000000000);
  ut._timeout.tv_nsec = (long)(timeout_ns % 1000000000);
  ut._flags = 0;
  ut._clockid = CLOCK_MONOTONIC;
  _umtx_op((void *)addr, UMTX_OP_WAIT_UINT_PRIVATE, val,
           (void *)(uintptr_t)sizeof ut, &ut);
}

void wait_wake(_Atomic uint32_t *addr, bool all) {
  _umtx_op((void *)addr, UMTX_OP_WAKE_PRIVATE, all ? INT_MAX : 1, NULL, NULL);
}

#endif
