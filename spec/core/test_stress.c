/*
** test_stress.c — many Gs and many values under oversubscription (8 Ps on a
** 2-core machine): producers and consumers, all Gs, move NVALUES uint64
** values through a mix of unbuffered and buffered channels; some consumers
** select over two channels (disabling a case with NULL when its channel
** closes). Sum and xor checksums and a count prove that no value was lost
** or duplicated.
**
** Env STRESS_SCALE (a factor, e.g. 0.1 under sanitizers) scales the number of
** Gs, channels and values.
*/
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goro.h"
#include "gop.h"
#include "tap.h"

#define NPROCS 8
#define NGS 100000        /* producers + consumers */
#define NVALUES 10000000  /* values sent in all */
#define NCHANS 1000
#define SPAWN_BATCH 1000  /* producers spawned per spawner G */
static const size_t caps[4] = {0, 1, 16, 128};

typedef struct {
  goro_chan *c;
  uint32_t id, i, n;
  uint64_t cur;
  int phase;
} producer;

typedef struct {
  goro_case cs[2];
  uint64_t el[2];
  int ncases, phase, idx;
  bool okv; /* out-parameters of a parked op live in the G's data */
  uint64_t sum, xor, count;
} consumer;

typedef struct {
  producer *ps;
  int n;
} spawner;

static goro_chan **chans;
static atomic_int *producers_left; /* per channel: the last producer closes it */
static int nchans;
static atomic_ullong total_sum, total_xor, total_count;
static atomic_int errors, spawn_errors;
static atomic_int first_where, first_rc; /* the first failure */
static const char *const wheres[] = {"none", "a producer's finish", "a producer's send",
                                     "a consumer's recv/select", "a consumer's index",
                                     "a recv's finish index"};

static void fail_at(int where, int rc) {
  int z = 0;
  if (atomic_compare_exchange_strong(&first_where, &z, where)) atomic_store(&first_rc, rc);
  atomic_fetch_add(&errors, 1);
}

static uint64_t value_of(uint32_t id, uint32_t i) {
  uint64_t x = ((uint64_t)id << 32) | i;
  /* splitmix64's finalizer: values spread over all bits */
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

static goro_step producer_step(goro_g *g, void *ud) {
  producer *p = ud;
  int idx;
  bool okv;
  if (p->phase == 1) {
    p->phase = 0;
    int rc = goro_select_finish(&idx, &okv);
    if (rc != GORO_OK) fail_at(1, rc);
    p->i++;
  }
  while (p->i < p->n) {
    p->cur = value_of(p->id, p->i);
    int rc = goro_chan_send(p->c, &p->cur, GORO_FOREVER);
    if (rc == GORO_EPARK) {
      p->phase = 1;
      return GORO_STEP_PARKED;
    }
    if (rc != GORO_OK) fail_at(2, rc);
    p->i++;
  }
  return GORO_STEP_DONE;
}

static int consumer_got(consumer *c, int rc, int idx, bool okv) {
  if (rc != GORO_OK || idx < 0 || idx >= c->ncases) {
    fail_at(idx < 0 || idx >= c->ncases ? 4 : 3, rc);
    return 1;
  }
  if (!okv) {
    c->cs[idx].c = NULL; /* closed and drained: a nil channel from now on */
    for (int i = 0; i < c->ncases; i++)
      if (c->cs[i].c) return 0;
    atomic_fetch_add(&total_sum, c->sum);
    atomic_fetch_xor(&total_xor, c->xor);
    atomic_fetch_add(&total_count, c->count);
    return 1;
  }
  uint64_t v = c->el[idx];
  c->sum += v;
  c->xor ^= v;
  c->count++;
  return 0;
}

static goro_step consumer_step(goro_g *g, void *ud) {
  consumer *c = ud;
  int idx = -1;
  bool okv = false;
  if (c->phase == 1) {
    c->phase = 0;
    int rc = goro_select_finish(&idx, &okv);
    if (c->ncases == 1 && idx != 0) fail_at(5, idx);
    if (consumer_got(c, rc, idx, okv)) return GORO_STEP_DONE;
  }
  for (int n = 0;; n++) {
    int rc;
    if (c->ncases == 1) {
      c->idx = 0;
      rc = goro_chan_recv(c->cs[0].c, &c->el[0], &c->okv, GORO_FOREVER);
    } else {
      rc = goro_select(c->cs, c->ncases, GORO_FOREVER, &c->idx, &c->okv);
    }
    if (rc == GORO_EPARK) {
      c->phase = 1;
      return GORO_STEP_PARKED;
    }
    if (consumer_got(c, rc, c->idx, c->okv)) return GORO_STEP_DONE;
    if (n == 64) return GORO_STEP_YIELDED; /* let the others have the P too */
  }
}

static goro_step producer_main(goro_g *g, void *ud);

static goro_step spawner_step(goro_g *g, void *ud) {
  spawner *s = ud;
  for (int i = 0; i < s->n; i++)
    if (spawn(producer_main, &s->ps[i]) != GORO_OK) atomic_fetch_add(&spawn_errors, 1);
  return GORO_STEP_DONE;
}

int main(void) {
  double scale = 1.0;
  const char *env = getenv("STRESS_SCALE");
  if (env && *env) {
    scale = atof(env);
    if (!(scale > 0)) scale = 1.0;
  }
  int ngs = (int)(NGS * scale);
  long long nvalues = (long long)(NVALUES * scale);
  nchans = (int)(NCHANS * scale);
  if (ngs < 16) ngs = 16;
  if (nchans < 4) nchans = 4;
  int nprod = ngs / 2, ncons = ngs - nprod;
  if (nchans > nprod) nchans = nprod;
  uint32_t per = (uint32_t)(nvalues / nprod);
  if (per < 1) per = 1;
  nvalues = (long long)per * nprod;

  diag("STRESS_SCALE=%g: %d Ps, %d producers + %d consumers, %d channels, %lld values (%u per producer)",
       scale, NPROCS, nprod, ncons, nchans, nvalues, per);

  watchdog(300);
  int rc = goro_start(NPROCS, NULL);
  ok(rc == GORO_OK, "goro_start(%d)", NPROCS);

  chans = calloc((size_t)nchans, sizeof *chans);
  producers_left = calloc((size_t)nchans, sizeof *producers_left);
  producer *ps = calloc((size_t)nprod, sizeof *ps);
  consumer *cs = calloc((size_t)ncons, sizeof *cs);
  int nspawners = (nprod / 2 + SPAWN_BATCH - 1) / SPAWN_BATCH;
  spawner *sp = calloc((size_t)nspawners + 1, sizeof *sp);
  if (!chans || !producers_left || !ps || !cs || !sp) {
    ok(0, "allocation");
    return done_testing();
  }
  for (int k = 0; k < nchans; k++) {
    chans[k] = goro_chan_new(sizeof(uint64_t), caps[k % 4], NULL);
    atomic_init(&producers_left[k], 0);
  }
  uint64_t want_sum = 0, want_xor = 0;
  for (int i = 0; i < nprod; i++) {
    ps[i].id = (uint32_t)i;
    ps[i].n = per;
    ps[i].c = chans[i % nchans];
    atomic_fetch_add(&producers_left[i % nchans], 1);
    for (uint32_t k = 0; k < per; k++) {
      uint64_t v = value_of((uint32_t)i, k);
      want_sum += v;
      want_xor ^= v;
    }
  }
  for (int j = 0; j < ncons; j++) {
    consumer *c = &cs[j];
    c->cs[0] = (goro_case){chans[j % nchans], GORO_RECV, &c->el[0]};
    c->ncases = 1;
    if (j % 4 == 3) { /* a select consumer over two channels */
      c->cs[1] = (goro_case){chans[(j + 1) % nchans], GORO_RECV, &c->el[1]};
      c->ncases = 2;
    }
  }

  goro_stats st0, st;
  goro_get_stats(&st0);
  int64_t t0 = goro_now();
  int errs = 0;
  for (int j = 0; j < ncons; j++) errs += spawn(consumer_step, &cs[j]) != GORO_OK;
  /* half the producers from outside (the global queue), half from Gs */
  int half = nprod / 2;
  for (int i = half; i < nprod; i++) errs += spawn(producer_main, &ps[i]) != GORO_OK;
  for (int s = 0; s < nspawners; s++) {
    sp[s].ps = ps + (size_t)s * SPAWN_BATCH;
    sp[s].n = (s + 1) * SPAWN_BATCH <= half ? SPAWN_BATCH : half - s * SPAWN_BATCH;
    errs += spawn(spawner_step, &sp[s]) != GORO_OK;
  }
  ok(errs == 0, "%d Gs spawned", ncons + (nprod - half) + nspawners);
  rc = settle();
  double secs = (double)(goro_now() - t0) / 1e9;
  goro_get_stats(&st);
  diag("%.2f s: %.2f M values/s; %lld steals, %lld global gets, %lld Ms started, %lld M parks",
       secs, (double)nvalues / secs / 1e6, (long long)(st.steals - st0.steals),
       (long long)(st.globalgets - st0.globalgets), (long long)(st.mstarts - st0.mstarts),
       (long long)(st.mparks - st0.mparks));

  ok(rc == GORO_OK, "every G finished: wait_all is GORO_OK (%d, %lld left)", rc, (long long)goro_numgoroutine());
  ok(atomic_load(&errors) == 0 && atomic_load(&spawn_errors) == 0,
     "no operation failed (%d failed, %d spawns failed; first: %s, %d)", atomic_load(&errors),
     atomic_load(&spawn_errors), wheres[atomic_load(&first_where)], atomic_load(&first_rc));
  ok(atomic_load(&total_count) == (unsigned long long)nvalues, "%lld values received (want %lld)",
     (long long)atomic_load(&total_count), nvalues);
  ok(atomic_load(&total_sum) == want_sum && atomic_load(&total_xor) == want_xor,
     "sum and xor checksums match: nothing lost, nothing duplicated");
  ok(goro_numgoroutine() == 0 && st.spawned - st0.spawned == ncons + nprod + nspawners,
     "%lld Gs spawned, none alive", (long long)(st.spawned - st0.spawned));
  ok(st.chanops - st0.chanops >= nvalues, "stats count %lld channel ops", (long long)(st.chanops - st0.chanops));

  rc = goro_stop(MS(5000));
  ok(rc == GORO_OK, "goro_stop (%d)", rc);
  for (int k = 0; k < nchans; k++) goro_chan_unref(chans[k]);
  free(chans);
  free((void *)producers_left);
  free(ps);
  free(cs);
  free(sp);
  return done_testing();
}

/* producer_step, then the last producer of a channel closes it */
static goro_step producer_main(goro_g *g, void *ud) {
  producer *p = ud;
  goro_step r = producer_step(g, ud);
  if (r == GORO_STEP_DONE) {
    size_t k = (size_t)(p->id % (uint32_t)nchans);
    if (atomic_fetch_sub(&producers_left[k], 1) == 1) goro_chan_close(p->c);
  }
  return r;
}
