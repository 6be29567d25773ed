/*
** sched.c — the schedule loop, the idle P and M lists (Go's proc.go, in
** small).
**
** Actors
**   G  a goroutine: step callback + user data + the operation it waits on
**      (g.c: its states and life).
**   M  a pthread running schedule(): find a G, call its step, repeat.
**   P  the right to run Gs, with a local run queue (runq.c). An M needs a P
**      to run Gs; there are GOMAXPROCS Ps. Who may move a P between its
**      states (idle, running, in a syscall, retaken, gone) is in syscall.c.
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
** Ms are never freed while the runtime runs (goro_stop joins and frees
** them), so a stale M pointer read by sysmon stays valid.
*/
#include <stdio.h>
#include <stdlib.h>

#include "port.h"
#include "sched.h"

sched_t sched;
#if defined(__SANITIZE_THREAD__)
_Atomic int sched_fence_word;
#endif
_Thread_local M *tls_m;

static void *mstart(void *arg);

/* ------------------------------------------------------------------ Ps */

/* sched.lock held. A P goes first to an M waiting to come back from a
** blocking call, else to the idle list. */
void pidleput(P *p) {
  p->m = NULL;
  if (p->id >= atomic_load_explicit(&rt.gomaxprocs, memory_order_relaxed)) {
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

/* sched.lock held: takes this particular P if idle. */
P *pidletake(P *want) {
  for (P **pp = &sched.pidle; *pp; pp = &(*pp)->link) {
    if (*pp == want) {
      *pp = want->link;
      /* seq_cst: as in pidleput (the count is wakep's hint). */
      atomic_fetch_sub_explicit(&sched.npidle, 1, memory_order_seq_cst);
      atomic_store_explicit(&want->status, P_RUNNING, memory_order_relaxed);
      return want;
    }
  }
  return NULL;
}

/* sched.lock held: any idle P. */
P *pidleget(void) { return sched.pidle ? pidletake(sched.pidle) : NULL; }

/* m takes p, which it was given (idle list, handoff, nextp). */
void acquirep(M *m, P *p) {
  m->p = p;
  p->m = m;
  atomic_store_explicit(&p->status, P_RUNNING, memory_order_relaxed);
}

/* ------------------------------------------------------------------ Ms */

/* sched.lock held. */
M *mget(void) {
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
  STAT_ADD(mstarts, 1);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 1 << 20);
  port_sigmask om;
  port_nosigint_begin(&om);
  int rc = pthread_create(&m->thread, &attr, mstart, m);
  port_nosigint_end(&om);
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
  /* seq_cst: pairs with wakep's CAS, as above. */
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
  STAT_ADD(mparks, 1);
  note_sleep(&m->park, SPIN_ROUNDS_M, -1);
  if (m->nextp) {
    acquirep(m, m->nextp);
    m->nextp = NULL;
  }
}

/* Go's handoffp: p's owner gives it away (its M goes into a blocking call,
** or sysmon retook it): to a new M if there is work or nobody spins, else
** to the idle list. */
void handoffp(P *p) {
  if (!runqempty(p) ||
      atomic_load_explicit(&sched.runqsize, memory_order_relaxed) > 0) {
    startm(p, false);
    return;
  }
  int z = 0;
  if (atomic_load_explicit(&sched.nmspinning, memory_order_relaxed) +
              atomic_load_explicit(&sched.npidle, memory_order_relaxed) == 0 &&
      /* seq_cst: as wakep's CAS; startm gives the count back on failure. */
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

/* ------------------------------------------------------- the loop */

/* Called by a spinning M that found work (Go's resetspinning). */
static void resetspinning(M *m) {
  m->spinning = false;
  /* seq_cst: pairs with wakep's fence and CAS; the last spinner out wakes
  ** another, so a G made runnable while we spun is not left behind. */
  if (atomic_fetch_sub_explicit(&sched.nmspinning, 1, memory_order_seq_cst) == 1)
    wakep();
}

static goro_g *stealwork(M *m, P *p) {
  int procs = atomic_load_explicit(&rt.gomaxprocs, memory_order_relaxed);
  for (int round = 0; round < 4; round++) {
    int start = (int)(fastrand(&m->rand) % (uint64_t)procs);
    for (int i = 0; i < procs; i++) {
      P *v = rt.allp[(start + i) % procs];
      if (v == p || atomic_load_explicit(&v->status, memory_order_relaxed) == P_IDLE)
        continue;
      goro_g *g = runqsteal(p, v, round == 3);
      if (g) {
        STAT_ADD(steals, 1);
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
  while ((g = runqget(p)) != NULL) globrunqput(g);
  lock_release(&sched.lock);
}

/* Go's findRunnable: blocks until there is a G for m (m->p may change), or
** returns NULL when the runtime stops. */
static goro_g *findrunnable(M *m) {
top:
  /* acquire: pairs with goro_stop's release store. */
  if (atomic_load_explicit(&rt.stopping, memory_order_acquire)) return NULL;
  P *p = m->p;
  int procs = atomic_load_explicit(&rt.gomaxprocs, memory_order_relaxed);
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
  goro_g *g = runqget(p);
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
      /* seq_cst: wakep reads the count after its fence (see the header). */
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
  if (m->spinning) {
    m->spinning = false;
    /* seq_cst: the drop is ordered before the re-check below. */
    atomic_fetch_sub_explicit(&sched.nmspinning, 1, memory_order_seq_cst);
    /* seq_cst: see the header; pairs with the fence in wakep(). Go's
    ** findRunnable re-checks every run queue, the global one included. */
    SEQ_CST_FENCE();
    bool work = atomic_load_explicit(&sched.runqsize, memory_order_seq_cst) > 0;
    for (int i = 0; i < procs && !work; i++) work = !runqempty(rt.allp[i]);
    if (work) {
      lock_acquire(&sched.lock);
      np = pidleget();
      lock_release(&sched.lock);
      if (np) {
        acquirep(m, np);
        m->spinning = true;
        /* seq_cst: as when we started spinning above. */
        atomic_fetch_add_explicit(&sched.nmspinning, 1, memory_order_seq_cst);
        goto top;
      }
    }
  }
  stopm(m);
  if (!m->p) return NULL; /* woken to exit */
  goto top;
}

/* The main thread's wait (park.c), holding m->p: a G of m's own P (those
** main readied: its hand-over partners), after expired timers; NULL when
** there is none. Not the global queue nor a steal: a G run on main's
** thread that blocks it (go.blocking, a wait in a C call) holds main up
** until it returns, so main runs only the Gs it woke itself. */
goro_g *findrunnable_now(M *m) {
  int64_t tn = timers_next();
  if (tn != INT64_MAX && tn <= goro_now()) timers_run(goro_now());
  return runqget(m->p);
}

/* Runs one step of g on m, then files g by the step's answer. */
goro_step execute(M *m, goro_g *g) {
  P *p = m->p;
  p->schedtick++; /* every schedule counts, runnext Gs too (runqget) */
  atomic_store_explicit(&p->tick, p->schedtick, memory_order_relaxed);
  g->m = m;
  m->curg = g;
  atomic_store_explicit(&g->status, G_RUNNING, memory_order_relaxed);
  /* release: sysmon's acquire loads see a consistent M/G pair. */
  atomic_store_explicit(&p->curm, m, memory_order_release);
  atomic_store_explicit(&p->curg, g, memory_order_release);
  TRACE_RUN_BEGIN(m, p, g);
  /* from here the P may be published and retaken (retake_running) */
  if (EAGER_PUBLISH) p_publish(m);
  /* seq_cst signal fence: the handler (same thread) sees the P set up
  ** before it sees inuser. */
  atomic_signal_fence(memory_order_seq_cst);
  m->inuser = 1;
  goro_step r = g->fn(g, g->ud);
  /* a blocking call may have come back on another P, or sysmon may have
  ** retaken it (p NULL: the G goes on without one) */
  p_enter(m, &p);
  TRACE_RUN_END(m, p, g, r);
  /* release: as the curg store above (sysmon sees the P free). */
  if (p) atomic_store_explicit(&p->curg, NULL, memory_order_release);
  m->curg = NULL;
  g->m = NULL;
  /* acquire: as in findrunnable. */
  if (!p && atomic_load_explicit(&rt.stopping, memory_order_acquire)) {
    /* came back from a blocking call while the runtime stops */
    if (r == GORO_STEP_DONE) {
      atomic_store_explicit(&g->status, G_DEAD, memory_order_relaxed);
      atomic_fetch_sub_explicit(&live.ngs, 1, memory_order_relaxed);
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
    atomic_fetch_add_explicit(&live.nwaiting, 1, memory_order_relaxed);
    /* acq_rel: pairs with goready's exchange (release: the step's writes
    ** reach the waker; acquire: the waker's outcome reaches us if we lose). */
    if (atomic_compare_exchange_strong_explicit(&g->status, &exp, G_WAITING,
                                                memory_order_acq_rel,
                                                memory_order_acquire)) {
      active_add(-1);
    } else {
      /* woken before we committed: run it again soon */
      atomic_fetch_sub_explicit(&live.nwaiting, 1, memory_order_relaxed);
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
    goro_g *g = findrunnable(m);
    if (!g) return;
    if (m->spinning) resetspinning(m);
    if (m->p->id >= atomic_load_explicit(&rt.gomaxprocs, memory_order_relaxed)) {
      /* GOMAXPROCS shrank while we looked (a steal with the old count):
      ** the G goes back, the P retires at the top of findrunnable */
      globrunq_add(g);
      continue;
    }
    goro_step r = execute(m, g);
    if (!m->p) {
      /* sysmon retook the P during the step: wait for another */
      /* acquire: as in findrunnable. */
      if (atomic_load_explicit(&rt.stopping, memory_order_acquire)) return;
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
  /* relaxed: a hint for sysmon's preemption signal (sysmon.c) */
  atomic_store_explicit(&m->tid, port_thread_id(), memory_order_relaxed);
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
