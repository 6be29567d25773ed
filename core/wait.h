/*
** wait.h — the one way the core puts a thread to sleep: wait while a
** 32-bit word holds a value, wake whoever waits on it (Linux's futex, in
** the shape every OS now offers). The lock, notes, the timer thread and
** outside waiters (lock.h, park.c) all sleep here, and nothing else in the
** core knows which backend does it.
**
** Backends, chosen at build time (one wait_*.c compiles to code, the others
** to nothing):
**   wait_linux.c     futex(2), FUTEX_WAIT/WAKE_PRIVATE         Linux
**   wait_darwin.c    os_sync_wait_on_address (macOS 14.4+),     macOS
**                    else __ulock_wait/__ulock_wake
**   wait_freebsd.c   _umtx_op(UMTX_OP_WAIT_UINT_PRIVATE)        FreeBSD
**   wait_portable.c  pthread mutexes + condition variables,    any POSIX
**                    a small table of wait queues hashed by address
** -DGORO_WAIT_PORTABLE (make WAIT=portable) forces the portable one;
** elsewhere the platform's is taken, and a system with none of the three
** builds the portable one with a note saying so.
**
** Contract (as futex): wait_on returns when woken, when the timeout ran
** out, or spuriously; it does not sleep if *addr != val when it is about
** to. Callers re-check their predicate in a loop. A waker changes the word
** first, then calls wait_wake; the order of the word's accesses is the
** callers' business (acquire/release atomics): the backend only sleeps and
** wakes, so ThreadSanitizer sees the same synchronisation on every backend.
*/
#ifndef GORO_WAIT_H
#define GORO_WAIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#if defined(GORO_WAIT_PORTABLE)
#define GORO_WAIT_BACKEND_PORTABLE 1
#elif defined(__linux__)
#define GORO_WAIT_BACKEND_LINUX 1
#elif defined(__APPLE__)
#define GORO_WAIT_BACKEND_DARWIN 1
#elif defined(__FreeBSD__)
#define GORO_WAIT_BACKEND_FREEBSD 1
#else
#define GORO_WAIT_BACKEND_PORTABLE 1
#define GORO_WAIT_NO_NATIVE 1 /* wait_portable.c says so at build time */
#endif

/* Sleeps while *addr == val, at most timeout_ns (< 0: no limit). */
void wait_on(_Atomic uint32_t *addr, uint32_t val, int64_t timeout_ns);

/* Wakes one waiter on addr (all: every waiter). */
void wait_wake(_Atomic uint32_t *addr, bool all);

#endif
