/*
** g.c — goroutines: spawn, ready, the free lists of dead Gs, allg.
**
** G status transitions (g->status, atomic):
**   spawn:           IDLE/DEAD -> RUNNABLE          (spawner)
**   execute:         RUNNABLE  -> RUNNING           (the M that dequeued it)
**   park commit:     RUNNING   -> WAITING (CAS)     (its M, after the step)
**   goready:         * -> RUNNABLE (exchange); if it was WAITING the waker
**                    queues it; if it was still RUNNING (woken before the
**                    park committed) the park CAS fails and its own M
**                    requeues it. Exactly one wake per park: the waker won
**                    the operation's `done` CAS (chan.c).
**   blocking call:   RUNNING <-> SYSCALL            (its M, syscall.c)
**   step done:       RUNNING   -> DEAD              (its M)
**
** Dead Gs are kept for reuse with their binding cache (a pooled lua_State):
** each P keeps up to GFREE_MAX, the rest go to a global list of at most
** GFREE_GLOBAL_MAX; beyond that they are freed. An outside thread (the Lua
** main state spawning in a loop) takes dead Gs in batches into a
** thread-local cache. Every G ever made is in allg until freed, so
** goro_stop can reap the ones still alive and free them all.
*/
#include <stdlib.h>
#include <string.h>

#include "sched.h"

#if !defined(GFREE_MAX)
#define GFREE_MAX 64 /* a P keeps at most this many dead Gs */
#endif
#if !defined(GFREE_GLOBAL_MAX)
#define GFREE_GLOBAL_MAX 4096 /* dead Gs kept in the global free list */
#endif
#define GFREE_BATCH 32 /* dead Gs moved from the global list at a time */

static struct {
  lock_t lock;
  goro_g *list;       /* lock: linked by schedlink */
  _Atomic int n;      /* changed under lock; read without it as a hint */
} gfree;

static struct {
  lock_t lock;
  goro_g **a;         /* lock: every G not yet freed */
  size_t n, cap;      /* lock */
} allg;

static _Atomic uint64_t goidgen; /* last G id handed out */

/* Dead Gs cached by an outside thread (not in any free list, still in
** allg, so goro_stop frees them); valid for runtime generation
** tls_gcache_gen only. */
static _Thread_local goro_g *tls_gcache;
static _Thread_local int tls_ngcache;
static _Thread_local uint64_t tls_gcache_gen;

/* ------------------------------------------------------------ allg */

static void allgadd(goro_g *g) {
  lock_acquire(&allg.lock);
  if (allg.n == allg.cap) {
    size_t cap = allg.cap ? allg.cap * 2 : 1024;
    goro_g **a = realloc(allg.a, cap * sizeof *a);
    if (!a) abort(); /* cannot track the G: nothing sane left to do */
    allg.a = a;
    allg.cap = cap;
  }
  g->allgidx = allg.n;
  allg.a[allg.n++] = g;
  lock_release(&allg.lock);
}

/* g leaves allg and memory. */
static void gfree_one(goro_g *g) {
  lock_acquire(&allg.lock);
  size_t i = g->allgidx;
  goro_g *last = allg.a[--allg.n];
  allg.a[i] = last;
  last->allgidx = i;
  lock_release(&allg.lock);
  if (g->cache && rt.cache_free) rt.cache_free(g->cache);
  free(g);
}

/* ------------------------------------------------------ free lists */

/* Moves up to GFREE_BATCH dead Gs from the global list to *list. */
static void gfgrab(goro_g **list, int *n) {
  if (atomic_load_explicit(&gfree.n, memory_order_relaxed) == 0) return;
  lock_acquire(&gfree.lock);
  while (*n < GFREE_BATCH && gfree.list) {
    goro_g *g = gfree.list;
    gfree.list = g->schedlink;
    atomic_store_explicit(&gfree.n, atomic_load_explicit(&gfree.n, memory_order_relaxed) - 1,
                          memory_order_relaxed);
    g->schedlink = *list;
    *list = g;
    (*n)++;
  }
  lock_release(&gfree.lock);
}

/* gfree.lock held: g to the global list if it has room. */
static bool gfput_locked(goro_g *g) {
  int n = atomic_load_explicit(&gfree.n, memory_order_relaxed);
  if (n >= GFREE_GLOBAL_MAX) return false;
  g->schedlink = gfree.list;
  gfree.list = g;
  atomic_store_explicit(&gfree.n, n + 1, memory_order_relaxed);
  return true;
}

/* Go's gfget: a dead G from p's list (or, p NULL, from this outside
** thread's cache), refilled from the global list. */
static goro_g *gfget(P *p) {
  goro_g **list;
  int *n;
  if (p) {
    list = &p->gfree;
    n = &p->ngfree;
  } else {
    if (tls_gcache_gen != rt.gen) { /* the runtime restarted */
      tls_gcache = NULL;
      tls_ngcache = 0;
      tls_gcache_gen = rt.gen;
    }
    list = &tls_gcache;
    n = &tls_ngcache;
  }
  if (!*list) gfgrab(list, n);
  goro_g *g = *list;
  if (g) {
    *list = g->schedlink;
    (*n)--;
  }
  return g;
}

/* Go's gfput: g is dead; keep it for reuse (with its binding cache). p:
** its M's P, NULL when sysmon retook it (the global list then). */
static void gfput(P *p, goro_g *g) {
  if (!p) {
    lock_acquire(&gfree.lock);
    bool kept = gfput_locked(g);
    lock_release(&gfree.lock);
    if (!kept) gfree_one(g);
    return;
  }
  g->schedlink = p->gfree;
  p->gfree = g;
  if (++p->ngfree < GFREE_MAX) return;
  goro_g *drop = NULL;
  lock_acquire(&gfree.lock);
  while (p->ngfree > GFREE_MAX / 2) {
    goro_g *x = p->gfree;
    p->gfree = x->schedlink;
    p->ngfree--;
    if (!gfput_locked(x)) {
      x->schedlink = drop;
      drop = x;
    }
  }
  lock_release(&gfree.lock);
  while (drop) {
    goro_g *x = drop;
    drop = x->schedlink;
    gfree_one(x);
  }
}

/* ------------------------------------------------------------ life */

int goro_spawn(goro_step_fn fn, void *ud, goro_g **out) {
  if (!fn) return GORO_EINVAL;
  /* acquire: pairs with goro_start's release store (the Ps are set up). */
  if (!atomic_load_explicit(&rt.running, memory_order_acquire)) return GORO_ESTOPPED;
  M *m = tls_m;
  P *p;
  bool entered = p_enter(m, &p);
  goro_g *g = gfget(p);
  if (!g) {
    g = calloc(1, sizeof *g);
    if (!g) {
      p_leave(m, entered);
      return GORO_ENOMEM;
    }
    allgadd(g);
  }
  g->fn = fn;
  g->ud = ud;
  g->schedlink = NULL;
  g->nopark = 0;
  g->op.pending = false;
  g->id = atomic_fetch_add_explicit(&goidgen, 1, memory_order_relaxed) + 1;
  /* relaxed: published to the M that runs it by the run queue's release. */
  atomic_store_explicit(&g->status, G_RUNNABLE, memory_order_relaxed);
  atomic_fetch_add_explicit(&live.ngs, 1, memory_order_relaxed);
  active_add(1);
  STAT_ADD(spawned, 1);
  if (out) *out = g;
  if (p) runqput(p, g, true);
  else globrunq_add(g);
  p_leave(m, entered);
  wakep();
  return GORO_OK;
}

/* Go's goready: g's operation was claimed by the caller; g runs again. */
void goready(goro_g *g) {
  /* acq_rel: publishes the waker's writes (the operation's outcome) to the
  ** G's next step; sees the park commit (pairs with execute's CAS). */
  int old = atomic_exchange_explicit(&g->status, G_RUNNABLE, memory_order_acq_rel);
  if (old != G_WAITING) return; /* still RUNNING: its M requeues it */
  atomic_fetch_sub_explicit(&live.nwaiting, 1, memory_order_relaxed);
  active_add(1);
  M *m = tls_m;
  P *p;
  bool entered = p_enter(m, &p);
  if (p) {
    runqput(p, g, true);
    /* g waits in runnext to run here as soon as the current G parks (a
    ** channel hand-over), and thieves leave a running P's runnext alone:
    ** waking an M for it only costs a wake-up syscall. Wake one if the ring has
    ** work (runnext kicked a G there); sysmon rescues a runnext G that
    ** waits too long (sysmon.c). */
    bool quiet = atomic_load_explicit(&p->runqtail, memory_order_relaxed) ==
                 atomic_load_explicit(&p->runqhead, memory_order_relaxed);
    p_leave(m, entered);
    if (quiet) return;
  } else {
    p_leave(m, entered);
    globrunq_add(g);
  }
  wakep();
}

void gdestroy(P *p, goro_g *g) {
  atomic_store_explicit(&g->status, G_DEAD, memory_order_relaxed);
  g->fn = NULL;
  g->ud = NULL;
  gfput(p, g);
  /* acq_rel: the G's writes are visible to goro_wait_all's acquire read of
  ** ngs; ordered before the nactive decrement (park.c). */
  if (atomic_fetch_sub_explicit(&live.ngs, 1, memory_order_acq_rel) == 1)
    ext_wake_all(); /* goro_wait_all */
  active_add(-1);
}

void gs_reset(void) {
  lock_init(&gfree.lock);
  gfree.list = NULL;
  atomic_store_explicit(&gfree.n, 0, memory_order_relaxed);
  lock_init(&allg.lock);
  allg.a = NULL;
  allg.n = allg.cap = 0;
  atomic_store_explicit(&goidgen, 0, memory_order_relaxed);
}

/* goro_stop, every M gone: the reap callback for each G still alive, then
** every G is freed. */
void gs_free_all(void) {
  for (size_t i = 0; i < allg.n; i++) {
    goro_g *g = allg.a[i];
    if (atomic_load_explicit(&g->status, memory_order_relaxed) != G_DEAD) {
      select_cancel_all(g);
      if (rt.reap) rt.reap(g, g->ud);
    }
    if (g->cache && rt.cache_free) rt.cache_free(g->cache);
    free(g->sgheap);
    free(g);
  }
  free(allg.a);
  gs_reset();
}

/* ------------------------------------------------------------ access */

goro_g *goro_self(void) {
  M *m = tls_m;
  return m ? m->curg : NULL;
}
uint64_t goro_id(goro_g *g) { return g ? g->id : 0; }
void *goro_userdata(goro_g *g) { return g->ud; }
void **goro_cache(goro_g *g) { return &g->cache; }
void goro_set_cache_free(void (*f)(void *)) { rt.cache_free = f; }

int goro_nopark(int on) {
  goro_g *g = goro_self();
  if (!g) return 1;
  int old = g->nopark > 0;
  g->nopark = on ? 1 : 0;
  return old;
}

int64_t goro_numgoroutine(void) {
  return atomic_load_explicit(&live.ngs, memory_order_relaxed);
}
