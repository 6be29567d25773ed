/*
** runtime.c — the runtime's life: start, stop, GOMAXPROCS, the thread cap,
** stats; the clock and the error sentences.
**
** goro_start builds the Ps, puts them on the idle list and starts the timer
** thread and sysmon; Ms are started on demand by wakep. goro_gomaxprocs
** grows allp (never shrinks it: a P past GOMAXPROCS is GONE and retires at
** its next schedule, see syscall.c). goro_stop sets `stopping`, wakes every
** idle or waiting M until all have left their loops, stops sysmon, then
** joins the Ms and frees everything (g.c reaps the Gs still alive).
*/
#include <stdlib.h>
#include <string.h>

#include "port.h"
#include "sched.h"

rt_t rt;
counters_t counters;

int64_t goro_now(void) { return port_clock_ns() + 1; }

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

/* Every piece of shared state back to zero; the binding's cache_free
** survives (it may be set before a start). */
static void reset_all(void) {
  void (*cf)(void *) = rt.cache_free;
  memset(&sched, 0, sizeof sched);
  memset(&rt, 0, sizeof rt);
  memset(&counters, 0, sizeof counters);
  rt.cache_free = cf;
  gs_reset();
  park_reset();
}

int goro_start(int nprocs, goro_reap_fn reap) {
  /* acquire: pairs with the release store below. */
  if (atomic_load_explicit(&rt.running, memory_order_acquire)) return GORO_OK;
  if (nprocs <= 0) {
    nprocs = envint("GOMAXPROCS", port_online_cpus());
  }
  if (nprocs > GORO_MAXPROCS) nprocs = GORO_MAXPROCS;
  static uint64_t generation;
  reset_all();
  rt.gen = ++generation;
  rt.reap = reap;
  sched.maxmcount = envint("GORO_MAXTHREADS", 10000);
  atomic_store_explicit(&rt.gomaxprocs, nprocs, memory_order_relaxed); /* published by `running` */
  for (int i = 0; i < nprocs; i++) {
    P *np = newp(i);
    if (!np) return GORO_ENOMEM;
    rt.allp[i] = np;
  }
  rt.nallp = nprocs;
  lock_acquire(&sched.lock);
  for (int i = nprocs; i-- > 0;) pidleput(rt.allp[i]);
  lock_release(&sched.lock);
  timers_init();
  /* release: every M, spawner and waiter that sees it running sees the
  ** state set up above. */
  atomic_store_explicit(&rt.running, 1, memory_order_release);
  sysmon_start();
  return GORO_OK;
}

bool goro_running(void) {
  /* acquire: as in goro_start. */
  return atomic_load_explicit(&rt.running, memory_order_acquire) != 0;
}

int goro_gomaxprocs(int n) {
  int old = atomic_load_explicit(&rt.gomaxprocs, memory_order_relaxed);
  if (n == 0) return old;
  if (n < 0 || n > GORO_MAXPROCS) return GORO_EINVAL;
  if (!goro_running()) return GORO_ESTOPPED;
  lock_acquire(&sched.lock);
  for (int i = rt.nallp; i < n; i++) {
    P *np = newp(i);
    if (!np) {
      lock_release(&sched.lock);
      return GORO_ENOMEM;
    }
    atomic_store_explicit(&np->status, P_GONE, memory_order_relaxed);
    rt.allp[i] = np; /* seq_cst store: published whole to lock-free readers */
    rt.nallp = i + 1;
  }
  /* seq_cst: the new Ps (allp) are visible to whoever reads the new
  ** count (stealwork, sysmon index allp by it). */
  atomic_store_explicit(&rt.gomaxprocs, n, memory_order_seq_cst);
  if (n < old) {
    /* Ps past n leave the idle list now; busy ones retire at their next
    ** schedule (findrunnable) and give their Gs to the global queue. */
    for (P **pp = &sched.pidle; *pp;) {
      if ((*pp)->id >= n) {
        P *x = *pp;
        *pp = x->link;
        /* seq_cst: as in pidleput. */
        atomic_fetch_sub_explicit(&sched.npidle, 1, memory_order_seq_cst);
        atomic_store_explicit(&x->status, P_GONE, memory_order_relaxed);
      } else {
        pp = &(*pp)->link;
      }
    }
  } else {
    for (int i = 0; i < n; i++)
      if (atomic_load_explicit(&rt.allp[i]->status, memory_order_relaxed) == P_GONE)
        pidleput(rt.allp[i]);
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

/* Whether some P runs a step (not one in a syscall): goro_stop's wait. */
static bool step_running(void) {
  for (int i = 0; i < rt.nallp; i++)
    if (atomic_load_explicit(&rt.allp[i]->status, memory_order_relaxed) == P_RUNNING &&
        atomic_load_explicit(&rt.allp[i]->curg, memory_order_relaxed) != NULL)
      return true;
  return false;
}

bool goro_under_valgrind(void) {
  const char *pre = getenv("LD_PRELOAD");
  return getenv("GORO_VALGRIND") != NULL || (pre && strstr(pre, "vgpreload"));
}

int goro_stop(int64_t timeout_ns) {
  if (!goro_running()) return GORO_OK;
  if (goro_self()) return GORO_EINVAL;
  /* release: pairs with the Ms' acquire loads (findrunnable, execute). */
  atomic_store_explicit(&rt.stopping, 1, memory_order_release);
  /* no spawn from now on (a finalizer run while states close may try);
  ** release: as in goro_start. */
  atomic_store_explicit(&rt.running, 0, memory_order_release);
  timers_fini();
  int64_t deadline = goro_now() + timeout_ns;
  bool stuck = false, extended = false;
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
      /* a step still running on a P (a Lua loop sysmon preempts, late on a
      ** loaded machine, later under valgrind) gets four times as long
      ** again (forty); one blocked in a call (its P in a syscall, or handed
      ** off) does not */
      if (!extended && step_running()) {
        extended = true;
        deadline += (goro_under_valgrind() ? 40 : 4) * timeout_ns;
        continue;
      }
      stuck = true;
      break;
    }
    port_sleep_us(200);
  }
  /* sysmon ran until now: it preempts Gs still running a step, so they
  ** come back to the scheduler and their Ms can leave */
  sysmon_stop();
  if (stuck) return GORO_ETIMEDOUT; /* a step is still running: leave memory alone */
  for (M *m = sched.allm, *next; m; m = next) {
    next = m->alllink;
    pthread_join(m->thread, NULL);
    free(m);
  }
  sched.allm = NULL;
  gs_free_all();
  for (int i = 0; i < rt.nallp; i++) free(rt.allp[i]);
  reset_all();
  return GORO_OK;
}

/* ------------------------------------------------------------ stats */

void goro_get_stats(goro_stats *st) {
  memset(st, 0, sizeof *st);
  st->gomaxprocs = atomic_load_explicit(&rt.gomaxprocs, memory_order_relaxed);
#define RD(x) atomic_load_explicit(&x, memory_order_relaxed)
  st->spawned = RD(counters.spawned);
  st->goroutines = RD(live.ngs);
  st->waiting = RD(live.nwaiting);
  st->steals = RD(counters.steals);
  st->globalgets = RD(counters.globalgets);
  st->mstarts = RD(counters.mstarts);
  st->mparks = RD(counters.mparks);
  st->handoffs = RD(counters.handoffs);
  st->chanops = RD(counters.chanops);
  st->preemptions = RD(counters.preempt);
  st->retakes = RD(counters.retake);
  st->spinning = RD(sched.nmspinning);
  st->idleprocs = RD(sched.npidle);
  st->runnable = RD(sched.runqsize);
#undef RD
  for (int i = 0; i < rt.nallp; i++) {
    if (i < st->gomaxprocs) st->runnable += runqlen(rt.allp[i]);
    st->chanops += atomic_load_explicit(&rt.allp[i]->chanops, memory_order_relaxed);
  }
  lock_acquire(&sched.lock);
  st->threads = sched.mcount;
  st->idlethreads = sched.nmidle;
  lock_release(&sched.lock);
}

int goro_runq_lens(int *lens, int n) {
  int procs = atomic_load_explicit(&rt.gomaxprocs, memory_order_relaxed);
  for (int i = 0; i < n && i < procs && i < rt.nallp; i++)
    lens[i] = runqlen(rt.allp[i]);
  return procs;
}
