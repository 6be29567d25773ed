/*
** lock.h — the core's blocking primitives, on wait.h's wait/wake (a futex
** on Linux; see wait.h for the other systems).
**
**   lock_t  a mutex (Drepper's three-state futex mutex) that spins briefly
**           before sleeping: channel and queue critical sections are tens of
**           nanoseconds, while a sleep/wake costs ~50 us on this VM.
**   note_t  a one-shot wake-up (Go's note): one sleeper, one waker.
**
** ThreadSanitizer sees through these: ownership passes by acquire/release
** atomics; wait_on/wait_wake only put threads to sleep.
*/
#ifndef GORO_LOCK_H
#define GORO_LOCK_H

#include <stdatomic.h>
#include <stdint.h>

#include "wait.h"

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void)0)
#endif

#if !defined(LOCK_SPIN)
#define LOCK_SPIN 100 /* spins before a contended lock sleeps */
#endif

/* ---- lock_t: 0 unlocked, 1 locked, 2 locked and maybe waiters ---- */
typedef struct lock_t {
  _Atomic uint32_t v;
} lock_t;

static inline void lock_init(lock_t *l) {
  atomic_init(&l->v, 0);
}

static inline int lock_try(lock_t *l) {
  uint32_t z = 0;
  /* acquire: pairs with the release in lock_release; orders the critical
  ** section after taking the lock. */
  return atomic_compare_exchange_strong_explicit(&l->v, &z, 1,
                                                 memory_order_acquire,
                                                 memory_order_relaxed);
}

static inline void lock_acquire(lock_t *l) {
  if (lock_try(l)) return;
  for (int i = 0; i < LOCK_SPIN; i++) {
    cpu_relax();
    /* relaxed: only a hint; the CAS in lock_try does the acquiring. */
    if (atomic_load_explicit(&l->v, memory_order_relaxed) == 0 && lock_try(l))
      return;
  }
  /* acquire: as in lock_try; 2 records that someone may sleep. */
  while (atomic_exchange_explicit(&l->v, 2, memory_order_acquire) != 0)
    wait_on(&l->v, 2, -1);
}

static inline void lock_release(lock_t *l) {
  /* release: publishes the critical section to the next owner. */
  if (atomic_exchange_explicit(&l->v, 0, memory_order_release) == 2)
    wait_wake(&l->v, false);
}

/* ---- note_t: 0 clear, 1 woken, 2 a sleeper is (about to be) in wait_on ---- */
typedef struct note_t {
  _Atomic uint32_t key;
} note_t;

static inline void note_clear(note_t *n) {
  atomic_store_explicit(&n->key, 0, memory_order_relaxed);
}

static inline void note_wakeup(note_t *n) {
  /* release: what the waker wrote before is visible after note_sleep. The
  ** wake call only when the sleeper got to wait_on (2): a spinning
  ** sleeper sees the 1 without a syscall on either side. */
  if (atomic_exchange_explicit(&n->key, 1, memory_order_release) == 2)
    wait_wake(&n->key, false);
}

static inline int note_ready(note_t *n) {
  /* acquire: pairs with the release in note_wakeup. */
  return atomic_load_explicit(&n->key, memory_order_acquire) != 0;
}

/* Spins `spin` rounds, then sleeps until woken or until the monotonic
** deadline (ns; <0: none). Callers re-check what they wait for (park.c). */
void note_sleep(note_t *n, int spin, int64_t deadline);

#endif
