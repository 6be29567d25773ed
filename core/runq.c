/*
** runq.c — run queues: each P's lock-free local ring and the global queue.
**
** The local ring mirrors Go's runqput / runqget / runqgrab / runqsteal
** (proc.go). One owner (the M holding the P) puts at tail and gets at head;
** any number of thieves grab half the ring from head. Invariants:
**   - tail is written only by the owner (store-release after filling slots);
**   - head is advanced by CAS (owner's get and thieves' grab), release so a
**     slot is not overwritten by the owner before the thief has read it;
**   - 0 <= tail - head <= RUNQ_SIZE (unsigned arithmetic wraps);
**   - slots are _Atomic and read/written relaxed: a thief may read a slot
**     the owner is about to reuse, but then its CAS on head fails and the
**     value is discarded (Go's benign race, made defined here).
** runnext holds one G that this P readied (channel hand-off); it is taken by
** CAS. A thief takes runnext only when stealing is its last resort and the
** victim is not running a G, so a ping-pong pair stays on one P and one M.
*/
#include "sched.h"

/* Puts g on p's local queue; next: into runnext (the old one is kicked to
** the tail). A full ring spills half of it plus g to the global queue. Owner
** only. */
static void runqputslow(P *p, goro_g *g, uint32_t h, uint32_t t);

void runqput(P *p, goro_g *g, bool next) {
  if (next) {
    /* acq_rel: the G we kick out was published by a release; g is
    ** published to a thief that takes runnext by CAS (acquire in runqget,
    ** runqgrab, sysmon's rescue_runnext). */
    goro_g *old = atomic_exchange_explicit(&p->runnext, g, memory_order_acq_rel);
    if (old == NULL) return;
    g = old;
  }
  /* acquire: pairs with the thieves' release CAS on head, so their reads
  ** of slots we are about to overwrite happened before. */
  uint32_t h = atomic_load_explicit(&p->runqhead, memory_order_acquire);
  uint32_t t = atomic_load_explicit(&p->runqtail, memory_order_relaxed);
  if (t - h < RUNQ_SIZE) {
    atomic_store_explicit(&p->runq[t % RUNQ_SIZE], g, memory_order_relaxed);
    /* release: the slot write is visible to whoever acquires tail. */
    atomic_store_explicit(&p->runqtail, t + 1, memory_order_release);
    return;
  }
  runqputslow(p, g, h, t);
}

static void runqputslow(P *p, goro_g *g, uint32_t h, uint32_t t) {
  goro_g *batch[RUNQ_SIZE / 2 + 1];
  uint32_t n = (t - h) / 2;
  for (uint32_t i = 0; i < n; i++)
    batch[i] = atomic_load_explicit(&p->runq[(h + i) % RUNQ_SIZE], memory_order_relaxed);
  /* release: as in runqget; if a thief moved head, the ring is no longer
  ** full and the plain put will do. */
  if (!atomic_compare_exchange_strong_explicit(&p->runqhead, &h, h + n,
                                               memory_order_release,
                                               memory_order_relaxed)) {
    runqput(p, g, false);
    return;
  }
  batch[n] = g;
  for (uint32_t i = 0; i < n; i++) batch[i]->schedlink = batch[i + 1];
  lock_acquire(&sched.lock);
  globrunqputbatch(batch[0], batch[n], (int)n + 1);
  lock_release(&sched.lock);
}

/* Takes the next G: runnext first, then head. Unlike Go, a G from runnext
** does not inherit the time slice: execute counts every schedule, so a
** spawn chain through runnext cannot keep the 61-tick look at the global
** queue from coming round. */
goro_g *runqget(P *p) {
  goro_g *next = atomic_load_explicit(&p->runnext, memory_order_relaxed);
  /* acquire: pairs with the acq_rel exchange in runqput(next). */
  if (next && atomic_compare_exchange_strong_explicit(&p->runnext, &next, NULL,
                                                      memory_order_acquire,
                                                      memory_order_relaxed))
    return next;
  for (;;) {
    /* acquire: pairs with a thief's release CAS on head. */
    uint32_t h = atomic_load_explicit(&p->runqhead, memory_order_acquire);
    uint32_t t = atomic_load_explicit(&p->runqtail, memory_order_relaxed);
    if (t == h) return NULL;
    goro_g *g = atomic_load_explicit(&p->runq[h % RUNQ_SIZE], memory_order_relaxed);
    /* release: we are done reading the slot before it can be reused. */
    if (atomic_compare_exchange_strong_explicit(&p->runqhead, &h, h + 1,
                                                memory_order_release,
                                                memory_order_relaxed))
      return g;
  }
}

bool runqempty(P *p) {
  /* Go's runqempty: read head, tail, runnext, and tail again so that a G
  ** moving from runnext to the ring is not missed. acquire on each: pairs
  ** with the owner's release of tail and runnext, and the CAS on head. */
  for (;;) {
    uint32_t h = atomic_load_explicit(&p->runqhead, memory_order_acquire);
    uint32_t t = atomic_load_explicit(&p->runqtail, memory_order_acquire);
    goro_g *n = atomic_load_explicit(&p->runnext, memory_order_acquire);
    uint32_t t2 = atomic_load_explicit(&p->runqtail, memory_order_acquire);
    if (t == t2) return h == t && n == NULL;
  }
}

int runqlen(P *p) {
  uint32_t h = atomic_load_explicit(&p->runqhead, memory_order_relaxed);
  uint32_t t = atomic_load_explicit(&p->runqtail, memory_order_relaxed);
  int n = (int)(t - h);
  if (n < 0 || n > RUNQ_SIZE) n = 0; /* torn read */
  return n + (atomic_load_explicit(&p->runnext, memory_order_relaxed) != NULL);
}

/* Go's runqgrab: copies half of victim's ring into dst[dhead..] (a ring
** owned by the caller) and returns how many. */
static uint32_t runqgrab(P *v, _Atomic(goro_g *) *dst, uint32_t dhead,
                         bool stealnext) {
  for (;;) {
    /* acquire: pairs with the owner's and other thieves' release on head. */
    uint32_t h = atomic_load_explicit(&v->runqhead, memory_order_acquire);
    /* acquire: pairs with the owner's release on tail (slots filled). */
    uint32_t t = atomic_load_explicit(&v->runqtail, memory_order_acquire);
    uint32_t n = t - h;
    n = n - n / 2;
    if (n == 0) {
      if (stealnext &&
          atomic_load_explicit(&v->status, memory_order_relaxed) != P_RUNNING) {
        goro_g *next = atomic_load_explicit(&v->runnext, memory_order_relaxed);
        /* acquire: pairs with the acq_rel exchange in runqput(next). */
        if (next && atomic_compare_exchange_strong_explicit(
                        &v->runnext, &next, NULL, memory_order_acquire,
                        memory_order_relaxed)) {
          atomic_store_explicit(&dst[dhead % RUNQ_SIZE], next, memory_order_relaxed);
          return 1;
        }
      }
      return 0;
    }
    if (n > RUNQ_SIZE / 2) continue; /* read h and t inconsistently */
    for (uint32_t i = 0; i < n; i++) {
      goro_g *g = atomic_load_explicit(&v->runq[(h + i) % RUNQ_SIZE], memory_order_relaxed);
      atomic_store_explicit(&dst[(dhead + i) % RUNQ_SIZE], g, memory_order_relaxed);
    }
    /* release: our slot reads are done before the owner may reuse them. */
    if (atomic_compare_exchange_strong_explicit(&v->runqhead, &h, h + n,
                                                memory_order_release,
                                                memory_order_relaxed))
      return n;
  }
}

/* Steals half of victim's ring into p's (which must be empty enough: p's
** owner calls this only when its queue is empty) and returns one G to run. */
goro_g *runqsteal(P *p, P *victim, bool stealnext) {
  uint32_t t = atomic_load_explicit(&p->runqtail, memory_order_relaxed);
  uint32_t n = runqgrab(victim, p->runq, t, stealnext);
  if (n == 0) return NULL;
  n--;
  goro_g *g = atomic_load_explicit(&p->runq[(t + n) % RUNQ_SIZE], memory_order_relaxed);
  if (n == 0) return g;
  /* release: the stolen Gs in our slots are visible to our own thieves. */
  atomic_store_explicit(&p->runqtail, t + n, memory_order_release);
  return g;
}

/* ---- global run queue: sched.lock held ---- */

void globrunqput(goro_g *g) { globrunqputbatch(g, g, 1); }

/* g is runnable: to the back of the global queue (takes sched.lock). */
void globrunq_add(goro_g *g) {
  lock_acquire(&sched.lock);
  globrunqput(g);
  lock_release(&sched.lock);
}

/* h..t, linked by schedlink, n of them. */
void globrunqputbatch(goro_g *h, goro_g *t, int n) {
  t->schedlink = NULL;
  if (sched.runqtail) sched.runqtail->schedlink = h;
  else sched.runqhead = h;
  sched.runqtail = t;
  atomic_fetch_add_explicit(&sched.runqsize, n, memory_order_relaxed);
}

/* Go's globrunqget: takes a fair share (at most max if max > 0, at most
** half a local ring), returns one and puts the rest on p's local queue. */
goro_g *globrunqget(P *p, int max) {
  int sz = atomic_load_explicit(&sched.runqsize, memory_order_relaxed);
  if (sz == 0) return NULL;
  int gmp = atomic_load_explicit(&rt.gomaxprocs, memory_order_relaxed);
  int n = sz / gmp + 1;
  if (n > sz) n = sz;
  if (max > 0 && n > max) n = max;
  if (n > RUNQ_SIZE / 2) n = RUNQ_SIZE / 2;
  atomic_fetch_sub_explicit(&sched.runqsize, n, memory_order_relaxed);
  STAT_ADD(globalgets, n);
  goro_g *g = sched.runqhead;
  sched.runqhead = g->schedlink;
  if (!sched.runqhead) sched.runqtail = NULL;
  while (--n > 0) {
    goro_g *g1 = sched.runqhead;
    sched.runqhead = g1->schedlink;
    if (!sched.runqhead) sched.runqtail = NULL;
    runqput(p, g1, false);
  }
  return g;
}
