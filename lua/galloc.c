/*
** galloc.c — the allocator of goroutine states (gstate.c's lua_Alloc).
**
** A goroutine's state is made on the M that first runs it, may migrate
** between Ms, and is freed (or pooled) on whichever M runs its last step.
** With glibc, memory allocated on one thread and freed on another spreads
** over per-thread arenas (100 000 blocked-then-released goroutines, in
** waves, doubled the peak RSS), and every block pays a header. mimalloc
** 2.0 (per-thread heaps) was measured too and grew 1.5x over the same
** waves: a block freed by another thread is reused only by its own.
**
** So a size-class arena of our own, with no header at all: lua_Alloc is
** told the size of every block it frees, so the size class is known.
**
**   region    one reservation of address space (PROT_NONE), handed out in
**             1 MiB chunks made readable/writable on first use; whether a
**             block is ours is one comparison
**   classes   16-byte steps to 512 bytes, 64-byte steps to 2 KiB; bigger
**             blocks come from malloc
**   tcache    per thread (per M): a free list per class, no lock. Any
**             thread frees into its own cache, whoever allocated the block
**   depot     per class, under a mutex: batches of ~8 KiB of blocks. A
**             cache that holds two batches gives one to the depot; an
**             empty one takes one (or carves from its chunk). So memory
**             freed on one M is reused by every M, and a lock is taken once
**             per batch, not per block.
**
** Blocks of a big state (gstate.c says which, past GSTATE_BIG bytes) come
** from malloc: the arena keeps its memory for the next goroutines, malloc
** gives a big heap back (malloc_trim, galloc_release) once the state is
** closed.
**
** Plain malloc for everything instead: in sanitizer builds (they must see
** every allocation), under valgrind (goro_under_valgrind), when
** GORO_ALLOC=malloc, and if the reservation fails. GORO_ALLOC=arena forces
** the arena (callgrind counts).
*/
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "galloc.h"
#include "goro.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define GALLOC_SANITIZER 1
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define GALLOC_SANITIZER 1
#endif
#endif

#if !defined(GALLOC_REGION)
#define GALLOC_REGION ((size_t)32 << 30) /* address space reserved (not memory) */
#endif
#define CHUNK ((size_t)1 << 20)       /* made usable at a time */
#define SMALL_MAX 512                 /* 16-byte classes up to here */
#define CLASS_MAX 2048                /* 64-byte classes up to here */
#define NCLASS (SMALL_MAX / 16 + (CLASS_MAX - SMALL_MAX) / 64)
#define BATCH_BYTES 8192              /* blocks moved between a cache and the depot */
#if !defined(GALLOC_RELEASE_NS)
#define GALLOC_RELEASE_NS 200000000LL /* 0.2 s between two releases per thread */
#endif

static inline int size_class(size_t n) {
  if (n <= SMALL_MAX) return (int)((n + 15) >> 4) - 1;
  return SMALL_MAX / 16 + (int)((n - SMALL_MAX + 63) >> 6) - 1;
}

static inline size_t class_size(int c) {
  return c < SMALL_MAX / 16 ? (size_t)(c + 1) * 16 : SMALL_MAX + (size_t)(c - SMALL_MAX / 16 + 1) * 64;
}

static inline int class_batch(int c) {
  int n = (int)(BATCH_BYTES / class_size(c));
  return n < 4 ? 4 : n;
}

/* A free block: word 0 links the blocks of a list or batch; in the depot,
** word 1 of a batch's first block links the batches. */
typedef struct fblock {
  struct fblock *next;
  struct fblock *nextbatch;
} fblock;

/* Written once by galloc_init (under gstate.c's pthread_once, before the
** first state is made); read-only after. */
static bool use_arena;
static char *region;

static _Atomic size_t region_used; /* bytes of region handed out as chunks */

/* The depot of one class: full batches (class_batch blocks each). */
static struct depot {
  pthread_mutex_t lock;
  fblock *batches; /* lock */
} depots[NCLASS];

/* This thread's cache; flushed into the depots when the thread exits. */
typedef struct tcache {
  fblock *head[NCLASS];
  int n[NCLASS];
  char *bump, *end; /* the rest of this thread's chunk */
  bool keyed;       /* the exit destructor is registered */
} tcache;

static _Thread_local tcache tc;
static pthread_key_t tckey;

static void depot_put(int c, fblock *batch) {
  struct depot *d = &depots[c];
  pthread_mutex_lock(&d->lock);
  batch->nextbatch = d->batches;
  d->batches = batch;
  pthread_mutex_unlock(&d->lock);
}

/* A thread exits: its cached blocks go to the depots (in batches of any
** length: a cache that takes one counts it). */
static void tcache_flush(void *p) {
  tcache *t = p;
  t->keyed = false; /* a free after this (another key's destructor) registers again */
  for (int c = 0; c < NCLASS; c++) {
    if (t->head[c]) depot_put(c, t->head[c]);
    t->head[c] = NULL;
    t->n[c] = 0;
  }
}

void galloc_init(void) {
  const char *a = getenv("GORO_ALLOC");
#if !defined(GALLOC_SANITIZER)
  if (a && strcmp(a, "arena") == 0) use_arena = true; /* even under valgrind (callgrind) */
  else use_arena = !(a && strcmp(a, "malloc") == 0) && !goro_under_valgrind();
#else
  (void)a;
#endif
  if (!use_arena) return;
  for (int c = 0; c < NCLASS; c++) pthread_mutex_init(&depots[c].lock, NULL);
  void *r = mmap(NULL, GALLOC_REGION, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (r == MAP_FAILED || pthread_key_create(&tckey, tcache_flush) != 0) {
    if (r != MAP_FAILED) munmap(r, GALLOC_REGION);
    use_arena = false;
    return;
  }
  region = r;
}

const char *galloc_name(void) { return use_arena ? "arena" : "malloc"; }

static inline bool ours(const void *p) {
  return use_arena && (uintptr_t)p - (uintptr_t)region < GALLOC_REGION;
}

/* A block of class c carved from this thread's chunk, or NULL. */
static void *carve(int c) {
  size_t sz = class_size(c);
  if ((size_t)(tc.end - tc.bump) < sz) {
    /* relaxed: only the uniqueness of each chunk matters */
    size_t off = atomic_fetch_add_explicit(&region_used, CHUNK, memory_order_relaxed);
    if (off + CHUNK > GALLOC_REGION) return NULL;
    if (mprotect(region + off, CHUNK, PROT_READ | PROT_WRITE) != 0) return NULL;
    tc.bump = region + off; /* the old chunk's tail (< 2 KiB) is not used */
    tc.end = region + off + CHUNK;
  }
  void *p = tc.bump;
  tc.bump += sz;
  return p;
}

/* The thread's cache is flushed when it exits (its first use registers). */
static inline void tcache_key(void) {
  if (!tc.keyed) {
    tc.keyed = true;
    pthread_setspecific(tckey, &tc);
  }
}

static void *arena_alloc(size_t n) {
  int c = size_class(n);
  fblock *b = tc.head[c];
  if (b) {
    tc.head[c] = b->next;
    tc.n[c]--;
    return b;
  }
  tcache_key();
  struct depot *d = &depots[c];
  pthread_mutex_lock(&d->lock);
  b = d->batches;
  if (b) d->batches = b->nextbatch;
  pthread_mutex_unlock(&d->lock);
  if (!b) return carve(c);
  int k = 0;
  for (fblock *x = b->next; x; x = x->next) k++;
  tc.head[c] = b->next;
  tc.n[c] = k;
  return b;
}

static void arena_free(void *p, size_t n) {
  int c = size_class(n);
  fblock *b = p;
  tcache_key(); /* a thread may only free (a state's last M) */
  b->next = tc.head[c];
  tc.head[c] = b;
  int nb = class_batch(c);
  if (++tc.n[c] < 2 * nb) return;
  fblock *last = b; /* the first nb blocks go to the depot */
  for (int i = 1; i < nb; i++) last = last->next;
  tc.head[c] = last->next;
  tc.n[c] -= nb;
  last->next = NULL;
  depot_put(c, b);
}

void *galloc_realloc(void *p, size_t osize, size_t n, bool big) {
  if (p && !ours(p)) return realloc(p, n); /* malloc's stays malloc's */
  if (p && n <= CLASS_MAX && size_class(n) == size_class(osize)) return p;
  void *q = use_arena && !big && n <= CLASS_MAX ? arena_alloc(n) : NULL;
  if (!q) q = malloc(n);
  /* Lua takes a shrink for granted: the block stays, bigger than its
  ** size says, and serves that size's class when freed */
  if (!q) return p && n <= osize ? p : NULL;
  if (p) {
    memcpy(q, p, osize < n ? osize : n);
    arena_free(p, osize);
  }
  return q;
}

void galloc_free(void *p, size_t osize) {
  if (ours(p)) arena_free(p, osize);
  else free(p);
}

#if !defined(GALLOC_SANITIZER)
static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
#endif

/* Under a sanitizer glibc's malloc is not the one in use: its malloc_trim
** would walk arenas that were never set up (ASan: a SEGV in mtrim when two
** threads trim first at once), and has nothing to give back anyway. */
void galloc_release(bool force) {
#if defined(GALLOC_SANITIZER)
  (void)force;
#else
  static _Thread_local long long last; /* this thread's last release */
  long long t = now_ns();
  if (!force && t - last < GALLOC_RELEASE_NS) return;
  last = t;
  malloc_trim(0);
#endif
}
