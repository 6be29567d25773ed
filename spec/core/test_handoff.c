/*
** test_handoff.c — goro_enter_blocking/goro_exit_blocking hand the P to
** another M around a blocking C call (Go's entersyscallblock/exitsyscall), so
** other Gs keep running; goro_nopark(1) makes channel ops block the M with a
** handoff instead of parking.
*/
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "goro.h"
#include "gop.h"
#include "tap.h"

#define NWORKERS 4
#define NBLOCKERS 8
#define BLOCK_MS 100

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

/* ------------------------------------------------ others run meanwhile */

static atomic_long work;
static atomic_int blocker_woke;

static goro_step worker_step(goro_g *g, void *ud) {
  if (atomic_load(&blocker_woke)) return GORO_STEP_DONE;
  atomic_fetch_add(&work, 1);
  return GORO_STEP_YIELDED;
}

typedef struct {
  long before, after;
  goro_g *self_before, *self_after;
} blocker_res;

static goro_step blocker_step(goro_g *g, void *ud) {
  blocker_res *r = ud;
  r->self_before = goro_self();
  goro_enter_blocking();
  r->before = atomic_load(&work);
  sleep_ms(200);
  r->after = atomic_load(&work);
  atomic_store(&blocker_woke, 1); /* the workers finish: a P comes free */
  goro_exit_blocking();
  r->self_after = goro_self();
  return GORO_STEP_DONE;
}

static void others_run_test(void) {
  goro_start(1, NULL);
  goro_stats st0, st;
  goro_get_stats(&st0);
  atomic_store(&work, 0);
  atomic_store(&blocker_woke, 0);
  blocker_res r;
  memset(&r, 0, sizeof r);
  spawn(blocker_step, &r);
  for (int i = 0; i < NWORKERS; i++) spawn(worker_step, NULL);
  int wrc = settle();
  goro_get_stats(&st);
  ok(wrc == GORO_OK, "GOMAXPROCS=1: a G blocking 200 ms in C and %d yielding Gs all finish (%d)", NWORKERS, wrc);
  ok(r.after - r.before >= 100,
     "GOMAXPROCS=1: other Gs ran %ld steps while the G was blocked in C (its P was handed off)",
     r.after - r.before);
  ok(r.self_before != NULL && r.self_before == r.self_after,
     "goro_self is the same G before the blocking call and after goro_exit_blocking");
  ok(st.handoffs - st0.handoffs > 0, "stats count %lld handoffs", (long long)(st.handoffs - st0.handoffs));
  goro_stop(MS(5000));
}

/* ------------------------------------------------ blockers in parallel */

static goro_step short_blocker_step(goro_g *g, void *ud) {
  goro_enter_blocking();
  sleep_ms(BLOCK_MS);
  goro_exit_blocking();
  return GORO_STEP_DONE;
}

static void parallel_blockers_test(void) {
  goro_start(2, NULL);
  int64_t t0 = goro_now();
  for (int i = 0; i < NBLOCKERS; i++) spawn(short_blocker_step, NULL);
  int wrc = settle();
  int64_t dt = goro_now() - t0;
  /* without handoff 2 Ps need NBLOCKERS/2 * BLOCK_MS = 400 ms */
  ok(wrc == GORO_OK && dt < MS(NBLOCKERS / 2 * BLOCK_MS * 3 / 4),
     "GOMAXPROCS=2: %d Gs blocking %d ms each in C overlap (%.0f ms in all)", NBLOCKERS, BLOCK_MS,
     (double)dt / 1e6);
  goro_enter_blocking(); /* outside a G: no-ops */
  goro_exit_blocking();
  ok(goro_self() == NULL, "goro_enter_blocking/exit_blocking outside a G are no-ops");
  goro_stop(MS(5000));
}

/* ------------------------------------------------ nopark */

typedef struct {
  goro_chan *c;
  int prev0, prev1, rc, src, steps;
  uint64_t v;
  bool okv;
  int64_t slept;
} nopark_res;

static goro_step nopark_step(goro_g *g, void *ud) {
  nopark_res *r = ud;
  r->steps++;
  r->prev0 = goro_nopark(1);
  r->rc = goro_chan_recv(r->c, &r->v, &r->okv, GORO_FOREVER);
  int64_t t0 = goro_now();
  r->src = goro_sleep(t0 + MS(20));
  r->slept = goro_now() - t0;
  r->prev1 = goro_nopark(r->prev0);
  return GORO_STEP_DONE;
}

static void nopark_test(void) {
  goro_start(1, NULL);
  goro_chan *c = goro_chan_new(sizeof(uint64_t), 0, NULL);
  nopark_res r;
  memset(&r, 0, sizeof r);
  r.c = c;
  gop s;
  gop_init(&s, GOP_SEND, c, 99, GORO_FOREVER);
  s.delay_ns = MS(50);
  spawn(nopark_step, &r);
  spawn(gop_step, &s);
  int wrc = settle();
  ok(wrc == GORO_OK && s.rc == GORO_OK, "GOMAXPROCS=1: a nopark G blocked in recv lets the sender G run (%d)", wrc);
  ok(r.rc == GORO_OK && r.okv && r.v == 99 && r.steps == 1,
     "with goro_nopark(1), recv blocks the M and returns the value instead of GORO_EPARK (rc %d)", r.rc);
  ok(r.src != GORO_EPARK && r.slept >= MS(20), "with goro_nopark(1), goro_sleep blocks for the duration (rc %d)",
     r.src);
  ok(r.prev0 == 0 && r.prev1 == 1, "goro_nopark returns the previous setting (%d, %d)", r.prev0, r.prev1);
  goro_chan_unref(c);
  goro_stop(MS(5000));
}

/* ------------------------------------------------ retake of a stuck step */

/* A step stuck in C that tells the core nothing (no enter_blocking): after
** ~12 ms with other Gs waiting, sysmon takes its P (retake_running). The
** step then goes on without a P: a spawn, a wake-up and a blocking call
** still work, and the next step runs once it has a P again. */
typedef struct {
  long before, after;
  int steps, spawnrc, sendrc;
  goro_chan *c;
} stuck_res;

static atomic_int stuck_done;
static atomic_long spawned_ran;

static goro_step counted_step(goro_g *g, void *ud) {
  atomic_fetch_add(&spawned_ran, 1);
  return GORO_STEP_DONE;
}

static goro_step busy_worker_step(goro_g *g, void *ud) {
  if (atomic_load(&stuck_done)) return GORO_STEP_DONE;
  atomic_fetch_add(&work, 1);
  return GORO_STEP_YIELDED;
}

static goro_step stuck_step(goro_g *g, void *ud) {
  stuck_res *r = ud;
  if (r->steps++ > 0) return GORO_STEP_DONE; /* scheduled again: has a P */
  r->before = atomic_load(&work);
  int64_t until = goro_now() + MS(300);
  while (goro_now() < until) {
  }
  r->after = atomic_load(&work);
  r->spawnrc = spawn(counted_step, NULL); /* no P: to the global queue */
  uint64_t v = 7;
  r->sendrc = goro_chan_send(r->c, &v, GORO_NOW); /* wakes the receiver */
  goro_enter_blocking();
  goro_exit_blocking(); /* takes a P back */
  atomic_store(&stuck_done, 1);
  return GORO_STEP_YIELDED;
}

/* The preemption signal's handler, as a binding installs it. */
static void on_preempt_signal(int sig) {
  (void)sig;
  goro_preempt_signal();
}

static void retake_test(void) {
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_preempt_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGURG, &sa, &old);
  goro_set_preempt_signal(SIGURG);
  goro_start(1, NULL);
  goro_stats st0, st;
  goro_get_stats(&st0);
  atomic_store(&work, 0);
  atomic_store(&stuck_done, 0);
  atomic_store(&spawned_ran, 0);
  stuck_res r;
  memset(&r, 0, sizeof r);
  r.c = goro_chan_new(sizeof(uint64_t), 0, NULL);
  gop rcv;
  gop_init(&rcv, GOP_RECV, r.c, 0, GORO_FOREVER);
  spawn(gop_step, &rcv);
  spawn(stuck_step, &r);
  for (int i = 0; i < NWORKERS; i++) spawn(busy_worker_step, NULL);
  int wrc = settle();
  goro_get_stats(&st);
  ok(wrc == GORO_OK && r.steps == 2, "GOMAXPROCS=1: a step stuck 300 ms in C and %d yielding Gs all finish (%d, %d steps)",
     NWORKERS, wrc, r.steps);
  ok(r.after - r.before >= 100, "other Gs ran %ld steps while the step was stuck (its P was retaken)",
     r.after - r.before);
  ok(st.retakes - st0.retakes >= 1, "stats count %lld retakes", (long long)(st.retakes - st0.retakes));
  ok(r.spawnrc == GORO_OK && atomic_load(&spawned_ran) == 1, "a spawn from the step without a P runs");
  ok(r.sendrc == GORO_OK && rcv.rc == GORO_OK && rcv.val == 7 && rcv.okv,
     "a send from the step without a P wakes its receiver (rc %d, %d)", r.sendrc, rcv.rc);
  goro_chan_unref(r.c);
  goro_stop(MS(5000));
  goro_set_preempt_signal(0);
  sigaction(SIGURG, &old, NULL);
}

int main(void) {
  watchdog(120);
  others_run_test();
  parallel_blockers_test();
  nopark_test();
  retake_test();
  return done_testing();
}
