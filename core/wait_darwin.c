/*
** wait_darwin.c — wait.h on macOS: os_sync_wait_on_address (public since
** macOS 14.4) where the SDK has it and the running system too, else the
** older __ulock_wait/__ulock_wake that libc++'s std::atomic::wait uses
** (private, but stable since macOS 10.12).
*/
#include "wait.h"

#if defined(GORO_WAIT_BACKEND_DARWIN)

#include <stddef.h>

#if defined(__has_include) && defined(__clang__) /* __builtin_available: clang */
#if __has_include(<os/os_sync_wait_on_address.h>)
#include <os/os_sync_wait_on_address.h>
#define HAVE_OS_SYNC 1
#endif
#endif

/* <sys/ulock.h> is not in the SDK: the declarations libc++ uses. */
extern int __ulock_wait(uint32_t operation, void *addr, uint64_t value, uint32_t timeout_us);
extern int __ulock_wake(uint32_t operation, void *addr, uint64_t wake_value);
#define UL_COMPARE_AND_WAIT 1
#define ULF_WAKE_ALL 0x00000100
#define ULF_NO_ERRNO 0x01000000

static void ulock_wait(_Atomic uint32_t *addr, uint32_t val, int64_t timeout_ns) {
  uint32_t us = 0; /* 0: no limit */
  if (timeout_ns >= 0) {
    int64_t t = timeout_ns / 1000 + 1; /* round up: 0 would mean forever */
    us = t > UINT32_MAX ? UINT32_MAX : (uint32_t)t; /* a longer wait wakes early: allowed */
  }
  __ulock_wait(UL_COMPARE_AND_WAIT | ULF_NO_ERRNO, (void *)addr, val, us);
}

void wait_on(_Atomic uint32_t *addr, uint32_t val, int64_t timeout_ns) {
#if defined(HAVE_OS_SYNC)
  if (__builtin_available(macOS 14.4, iOS 17.4, *)) {
    if (timeout_ns < 0) {
      os_sync_wait_on_address((void *)addr, val, sizeof *addr, OS_SYNC_WAIT_ON_ADDRESS_NONE);
    } else if (timeout_ns > 0) { /* 0 is EINVAL there, and nothing to wait for */
      os_sync_wait_on_address_with_timeout((void *)addr, val, sizeof *addr,
                                           OS_SYNC_WAIT_ON_ADDRESS_NONE,
                                           OS_CLOCK_MACH_ABSOLUTE_TIME,
                                           (uint64_t)timeout_ns);
    }
    return;
  }
#endif
  ulock_wait(addr, val, timeout_ns);
}

void wait_wake(_Atomic uint32_t *addr, bool all) {
#if defined(HAVE_OS_SYNC)
  if (__builtin_available(macOS 14.4, iOS 17.4, *)) {
    if (all) os_sync_wake_by_address_all((void *)addr, sizeof *addr, OS_SYNC_WAKE_BY_ADDRESS_NONE);
    else os_sync_wake_by_address_any((void *)addr, sizeof *addr, OS_SYNC_WAKE_BY_ADDRESS_NONE);
    return;
  }
#endif
  __ulock_wake(UL_COMPARE_AND_WAIT | ULF_NO_ERRNO | (all ? ULF_WAKE_ALL : 0), (void *)addr, 0);
}

#endif
