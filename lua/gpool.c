/*
** gpool.c — the per-M pools of idle goroutine states.
**
** Idle states wait in a per-thread (per-M) stack: a goroutine's first step
** takes one, its last gives it back, without locks. At most GPOOL_MAX per
** thread and GPOOL_TOTAL in all: a pool reserves room from the shared
** count GPOOL_GRAIN slots at a time (relaxed: a bound, not a
** synchronization), so a spawn touches no shared cache line. Every second of activity, the states a
** pool kept unused all along (its low-water mark since the last trim) are
** closed, so a pool shrinks to what its M needs after a burst. States left
** in a pool when an M exits (goro_stop) are closed by the thread-key
** destructor.
*/
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "galloc.h"
#include "gpool.h"

#if !defined(GPOOL_MAX)
#define GPOOL_MAX 256 /* idle states kept per thread */
#endif
#if !defined(GPOOL_TOTAL)
#define GPOOL_TOTAL 2048 /* idle states kept by all threads */
#endif
#define GPOOL_IDLE_NS 1000000000LL /* a pool's states unused this long are closed */
#define GPOOL_GRAIN 32 /* room reserved from the shared count at a time */

typedef struct gpool {
  int n;
  int reserved;       /* room taken from `pooled`: n <= reserved */
  int low;            /* the fewest items it held since the last trim */
  unsigned puts;      /* the clock is read every 64th put */
  long long trimmed;  /* CLOCK_MONOTONIC_COARSE of the last trim, ns */
  void *s[GPOOL_MAX];
} gpool;

static _Atomic int pooled; /* room reserved by every pool */
/* Written once before the first put (gpool_set_free); read-only after. */
static void (*free_item)(void *);
static pthread_key_t poolkey;
static pthread_once_t poolonce = PTHREAD_ONCE_INIT;

void gpool_set_free(void (*f)(void *)) { free_item = f; }

static void pool_destroy(void *p) {
  gpool *pool = p;
  atomic_fetch_sub_explicit(&pooled, pool->reserved, memory_order_relaxed);
  while (pool->n > 0) free_item(pool->s[--pool->n]);
  free(pool);
}

static void pool_init(void) { pthread_key_create(&poolkey, pool_destroy); }

void gpool_drain(void) {
  pthread_once(&poolonce, pool_init);
  gpool *pool = pthread_getspecific(poolkey);
  if (!pool) return;
  pthread_setspecific(poolkey, NULL);
  pool_destroy(pool);
}

static gpool *mypool(void) {
  pthread_once(&poolonce, pool_init);
  gpool *pool = pthread_getspecific(poolkey);
  if (!pool && (pool = calloc(1, sizeof *pool)) != NULL) pthread_setspecific(poolkey, pool);
  return pool;
}

void *gpool_get(void) {
  gpool *pool = mypool();
  if (!pool || pool->n == 0) return NULL;
  if (--pool->n < pool->low) pool->low = pool->n;
  if (pool->reserved - pool->n > 2 * GPOOL_GRAIN) { /* give room back */
    pool->reserved -= GPOOL_GRAIN;
    atomic_fetch_sub_explicit(&pooled, GPOOL_GRAIN, memory_order_relaxed);
  }
  return pool->s[pool->n];
}

static void pool_trim(gpool *pool) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  long long t = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
  if (t - pool->trimmed < GPOOL_IDLE_NS) return;
  pool->trimmed = t;
  int drop = pool->low; /* the bottom ones: the least recently used */
  for (int i = 0; i < drop; i++) free_item(pool->s[i]);
  memmove(pool->s, pool->s + drop, sizeof pool->s[0] * (size_t)(pool->n - drop));
  pool->n -= drop;
  pool->low = pool->n;
  int keep = (pool->n + GPOOL_GRAIN - 1) / GPOOL_GRAIN * GPOOL_GRAIN;
  atomic_fetch_sub_explicit(&pooled, pool->reserved - keep, memory_order_relaxed);
  pool->reserved = keep;
  if (drop) galloc_release(false);
}

bool gpool_put(void *item) {
  gpool *pool = mypool();
  bool keep = pool && pool->n < GPOOL_MAX;
  if (keep && pool->n == pool->reserved) { /* take more room */
    if (atomic_fetch_add_explicit(&pooled, GPOOL_GRAIN, memory_order_relaxed) + GPOOL_GRAIN >
        GPOOL_TOTAL) {
      atomic_fetch_sub_explicit(&pooled, GPOOL_GRAIN, memory_order_relaxed);
      keep = false;
    } else {
      pool->reserved += GPOOL_GRAIN;
    }
  }
  if (keep) pool->s[pool->n++] = item;
  if (pool && (++pool->puts & 63) == 0) pool_trim(pool);
  return keep;
}
