/*
** sched.c — the G-M-P scheduler (Go's proc.go, in small).
**
** Actors
**   G  a goroutine: step callback + user data + the operation it waits on.
**   M  a pthread running schedule(): find a G, call its step, repeat.
**   P  the right to run Gs, with a local run queue (runq.c). An M needs a P
**      to run Gs; there are GOMAXPROCS Ps.
**
** G status transitions (g->status, atomic):
**   spawn:           IDLE/DEAD -> RUNNABLE          (spawner)
**   execute:         RUNNABLE  -> RUNNING           (the M that dequeued it)
**   park commit:     RUNNING   -> WAITING (CAS)     (its M, after the step)
**   goro_ready:      * -> RUNNABLE (exchange); if it was WAITING the waker
**                    queues it; if it was still RUNNING (woken before the
**                    park committed) the park CAS fails and its own M
**                    requeues it. Exactly one wake per park: the waker won
**                    the operation's `done` CAS (chan.c).
**   blocking call:   RUNNING <-> SYSCALL            (its M)
**   step done:       RUNNING   -> DEAD              (its M)
**
** findrunnable (Go's findRunnable): every 61st tick the global queue
** first; then expired timers, runnext and the local ring, the global queue,
** stealing half of a random victim's ring (4 rounds, runnext only in the
** last and only from a P not running), then the P is released and the M
** parks on its note. At most half the busy Ps have a spinning M; whoever
** makes a G runnable calls wakep(), which starts a spinning M if a P is idle
** and nobody spins. The last spinner to find work wakes another (Go's
** resetspinning), and a spinner giving up re-checks every queue after
** dropping its spinning count: with the seq_cst fences in wakep() and in
** that re-check, either the submitter sees the idle P or the spinner sees the
** G, so no G is left behind with a P idle.
**
** Deadlock detection: sched.nactive counts what can still make progress
** (running/runnable Gs, Gs in blocking calls, pending timers). When it falls
** to 0 every outside waiter is told to re-check: if its operation is still
** unclaimed, it fails with GORO_EDEADLOCK.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched.h"

sched_t sched;
#if defined(__SANITIZE_THREAD__)
_Atomic int sched_fence_word;
#endif
_Thread_local M *tls_m;

#if !defined(SPIN_ROUNDS_M)
#define SPIN_ROUNDS_M 4000 /* cpu_relax rounds an idle M spins before sleeping */
#endif
#if !defined(GFREE_GLOBAL_MAX)
#define GFREE_GLOBAL_MAX 4096 /* dead Gs kept in the global free list */
#endif

static void *mstart(void *arg);

int64_t goro_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + 1;
}

const char *goro_strerror(int err) {
  switch (err) {
  case GORO_OK: return "ok";
  case GORO_EAGAIN: return "operation would block";
  case GORO_ECLOSED: return "channel is closed";
  case GORO_EDEADLOCK: return "all goroutines are asleep - deadlock!";
  case GORO_ETIMEDOUT: return "deadline exceeded";
  case GORO_EINTR: return "wait interrupted";
  case GORO_EPARK: return "the goroutine must park";
  case GORO_ENOMEM: return "out of memory";
  case GORO_ETHREAD: return "cannot start an OS thread";
  case GORO_EINVAL: return "invalid argument";
  case GORO_ESTOPPED: return "the runtime is not running";
  default: return "unknown error";
  }
}

int note_sleep(note_t *n, int spin, int64_t deadline) {
  for (int i = 0; i < spin; i++) {
    if (note_ready(n)) return 1;
    cpu_relax();
  }
  for (;;) {
    uint32_t v = 0;
    /* 0 -> 2: we are about to sleep; note_wakeup's exchange sees 2. */
    if (!atomic_compare_exchange_strong_explicit(&n->key, &v, 2,
                                                 memory_order_acquire,
                                                 memory_order_acquire) &&
        v == 1)
      return 1;
    if (deadline < 0) {
      futex_wait(&n->key, 2, NULL);
    } else {
      int64_t left = deadline - goro_now();
      if (left <= 0) {
        uint32_t two = 2;
        /* back to 0 unless a wake-up came in the meantime */
        if (atomic_compare_exchange_strong_explicit(&n->key, &two, 0,
                                                    memory_order_acquire,
                                                    memory_order_acquire))
          return 0;
        return 1;
      }
      struct timespec ts = ns_to_timespec(left);
      futex_wait(&n->key, 2, &ts);
    }
    if (note_ready(n) && atomic_load_explicit(&n->key, memory_order_acquire) == 1)
      return 1;
  }
}

/* ------------------------------------------------------------------ Ps */

/* sched.lock held. A P goes first to an M waiting to come back from a
** blocking call, else to the idle list. */
static void pidleput(P *p) {
  p->m = NULL;
  if (p->id >= atomic_load_explicit(&sched.gomaxprocs, memory_order_relaxed)) {
    atomic_store_explicit(&p->status, P_GONE, memory_order_relaxed);
    return;
  }
  if (sched.waitp) {
    M *m = sched.waitp;
    sched.waitp = m->link;
    atomic_fetch_sub_explicit(&sched.nwaitp, 1, memory_order_relaxed);
    atomic_store_explicit(&p->status, P_RUNNING, memory_order_relaxed);
    p->m = m;
    m->nextp = p;
    note_wakeup(&m->park);
    return;
  }
  atomic_store_explicit(&p->status, P_IDLE, memory_order_relaxed);
  p->link = sched.pidle;
  sched.pidle = p;
  /* seq_cst: the idle P must be visible to wakep()'s check (see header). */
  atomic_fetch_add_explicit(&sched.npidle, 1, memory_order_seq_cst);
}

/* sched.lock held. */
static P *pidleget(void) {
  P *p = sched.pidle;
  if (p) {
    sched.pidle = p->link;
    atomic_fetch_sub_explicit(&sched.npidle, 1, memory_order_seq_cst);
    atomic_store_explicit(&p->status, P_RUNNING, memory_order_relaxed);
  }
  return p;
}

/* sched.lock held: takes this particular P if idle. */
static P *pidletake(P *want) {
  for (P **pp = &sched.pidle; *pp; pp = &(*pp)->link) {
    if (*pp == want) {
      *pp = want->link;
      atomic_fetch_sub_explicit(&sched.npidle, 1, memory_order_seq_cst);
      atomic_store_explicit(&want->status, P_RUNNING, memory_order_relaxed);
      return want;
    }
  }
  return NULL;
}

static void acquirep(M *m, P *p) {
  m->p = p;
  p->m = m;
  atomic_store_explicit(&p->status, P_RUNNING, memory_order_relaxed);
}

/* Publish eagerly where signals come late (see struct M). */
#if defined(__SANITIZE_THREAD__)
#define EAGER_PUBLISH 1
#else
#define EAGER_PUBLISH 0
#endif

/* Publishes m's P for sysmon (struct M); m runs user code. */
static inline void p_publish(M *m) {
  if (!m->p) return;
  /* release: sysmon's acquire CAS that retakes the P sees every write this
  ** M made to it. */
  atomic_store_explicit(&m->userp, m->p, memory_order_release);
  m->published = 1;
}

/* A core operation in a G's step (spawn, ready, blocking-call entry)
** takes m's P back from user mode, where sysmon may have retaken it (see
** struct M): *pp is the P the operation may use, NULL when m has none (in
** a blocking call, or retaken: the step goes on without a P, its spawns
** and wake-ups go to the global queue). Returns whether p_leave must go
** back to user mode (false when nested in another core operation or
** called from the scheduler itself). Never blocks. */
static bool p_enter(M *m, P **pp) {
  if (!m || !m->inuser) {
    *pp = m ? m->p : NULL;
    return false;
  }
  m->inuser = 0;
  /* from here the signal handler leaves userp alone */
  atomic_signal_fence(memory_order_seq_cst);
  P *p = m->p;
  if (m->published) {
    m->published = 0;
    P *exp = p;
    /* relaxed: winning means nobody else touched p since our own release
    ** store; losing means sysmon owns it and we never touch it again. */
    if (p && !atomic_compare_exchange_strong_explicit(&m->userp, &exp, NULL,
                                                      memory_order_relaxed,
                                                      memory_order_relaxed)) {
      m->p = NULL;
      p = NULL;
    }
  }
  *pp = p;
  return true;
}

static void p_leave(M *m, bool entered) {
  if (!entered) return;
  if (EAGER_PUBLISH) p_publish(m);
  atomic_signal_fence(memory_order_seq_cst);
  m->inuser = 1;
}

/* Signal handler context (async-signal-safe): sysmon's preemption signal
** reached this thread; if a step runs user code here, publish its P so
** sysmon can retake it should the step not yield. */
void goro_preempt_signal(void) {
  M *m = tls_m;
  if (!m || !m->inuser || m->published) return;
  p_publish(m);
}

/* ------------------------------------------------------------------ Ms */

/* sched.lock held. */
static M *mget(void) {
  M *m = sched.midle;
  if (m) {
    sched.midle = m->link;
    sched.nmidle--;
  }
  return m;
}

static _Atomic int mfail_reported;

/* Go's startm: runs p (or an idle P when p is NULL) on an idle or new M. */
static void startm(P *p, bool spinning) {
  lock_acquire(&sched.lock);
  if (!p) {
    p = pidleget();
    if (!p) {
      lock_release(&sched.lock);
      /* seq_cst: pairs with wakep's CAS. */
      if (spinning) atomic_fetch_sub_explicit(&sched.nmspinning, 1, memory_order_seq_cst);
      return;
    }
  }
  M *m = mget();
  if (m) {
    lock_release(&sched.lock);
    m->spinning = spinning;
    m->nextp = p;
    note_wakeup(&m->park);
    return;
  }
  if (sched.mcount >= sched.maxmcount) goto fail;
  m = calloc(1, sizeof *m);
  if (!m) goto fail;
  m->id = sched.mcount++;
  m->rand = 0x9E3779B97F4A7C15ULL * (uint64_t)(m->id + 1);
  m->spinning = spinning;
  m->nextp = p;
  m->alllink = sched.allm;
  sched.allm = m;
  lock_release(&sched.lock);
  STAT_ADD(c_mstarts, 1);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 1 << 20);
  int rc = pthread_create(&m->thread, &attr, mstart, m);
  pthread_attr_destroy(&attr);
  if (rc == 0) return;
  lock_acquire(&sched.lock);
  sched.allm = m->alllink;
  sched.mcount--;
  free(m);
  m = NULL;
fail:
  pidleput(p);
  lock_release(&sched.lock);
  if (spinning) atomic_fetch_sub_explicit(&sched.nmspinning, 1, memory_order_seq_cst);
  atomic_store_explicit(&sched.mfail, 1, memory_order_relaxed); /* sysmon looks */
  if (!atomic_exchange_explicit(&mfail_reported, 1, memory_order_relaxed))
    fprintf(stderr,
            "goro: cannot start another OS thread (%d running, cap %d): "
            "goroutines keep running on the threads there are; raise the cap "
            "with GORO_MAXTHREADS or free system resources\n",
            sched.mcount, sched.maxmcount);
}

/* Go's wakep: a G became runnable; make sure an M is looking for it. */
void wakep(void) {
  /* seq_cst: orders our queue write before these reads (StoreLoad) against
  ** the spinner's npidle/nmspinning update before its queue re-check. */
  SEQ_CST_FENCE();
  if (atomic_load_explicit(&sched.npidle, memory_order_seq_cst) == 0) return;
  int z = 0;
  if (atomic_load_explicit(&sched.nmspinning, memory_order_seq_cst) != 0 ||
      !atomic_compare_exchange_strong_explicit(&sched.nmspinning, &z, 1,
                                               memory_order_seq_cst,
                                               memory_order_relaxed))
    return;
  startm(NULL, true);
}

/* Go's stopm: parks m until it is handed a P (or the runtime stops). */
static void stopm(M *m) {
  lock_acquire(&sched.lock);
  note_clear(&m->park);
  m->link = sched.midle;
  sched.midle = m;
  sched.nmidle++;
  lock_release(&sched.lock);
  STAT_ADD(c_mparks, 1);
  note_sleep(&m->park, SPIN_ROUNDS_M, -1);
  if (m->nextp) {
    acquirep(m, m->nextp);
    m->nextp = NULL;
  }
}

/* Go's handoffp: p's M is going into a blocking call. */
static void handoffp(P *p) {
  if (!runqempty(p) ||
      atomic_load_explicit(&sched.runqsize, memory_order_relaxed) > 0) {
    startm(p, false);
    return;
  }
  int z = 0;
  if (atomic_load_explicit(&sched.nmspinning, memory_order_relaxed) +
              atomic_load_explicit(&sched.npidle, memory_order_relaxed) == 0 &&
      atomic_compare_exchange_strong_explicit(&sched.nmspinning, &z, 1,
                                              memory_order_seq_cst,
                                              memory_order_relaxed)) {
    startm(p, true);
    return;
  }
  lock_acquire(&sched.lock);
  if (atomic_load_explicit(&sched.runqsize, memory_order_relaxed) > 0) {
    lock_release(&sched.lock);
    startm(p, false);
    return;
  }
  pidleput(p);
  lock_release(&sched.lock);
}

/* ------------------------------------------------------------------ Gs */

static void allgadd(goro_g *g) {
  lock_acquire(&sched.allglock);
  if (sched.nallg == sched.capallg) {
    size_t cap = sched.capallg ? sched.capallg * 2 : 1024;
    goro_g **a = realloc(sched.allg, cap * sizeof *a);
    if (!a) abort(); /* cannot track the G: nothing sane left to do */
    sched.allg = a;
    sched.capallg = cap;
  }
  g->allgidx = sched.nallg;
  sched.allg[sched.nallg++] = g;
  lock_release(&sched.allglock);
}

static void allgremove(goro_g *g) {
  lock_acquire(&sched.allglock);
  size_t i = g->allgidx;
  goro_g *last = sched.allg[--sched.nallg];
  sched.allg[i] = last;
  last->allgidx = i;
  lock_release(&sched.allglock);
}

/* Dead Gs cached by an outside thread (not in any free list, still in
** allg, so goro_stop frees them); valid for runtime generation
** tls_gcache_gen only. */
static _Thread_local goro_g *tls_gcache;
static _Thread_local int tls_ngcache;
static _Thread_local uint64_t tls_gcache_gen;

/* Go's gfget: a dead G from p's list, refilled from the global list. */
static goro_g *gfget(P *p) {
  if (p && !p->gfree &&
      atomic_load_explicit(&sched.ngfree, memory_order_relaxed) > 0) {
    lock_acquire(&sched.gflock);
    while (p->ngfree < 32 && sched.gfree) {
      goro_g *g = sched.gfree;
      sched.gfree = g->schedlink;
      sched.ngfree--;
      g->schedlink = p->gfree;
      p->gfree = g;
      p->ngfree++;
    }
    lock_release(&sched.gflock);
  }
  goro_g *g = NULL;
  if (p) {
    g = p->gfree;
    if (g) {
      p->gfree = g->schedlink;
      p->ngfree--;
    }
  } else {
    /* an outside thread (the Lua main state spawning in a loop) takes dead
    ** Gs in batches too; its cache is dropped when the runtime restarted */
    if (tls_gcache_gen != sched.gen) {
      tls_gcache = NULL;
      tls_ngcache = 0;
      tls_gcache_gen = sched.gen;
    }
    if (!tls_gcache && atomic_load_explicit(&sched.ngfree, memory_order_relaxed) > 0) {
      lock_acquire(&sched.gflock);
      while (tls_ngcache < 32 && sched.gfree) {
        goro_g *x = sched.gfree;
        sched.gfree = x->schedlink;
        sched.ngfree--;
        x->schedlink = tls_gcache;
        tls_gcache = x;
        tls_ngcache++;
      }
      lock_release(&sched.gflock);
    }
    g = tls_gcache;
    if (g) {
      tls_gcache = g->schedlink;
      tls_ngcache--;
    }
  }
  return g;
}

/* g is dead and its M has no P (retaken): the global free list. */
static void gfput_global(goro_g *g) {
  lock_acquire(&sched.gflock);
  if (sched.ngfree < GFREE_GLOBAL_MAX) {
    g->schedlink = sched.gfree;
    sched.gfree = g;
    sched.ngfree++;
    g = NULL;
  }
  lock_release(&sched.gflock);
  if (!g) return;
  allgremove(g);
  if (g->cache && sched.cache_free) sched.cache_free(g->cache);
  free(g);
}

/* Go's gfput: g is dead; keep it for reuse (with its binding cache). */
static void gfput(P *p, goro_g *g) {
  g->schedlink = p->gfree;
  p->gfree = g;
  if (++p->ngfree < GFREE_MAX) return;
  goro_g *drop = NULL;
  lock_acquire(&sched.gflock);
  while (p->ngfree > GFREE_MAX / 2) {
    goro_g *x = p->gfree;
    p->gfree = x->schedlink;
    p->ngfree--;
    if (sched.ngfree < GFREE_GLOBAL_MAX) {
      x->schedlink = sched.gfree;
      sched.gfree = x;
      sched.ngfree++;
    } else {
      x->schedlink = drop;
      drop = x;
    }
  }
  lock_release(&sched.gflock);
  while (drop) {
    goro_g *x = drop;
    drop = x->schedlink;
    allgremove(x);
    if (x->cache && sched.cache_free) sched.cache_free(x->cache);
    free(x);
  }
}

int goro_spawn(goro_step_fn fn, void *ud, goro_g **out) {
  if (!fn) return GORO_EINVAL;
  if (!atomic_load_explicit(&sched.running, memory_order_acquire)) return GORO_ESTOPPED;
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
  g->id = atomic_fetch_add_explicit(&sched.goidgen, 1, memory_order_relaxed) + 1;
  /* relaxed: published to the M that runs it by the run queue's release. */
  atomic_store_explicit(&g->status, G_RUNNABLE, memory_order_relaxed);
  atomic_fetch_add_explicit(&sched.ngs, 1, memory_order_relaxed);
  active_add(1);
  STAT_ADD(c_spawned, 1);
  if (out) *out = g;
  if (p) runqput(p, g, true);
  else globrunq_add(g);
  p_leave(m, entered);
  wakep();
  return GORO_OK;
}

void goro_ready(goro_g *g) {
  /* acq_rel: publishes the waker's writes (the operation's outcome) to the
  ** G's next step; sees the park commit. */
  int old = atomic_exchange_explicit(&g->status, G_RUNNABLE, memory_order_acq_rel);
  if (old != G_WAITING) return; /* still RUNNING: its M requeues it */
  atomic_fetch_sub_explicit(&sched.nwaiting, 1, memory_order_relaxed);
  active_add(1);
  M *m = tls_m;
  P *p;
  bool entered = p_enter(m, &p);
  if (p) {
    runqput(p, g, true);
    /* g waits in runnext to run here as soon as the current G parks (a
    ** channel hand-over), and thieves leave a running P's runnext alone:
    ** waking an M for it only costs a futex wake. Wake one if the ring has
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

goro_g *goro_self(void) {
  M *m = tls_m;
  return m ? m->curg : NULL;
}
uint64_t goro_id(goro_g *g) { return g ? g->id : 0; }
void *goro_userdata(goro_g *g) { return g->ud; }
void **goro_cache(goro_g *g) { return &g->cache; }
void goro_set_cache_free(void (*f)(void *)) { sched.cache_free = f; }

static void (*stuck_hook)(int threads, int cap);
void goro_set_stuck_hook(void (*fn)(int threads, int cap)) { stuck_hook = fn; }

/* sysmon, each tick: a thread could not be started (the cap), runnable Gs
** wait while a P is idle and no M is idle: nobody can run them until a
** blocking call returns. If that lasts a second, tell the binding (once):
** the program would otherwise hang silently. */
void check_stuck(int64_t now) {
  static int64_t since; /* sysmon only */
  bool stuck = atomic_load_explicit(&sched.mfail, memory_order_relaxed) &&
               atomic_load_explicit(&sched.npidle, memory_order_relaxed) > 0;
  if (stuck) {
    bool work = atomic_load_explicit(&sched.runqsize, memory_order_relaxed) > 0;
    int procs = atomic_load_explicit(&sched.gomaxprocs, memory_order_relaxed);
    for (int i = 0; i < procs && !work; i++) work = runqlen(sched.allp[i]) > 0;
    lock_acquire(&sched.lock);
    stuck = work && sched.nmidle == 0 && sched.mcount >= sched.maxmcount;
    lock_release(&sched.lock);
  }
  if (!stuck) {
    since = 0;
    return;
  }
  if (since == 0) since = now;
  if (now - since < 1000000000) return;
  if (atomic_exchange_explicit(&sched.stuckreported, 1, memory_order_relaxed)) return;
  if (stuck_hook) stuck_hook(sched.mcount, sched.maxmcount);
}

int goro_nopark(int on) {
  goro_g *g = goro_self();
  if (!g) return 1;
  int old = g->nopark > 0;
  g->nopark = on ? 1 : 0;
  return old;
}

int64_t goro_numgoroutine(void) {
  return atomic_load_explicit(&sched.ngs, memory_order_relaxed);
}

/* ------------------------------------------------------------ liveness */

static selop *extwaiters; /* outside waits in progress: extlock */

static void ext_wake_all(void) {
  lock_acquire(&sched.extlock);
  for (selop *op = extwaiters; op; op = op->extnext) {
    /* release: the waiter re-reads nactive/interrupted after this. A
    ** registered op cannot go away while we hold extlock. */
    if (atomic_fetch_add_explicit(&op->word, 1, memory_order_release) & OP_SLEEPING)
      futex_wake(&op->word, 1);
  }
  lock_release(&sched.extlock);
}

void active_add(int64_t n) {
  /* acq_rel: a waiter that reads 0 sees every claim made before it. */
  if (atomic_fetch_add_explicit(&sched.nactive, n, memory_order_acq_rel) + n == 0)
    ext_wake_all();
}

void goro_interrupt(void) {
  atomic_store_explicit(&sched.interrupted, 1, memory_order_release);
  ext_wake_all();
}

void goro_interrupt_clear(void) {
  atomic_store_explicit(&sched.interrupted, 0, memory_order_release);
}

/* Outside thread: waits until op is claimed (returns GORO_OK: the claimer's
** outcome is in op), or claims it itself for a deadline, a deadlock, an
** interrupt. all_gone: goro_wait_all's predicate instead of a claim. */
static int ext_wait_pred(selop *op, int64_t deadline, bool all_gone, bool outside) {
  for (int i = 0; i < 2000; i++) { /* spin: a futex round trip costs ~50 us */
    if (atomic_load_explicit(&op->word, memory_order_acquire) & OP_READY) return GORO_OK;
    if (all_gone && atomic_load_explicit(&sched.ngs, memory_order_acquire) == 0) return GORO_OK;
    cpu_relax();
  }
  lock_acquire(&sched.extlock);
  op->extnext = extwaiters;
  extwaiters = op;
  lock_release(&sched.extlock);
  int rc = GORO_OK;
  for (;;) {
    uint32_t w = atomic_load_explicit(&op->word, memory_order_acquire);
    if (w & OP_READY) break;
    int why = 0;
    if (all_gone && atomic_load_explicit(&sched.ngs, memory_order_acquire) == 0) break;
    if (outside && atomic_load_explicit(&sched.interrupted, memory_order_acquire))
      why = GORO_EINTR;
    else if (outside && (deadline == GORO_FOREVER || all_gone) &&
             atomic_load_explicit(&sched.nactive, memory_order_acquire) == 0) {
      /* the last G may have finished between our read of ngs and this one
      ** (gdestroy lowers ngs, then nactive): the acquire read of nactive
      ** == 0 sees its ngs decrement, so read ngs again */
      if (all_gone && atomic_load_explicit(&sched.ngs, memory_order_acquire) == 0) break;
      why = GORO_EDEADLOCK;
    }
    else if (deadline > 0 && goro_now() >= deadline) why = GORO_ETIMEDOUT;
    if (why) {
      if (all_gone) { rc = why; break; }
      uint32_t z = 0;
      if (atomic_compare_exchange_strong_explicit(&op->done, &z, 1,
                                                  memory_order_acq_rel,
                                                  memory_order_acquire)) {
        op->fired = -1;
        op->status = why;
        if (op->counted) active_add(1); /* claimed by its own timeout */
        break;
      }
      /* claimed by a peer: its outcome arrives in a moment */
    }
    /* announce the sleep; a change of the word (a claim, a check) since
    ** we read it fails the CAS or the futex_wait: no lost wake-up */
    uint32_t ws = w | OP_SLEEPING;
    if (w != ws && !atomic_compare_exchange_strong_explicit(&op->word, &w, ws,
                                                            memory_order_acq_rel,
                                                            memory_order_acquire))
      continue;
    if (deadline > 0) {
      int64_t left = deadline - goro_now();
      if (left < 0) left = 0;
      struct timespec ts = ns_to_timespec(left);
      futex_wait(&op->word, ws, &ts);
    } else {
      futex_wait(&op->word, ws, NULL);
    }
  }
  lock_acquire(&sched.extlock);
  for (selop **pp = &extwaiters; *pp; pp = &(*pp)->extnext) {
    if (*pp == op) {
      *pp = op->extnext;
      break;
    }
  }
  lock_release(&sched.extlock);
  return rc;
}

int ext_wait(selop *op, int64_t deadline, bool outside) {
  return ext_wait_pred(op, deadline, false, outside);
}

int goro_wait_all(int64_t deadline) {
  if (goro_self()) return GORO_EINVAL;
  if (!atomic_load_explicit(&sched.running, memory_order_acquire)) return GORO_OK;
  selop op;
  memset(&op, 0, sizeof op);
  return ext_wait_pred(&op, deadline, true, true);
}

/* --------------------------------------------------------- scheduling */

/* Called by a spinning M that found work (Go's resetspinning). */
static void resetspinning(M *m) {
  m->spinning = false;
  if (atomic_fetch_sub_explicit(&sched.nmspinning, 1, memory_order_seq_cst) == 1)
    wakep();
}

static goro_g *stealwork(M *m, P *p) {
  int procs = atomic_load_explicit(&sched.gomaxprocs, memory_order_relaxed);
  for (int round = 0; round < 4; round++) {
    int start = (int)(fastrand(&m->rand) % (uint64_t)procs);
    for (int i = 0; i < procs; i++) {
      P *v = sched.allp[(start + i) % procs];
      if (v == p || atomic_load_explicit(&v->status, memory_order_relaxed) == P_IDLE)
        continue;
      goro_g *g = runqsteal(p, v, round == 3);
      if (g) {
        STAT_ADD(c_steals, 1);
        return g;
      }
    }
  }
  return NULL;
}

/* A P whose id is now >= GOMAXPROCS gives its Gs to the global queue. */
static void retirep(P *p) {
  goro_g *g;
  lock_acquire(&sched.lock);
  while ((g = runqget(p, NULL)) != NULL) globrunqput(g);
  lock_release(&sched.lock);
}

/* Go's findRunnable: blocks until there is a G for m (m->p may change), or
** returns NULL when the runtime stops. */
static goro_g *findrunnable(M *m, bool *inherit) {
top:
  if (atomic_load_explicit(&sched.stopping, memory_order_acquire)) return NULL;
  P *p = m->p;
  *inherit = false;
  int procs = atomic_load_explicit(&sched.gomaxprocs, memory_order_relaxed);
  if (p->id >= procs) {
    retirep(p);
    goto release;
  }
  if (p->schedtick % SCHED_FAIRNESS == 0 &&
      atomic_load_explicit(&sched.runqsize, memory_order_relaxed) > 0) {
    lock_acquire(&sched.lock);
    goro_g *g = globrunqget(p, 1);
    lock_release(&sched.lock);
    if (g) return g;
  }
  int64_t tn = timers_next();
  if (tn != INT64_MAX && tn <= goro_now()) timers_run(goro_now());
  goro_g *g = runqget(p, inherit);
  if (g) return g;
  if (atomic_load_explicit(&sched.runqsize, memory_order_relaxed) > 0) {
    lock_acquire(&sched.lock);
    g = globrunqget(p, 0);
    lock_release(&sched.lock);
    if (g) return g;
  }
  /* Steal, if spinning is allowed: at most half the busy Ps spin. */
  if (m->spinning ||
      2 * atomic_load_explicit(&sched.nmspinning, memory_order_relaxed) <
          procs - atomic_load_explicit(&sched.npidle, memory_order_relaxed)) {
    if (!m->spinning) {
      m->spinning = true;
      atomic_fetch_add_explicit(&sched.nmspinning, 1, memory_order_seq_cst);
    }
    g = stealwork(m, p);
    if (g) return g;
  }
release:
  lock_acquire(&sched.lock);
  if (p->id < procs && atomic_load_explicit(&sched.runqsize, memory_order_relaxed) > 0) {
    g = globrunqget(p, 0);
    lock_release(&sched.lock);
    return g;
  }
  m->p = NULL;
  pidleput(p);
  /* a retiring P leaves work behind: carry on with an idle P if any */
  P *np = atomic_load_explicit(&sched.runqsize, memory_order_relaxed) > 0 ? pidleget() : NULL;
  lock_release(&sched.lock);
  if (np) {
    acquirep(m, np);
    goto top;
  }
  bool wasspinning = m->spinning;
  if (m->spinning) {
    m->spinning = false;
    atomic_fetch_sub_explicit(&sched.nmspinning, 1, memory_order_seq_cst);
  }
  if (wasspinning) {
    /* seq_cst: see the header; pairs with the fence in wakep(). Go's
    ** findRunnable re-checks every run queue, the global one included. */
    SEQ_CST_FENCE();
    bool work = atomic_load_explicit(&sched.runqsize, memory_order_seq_cst) > 0;
    for (int i = 0; i < procs && !work; i++) work = !runqempty(sched.allp[i]);
    if (work) {
      lock_acquire(&sched.lock);
      np = pidleget();
      lock_release(&sched.lock);
      if (np) {
        acquirep(m, np);
        m->spinning = true;
        atomic_fetch_add_explicit(&sched.nmspinning, 1, memory_order_seq_cst);
        goto top;
      }
    }
  }
  stopm(m);
  if (!m->p) return NULL; /* woken to exit */
  goto top;
}

/* p: the M's P, NULL when sysmon retook it during the step. */
static void gdestroy(P *p, goro_g *g) {
  atomic_store_explicit(&g->status, G_DEAD, memory_order_relaxed);
  g->fn = NULL;
  g->ud = NULL;
  if (p) gfput(p, g);
  else gfput_global(g);
  if (atomic_fetch_sub_explicit(&sched.ngs, 1, memory_order_acq_rel) == 1)
    ext_wake_all(); /* goro_wait_all */
  active_add(-1);
}

static goro_step execute(M *m, goro_g *g, bool inherit) {
  P *p = m->p;
  /* Go skips the tick for a runnext G that inherits the time slice; we
  ** count every schedule, so a spawn chain through runnext cannot keep
  ** the 61-tick check of the global queue from coming round. */
  (void)inherit;
  p->schedtick++;
  atomic_store_explicit(&p->tick, p->schedtick, memory_order_relaxed);
  g->m = m;
  m->curg = g;
  atomic_store_explicit(&g->status, G_RUNNING, memory_order_relaxed);
  /* release: sysmon's acquire loads see a consistent M/G pair. */
  atomic_store_explicit(&p->curm, m, memory_order_release);
  atomic_store_explicit(&p->curg, g, memory_order_release);
  /* from here the P may be published and retaken (retake_running) */
  if (EAGER_PUBLISH) p_publish(m);
  atomic_signal_fence(memory_order_seq_cst);
  m->inuser = 1;
  goro_step r = g->fn(g, g->ud);
  /* a blocking call may have come back on another P, or sysmon may have
  ** retaken it (p NULL: the G goes on without one) */
  p_enter(m, &p);
  if (p) atomic_store_explicit(&p->curg, NULL, memory_order_release);
  m->curg = NULL;
  g->m = NULL;
  if (!p && atomic_load_explicit(&sched.stopping, memory_order_acquire)) {
    /* came back from a blocking call while the runtime stops */
    if (r == GORO_STEP_DONE) {
      atomic_store_explicit(&g->status, G_DEAD, memory_order_relaxed);
      atomic_fetch_sub_explicit(&sched.ngs, 1, memory_order_relaxed);
    }
    return r;
  }
  switch (r) {
  case GORO_STEP_DONE:
    gdestroy(p, g);
    break;
  case GORO_STEP_YIELDED:
    atomic_store_explicit(&g->status, G_RUNNABLE, memory_order_relaxed);
    globrunq_add(g);
    if (!p) wakep(); /* this M has no P to come back for it */
    break;
  case GORO_STEP_PARKED: {
    int exp = G_RUNNING;
    atomic_fetch_add_explicit(&sched.nwaiting, 1, memory_order_relaxed);
    /* acq_rel: pairs with goro_ready's exchange. */
    if (atomic_compare_exchange_strong_explicit(&g->status, &exp, G_WAITING,
                                                memory_order_acq_rel,
                                                memory_order_acquire)) {
      active_add(-1);
    } else {
      /* woken before we committed: run it again soon */
      atomic_fetch_sub_explicit(&sched.nwaiting, 1, memory_order_relaxed);
      if (p) {
        runqput(p, g, true);
      } else {
        globrunq_add(g);
        wakep();
      }
    }
    break;
  }
  }
  return r;
}

static void schedule(M *m) {
  for (;;) {
    bool inherit;
    goro_g *g = findrunnable(m, &inherit);
    if (!g) return;
    if (m->spinning) resetspinning(m);
    if (m->p->id >= atomic_load_explicit(&sched.gomaxprocs, memory_order_relaxed)) {
      /* GOMAXPROCS shrank while we looked (a steal with the old count):
      ** the G goes back, the P retires at the top of findrunnable */
      globrunq_add(g);
      continue;
    }
    goro_step r = execute(m, g, inherit);
    if (!m->p) {
      /* sysmon retook the P during the step: wait for another */
      if (atomic_load_explicit(&sched.stopping, memory_order_acquire)) return;
      stopm(m);
      if (!m->p) return;
      continue;
    }
    /* Ms back from a blocking call wait for a P with their G's C frames on
    ** their stacks (we cannot move them to a queue as Go does): give them
    ** this P when our G yielded, and every 61st tick. */
    if (atomic_load_explicit(&sched.nwaitp, memory_order_relaxed) > 0 &&
        (r == GORO_STEP_YIELDED || m->p->schedtick % SCHED_FAIRNESS == 0)) {
      lock_acquire(&sched.lock);
      if (sched.waitp) {
        P *p = m->p;
        m->p = NULL;
        pidleput(p); /* goes to the waiting M */
        lock_release(&sched.lock);
        stopm(m);
        if (!m->p) return;
      } else {
        lock_release(&sched.lock);
      }
    }
  }
}

static void *mstart(void *arg) {
  M *m = arg;
  tls_m = m;
  if (m->nextp) {
    acquirep(m, m->nextp);
    m->nextp = NULL;
  }
  if (m->p) schedule(m);
  /* exiting: tell goro_stop */
  lock_acquire(&sched.lock);
  m->exiting = true;
  lock_release(&sched.lock);
  return NULL;
}

/* ----------------------------------------------------- blocking calls */

void goro_enter_blocking(void) {
  M *m = tls_m;
  if (!m || !m->curg) return;
  P *p;
  bool entered = p_enter(m, &p);
  if (!p) { /* already without a P: exit_blocking finds one */
    p_leave(m, entered);
    return;
  }
  atomic_store_explicit(&m->curg->status, G_SYSCALL, memory_order_relaxed);
  atomic_store_explicit(&p->curg, NULL, memory_order_release);
  m->oldp = p;
  m->p = NULL;
  atomic_fetch_add_explicit(&p->tick, 1, memory_order_relaxed);
  STAT_ADD(c_handoffs, 1);
  p_leave(m, entered); /* m->p is NULL: nothing published */
  handoffp(p);
}

/* Go's entersyscall: the P stays with this M, marked P_SYSCALL; if the
** call lasts, sysmon retakes it (sysmon.c). Cheap when the call is short:
** exit_blocking takes the P back with one CAS. */
void goro_enter_syscall(void) {
  M *m = tls_m;
  if (!m || !m->curg) return;
  P *p;
  bool entered = p_enter(m, &p);
  if (!p) { /* already without a P: exit_blocking finds one */
    p_leave(m, entered);
    return;
  }
  atomic_store_explicit(&m->curg->status, G_SYSCALL, memory_order_relaxed);
  atomic_store_explicit(&p->curg, NULL, memory_order_release);
  m->oldp = p;
  m->p = NULL;
  atomic_fetch_add_explicit(&p->tick, 1, memory_order_relaxed);
  p_leave(m, entered); /* m->p is NULL: nothing published */
  /* release: everything this M did with the P is visible to a retaker. */
  atomic_store_explicit(&p->status, P_SYSCALL, memory_order_release);
}

/* sysmon: takes a P from an M that has been in a syscall too long. */
bool retake_syscall(P *p) {
  int st = P_SYSCALL;
  /* acquire: pairs with enter_syscall's release; P_RETAKEN holds it while
  ** handoffp decides (it sets the P's next status). */
  if (!atomic_compare_exchange_strong_explicit(&p->status, &st, P_RETAKEN,
                                               memory_order_acquire,
                                               memory_order_relaxed))
    return false;
  STAT_ADD(c_retake, 1);
  STAT_ADD(c_handoffs, 1);
  handoffp(p);
  return true;
}

void goro_exit_blocking(void) {
  M *m = tls_m;
  if (!m || !m->curg) return;
  P *cur;
  bool entered = p_enter(m, &cur);
  if (cur) { /* never left it */
    p_leave(m, entered);
    return;
  }
  if (m->oldp) { /* fast path: our P was not retaken (exitsyscallfast) */
    int st = P_SYSCALL;
    /* acquire: pairs with the release in enter_syscall (same thread) and
    ** orders against sysmon's CAS: exactly one of us wins the P. */
    if (atomic_compare_exchange_strong_explicit(&m->oldp->status, &st, P_RUNNING,
                                                memory_order_acquire,
                                                memory_order_relaxed)) {
      P *p = m->oldp;
      m->oldp = NULL;
      m->p = p;
      atomic_fetch_add_explicit(&p->tick, 1, memory_order_relaxed);
      atomic_store_explicit(&p->curm, m, memory_order_release);
      atomic_store_explicit(&p->curg, m->curg, memory_order_release);
      atomic_store_explicit(&m->curg->status, G_RUNNING, memory_order_relaxed);
      p_leave(m, entered);
      return;
    }
  }
  lock_acquire(&sched.lock);
  P *p = NULL;
  if (m->oldp && m->oldp->id < atomic_load_explicit(&sched.gomaxprocs, memory_order_relaxed))
    p = pidletake(m->oldp);
  if (!p) p = pidleget();
  if (!p) {
    note_clear(&m->park);
    m->nextp = NULL;
    m->link = sched.waitp;
    sched.waitp = m;
    atomic_fetch_add_explicit(&sched.nwaitp, 1, memory_order_relaxed);
    lock_release(&sched.lock);
    note_sleep(&m->park, SPIN_ROUNDS_M, -1);
    p = m->nextp;
    m->nextp = NULL;
  } else {
    lock_release(&sched.lock);
  }
  m->oldp = NULL;
  if (p) { /* NULL: the runtime stops; execute() sees it */
    acquirep(m, p);
    atomic_fetch_add_explicit(&p->tick, 1, memory_order_relaxed);
    atomic_store_explicit(&p->curm, m, memory_order_release);
    atomic_store_explicit(&p->curg, m->curg, memory_order_release);
  }
  atomic_store_explicit(&m->curg->status, G_RUNNING, memory_order_relaxed);
  p_leave(m, entered);
}

/* sysmon: the G on p has held it for too long outside the core (a C
** function that is not ours, or Lua code that cannot yield) while other
** work waits: take p from its M (Go's retake, for a G it cannot preempt)
** and hand it to another. The M finds out at its next core operation
** (p_enter) and goes on without a P; its G yields at the first chance (the
** preemption hook asks it to) and waits in the global queue. */
bool retake_running(P *p) {
  M *m = atomic_load_explicit(&p->curm, memory_order_acquire);
  if (!m) return false;
  P *exp = p;
  /* acquire: pairs with the M's release store of userp; we see all it did
  ** with p. Fails unless m holds exactly p outside the core right now. */
  if (!atomic_compare_exchange_strong_explicit(&m->userp, &exp, NULL,
                                               memory_order_acquire,
                                               memory_order_relaxed))
    return false;
  atomic_store_explicit(&p->curg, NULL, memory_order_relaxed);
  /* a preemption request made for that G is void now */
  atomic_fetch_add_explicit(&p->tick, 1, memory_order_relaxed);
  STAT_ADD(c_retake, 1);
  STAT_ADD(c_handoffs, 1);
  handoffp(p);
  return true;
}

/* ------------------------------------------------------ start / stop */

static P *newp(int id) {
  P *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->id = id;
  p->rand = 0x2545F4914F6CDD1DULL ^ (uint64_t)(id + 1) * 0x9E3779B97F4A7C15ULL;
  return p;
}

static int envint(const char *name, int dflt) {
  const char *s = getenv(name);
  if (!s || !*s) return dflt;
  char *end;
  long v = strtol(s, &end, 10);
  return (*end == 0 && v > 0 && v <= 1000000) ? (int)v : dflt;
}

int goro_start(int nprocs, goro_reap_fn reap) {
  if (atomic_load_explicit(&sched.running, memory_order_acquire)) return GORO_OK;
  if (nprocs <= 0) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    nprocs = envint("GOMAXPROCS", cpus > 0 ? (int)cpus : 1);
  }
  if (nprocs > GORO_MAXPROCS) nprocs = GORO_MAXPROCS;
  void (*cf)(void *) = sched.cache_free; /* may be set before start */
  static uint64_t generation;
  memset(&sched, 0, sizeof sched);
  sched.cache_free = cf;
  sched.gen = ++generation;
  sched.reap = reap;
  sched.maxmcount = envint("GORO_MAXTHREADS", 10000);
  atomic_store(&sched.gomaxprocs, nprocs);
  for (int i = 0; i < nprocs; i++) {
    P *np = newp(i);
    if (!np) return GORO_ENOMEM;
    sched.allp[i] = np;
  }
  sched.nallp = nprocs;
  lock_acquire(&sched.lock);
  for (int i = nprocs; i-- > 0;) pidleput(sched.allp[i]);
  lock_release(&sched.lock);
  timers_init();
  atomic_store_explicit(&sched.running, 1, memory_order_release);
  sysmon_start();
  return GORO_OK;
}

bool goro_running(void) {
  return atomic_load_explicit(&sched.running, memory_order_acquire) != 0;
}

int goro_gomaxprocs(int n) {
  int old = atomic_load_explicit(&sched.gomaxprocs, memory_order_relaxed);
  if (n == 0) return old;
  if (n < 0 || n > GORO_MAXPROCS) return GORO_EINVAL;
  if (!goro_running()) return GORO_ESTOPPED;
  lock_acquire(&sched.lock);
  for (int i = sched.nallp; i < n; i++) {
    P *np = newp(i);
    if (!np) {
      lock_release(&sched.lock);
      return GORO_ENOMEM;
    }
    atomic_store_explicit(&np->status, P_GONE, memory_order_relaxed);
    sched.allp[i] = np; /* seq_cst store: published whole */
    sched.nallp = i + 1;
  }
  atomic_store_explicit(&sched.gomaxprocs, n, memory_order_seq_cst);
  if (n < old) {
    /* Ps past n leave the idle list now; busy ones retire at their next
    ** schedule (findrunnable) and give their Gs to the global queue. */
    for (P **pp = &sched.pidle; *pp;) {
      if ((*pp)->id >= n) {
        P *x = *pp;
        *pp = x->link;
        atomic_fetch_sub_explicit(&sched.npidle, 1, memory_order_seq_cst);
        atomic_store_explicit(&x->status, P_GONE, memory_order_relaxed);
      } else {
        pp = &(*pp)->link;
      }
    }
  } else {
    for (int i = 0; i < n; i++)
      if (atomic_load_explicit(&sched.allp[i]->status, memory_order_relaxed) == P_GONE)
        pidleput(sched.allp[i]);
  }
  lock_release(&sched.lock);
  if (n > old) {
    for (int i = old; i < n; i++) wakep();
  }
  return old;
}

int goro_set_maxthreads(int n) {
  lock_acquire(&sched.lock);
  int old = sched.maxmcount;
  if (n > 0) sched.maxmcount = n;
  lock_release(&sched.lock);
  return old;
}

int goro_stop(int64_t timeout_ns) {
  if (!goro_running()) return GORO_OK;
  if (goro_self()) return GORO_EINVAL;
  atomic_store_explicit(&sched.stopping, 1, memory_order_release);
  /* no spawn from now on (a finalizer run while states close may try) */
  atomic_store_explicit(&sched.running, 0, memory_order_release);
  timers_fini();
  int64_t deadline = goro_now() + timeout_ns;
  bool stuck = false;
  /* Wake every idle M until all have left their loop. */
  for (;;) {
    lock_acquire(&sched.lock);
    M *m;
    while ((m = mget()) != NULL) note_wakeup(&m->park);
    while ((m = sched.waitp) != NULL) {
      sched.waitp = m->link;
      note_wakeup(&m->park);
    }
    bool all = true;
    for (M *x = sched.allm; x; x = x->alllink) all = all && x->exiting;
    lock_release(&sched.lock);
    if (all) break;
    if (goro_now() > deadline) {
      stuck = true;
      break;
    }
    usleep(200);
  }
  /* sysmon ran until now: it preempts Gs still running a step, so they
  ** come back to the scheduler and their Ms can leave */
  sysmon_stop();
  if (stuck) {
    atomic_store_explicit(&sched.running, 0, memory_order_release);
    return GORO_ETIMEDOUT; /* a step is still running: leave memory alone */
  }
  for (M *m = sched.allm, *next; m; m = next) {
    next = m->alllink;
    pthread_join(m->thread, NULL);
    free(m);
  }
  sched.allm = NULL;
  for (size_t i = 0; i < sched.nallg; i++) {
    goro_g *g = sched.allg[i];
    if (atomic_load_explicit(&g->status, memory_order_relaxed) != G_DEAD) {
      select_cancel_all(g);
      if (sched.reap) sched.reap(g, g->ud);
    }
    if (g->cache && sched.cache_free) sched.cache_free(g->cache);
    free(g->sgheap);
    free(g);
  }
  free(sched.allg);
  for (int i = 0; i < sched.nallp; i++) free(sched.allp[i]);
  atomic_store_explicit(&sched.running, 0, memory_order_release);
  void (*cf)(void *) = sched.cache_free;
  memset(&sched, 0, sizeof sched);
  sched.cache_free = cf;
  return GORO_OK;
}

/* ------------------------------------------------------------ stats */

void goro_get_stats(goro_stats *st) {
  memset(st, 0, sizeof *st);
  st->gomaxprocs = atomic_load_explicit(&sched.gomaxprocs, memory_order_relaxed);
#define RD(f) atomic_load_explicit(&sched.f, memory_order_relaxed)
  st->spawned = RD(c_spawned);
  st->goroutines = RD(ngs);
  st->waiting = RD(nwaiting);
  st->steals = RD(c_steals);
  st->globalgets = RD(c_globalgets);
  st->mstarts = RD(c_mstarts);
  st->mparks = RD(c_mparks);
  st->handoffs = RD(c_handoffs);
  st->chanops = RD(c_chanops);
  st->preemptions = RD(c_preempt);
  st->retakes = RD(c_retake);
  st->spinning = RD(nmspinning);
  st->idleprocs = RD(npidle);
  st->runnable = RD(runqsize);
#undef RD
  for (int i = 0; i < sched.nallp; i++) {
    if (i < st->gomaxprocs) st->runnable += runqlen(sched.allp[i]);
    st->chanops += atomic_load_explicit(&sched.allp[i]->chanops, memory_order_relaxed);
  }
  lock_acquire(&sched.lock);
  st->threads = sched.mcount;
  st->idlethreads = sched.nmidle;
  lock_release(&sched.lock);
}

int goro_runq_lens(int *lens, int n) {
  int procs = atomic_load_explicit(&sched.gomaxprocs, memory_order_relaxed);
  for (int i = 0; i < n && i < procs && i < sched.nallp; i++)
    lens[i] = runqlen(sched.allp[i]);
  return procs;
}
