/*
** test_gomaxprocs.c — GOMAXPROCS: read, set, invalid values, env GOMAXPROCS
** at goro_start(0), GOMAXPROCS bounding parallelism, changing it while Gs
** run; also goro_start/goro_stop/goro_running, spawn when stopped,
** goro_set_maxthreads, goro_strerror and goro_now.
*/
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "goro.h"
#include "gop.h"
#include "tap.h"

#define NCPUG 40
#define NYIELDERS 1000

static int online_cpus(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 1) n = 1;
  if (n > GORO_MAXPROCS) n = GORO_MAXPROCS;
  return (int)n;
}

/* ------------------------------------------------ parallelism bound */

static atomic_int running, max_running;

static goro_step cpu_step(goro_g *g, void *ud) {
  int now = atomic_fetch_add(&running, 1) + 1;
  int m = atomic_load(&max_running);
  while (now > m && !atomic_compare_exchange_weak(&max_running, &m, now)) {
  }
  int64_t end = goro_now() + MS(1);
  while (goro_now() < end) {
  }
  atomic_fetch_sub(&running, 1);
  return GORO_STEP_DONE;
}

/* The most CPU-bound Gs that ran at once, less one per retake: a 1 ms
** step whose thread a loaded machine deschedules for over ~12 ms looks
** stuck to sysmon, which may retake its P and let it finish beside the
** others (syscall.c, retake_running). -1 if the batch did not finish. */
static int run_cpu_batch(void) {
  goro_stats st0, st;
  goro_get_stats(&st0);
  atomic_store(&running, 0);
  atomic_store(&max_running, 0);
  for (int i = 0; i < NCPUG; i++) spawn(cpu_step, NULL);
  int rc = goro_wait_all(after_ms(20000));
  goro_get_stats(&st);
  int m = atomic_load(&max_running) - (int)(st.retakes - st0.retakes);
  return rc == GORO_OK ? (m < 1 ? 1 : m) : -1;
}

static atomic_int yields_done;

static goro_step yielder_step(goro_g *g, void *ud) {
  int *n = ud;
  if (++*n < 100) return GORO_STEP_YIELDED;
  atomic_fetch_add(&yields_done, 1);
  return GORO_STEP_DONE;
}

static void set_get_tests(void) {
  int rc = goro_start(3, NULL);
  ok(rc == GORO_OK && goro_running(), "goro_start(3) runs");
  ok(goro_gomaxprocs(0) == 3, "goro_gomaxprocs(0) reads 3 (%d)", goro_gomaxprocs(0));
  goro_stats st;
  goro_get_stats(&st);
  int lens[GORO_MAXPROCS];
  ok(st.gomaxprocs == 3 && goro_runq_lens(lens, GORO_MAXPROCS) == 3, "stats and runq_lens agree: 3 Ps");
  rc = goro_start(7, NULL);
  ok(rc == GORO_OK && goro_running(), "goro_start while running is GORO_OK (idempotent)");
  goro_gomaxprocs(3);

  ok(goro_gomaxprocs(5) == 3, "goro_gomaxprocs(5) returns the previous value 3");
  ok(goro_gomaxprocs(0) == 5, "... and now reads 5");
  ok(goro_gomaxprocs(-1) == GORO_EINVAL, "goro_gomaxprocs(-1) is GORO_EINVAL");
  ok(goro_gomaxprocs(GORO_MAXPROCS + 1) == GORO_EINVAL, "goro_gomaxprocs(GORO_MAXPROCS+1) is GORO_EINVAL");
  ok(goro_gomaxprocs(0) == 5, "invalid values leave it unchanged (%d)", goro_gomaxprocs(0));
  ok(goro_gomaxprocs(GORO_MAXPROCS) == 5 && goro_gomaxprocs(0) == GORO_MAXPROCS,
     "goro_gomaxprocs(GORO_MAXPROCS) is accepted");
  goro_get_stats(&st);
  ok(st.gomaxprocs == GORO_MAXPROCS && goro_runq_lens(lens, 4) == GORO_MAXPROCS,
     "stats.gomaxprocs and runq_lens follow the change");

  ok(goro_gomaxprocs(1) == GORO_MAXPROCS, "set to 1");
  int m = run_cpu_batch();
  ok(m == 1, "GOMAXPROCS=1 after a change: %d CPU-bound Gs never overlap (max %d at once, less retakes)", NCPUG, m);
  goro_gomaxprocs(2);
  m = run_cpu_batch();
  ok(m >= 1 && m <= 2, "GOMAXPROCS=2 after a change: at most 2 at once (max %d, less retakes)", m);

  /* shrink while Gs sit in the run queues of Ps that go away */
  goro_gomaxprocs(8);
  static int counters[NYIELDERS];
  memset(counters, 0, sizeof counters);
  atomic_store(&yields_done, 0);
  for (int i = 0; i < NYIELDERS; i++) spawn(yielder_step, &counters[i]);
  goro_gomaxprocs(2);
  goro_gomaxprocs(1);
  goro_gomaxprocs(3);
  rc = goro_wait_all(after_ms(20000));
  ok(rc == GORO_OK && atomic_load(&yields_done) == NYIELDERS,
     "changing GOMAXPROCS 8 -> 2 -> 1 -> 3 while %d Gs run loses none (%d finished)", NYIELDERS,
     atomic_load(&yields_done));

  /* a parked G survives a change */
  goro_chan *c = goro_chan_new(sizeof(uint64_t), 0, NULL);
  gop g;
  gop_init(&g, GOP_RECV, c, 0, GORO_FOREVER);
  spawn(gop_step, &g);
  int wrc = settle();
  goro_gomaxprocs(1);
  goro_gomaxprocs(6);
  uint64_t v = 12;
  rc = goro_chan_send(c, &v, after_ms(10000));
  int wrc2 = goro_wait_all(after_ms(20000));
  ok(wrc == GORO_EDEADLOCK && rc == GORO_OK && wrc2 == GORO_OK && g.val == 12,
     "a G parked across GOMAXPROCS changes is woken normally");
  goro_chan_unref(c);

  rc = goro_stop(MS(5000));
  ok(rc == GORO_OK && !goro_running(), "goro_stop: GORO_OK, not running");
  rc = spawn(cpu_step, NULL);
  ok(rc == GORO_ESTOPPED, "goro_spawn when the runtime is stopped: GORO_ESTOPPED (%d)", rc);
}

/* ------------------------------------------------ env GOMAXPROCS */

static void env_tests(void) {
  int ncpu = online_cpus();
  setenv("GOMAXPROCS", "3", 1);
  goro_start(0, NULL);
  ok(goro_gomaxprocs(0) == 3, "env GOMAXPROCS=3 is honoured by goro_start(0) (%d)", goro_gomaxprocs(0));
  goro_stop(MS(5000));
  goro_start(-1, NULL);
  ok(goro_gomaxprocs(0) == 3, "... and by goro_start(-1) (%d)", goro_gomaxprocs(0));
  goro_stop(MS(5000));
  goro_start(2, NULL);
  ok(goro_gomaxprocs(0) == 2, "an explicit nprocs wins over env GOMAXPROCS (%d)", goro_gomaxprocs(0));
  goro_stop(MS(5000));
  setenv("GOMAXPROCS", "5", 1);
  goro_start(0, NULL);
  ok(goro_gomaxprocs(0) == 5, "env GOMAXPROCS is read at each goro_start (5: %d)", goro_gomaxprocs(0));
  int m = run_cpu_batch();
  ok(m >= 1 && m <= 5, "Gs run with it (max %d at once, less retakes)", m);
  goro_stop(MS(5000));
  setenv("GOMAXPROCS", "garbage", 1);
  goro_start(0, NULL);
  ok(goro_gomaxprocs(0) == ncpu, "an invalid env GOMAXPROCS is ignored: online CPUs (%d, want %d)",
     goro_gomaxprocs(0), ncpu);
  goro_stop(MS(5000));
  unsetenv("GOMAXPROCS");
  goro_start(0, NULL);
  ok(goro_gomaxprocs(0) == ncpu, "no env GOMAXPROCS: online CPUs (%d, want %d)", goro_gomaxprocs(0), ncpu);
  goro_stop(MS(5000));
}

/* ------------------------------------------------ odds and ends */

static void misc_tests(void) {
  int codes[] = {GORO_OK,       GORO_EAGAIN, GORO_ECLOSED, GORO_EDEADLOCK, GORO_ETIMEDOUT, GORO_EINTR,
                 GORO_EPARK,    GORO_ENOMEM, GORO_ETHREAD, GORO_EINVAL,    GORO_ESTOPPED};
  int n = (int)(sizeof codes / sizeof codes[0]), good = 1;
  for (int i = 0; i < n; i++) {
    const char *s = goro_strerror(codes[i]);
    good &= s != NULL && s[0] != '\0';
    for (int j = 0; j < i && good; j++) good &= strcmp(s, goro_strerror(codes[j])) != 0;
  }
  ok(good, "goro_strerror gives a distinct non-empty sentence for each status");
  ok(strstr(goro_strerror(GORO_EDEADLOCK), "deadlock") != NULL, "GORO_EDEADLOCK reads like Go's: \"%s\"",
     goro_strerror(GORO_EDEADLOCK));
  int64_t a = goro_now(), b = goro_now();
  ok(a > 0 && b >= a, "goro_now is positive and monotonic");

  goro_start(2, NULL);
  int prev = goro_set_maxthreads(500);
  ok(prev == 10000, "goro_set_maxthreads returns the previous cap (default 10000: %d)", prev);
  ok(goro_set_maxthreads(prev) == 500, "... and the one just set");
  goro_stop(MS(5000));
}

int main(void) {
  watchdog(120);
  unsetenv("GOMAXPROCS");
  set_get_tests();
  env_tests();
  misc_tests();
  return done_testing();
}
