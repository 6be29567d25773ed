/*
** core_bench.c — microbenchmarks of the C core alone (no Lua): spawn+finish,
** unbuffered ping-pong between two Gs, buffered SPSC throughput. Gs are
** step-function state machines, as a binding's would be.
**
** usage: core_bench [gomaxprocs]   (default: online CPUs)
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goro.h"

static double secs(int64_t ns) { return (double)ns / 1e9; }

/* ---- spawn + finish ---- */
static goro_step g_nop(goro_g *g, void *ud) { return GORO_STEP_DONE; }

/* ---- ping-pong ---- */
typedef struct {
  goro_chan *in, *out;
  long n, i;
  int phase; /* 0 send, 1 recv */
  long v;
  int first; /* the pinger sends first */
  goro_chan *done;
} pp_t;

static goro_step g_pp(goro_g *g, void *ud) {
  pp_t *s = ud;
  bool ok;
  int idx, rc;
  if (s->phase >= 10) { /* resumed after a park */
    rc = goro_select_finish(&idx, &ok);
    (void)rc;
    s->phase -= 10;
    goto next;
  }
  for (;;) {
    if (s->phase == 0) {
      rc = goro_chan_send(s->out, &s->v, GORO_FOREVER);
    } else {
      rc = goro_chan_recv(s->in, &s->v, &ok, GORO_FOREVER);
    }
    if (rc == GORO_EPARK) {
      s->phase += 10;
      return GORO_STEP_PARKED;
    }
  next:
    if (s->phase == (s->first ? 1 : 0)) s->i++; /* a round trip done */
    if (s->i >= s->n) break;
    s->phase ^= 1;
  }
  long one = 1;
  goro_chan_send(s->done, &one, GORO_NOW);
  return GORO_STEP_DONE;
}

/* ---- SPSC buffered ---- */
typedef struct {
  goro_chan *c;
  long n, i, sum, v; /* v: the element; it must outlive a park */
  int parked;
  bool producer;
} sp_t;

static goro_step g_sp(goro_g *g, void *ud) {
  sp_t *s = ud;
  int idx, rc;
  bool ok;
  if (s->parked) {
    s->parked = 0;
    goro_select_finish(&idx, &ok);
    if (!s->producer) s->sum += s->v;
    s->i++;
  }
  while (s->i < s->n) {
    if (s->producer) {
      s->v = s->i;
      rc = goro_chan_send(s->c, &s->v, GORO_FOREVER);
      if (rc == GORO_EPARK) {
        s->parked = 1;
        return GORO_STEP_PARKED;
      }
    } else {
      rc = goro_chan_recv(s->c, &s->v, &ok, GORO_FOREVER);
      if (rc == GORO_EPARK) {
        s->parked = 1;
        return GORO_STEP_PARKED;
      }
      s->sum += s->v;
    }
    s->i++;
  }
  return GORO_STEP_DONE;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  int procs = argc > 1 ? atoi(argv[1]) : 0;
  goro_start(procs, NULL);
  printf("goro core bench, GOMAXPROCS=%d\n", goro_gomaxprocs(0));

  long N = 1000000;
  int64_t t0 = goro_now();
  for (long i = 0; i < N; i++) goro_spawn(g_nop, NULL, NULL);
  goro_wait_all(GORO_FOREVER);
  int64_t t1 = goro_now();
  printf("spawn+finish: %ld Gs, %.3f us each\n", N, secs(t1 - t0) * 1e6 / (double)N);

  long R = 200000;
  goro_chan *a = goro_chan_new(sizeof(long), 0, NULL);
  goro_chan *b = goro_chan_new(sizeof(long), 0, NULL);
  goro_chan *done = goro_chan_new(sizeof(long), 2, NULL);
  pp_t p1 = {.in = b, .out = a, .n = R, .phase = 0, .first = 1, .done = done};
  pp_t p2 = {.in = a, .out = b, .n = R, .phase = 1, .first = 0, .done = done};
  t0 = goro_now();
  goro_spawn(g_pp, &p1, NULL);
  goro_spawn(g_pp, &p2, NULL);
  if (goro_wait_all(GORO_FOREVER) != GORO_OK) printf("ping-pong: deadlock!\n");
  t1 = goro_now();
  printf("ping-pong: %ld round trips, %.3f us each\n", R, secs(t1 - t0) * 1e6 / (double)R);

  long M = 10000000;
  goro_chan *c = goro_chan_new(sizeof(long), 128, NULL);
  sp_t pr = {.c = c, .n = M, .producer = true};
  sp_t co = {.c = c, .n = M, .producer = false};
  t0 = goro_now();
  goro_spawn(g_sp, &pr, NULL);
  goro_spawn(g_sp, &co, NULL);
  goro_wait_all(GORO_FOREVER);
  t1 = goro_now();
  printf("buffered SPSC (cap 128): %ld values, %.2f M values/s (sum %s)\n", M,
         (double)M / secs(t1 - t0) / 1e6,
         co.sum == (M - 1) * M / 2 ? "ok" : "WRONG");
  goro_stats st;
  goro_get_stats(&st);
  printf("stats: threads %d steals %lld globalgets %lld mparks %lld\n", st.threads,
         (long long)st.steals, (long long)st.globalgets, (long long)st.mparks);
  goro_chan_unref(a);
  goro_chan_unref(b);
  goro_chan_unref(c);
  goro_chan_unref(done);
  goro_stop(1000000000);
  return 0;
}
