/*
** wait_portable.c — wait.h on POSIX threads alone, for systems without a
** futex-like call (and for make WAIT=portable, to test this path).
**
** A fixed table of NBUCKETS wait queues, picked by hashing the word's
** address. Each queue is a mutex and a list of waiters; a waiter is a node
** on its own stack with its own condition variable. wait_on checks the word
** under the queue's mutex and joins the list; wait_wake takes the mutex,
** unlinks the first waiter on that address (or all of them), marks it woken
** and signals it. No wake-up is lost: the waker changed the word before it
** takes the mutex, so a waiter that checks after it sees the new value and
** does not sleep, and one that checked before is on the list by then.
** Waiters on other addresses that share the queue are never woken by
** mistake (each has its own condition variable).
*/
#include "wait.h"

#if defined(GORO_WAIT_BACKEND_PORTABLE)

#if defined(GORO_WAIT_NO_NATIVE)
#pragma message("goro: no futex-like call known on this system: threads sleep on pthread condition variables (core/wait_portable.c)")
#endif

#include <errno.h>
#include <pthread.h>
#include <time.h>

#define NBUCKETS 64 /* a power of two */

typedef struct waiter {
  _Atomic uint32_t *addr;
  struct waiter *next;  /* bucket.mu */
  bool woken;           /* bucket.mu: unlinked by a waker */
  pthread_cond_t cv;
} waiter;

static struct bucket {
  pthread_mutex_t mu;
  waiter *first;        /* mu: waiters, oldest first */
  waiter *last;         /* mu */
} table[NBUCKETS];

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_condattr_t cvattr;
#if !defined(__APPLE__) /* macOS: relative timed waits, no clock to pick */
static clockid_t cvclock = CLOCK_REALTIME; /* the clock of timed waits */
#endif

static void init(void) {
  pthread_condattr_init(&cvattr);
#if !defined(__APPLE__) && defined(CLOCK_MONOTONIC)
  if (pthread_condattr_setclock(&cvattr, CLOCK_MONOTONIC) == 0) cvclock = CLOCK_MONOTONIC;
#endif
  for (int i = 0; i < NBUCKETS; i++) pthread_mutex_init(&table[i].mu, NULL);
}

static struct bucket *bucket_of(_Atomic uint32_t *addr) {
  uint64_t h = (uint64_t)(uintptr_t)addr * 0x9E3779B97F4A7C15ULL;
  return &table[h >> 58]; /* top 6 bits: NBUCKETS == 64 */
}

/* b->mu held: x, which follows prev (NULL: x is first), leaves the list. */
static void unlink_at(struct bucket *b, waiter *prev, waiter *x) {
  if (prev) prev->next = x->next;
  else b->first = x->next;
  if (b->last == x) b->last = prev;
}

/* b->mu held: w, still on the list, leaves it. */
static void unlink_waiter(struct bucket *b, waiter *w) {
  waiter *prev = NULL;
  for (waiter *x = b->first; x != w; x = x->next) prev = x;
  unlink_at(b, prev, w);
}

void wait_on(_Atomic uint32_t *addr, uint32_t val, int64_t timeout_ns) {
  if (timeout_ns == 0) return;
  pthread_once(&once, init);
  struct bucket *b = bucket_of(addr);
  pthread_mutex_lock(&b->mu);
  /* relaxed: the mutex orders this read after the waker's write (it wrote
  ** the word before taking the mutex in wait_wake). */
  if (atomic_load_explicit(addr, memory_order_relaxed) != val) {
    pthread_mutex_unlock(&b->mu);
    return;
  }
  waiter w = {addr, NULL, false, PTHREAD_COND_INITIALIZER};
  pthread_cond_init(&w.cv, &cvattr);
  if (b->last) b->last->next = &w;
  else b->first = &w;
  b->last = &w;
  if (timeout_ns < 0) {
    pthread_cond_wait(&w.cv, &b->mu); /* a spurious return is allowed */
  } else {
#if defined(__APPLE__)
    struct timespec rel = {(time_t)(timeout_ns / 1000000000), (long)(timeout_ns % 1000000000)};
    pthread_cond_timedwait_relative_np(&w.cv, &b->mu, &rel);
#else
    struct timespec ts;
    clock_gettime(cvclock, &ts);
    int64_t ns = (int64_t)ts.tv_nsec + timeout_ns % 1000000000;
    ts.tv_sec += (time_t)(timeout_ns / 1000000000 + ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    pthread_cond_timedwait(&w.cv, &b->mu, &ts);
#endif
  }
  if (!w.woken) unlink_waiter(b, &w);
  pthread_mutex_unlock(&b->mu);
  pthread_cond_destroy(&w.cv); /* the waker signalled under the mutex: done with it */
}

void wait_wake(_Atomic uint32_t *addr, bool all) {
  pthread_once(&once, init);
  struct bucket *b = bucket_of(addr);
  pthread_mutex_lock(&b->mu);
  waiter *prev = NULL, *next;
  for (waiter *x = b->first; x; x = next) {
    next = x->next;
    if (x->addr != addr) {
      prev = x;
      continue;
    }
    unlink_at(b, prev, x);
    x->woken = true;
    pthread_cond_signal(&x->cv);
    if (!all) break;
  }
  pthread_mutex_unlock(&b->mu);
}

#endif
