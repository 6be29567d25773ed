/*
** test_wait.c — the core's wait/wake (core/wait.h), whichever backend the
** build chose (make test CFLAGS=-DGORO_WAIT_PORTABLE tests the portable
** one): no sleep when the word already differs, timed waits end, wake-one
** and wake-all wake what waits, and ping-pong on many words at once loses
** no wake-up (words that share a wait queue of the portable backend
** included). A lost wake-up is a hang: a watchdog turns it into a failure.
**
** Env STRESS_SCALE (e.g. 0.1 under sanitizers) scales the rounds.
*/
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "goro.h"
#include "tap.h"
#include "wait.h"

#define MS(x) ((int64_t)(x) * 1000000)
#define NWAITERS 4
#define NPAIRS 24 /* 24 words in the portable backend's 64 queues: some share */

static double scale = 1.0;

static int rounds(int n) {
  int r = (int)(n * scale);
  return r < 10 ? 10 : r;
}

static void *watchdog(void *arg) {
  struct timespec ts = {(time_t)(intptr_t)arg, 0};
  while (nanosleep(&ts, &ts) != 0) {
  }
  printf("not ok 999 - watchdog: a wait was never woken (lost wake-up)\n");
  fflush(stdout);
  _exit(3);
  return NULL;
}

/* ------------------------------------------------ no sleep, timeouts */

static void immediate_tests(void) {
  _Atomic uint32_t w = 1;
  int64_t t0 = goro_now();
  wait_on(&w, 0, -1); /* the word is not 0: returns at once */
  ok(goro_now() - t0 < MS(1000), "wait_on returns at once when the word differs from val");

  atomic_store(&w, 0);
  t0 = goro_now();
  wait_on(&w, 0, MS(30));
  int64_t dt = goro_now() - t0;
  ok(dt < MS(5000), "a timed wait_on nobody wakes returns (%.1f ms for 30 ms)", (double)dt / 1e6);

  t0 = goro_now();
  wait_on(&w, 0, 0);
  ok(goro_now() - t0 < MS(1000), "wait_on with timeout 0 returns at once");

  /* the callers' pattern: timed waits in a loop until a deadline */
  int64_t deadline = goro_now() + MS(40);
  int64_t left;
  while ((left = deadline - goro_now()) > 0) wait_on(&w, 0, left);
  ok(goro_now() >= deadline, "timed waits in a loop end at the deadline");

  wait_wake(&w, false); /* nobody waits: a no-op */
  wait_wake(&w, true);
  ok(1, "wait_wake with no waiter returns");
}

/* ------------------------------------------------ wake one / wake all */

static _Atomic uint32_t gate;
static atomic_int done_waiters;

static void *gate_waiter(void *arg) {
  (void)arg;
  uint32_t v;
  while ((v = atomic_load(&gate)) == 0) wait_on(&gate, v, -1);
  atomic_fetch_add(&done_waiters, 1);
  return NULL;
}

/* NWAITERS threads wait for the gate; it opens and is woken by one
** wake-all, or by NWAITERS wake-ones. Either must release them all. */
static int gate_round(bool all) {
  pthread_t t[NWAITERS];
  atomic_store(&gate, 0);
  atomic_store(&done_waiters, 0);
  for (int i = 0; i < NWAITERS; i++) pthread_create(&t[i], NULL, gate_waiter, NULL);
  sched_yield(); /* give them a chance to sleep; correctness does not depend on it */
  atomic_store(&gate, 1);
  if (all) {
    wait_wake(&gate, true);
  } else {
    for (int i = 0; i < NWAITERS; i++) wait_wake(&gate, false);
  }
  for (int i = 0; i < NWAITERS; i++) pthread_join(t[i], NULL);
  return atomic_load(&done_waiters);
}

static void wake_tests(void) {
  int n = rounds(200), good = 0;
  for (int r = 0; r < n; r++) good += gate_round(true) == NWAITERS;
  ok(good == n, "wake-all releases every waiter (%d of %d rounds)", good, n);
  good = 0;
  for (int r = 0; r < n; r++) good += gate_round(false) == NWAITERS;
  ok(good == n, "one wake-one per waiter releases every waiter (%d of %d rounds)", good, n);
}

/* ------------------------------------------------ ping-pong on many words */

typedef struct {
  _Atomic uint32_t word; /* 2k: A's turn, 2k+1: B's */
  int n;                 /* rounds */
} pong;

static pong pairs[NPAIRS];
static pthread_t players[NPAIRS][2];

typedef struct {
  pong *p;
  uint32_t parity;
  int64_t turns;
} player;

static player who[NPAIRS][2];

static void *play(void *arg) {
  player *me = arg;
  pong *p = me->p;
  for (int i = 0; i < p->n; i++) {
    uint32_t want = 2 * (uint32_t)i + me->parity, v;
    while ((v = atomic_load_explicit(&p->word, memory_order_acquire)) != want)
      wait_on(&p->word, v, -1);
    me->turns++;
    atomic_store_explicit(&p->word, want + 1, memory_order_release);
    wait_wake(&p->word, false);
  }
  return NULL;
}

static void pingpong_tests(void) {
  int n = rounds(1000);
  for (int k = 0; k < NPAIRS; k++) {
    atomic_store(&pairs[k].word, 0);
    pairs[k].n = n;
    for (int s = 0; s < 2; s++) {
      who[k][s] = (player){&pairs[k], (uint32_t)s, 0};
      pthread_create(&players[k][s], NULL, play, &who[k][s]);
    }
  }
  int64_t turns = 0;
  int final_ok = 0;
  for (int k = 0; k < NPAIRS; k++) {
    for (int s = 0; s < 2; s++) {
      pthread_join(players[k][s], NULL);
      turns += who[k][s].turns;
    }
    final_ok += atomic_load(&pairs[k].word) == 2 * (uint32_t)n;
  }
  ok(turns == (int64_t)NPAIRS * 2 * n && final_ok == NPAIRS,
     "%d pairs ping-pong %d rounds each on their own words: every turn taken, no wake-up lost",
     NPAIRS, n);
}

int main(void) {
  const char *env = getenv("STRESS_SCALE");
  if (env && atof(env) > 0) scale = atof(env);
  pthread_t wd;
  pthread_create(&wd, NULL, watchdog, (void *)(intptr_t)120);
  pthread_detach(wd);
  immediate_tests();
  wake_tests();
  pingpong_tests();
  return done_testing();
}
