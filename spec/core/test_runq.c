/*
** test_runq.c — scheduling: every spawned G runs exactly once (GOMAXPROCS 1
** and 8, spawned from outside and from Gs), goro_start after goro_stop, the
** 61-tick fairness of the global run queue, work stealing, GOMAXPROCS as a
** bound on parallelism, the reap and cache-free callbacks of goro_stop.
*/
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "goro.h"
#include "gop.h"
#include "tap.h"

#define NFLAT 20000     /* Gs spawned from the outside thread */
#define NTREE 20000     /* Gs spawned as a binary tree from Gs */
#define NYIELD 200      /* Gs that yield YIELDS times each */
#define YIELDS 50
#define CHAIN_CAP 2000000 /* steps after which a starved chain gives up */
#define NCPU 100        /* CPU-bound Gs in the stealing test */
#define CPU_NS MS(2)    /* how long each of them spins */

/* ------------------------------------------------ every G runs exactly once */

static atomic_int flat[NFLAT];
static atomic_int tree[NTREE];
static atomic_int steps[NYIELD];
static atomic_int spawn_errors;

static goro_step flat_step(goro_g *g, void *ud) {
  atomic_fetch_add((atomic_int *)ud, 1);
  return GORO_STEP_DONE;
}

static goro_step tree_step(goro_g *g, void *ud) {
  atomic_int *me = ud;
  size_t i = (size_t)(me - tree);
  atomic_fetch_add(me, 1);
  for (size_t c = 2 * i + 1; c <= 2 * i + 2 && c < NTREE; c++)
    if (spawn(tree_step, &tree[c]) != GORO_OK) atomic_fetch_add(&spawn_errors, 1);
  return GORO_STEP_DONE;
}

static goro_step yield_step(goro_g *g, void *ud) {
  int n = atomic_fetch_add((atomic_int *)ud, 1) + 1;
  return n <= YIELDS ? GORO_STEP_YIELDED : GORO_STEP_DONE;
}

static void run_once_tests(int nprocs) {
  int rc = goro_start(nprocs, NULL);
  ok(rc == GORO_OK && goro_running(), "P=%d: goro_start succeeds (after a stop too)", nprocs);
  ok(goro_gomaxprocs(0) == nprocs, "P=%d: gomaxprocs reads %d", nprocs, goro_gomaxprocs(0));

  goro_stats st0;
  goro_get_stats(&st0);

  for (int i = 0; i < NFLAT; i++) atomic_store(&flat[i], 0);
  int errs = 0;
  for (int i = 0; i < NFLAT; i++)
    if (spawn(flat_step, &flat[i]) != GORO_OK) errs++;
  ok(errs == 0, "P=%d: %d spawns from the outside thread succeed", nprocs, NFLAT);
  rc = settle();
  ok(rc == GORO_OK, "P=%d: wait_all after outside spawns is GORO_OK (%d)", nprocs, rc);
  int bad = 0;
  for (int i = 0; i < NFLAT; i++)
    if (atomic_load(&flat[i]) != 1) bad++;
  ok(bad == 0, "P=%d: each of %d outside-spawned Gs ran exactly once (%d wrong)", nprocs, NFLAT, bad);

  for (int i = 0; i < NTREE; i++) atomic_store(&tree[i], 0);
  atomic_store(&spawn_errors, 0);
  rc = spawn(tree_step, &tree[0]);
  rc = rc == GORO_OK ? settle() : rc;
  bad = 0;
  for (int i = 0; i < NTREE; i++)
    if (atomic_load(&tree[i]) != 1) bad++;
  ok(rc == GORO_OK && bad == 0 && atomic_load(&spawn_errors) == 0,
     "P=%d: a tree of %d Gs spawned from Gs each ran exactly once (rc %d, %d wrong)",
     nprocs, NTREE, rc, bad);

  for (int i = 0; i < NYIELD; i++) atomic_store(&steps[i], 0);
  for (int i = 0; i < NYIELD; i++) spawn(yield_step, &steps[i]);
  rc = settle();
  bad = 0;
  for (int i = 0; i < NYIELD; i++)
    if (atomic_load(&steps[i]) != YIELDS + 1) bad++;
  ok(rc == GORO_OK && bad == 0,
     "P=%d: Gs that yield %d times are stepped exactly %d times (%d wrong)", nprocs, YIELDS,
     YIELDS + 1, bad);

  ok(goro_numgoroutine() == 0, "P=%d: numgoroutine is 0 when all finished", nprocs);
  goro_stats st;
  goro_get_stats(&st);
  int64_t expect = NFLAT + NTREE + NYIELD;
  ok(st.spawned - st0.spawned == expect && st.goroutines == 0,
     "P=%d: stats count %lld spawned (expected %lld), %lld alive", nprocs,
     (long long)(st.spawned - st0.spawned), (long long)expect, (long long)st.goroutines);

  rc = goro_stop(MS(5000));
  ok(rc == GORO_OK && !goro_running(), "P=%d: goro_stop returns GORO_OK (%d)", nprocs, rc);
}

/* ------------------------------------------------ goro_self & co. in a G */

typedef struct {
  goro_g *self, *arg;
  void *userdata;
  uint64_t id;
  char elem;
  bool okv;
  int parked;
} ident;

#define NIDENT 100
static ident idents[NIDENT];
static goro_g *ident_out[NIDENT];
static goro_chan *ident_ch;

static goro_step ident_step(goro_g *g, void *ud) {
  ident *d = ud;
  if (d->parked) {
    int idx;
    bool okk;
    goro_select_finish(&idx, &okk);
    return GORO_STEP_DONE;
  }
  d->self = goro_self();
  d->arg = g;
  d->userdata = goro_userdata(g);
  d->id = goro_id(g);
  /* stay alive until the channel is closed, so all ids are live at once */
  int rc = goro_chan_recv(ident_ch, &d->elem, &d->okv, GORO_FOREVER);
  if (rc == GORO_EPARK) {
    d->parked = 1;
    return GORO_STEP_PARKED;
  }
  return GORO_STEP_DONE;
}

static void identity_tests(void) {
  goro_start(2, NULL);
  ok(goro_self() == NULL, "goro_self is NULL on an outside thread");
  ident_ch = goro_chan_new(1, 0, NULL);
  memset(idents, 0, sizeof idents);
  for (int i = 0; i < NIDENT; i++) goro_spawn(ident_step, &idents[i], &ident_out[i]);
  /* every G parks on ident_ch: then wait_all reports the deadlock */
  int rc = settle();
  ok(rc == GORO_EDEADLOCK, "wait_all sees %d Gs parked forever (%d)", NIDENT, rc);
  int bad = 0, dup = 0;
  for (int i = 0; i < NIDENT; i++) {
    ident *d = &idents[i];
    if (d->self != d->arg || d->arg != ident_out[i] || d->userdata != d || d->id == 0) bad++;
    for (int j = 0; j < i; j++)
      if (idents[j].id == d->id) dup++;
  }
  ok(bad == 0, "in a step, goro_self() is the step's g, spawn's *out, userdata is ud");
  ok(dup == 0, "live Gs have distinct nonzero ids");
  goro_chan_close(ident_ch);
  rc = settle();
  ok(rc == GORO_OK, "closing the channel lets them all finish (%d)", rc);
  goro_chan_unref(ident_ch);
  goro_stop(MS(5000));
}

/* ------------------------------------------------ 61-tick fairness */

static atomic_int global_ran, chain_capped;
static atomic_long chain_steps, chain_at_global, chain_at_spawn;
static goro_chan *started;

static goro_step global_step(goro_g *g, void *ud) {
  atomic_store(&chain_at_global, atomic_load(&chain_steps));
  atomic_store(&global_ran, 1);
  return GORO_STEP_DONE;
}

static void chain_signal_start(long n) {
  if (n == 1) {
    char x = 1;
    goro_chan_send(started, &x, GORO_NOW); /* cap 1: never blocks */
  }
}

/* each step spawns its successor (runnext of this P) and finishes */
static goro_step chain_step(goro_g *g, void *ud) {
  long n = atomic_fetch_add(&chain_steps, 1) + 1;
  chain_signal_start(n);
  if (atomic_load(&global_ran)) return GORO_STEP_DONE;
  if (n >= CHAIN_CAP) {
    atomic_store(&chain_capped, 1);
    return GORO_STEP_DONE;
  }
  spawn(chain_step, NULL);
  return GORO_STEP_DONE;
}

/* one G that yields over and over */
static goro_step yielder_step(goro_g *g, void *ud) {
  long n = atomic_fetch_add(&chain_steps, 1) + 1;
  chain_signal_start(n);
  if (atomic_load(&global_ran)) return GORO_STEP_DONE;
  if (n >= CHAIN_CAP) {
    atomic_store(&chain_capped, 1);
    return GORO_STEP_DONE;
  }
  return GORO_STEP_YIELDED;
}

static void fairness_test(goro_step_fn local, const char *what) {
  goro_start(1, NULL);
  atomic_store(&global_ran, 0);
  atomic_store(&chain_capped, 0);
  atomic_store(&chain_steps, 0);
  atomic_store(&chain_at_global, 0);
  started = goro_chan_new(1, 1, NULL);
  spawn(local, NULL);
  char x = 0;
  bool okk = false;
  int rc = goro_chan_recv(started, &x, &okk, goro_now() + MS(10000));
  ok(rc == GORO_OK && okk, "fairness (%s): the local G started (%d)", what, rc);
  atomic_store(&chain_at_spawn, atomic_load(&chain_steps));
  spawn(global_step, NULL); /* from outside: the global run queue */
  rc = settle();
  ok(rc == GORO_OK, "fairness (%s): everything finishes (%d)", what, rc);
  ok(atomic_load(&global_ran) && !atomic_load(&chain_capped),
     "fairness (%s), GOMAXPROCS=1: a G in the global queue runs while the local one "
     "keeps going (ran after %ld more local steps; cap %d)",
     what, atomic_load(&chain_at_global) - atomic_load(&chain_at_spawn), CHAIN_CAP);
  goro_chan_unref(started);
  goro_stop(MS(5000));
}

/* ------------------------------------------------ stealing & parallelism */

typedef struct {
  pthread_t tid;
} cpu_rec;

static cpu_rec recs[NCPU];
static atomic_int running, max_running;

static goro_step cpu_step(goro_g *g, void *ud) {
  cpu_rec *r = ud;
  int now = atomic_fetch_add(&running, 1) + 1;
  int m = atomic_load(&max_running);
  while (now > m && !atomic_compare_exchange_weak(&max_running, &m, now)) {
  }
  r->tid = pthread_self();
  int64_t end = goro_now() + CPU_NS;
  while (goro_now() < end) {
  }
  atomic_fetch_sub(&running, 1);
  return GORO_STEP_DONE;
}

static goro_step spawner_step(goro_g *g, void *ud) {
  for (int i = 0; i < NCPU; i++) spawn(cpu_step, &recs[i]);
  return GORO_STEP_DONE;
}

static int distinct_threads(void) {
  int n = 0;
  for (int i = 0; i < NCPU; i++) {
    int seen = 0;
    for (int j = 0; j < i && !seen; j++) seen = pthread_equal(recs[i].tid, recs[j].tid);
    n += !seen;
  }
  return n;
}

static void stealing_test(int nprocs) {
  goro_start(nprocs, NULL);
  goro_stats st0, st;
  goro_get_stats(&st0);
  atomic_store(&running, 0);
  atomic_store(&max_running, 0);
  spawn(spawner_step, NULL);
  int rc = settle();
  goro_get_stats(&st);
  int threads = distinct_threads();
  int maxr = atomic_load(&max_running);
  ok(rc == GORO_OK, "P=%d: %d CPU-bound Gs spawned by one G finish (%d)", nprocs, NCPU, rc);
  /* a step that held its P too long (here: its thread descheduled by a
  ** loaded machine) may be retaken by sysmon and finish beside the others */
  long long retakes = (long long)(st.retakes - st0.retakes);
  ok(maxr >= 1 && maxr <= nprocs + retakes,
     "P=%d: at most GOMAXPROCS Gs ran at once, plus retaken ones (max %d, %lld retakes)", nprocs,
     maxr, retakes);
  if (nprocs > 1) {
    ok(threads > 1, "P=%d: Gs queued on one P ran on %d threads (idle Ps stole them)", nprocs,
       threads);
    ok(st.steals - st0.steals > 0, "P=%d: stats count %lld steals", nprocs,
       (long long)(st.steals - st0.steals));
  }
  goro_stop(MS(5000));
}

/* ------------------------------------------------ reap & cache_free */

#define NREAP 5
typedef struct {
  char elem;
  bool okv;
  int reaped;
} reap_ud;
static reap_ud reaps[NREAP];
static atomic_int reap_calls, reap_foreign;
static goro_chan *never;

static void reap_cb(goro_g *g, void *ud) {
  atomic_fetch_add(&reap_calls, 1);
  reap_ud *r = ud;
  if (r >= reaps && r < reaps + NREAP)
    r->reaped++;
  else
    atomic_fetch_add(&reap_foreign, 1);
}

static goro_step forever_step(goro_g *g, void *ud) {
  reap_ud *r = ud;
  int rc = goro_chan_recv(never, &r->elem, &r->okv, GORO_FOREVER);
  return rc == GORO_EPARK ? GORO_STEP_PARKED : GORO_STEP_DONE;
}

static atomic_int cache_allocs, cache_frees;

static void cache_free_cb(void *p) {
  atomic_fetch_add(&cache_frees, 1);
  free(p);
}

static goro_step cache_step(goro_g *g, void *ud) {
  void **slot = goro_cache(g);
  if (*slot == NULL) {
    *slot = malloc(32);
    atomic_fetch_add(&cache_allocs, 1);
  }
  return GORO_STEP_DONE;
}

static void reap_tests(void) {
  goro_start(2, reap_cb);
  never = goro_chan_new(1, 0, NULL);
  for (int i = 0; i < NREAP; i++) spawn(forever_step, &reaps[i]);
  int rc = settle();
  ok(rc == GORO_EDEADLOCK && goro_numgoroutine() == NREAP,
     "%d Gs parked forever: wait_all is GORO_EDEADLOCK (%d), numgoroutine %lld", NREAP, rc,
     (long long)goro_numgoroutine());
  rc = goro_stop(MS(5000));
  int each = 1;
  for (int i = 0; i < NREAP; i++) each &= reaps[i].reaped == 1;
  ok(rc == GORO_OK && atomic_load(&reap_calls) == NREAP && each && !atomic_load(&reap_foreign),
     "goro_stop hands each parked G's userdata to reap exactly once (%d calls)",
     atomic_load(&reap_calls));
  goro_chan_unref(never);

  goro_set_cache_free(cache_free_cb);
  goro_start(2, NULL);
  for (int round = 0; round < 5; round++) {
    for (int i = 0; i < 200; i++) spawn(cache_step, NULL);
    settle();
  }
  rc = goro_stop(MS(5000));
  ok(rc == GORO_OK && atomic_load(&cache_allocs) > 0 &&
         atomic_load(&cache_frees) == atomic_load(&cache_allocs),
     "goro_stop calls cache_free once per non-NULL cache slot (%d allocated, %d freed)",
     atomic_load(&cache_allocs), atomic_load(&cache_frees));
  goro_set_cache_free(NULL);
}

int main(void) {
  watchdog(120);
  run_once_tests(1);
  run_once_tests(8);
  run_once_tests(2);
  identity_tests();
  fairness_test(chain_step, "spawn chain through runnext");
  fairness_test(yielder_step, "a G yielding forever");
  stealing_test(1);
  stealing_test(2);
  reap_tests();
  return done_testing();
}
