/*
** test_timer.c — goro_sleep from a G and from outside, timers firing in
** deadline order, periodic timers, goro_timer_stop/reset/free, a timer
** waking a G through a channel.
*/
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "goro.h"
#include "gop.h"
#include "tap.h"

#define NORDER 16
#define NMANY 1000
#define NSLEEPERS 500

/* ------------------------------------------------ sleep */

static void sleep_tests(void) {
  int64_t dl = after_ms(20);
  int rc = goro_sleep(dl);
  int64_t t = goro_now();
  ok(rc == GORO_OK && t >= dl, "outside goro_sleep returns GORO_OK, not before the deadline (%d, %+.2f ms)", rc,
     (double)(t - dl) / 1e6);
  int64_t t0 = goro_now();
  rc = goro_sleep(t0 - MS(5));
  ok(rc == GORO_OK && goro_now() - t0 < MS(1000), "outside goro_sleep with a past deadline returns at once");

  gop g;
  gop_init(&g, GOP_SLEEP, NULL, 0, MS(20));
  spawn(gop_step, &g);
  int wrc = settle();
  ok(wrc == GORO_OK && g.parked && g.rc == GORO_ETIMEDOUT && g.t_end - g.t_start >= MS(20),
     "G goro_sleep parks, finish gives GORO_ETIMEDOUT after the deadline (%d, %.2f ms)", g.rc,
     (double)(g.t_end - g.t_start) / 1e6);

  static gop s[NSLEEPERS];
  srand(7);
  for (int i = 0; i < NSLEEPERS; i++) {
    gop_init(&s[i], GOP_SLEEP, NULL, 0, MS(1 + rand() % 50));
    spawn(gop_step, &s[i]);
  }
  wrc = settle();
  int good = 0;
  for (int i = 0; i < NSLEEPERS; i++)
    good += s[i].rc == GORO_ETIMEDOUT && s[i].t_end - s[i].t_start >= s[i].timeout;
  ok(wrc == GORO_OK && good == NSLEEPERS, "%d Gs sleeping 1..50 ms all wake, none early (%d good)", NSLEEPERS, good);
}

/* ------------------------------------------------ order */

typedef struct {
  int k;
  int64_t when, fired_at;
} tinfo;

static tinfo infos[NORDER];
static int order[NORDER];
static atomic_int norder, nslot;
static goro_chan *done_ch;

static void order_cb(void *arg, int64_t now) {
  tinfo *ti = arg;
  ti->fired_at = now;
  int slot = atomic_fetch_add(&nslot, 1);
  if (slot < NORDER) order[slot] = ti->k;
  if (atomic_fetch_add(&norder, 1) == NORDER - 1) {
    char x = 1;
    goro_chan_send(done_ch, &x, GORO_NOW);
  }
}

static tinfo many[NMANY];
static atomic_int nmany, disorder, early;
static atomic_llong last_when;

static void many_cb(void *arg, int64_t now) {
  tinfo *ti = arg;
  if (now < ti->when) atomic_fetch_add(&early, 1);
  int64_t prev = atomic_exchange(&last_when, ti->when);
  if (prev > ti->when) atomic_fetch_add(&disorder, 1);
  if (atomic_fetch_add(&nmany, 1) == NMANY - 1) {
    char x = 1;
    goro_chan_send(done_ch, &x, GORO_NOW);
  }
}

static void order_tests(void) {
  done_ch = goro_chan_new(1, 1, NULL);
  int perm[NORDER];
  for (int i = 0; i < NORDER; i++) perm[i] = i;
  srand(42);
  for (int i = NORDER - 1; i > 0; i--) {
    int j = rand() % (i + 1), t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  goro_timer *ts[NORDER];
  int64_t base = after_ms(20);
  atomic_store(&norder, 0);
  atomic_store(&nslot, 0);
  for (int i = 0; i < NORDER; i++) {
    tinfo *ti = &infos[perm[i]];
    ti->k = perm[i];
    ti->when = base + MS(3) * perm[i];
    ts[i] = goro_timer_new(ti->when, 0, order_cb, ti);
  }
  char x = 0;
  bool okv = false;
  int rc = goro_chan_recv(done_ch, &x, &okv, after_ms(10000));
  ok(rc == GORO_OK && atomic_load(&norder) == NORDER,
     "%d timers all fire; the outside wait on them is not a deadlock (%d)", NORDER, rc);
  int sorted = 1, late = 1;
  for (int i = 0; i < NORDER; i++) {
    sorted &= order[i] == i;
    late &= infos[i].fired_at >= infos[i].when;
  }
  ok(sorted, "timers created with shuffled deadlines fire in deadline order");
  ok(late, "each callback's now is at or after its deadline");
  for (int i = 0; i < NORDER; i++) goro_timer_free(ts[i]);

  static goro_timer *mt[NMANY];
  atomic_store(&nmany, 0);
  atomic_store(&disorder, 0);
  atomic_store(&early, 0);
  atomic_store(&last_when, 0);
  base = after_ms(10);
  for (int i = 0; i < NMANY; i++) {
    many[i].when = base + (int64_t)(rand() % 40000) * 1000; /* 0..40 ms, 1 us grain */
    mt[i] = goro_timer_new(many[i].when, 0, many_cb, &many[i]);
  }
  rc = goro_chan_recv(done_ch, &x, &okv, after_ms(10000));
  ok(rc == GORO_OK && atomic_load(&nmany) == NMANY && atomic_load(&disorder) == 0 && atomic_load(&early) == 0,
     "%d random timers fire once each, in deadline order, none early (%d fired, %d out of order, %d early)",
     NMANY, atomic_load(&nmany), atomic_load(&disorder), atomic_load(&early));
  for (int i = 0; i < NMANY; i++) goro_timer_free(mt[i]);
  goro_chan_unref(done_ch);
}

/* ------------------------------------------------ periodic, stop, reset, free */

static atomic_int ticks, fires;
static atomic_llong fired_at;
static goro_chan *tick_ch;

static void tick_cb(void *arg, int64_t now) {
  if (atomic_fetch_add(&ticks, 1) + 1 == 5) {
    char x = 1;
    goro_chan_send(tick_ch, &x, GORO_NOW);
  }
}

static void fire_cb(void *arg, int64_t now) {
  atomic_fetch_add(&fires, 1);
  atomic_store(&fired_at, now);
  char x = 1;
  goro_chan_send(tick_ch, &x, GORO_NOW);
}

static void periodic_tests(void) {
  tick_ch = goro_chan_new(1, 1, NULL);
  char x;
  bool okv;
  atomic_store(&ticks, 0);
  int64_t t0 = goro_now();
  goro_timer *t = goro_timer_new(t0 + MS(5), MS(5), tick_cb, NULL);
  int rc = goro_chan_recv(tick_ch, &x, &okv, after_ms(10000));
  int64_t t1 = goro_now();
  bool pending = goro_timer_stop(t);
  int n1 = atomic_load(&ticks);
  ok(rc == GORO_OK && n1 >= 5 && t1 - t0 >= MS(25),
     "a periodic 5 ms timer fires repeatedly (%d times in %.1f ms)", n1, (double)(t1 - t0) / 1e6);
  ok(pending, "goro_timer_stop on a periodic timer: true (still pending)");
  goro_sleep(after_ms(30));
  int n2 = atomic_load(&ticks);
  ok(n2 == n1, "after goro_timer_stop returns, the periodic callback never runs again (%d -> %d)", n1, n2);
  ok(!goro_timer_stop(t), "stopping it again: false");
  goro_timer_free(t);

  /* stop: true while pending, false after firing */
  atomic_store(&fires, 0);
  t = goro_timer_new(after_ms(10000), 0, fire_cb, NULL);
  ok(goro_timer_stop(t), "goro_timer_stop on a pending timer: true");
  ok(!goro_timer_stop(t), "goro_timer_stop on a stopped timer: false");
  t0 = goro_now();
  goro_timer_reset(t, t0 + MS(10), 0);
  rc = goro_chan_recv(tick_ch, &x, &okv, after_ms(10000));
  ok(rc == GORO_OK && atomic_load(&fires) == 1 && atomic_load(&fired_at) >= t0 + MS(10),
     "goro_timer_reset re-arms a stopped timer; it fires once, at its new deadline");
  ok(!goro_timer_stop(t), "goro_timer_stop after the timer fired: false");
  t0 = goro_now();
  goro_timer_reset(t, t0 + MS(5), 0);
  rc = goro_chan_recv(tick_ch, &x, &okv, after_ms(10000));
  ok(rc == GORO_OK && atomic_load(&fires) == 2, "goro_timer_reset re-arms a fired timer (%d fires)",
     atomic_load(&fires));

  /* reset a pending timer to a later deadline */
  t0 = goro_now();
  goro_timer_reset(t, t0 + MS(5), 0);
  goro_timer_reset(t, t0 + MS(60), 0);
  rc = goro_chan_recv(tick_ch, &x, &okv, after_ms(10000));
  ok(rc == GORO_OK && atomic_load(&fires) == 3 && atomic_load(&fired_at) >= t0 + MS(60),
     "resetting a pending timer moves its deadline (fired %+.1f ms after the new one)",
     (double)(atomic_load(&fired_at) - (t0 + MS(60))) / 1e6);
  goro_sleep(after_ms(20));
  ok(atomic_load(&fires) == 3, "... and it fired once, not at the old deadline too");
  goro_timer_free(t);

  /* free a pending timer: it never fires */
  atomic_store(&fires, 0);
  t = goro_timer_new(after_ms(10), 0, fire_cb, NULL);
  goro_timer_free(t);
  goro_sleep(after_ms(40));
  ok(atomic_load(&fires) == 0, "a timer freed while pending never fires");
  goro_chan_unref(tick_ch);
}

/* ------------------------------------------------ a timer wakes a G */

static goro_chan *after_ch;

static void after_cb(void *arg, int64_t now) {
  uint64_t v = 4711;
  goro_chan_send(after_ch, &v, GORO_NOW);
}

static void timer_wakes_g_test(void) {
  after_ch = goro_chan_new(sizeof(uint64_t), 1, NULL);
  gop g;
  gop_init(&g, GOP_RECV, after_ch, 0, GORO_FOREVER);
  spawn(gop_step, &g);
  goro_timer *t = goro_timer_new(after_ms(30), 0, after_cb, NULL);
  int wrc = settle();
  ok(wrc == GORO_OK && g.rc == GORO_OK && g.okv && g.val == 4711,
     "a G parked on a channel that a pending timer sends to is woken (like time.After) (%d)", wrc);
  goro_timer_free(t);
  goro_chan_unref(after_ch);
}

int main(void) {
  watchdog(120);
  int procs[2] = {1, 4};
  for (int i = 0; i < 2; i++) {
    goro_start(procs[i], NULL);
    diag("GOMAXPROCS=%d", procs[i]);
    sleep_tests();
    order_tests();
    periodic_tests();
    timer_wakes_g_test();
    goro_stop(MS(5000));
  }
  return done_testing();
}
