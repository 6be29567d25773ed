/*
** test_deadlock.c — "all goroutines are asleep - deadlock!": an outside wait
** that no G, timer or blocking call can ever end gets GORO_EDEADLOCK; one that
** something may still end does not; goro_wait_all; goro_interrupt and
** goro_interrupt_clear.
**
** A watchdog thread interrupts the outside waits if the test hangs (a missed
** deadlock), so a failure shows up as GORO_EINTR instead of a hang.
*/
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "goro.h"
#include "gop.h"
#include "tap.h"

#define WATCHDOG_MS 120000

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

static atomic_int finished, watchdog_fired;

static void *deadlock_watchdog(void *arg) {
  for (int i = 0; i < WATCHDOG_MS / 10 && !atomic_load(&finished); i++) sleep_ms(10);
  if (!atomic_load(&finished)) {
    atomic_store(&watchdog_fired, 1);
    goro_interrupt();
  }
  return NULL;
}

static void noop_timer(void *arg, int64_t now) {}

/* ------------------------------------------------ deadlocks */

static void no_g_tests(void) {
  goro_chan *c = goro_chan_new(sizeof(uint64_t), 0, NULL);
  goro_chan *b = goro_chan_new(sizeof(uint64_t), 1, NULL);
  uint64_t v = 1;
  bool okv;
  int idx;
  int rc = goro_chan_recv(c, &v, &okv, GORO_FOREVER);
  ok(rc == GORO_EDEADLOCK, "no G: outside recv forever on a fresh channel is GORO_EDEADLOCK (%d)", rc);
  rc = goro_chan_send(c, &v, GORO_FOREVER);
  ok(rc == GORO_EDEADLOCK, "no G: outside send forever on unbuffered is GORO_EDEADLOCK (%d)", rc);
  goro_chan_send(b, &v, GORO_NOW);
  rc = goro_chan_send(b, &v, GORO_FOREVER);
  ok(rc == GORO_EDEADLOCK, "no G: outside send forever on a full buffer is GORO_EDEADLOCK (%d)", rc);
  uint64_t e0, e1;
  goro_case cs[2] = {{c, GORO_RECV, &e0}, {NULL, GORO_RECV, &e1}};
  rc = goro_select(cs, 2, GORO_FOREVER, &idx, &okv);
  ok(rc == GORO_EDEADLOCK, "no G: outside select forever is GORO_EDEADLOCK (%d)", rc);
  rc = goro_select(NULL, 0, GORO_FOREVER, &idx, &okv);
  ok(rc == GORO_EDEADLOCK, "no G: select with no case, forever (Go's select{}) is GORO_EDEADLOCK (%d)", rc);

  int64_t dl = after_ms(30);
  rc = goro_chan_recv(c, &v, &okv, dl);
  ok(rc == GORO_ETIMEDOUT && goro_now() >= dl,
     "no G: outside recv with a deadline times out (the deadline is a timer, not a deadlock) (%d)", rc);

  ok(goro_wait_all(GORO_FOREVER) == GORO_OK, "no G: wait_all is GORO_OK at once");

  /* a deadlock found once the last timer has fired */
  int64_t t0 = goro_now();
  goro_timer *t = goro_timer_new(t0 + MS(30), 0, noop_timer, NULL);
  rc = goro_chan_recv(c, &v, &okv, GORO_FOREVER);
  ok(rc == GORO_EDEADLOCK && goro_now() - t0 >= MS(30),
     "a pending timer defers the verdict; after it fired (sending nothing) it is GORO_EDEADLOCK (%d)", rc);
  goro_timer_free(t);
  goro_chan_unref(c);
  goro_chan_unref(b);
}

typedef struct {
  atomic_int n;
} yielder;

static goro_step yield_then_exit(goro_g *g, void *ud) {
  yielder *y = ud;
  if (atomic_fetch_add(&y->n, 1) + 1 < 2000) return GORO_STEP_YIELDED;
  return GORO_STEP_DONE;
}

static void blocked_g_tests(int nprocs) {
  goro_chan *own[3], *a, *b, *c;
  gop rg[3], s1, s2;
  for (int i = 0; i < 3; i++) {
    own[i] = goro_chan_new(sizeof(uint64_t), 0, NULL);
    gop_init(&rg[i], GOP_RECV, own[i], 5, GORO_FOREVER);
    spawn(gop_step, &rg[i]);
  }
  c = goro_chan_new(sizeof(uint64_t), 0, NULL);
  uint64_t v;
  bool okv;
  int rc = goro_chan_recv(c, &v, &okv, GORO_FOREVER);
  ok(rc == GORO_EDEADLOCK, "P=%d: 3 Gs parked on channels nobody sends to + outside recv: GORO_EDEADLOCK (%d)",
     nprocs, rc);
  v = 1;
  rc = goro_chan_send(c, &v, GORO_FOREVER);
  ok(rc == GORO_EDEADLOCK, "P=%d: ... outside send: GORO_EDEADLOCK (%d)", nprocs, rc);
  rc = goro_wait_all(GORO_FOREVER);
  ok(rc == GORO_EDEADLOCK && goro_numgoroutine() == 3,
     "P=%d: wait_all with Gs blocked forever: GORO_EDEADLOCK (%d, %lld alive)", nprocs, rc,
     (long long)goro_numgoroutine());
  int64_t t0 = goro_now();
  rc = goro_wait_all(t0 + MS(2000));
  ok(rc == GORO_EDEADLOCK && goro_now() - t0 < MS(1000),
     "P=%d: wait_all with a deadline and Gs that can never finish: GORO_EDEADLOCK at once, "
     "not a timeout (%d after %.0f ms)", nprocs, rc, (double)(goro_now() - t0) / 1e6);

  /* two more Gs parked on sends nobody receives */
  a = goro_chan_new(sizeof(uint64_t), 0, NULL);
  b = goro_chan_new(sizeof(uint64_t), 0, NULL);
  gop_init(&s1, GOP_SEND, a, 1, GORO_FOREVER);
  gop_init(&s2, GOP_SEND, b, 2, GORO_FOREVER);
  spawn(gop_step, &s1);
  spawn(gop_step, &s2);
  rc = goro_chan_recv(c, &v, &okv, GORO_FOREVER);
  ok(rc == GORO_EDEADLOCK, "P=%d: 5 Gs all blocked on sends and recvs: outside recv is GORO_EDEADLOCK (%d)",
     nprocs, rc);

  /* a running G defers the verdict until it exits */
  yielder y;
  atomic_init(&y.n, 0);
  spawn(yield_then_exit, &y);
  rc = goro_chan_recv(c, &v, &okv, GORO_FOREVER);
  int yn = atomic_load(&y.n);
  ok(rc == GORO_EDEADLOCK && yn == 2000,
     "P=%d: while a G runs there is no verdict; once it exited: GORO_EDEADLOCK (%d, %d steps)", nprocs, rc, yn);

  /* unblock everybody */
  for (int i = 0; i < 3; i++) goro_chan_close(own[i]);
  goro_chan_close(a);
  goro_chan_close(b);
  rc = goro_wait_all(GORO_FOREVER);
  int good = s1.rc == GORO_ECLOSED && s2.rc == GORO_ECLOSED;
  for (int i = 0; i < 3; i++) good &= rg[i].rc == GORO_OK && !rg[i].okv;
  ok(rc == GORO_OK && good && goro_numgoroutine() == 0,
     "P=%d: closing their channels lets the blocked Gs finish: wait_all is GORO_OK (%d)", nprocs, rc);
  for (int i = 0; i < 3; i++) goro_chan_unref(own[i]);
  goro_chan_unref(a);
  goro_chan_unref(b);
  goro_chan_unref(c);
}

/* ------------------------------------------------ not deadlocks */

static goro_chan *to_main;

static void send_cb(void *arg, int64_t now) {
  uint64_t v = 31;
  goro_chan_send(to_main, &v, GORO_NOW);
}

typedef struct {
  goro_chan *c, *out;
  uint64_t v;
  bool okv;
  int phase, rc;
} relay;

/* waits on c with a 50 ms deadline (nobody sends), then sends 42 on out */
static goro_step timeout_then_send(goro_g *g, void *ud) {
  relay *r = ud;
  int idx, rc;
  bool okv;
  switch (r->phase) {
  case 0:
    rc = goro_chan_recv(r->c, &r->v, &r->okv, after_ms(50));
    r->phase = 1;
    if (rc == GORO_EPARK) return GORO_STEP_PARKED;
    r->rc = rc;
    goto send;
  case 1:
    r->rc = goro_select_finish(&idx, &okv);
  send:
    r->v = 42;
    r->phase = 2;
    rc = goro_chan_send(r->out, &r->v, GORO_FOREVER);
    if (rc == GORO_EPARK) return GORO_STEP_PARKED;
    return GORO_STEP_DONE;
  default:
    goro_select_finish(&idx, &okv);
    return GORO_STEP_DONE;
  }
}

static goro_step blocking_then_send(goro_g *g, void *ud) {
  relay *r = ud;
  int idx;
  bool okv;
  if (r->phase == 1) {
    goro_select_finish(&idx, &okv);
    return GORO_STEP_DONE;
  }
  goro_enter_blocking();
  sleep_ms(100);
  goro_exit_blocking();
  r->v = 43;
  r->phase = 1;
  return goro_chan_send(r->out, &r->v, GORO_FOREVER) == GORO_EPARK ? GORO_STEP_PARKED : GORO_STEP_DONE;
}

static void not_deadlock_tests(int nprocs) {
  to_main = goro_chan_new(sizeof(uint64_t), 1, NULL);
  uint64_t v = 0;
  bool okv = false;

  gop s;
  gop_init(&s, GOP_SEND, to_main, 30, GORO_FOREVER);
  s.delay_ns = MS(100);
  spawn(gop_step, &s);
  int rc = goro_chan_recv(to_main, &v, &okv, GORO_FOREVER);
  ok(rc == GORO_OK && v == 30, "P=%d: a G sleeping 100 ms before it sends is no deadlock (%d)", nprocs, rc);

  goro_timer *t = goro_timer_new(after_ms(50), 0, send_cb, NULL);
  v = 0;
  rc = goro_chan_recv(to_main, &v, &okv, GORO_FOREVER);
  ok(rc == GORO_OK && v == 31, "P=%d: no G but a pending timer that sends: no deadlock (%d)", nprocs, rc);
  goro_timer_free(t);

  goro_chan *never = goro_chan_new(sizeof(uint64_t), 0, NULL);
  relay r;
  memset(&r, 0, sizeof r);
  r.c = never;
  r.out = to_main;
  spawn(timeout_then_send, &r);
  v = 0;
  rc = goro_chan_recv(to_main, &v, &okv, GORO_FOREVER);
  ok(rc == GORO_OK && v == 42, "P=%d: a G parked with a deadline, then sending, is no deadlock (%d)", nprocs, rc);

  relay r2;
  memset(&r2, 0, sizeof r2);
  r2.out = to_main;
  spawn(blocking_then_send, &r2);
  v = 0;
  rc = goro_chan_recv(to_main, &v, &okv, GORO_FOREVER);
  ok(rc == GORO_OK && v == 43, "P=%d: a G in a blocking C call, then sending, is no deadlock (%d)", nprocs, rc);

  rc = goro_wait_all(GORO_FOREVER);
  ok(rc == GORO_OK && r.rc == GORO_ETIMEDOUT, "P=%d: all of them finished (%d)", nprocs, rc);
  goro_chan_unref(never);
  goro_chan_unref(to_main);
}

/* ------------------------------------------------ wait_all */

static atomic_int wait_all_in_g;

static goro_step wait_all_step(goro_g *g, void *ud) {
  atomic_store(&wait_all_in_g, goro_wait_all(GORO_NOW));
  return GORO_STEP_DONE;
}

static void wait_all_tests(int nprocs) {
  static gop gs[100];
  for (int i = 0; i < 100; i++) {
    gop_init(&gs[i], GOP_SLEEP, NULL, 0, MS(i % 10));
    spawn(gop_step, &gs[i]);
  }
  int rc = goro_wait_all(GORO_FOREVER);
  int done = 0;
  for (int i = 0; i < 100; i++) done += atomic_load(&gs[i].done);
  ok(rc == GORO_OK && done == 100 && goro_numgoroutine() == 0,
     "P=%d: wait_all returns GORO_OK once all 100 Gs (some sleeping) finished (%d, %d done)", nprocs, rc, done);

  gop_init(&gs[0], GOP_SLEEP, NULL, 0, MS(300));
  spawn(gop_step, &gs[0]);
  int64_t dl = after_ms(20);
  rc = goro_wait_all(dl);
  ok(rc == GORO_ETIMEDOUT && goro_now() >= dl && !atomic_load(&gs[0].done),
     "P=%d: wait_all with a deadline while a G sleeps 300 ms: GORO_ETIMEDOUT (%d)", nprocs, rc);
  rc = goro_wait_all(GORO_FOREVER);
  ok(rc == GORO_OK && atomic_load(&gs[0].done), "P=%d: then wait_all forever: GORO_OK (%d)", nprocs, rc);

  atomic_store(&wait_all_in_g, 1);
  spawn(wait_all_step, NULL);
  rc = goro_wait_all(GORO_FOREVER);
  ok(rc == GORO_OK && atomic_load(&wait_all_in_g) == GORO_EINVAL,
     "P=%d: wait_all from a G context is GORO_EINVAL (%d)", nprocs, atomic_load(&wait_all_in_g));
}

/* ------------------------------------------------ interrupt */

static void *interrupter(void *arg) {
  sleep_ms(50);
  goro_interrupt();
  return NULL;
}

static void interrupt_tests(void) {
  /* a far timer: the outside waits below are not deadlocks */
  goro_timer *guard = goro_timer_new(after_ms(3600000), 0, noop_timer, NULL);
  goro_chan *c = goro_chan_new(sizeof(uint64_t), 0, NULL);
  uint64_t v;
  bool okv;
  int idx;
  pthread_t th;
  pthread_create(&th, NULL, interrupter, NULL);
  int64_t t0 = goro_now();
  int rc = goro_chan_recv(c, &v, &okv, GORO_FOREVER);
  int64_t dt = goro_now() - t0;
  pthread_join(th, NULL);
  ok(rc == GORO_EINTR && !atomic_load(&watchdog_fired),
     "goro_interrupt from another thread wakes a blocked outside recv with GORO_EINTR (%d, %.0f ms)", rc,
     (double)dt / 1e6);
  rc = goro_chan_recv(c, &v, &okv, GORO_FOREVER);
  ok(rc == GORO_EINTR, "until cleared, the next outside recv fails with GORO_EINTR at once (%d)", rc);
  rc = goro_sleep(after_ms(5000));
  ok(rc == GORO_EINTR, "... and so does an outside sleep (%d)", rc);
  uint64_t e0;
  goro_case cs[1] = {{c, GORO_RECV, &e0}};
  rc = goro_select(cs, 1, GORO_FOREVER, &idx, &okv);
  ok(rc == GORO_EINTR, "... and an outside select (%d)", rc);

  /* Gs are not interrupted */
  gop g;
  gop_init(&g, GOP_SLEEP, NULL, 0, MS(10));
  spawn(gop_step, &g);
  for (int i = 0; i < 10000 && !atomic_load(&g.done); i++) sleep_ms(1);
  ok(atomic_load(&g.done) && g.rc == GORO_ETIMEDOUT, "goro_interrupt does not touch Gs: a G's sleep ends normally (%d)",
     g.rc);

  goro_interrupt_clear();
  int64_t dl = after_ms(20);
  rc = goro_chan_recv(c, &v, &okv, dl);
  ok(rc == GORO_ETIMEDOUT && goro_now() >= dl, "after goro_interrupt_clear, outside waits block again (%d)", rc);
  rc = goro_sleep(after_ms(10));
  ok(rc == GORO_OK, "after goro_interrupt_clear, outside sleep returns GORO_OK (%d)", rc);
  goro_timer_free(guard);
  goro_chan_unref(c);
  goro_wait_all(after_ms(5000));
}

int main(void) {
  pthread_t wd;
  pthread_create(&wd, NULL, deadlock_watchdog, NULL);
  int procs[2] = {1, 4};
  for (int i = 0; i < 2; i++) {
    goro_start(procs[i], NULL);
    if (i == 0) no_g_tests();
    blocked_g_tests(procs[i]);
    not_deadlock_tests(procs[i]);
    wait_all_tests(procs[i]);
    goro_stop(MS(5000));
  }
  goro_start(2, NULL);
  interrupt_tests();
  goro_stop(MS(5000));
  atomic_store(&finished, 1);
  pthread_join(wd, NULL);
  ok(!atomic_load(&watchdog_fired), "no wait hung (the watchdog stayed quiet)");
  return done_testing();
}
