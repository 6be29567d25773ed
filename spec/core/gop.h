/*
** gop.h — helpers shared by the core's C tests (header-only).
**
** A `gop` is a G that performs one operation (send, recv, sleep or select),
** optionally after sleeping delay_ns, and records the outcome. It is a step
** state machine in the way the binding drives Gs: an operation that answers
** GORO_EPARK makes the step return GORO_STEP_PARKED, and the next call
** collects the outcome with goro_select_finish(). The element buffer, the
** cases and the ok flag live in the gop, so they stay valid while parked.
**
** The outcome fields are written before `done` is set (seq_cst), so a thread
** that sees done == 1 (or returns from goro_wait_all) may read them.
*/
#ifndef GORO_SPEC_GOP_H
#define GORO_SPEC_GOP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "goro.h"

#define MS(x) ((int64_t)(x) * 1000000)

/* A deadline ms milliseconds from now. */
static inline int64_t after_ms(int64_t ms) { return goro_now() + MS(ms); }

/* Spawns fn(ud); the G itself is not needed by the tests. */
static inline int spawn(goro_step_fn fn, void *ud) {
  goro_g *g = NULL;
  return goro_spawn(fn, ud, &g);
}

/* Waits until every G has finished (GORO_OK) or the remaining ones are
** blocked forever (GORO_EDEADLOCK): the tests use it to let Gs park. */
static inline int settle(void) { return goro_wait_all(GORO_FOREVER); }

/* A watchdog turns a hang into a failure: after `secs` seconds (env
** SPEC_TIMEOUT overrides) it interrupts the outside waits, so the test's
** remaining asserts fail fast with GORO_EINTR; 30 s later it exits. */
static inline void *watchdog_main_(void *arg) {
  int secs = (int)(intptr_t)arg;
  struct timespec ts = {secs, 0};
  while (nanosleep(&ts, &ts) != 0) {
  }
  printf("# watchdog: still running after %d s: interrupting the outside waits\n", secs);
  fflush(stdout);
  goro_interrupt();
  ts.tv_sec = 30;
  ts.tv_nsec = 0;
  while (nanosleep(&ts, &ts) != 0) {
  }
  printf("not ok 999 - watchdog: the test hung\n");
  fflush(stdout);
  _exit(3);
  return NULL;
}

static inline void watchdog(int secs) {
  const char *env = getenv("SPEC_TIMEOUT");
  if (env && atoi(env) > 0) secs = atoi(env);
  pthread_t t;
  if (pthread_create(&t, NULL, watchdog_main_, (void *)(intptr_t)secs) == 0) pthread_detach(t);
}

enum { GOP_SEND = 1, GOP_RECV, GOP_SLEEP, GOP_SELECT };

typedef struct gop {
  /* what to do */
  int op;
  goro_chan *c;         /* GOP_SEND / GOP_RECV */
  goro_case *cases;     /* GOP_SELECT */
  int ncases;
  int64_t timeout;      /* GORO_FOREVER, GORO_NOW, or ns from the op's start */
  int64_t delay_ns;     /* sleep this long (in the G) before the op */
  int unref_after;      /* goro_chan_unref(c) once the op is done */
  uint64_t val;         /* the value sent, or the value received */
  /* outcome */
  int rc;               /* what the op (or its finish) returned */
  bool okv;             /* recvok */
  int idx;              /* select index */
  int parked;           /* the op answered GORO_EPARK */
  int64_t t_start, t_end; /* goro_now() just before the op / after its outcome */
  atomic_int started, done;
  int phase_;
} gop;

static inline void gop_init(gop *o, int op, goro_chan *c, uint64_t val, int64_t timeout) {
  memset(o, 0, sizeof *o);
  o->op = op;
  o->c = c;
  o->val = val;
  o->timeout = timeout;
  o->rc = 1; /* not a status code */
  o->idx = -1;
  atomic_init(&o->started, 0);
  atomic_init(&o->done, 0);
}

static inline goro_step gop_step(goro_g *g, void *ud) {
  gop *o = ud;
  int rc = GORO_OK, idx = -1;
  bool okv = false;
  switch (o->phase_) {
  case 0:
    if (o->delay_ns > 0) {
      o->phase_ = 1;
      rc = goro_sleep(goro_now() + o->delay_ns);
      if (rc == GORO_EPARK) return GORO_STEP_PARKED;
    }
    goto op;
  case 1:
    goro_select_finish(&idx, &okv);
    goto op;
  case 2:
    rc = goro_select_finish(&o->idx, &o->okv);
    goto record;
  default:
    return GORO_STEP_DONE;
  }
op : {
  o->t_start = goro_now(); /* before the deadline: t_end - t_start >= timeout */
  int64_t dl = o->timeout <= 0 ? o->timeout : o->t_start + o->timeout;
  atomic_store(&o->started, 1);
  switch (o->op) {
  case GOP_SEND:
    rc = goro_chan_send(o->c, &o->val, dl);
    o->idx = 0;
    break;
  case GOP_RECV:
    rc = goro_chan_recv(o->c, &o->val, &o->okv, dl);
    o->idx = 0;
    break;
  case GOP_SLEEP:
    rc = goro_sleep(dl);
    break;
  case GOP_SELECT:
    rc = goro_select(o->cases, o->ncases, dl, &o->idx, &o->okv);
    break;
  }
  if (rc == GORO_EPARK) {
    o->parked = 1;
    o->phase_ = 2;
    return GORO_STEP_PARKED;
  }
}
record:
  o->rc = rc;
  o->t_end = goro_now();
  o->phase_ = 3;
  if (o->unref_after) goro_chan_unref(o->c);
  atomic_store(&o->done, 1);
  return GORO_STEP_DONE;
}

#endif
