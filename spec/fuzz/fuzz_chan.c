/*
** fuzz_chan.c — libFuzzer harness for the core's channel and select state
** machine (core only, no Lua).
**
** The input picks 1..4 channels (capacity 0..8 each) and four op scripts,
** one per actor: the fuzzing thread, a second outside thread, and two Gs.
** Ops: send, recv, close, select over 1..4 cases (duplicates and nil
** channels allowed, send and recv mixed), len/cap, yield, drain. Most ops
** use the deadline GORO_NOW; one in four waits a little (50..400 us), so
** that waiter queues, hand-offs to parked peers, timeouts and wake-ups by
** close are exercised too (a G then parks and finishes in its next step).
**
** Every value is {actor, seq, check}. Invariants, checked by abort():
**   - a received value is intact (check), came from the channel it was
**     sent on, and is received at most once; a receiver sees each
**     sender's values on a channel in increasing seq (FIFO);
**   - at the end (all channels closed and drained), every value whose send
**     succeeded was received exactly once, and nothing else was;
**   - a failed receive (ok == false) zeroes the element and happens only on
**     a closed channel; a channel is closed successfully at
**     most once; a send that starts after its channel's close was observed
**     fails with GORO_ECLOSED;
**   - len <= cap; select returns an index in range, whose case is not nil;
**   - nothing hangs: every G finishes (goro_wait_all), no op reports
**     GORO_EDEADLOCK or an unknown status.
**
**   make fuzz            (runs it with spec/fuzz/corpus-chan/)
*/
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goro.h"

#define NACT 4         /* actors: 0 fuzz thread, 1 outside thread, 2-3 Gs */
#define MAXOPS 256     /* ops per actor */
#define MAXSEQ 1024    /* values per actor (a select may use up to 4 per op) */
#define MAXCASES 4

typedef struct elem {
  uint32_t actor, seq;
  uint64_t check;
} elem;

static uint64_t mix(uint32_t a, uint32_t s) {
  uint64_t x = ((uint64_t)a << 32 | s) * 0x9E3779B97F4A7C15ULL;
  return (x ^ (x >> 29)) | 1; /* never 0: a zeroed element never checks */
}

#define FAIL(...)                                                                   \
  do {                                                                              \
    fprintf(stderr, "fuzz_chan: invariant broken at %s:%d: ", __FILE__, __LINE__);  \
    fprintf(stderr, __VA_ARGS__);                                                   \
    fputc('\n', stderr);                                                            \
    abort();                                                                        \
  } while (0)

/* ------------------------------------------------------------ one input */

typedef struct op {
  uint8_t code, arg, arg2;
} op;

typedef struct world {
  int nch;
  goro_chan *ch[4];
  _Atomic int closed[4];     /* closes that succeeded */
  /* per value (actor * MAXSEQ + seq): */
  _Atomic int8_t sentch[NACT * MAXSEQ]; /* channel + 1 where its send succeeded */
  _Atomic int8_t recvch[NACT * MAXSEQ]; /* channel + 1 where it was received */
  _Atomic int recvn[NACT * MAXSEQ];
} world;

typedef struct actor {
  world *w;
  int id;
  op ops[MAXOPS];
  int nops, pc;
  uint32_t seq;
  /* per receiver: last seq seen from each sender on each channel */
  int64_t last[4][NACT];
  /* a parked op (Gs) */
  int parked;
  goro_case cases[MAXCASES];
  elem elems[MAXCASES];
  int ncases;
  int kind; /* 0 send, 1 recv, 2 select */
  int seen_closed[MAXCASES]; /* a send case's channel was seen closed before */
} actor;

static int64_t deadline_of(const op *o) {
  if ((o->arg2 & 3) != 0) return GORO_NOW;
  return goro_now() + 50000 + (int64_t)(o->arg2 >> 2) * 5000; /* 50..365 us */
}

static void fill(actor *a, elem *e) {
  if (a->seq >= MAXSEQ) FAIL("seq overflow");
  e->actor = (uint32_t)a->id;
  e->seq = a->seq++;
  e->check = mix(e->actor, e->seq);
}

static void got(actor *a, int c, const elem *e, bool ok) {
  world *w = a->w;
  if (!ok) {
    static const elem zero;
    if (memcmp(e, &zero, sizeof zero) != 0) FAIL("a failed receive left a non-zero element");
    if (!goro_chan_closed(w->ch[c])) FAIL("ok == false from an open channel %d", c);
    return;
  }
  if (e->actor >= NACT || e->seq >= MAXSEQ || e->check != mix(e->actor, e->seq))
    FAIL("damaged element {%u, %u, %llx}", e->actor, e->seq, (unsigned long long)e->check);
  int id = (int)(e->actor * MAXSEQ + e->seq);
  if (atomic_fetch_add(&w->recvn[id], 1) != 0) FAIL("value %u/%u received twice", e->actor, e->seq);
  atomic_store(&w->recvch[id], (int8_t)(c + 1));
  if ((int64_t)e->seq <= a->last[c][e->actor])
    FAIL("FIFO: actor %d got %u/%u after seq %lld on channel %d", a->id, e->actor, e->seq,
         (long long)a->last[c][e->actor], c);
  a->last[c][e->actor] = e->seq;
}

static void sent(actor *a, int c, const elem *e) {
  atomic_store(&a->w->sentch[e->actor * MAXSEQ + e->seq], (int8_t)(c + 1));
}

static int chan_index(world *w, goro_chan *c) {
  for (int i = 0; i < w->nch; i++)
    if (w->ch[i] == c) return i;
  FAIL("unknown channel");
}

/* The outcome of an op (immediate, or collected after a park). */
static void outcome(actor *a, int rc, int idx, bool ok) {
  world *w = a->w;
  if (rc == GORO_EDEADLOCK || rc == GORO_EINTR || rc == GORO_EPARK || rc == GORO_EINVAL ||
      rc == GORO_ENOMEM || rc == GORO_ESTOPPED)
    FAIL("op kind %d: unexpected status %d (%s)", a->kind, rc, goro_strerror(rc));
  if (rc == GORO_EAGAIN || rc == GORO_ETIMEDOUT) return;
  if (idx < 0 || idx >= a->ncases) FAIL("select index %d of %d", idx, a->ncases);
  goro_case *cs = &a->cases[idx];
  if (!cs->c) FAIL("a nil case fired");
  int c = chan_index(w, cs->c);
  if (cs->dir == GORO_SEND) {
    if (rc == GORO_ECLOSED) {
      if (!goro_chan_closed(cs->c)) FAIL("ECLOSED on an open channel");
      return;
    }
    if (rc != GORO_OK) FAIL("send: status %d", rc);
    if (a->seen_closed[idx]) FAIL("a send succeeded on a channel closed before it started");
    sent(a, c, &a->elems[idx]);
  } else {
    if (rc != GORO_OK) FAIL("recv: status %d", rc);
    got(a, c, &a->elems[idx], ok);
  }
}

/* Sets up the cases of op o; returns the deadline. */
static int64_t prepare(actor *a, const op *o) {
  world *w = a->w;
  int code = o->code % 8;
  memset(a->elems, 0, sizeof a->elems);
  memset(a->seen_closed, 0, sizeof a->seen_closed);
  if (code == 0 || code == 1) {
    a->kind = code;
    a->ncases = 1;
    a->cases[0] = (goro_case){w->ch[o->arg % w->nch], code == 0 ? GORO_SEND : GORO_RECV,
                              &a->elems[0]};
  } else {
    a->kind = 2;
    a->ncases = 1 + (o->arg & 3);
    for (int i = 0; i < a->ncases; i++) {
      int bits = (o->arg >> 2) ^ (o->arg2 * (i + 1));
      goro_chan *c = (bits & 7) == 7 ? NULL : w->ch[(bits >> 1) % w->nch];
      a->cases[i] = (goro_case){c, (bits >> 3) & 1 ? GORO_SEND : GORO_RECV, &a->elems[i]};
    }
  }
  for (int i = 0; i < a->ncases; i++) {
    goro_case *cs = &a->cases[i];
    if (cs->dir == GORO_SEND) {
      fill(a, &a->elems[i]);
      /* acquire: a close observed here happened before this send */
      if (cs->c) a->seen_closed[i] = atomic_load(&w->closed[chan_index(w, cs->c)]) > 0;
    }
  }
  return deadline_of(o);
}

static void drain(actor *a, int c) {
  elem e;
  bool ok;
  for (;;) {
    memset(&e, 0, sizeof e);
    int rc = goro_chan_recv(a->w->ch[c], &e, &ok, GORO_NOW);
    if (rc == GORO_EAGAIN) return;
    if (rc != GORO_OK) FAIL("drain: status %d", rc);
    got(a, c, &e, ok);
    if (!ok) return;
  }
}

/* Runs ops until done or (in a G) until one parks: returns 1 if parked. */
static int run_ops(actor *a, bool isg) {
  world *w = a->w;
  while (a->pc < a->nops) {
    const op *o = &a->ops[a->pc++];
    int code = o->code % 8;
    int c = o->arg % w->nch;
    switch (code) {
    case 0: case 1: case 2: case 3: {
      int64_t dl = prepare(a, o);
      int idx = 0;
      bool ok = false;
      int rc = goro_select(a->cases, a->ncases, dl, &idx, &ok);
      if (rc == GORO_EPARK) {
        if (!isg) FAIL("EPARK outside a G");
        a->parked = 1;
        return 1;
      }
      outcome(a, rc, idx, ok);
      break;
    }
    case 4: {
      int rc = goro_chan_close(w->ch[c]);
      if (rc == GORO_OK) {
        if (atomic_fetch_add(&w->closed[c], 1) != 0) FAIL("channel %d closed twice", c);
      } else if (rc != GORO_ECLOSED || atomic_load(&w->closed[c]) == 0) {
        /* (another actor may have closed it but not counted it yet) */
        if (rc != GORO_ECLOSED) FAIL("close: status %d", rc);
      }
      break;
    }
    case 5:
      if (goro_chan_len(w->ch[c]) > goro_chan_cap(w->ch[c])) FAIL("len > cap");
      break;
    case 6:
      if (isg) return 2; /* yield */
      sched_yield();
      break;
    case 7:
      a->kind = 1;
      drain(a, c);
      break;
    }
  }
  return 0;
}

static goro_step g_step(goro_g *g, void *ud) {
  (void)g;
  actor *a = ud;
  if (a->parked) {
    int idx = 0;
    bool ok = false;
    int rc = goro_select_finish(&idx, &ok);
    a->parked = 0;
    outcome(a, rc, idx, ok);
  }
  switch (run_ops(a, true)) {
  case 1: return GORO_STEP_PARKED;
  case 2: return GORO_STEP_YIELDED;
  default: return GORO_STEP_DONE;
  }
}

static void *thread_main(void *ud) {
  run_ops(ud, false);
  return NULL;
}

static world W;
static actor A[NACT];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  if (goro_start(4, NULL) != GORO_OK) FAIL("goro_start");
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  world *w = &W;
  memset(w, 0, sizeof *w);
  size_t p = 0;
  w->nch = 1 + data[p++] % 4;
  for (int i = 0; i < w->nch; i++) {
    size_t cap = p < size ? data[p++] % 9 : 0;
    if (cap >= 5) cap = cap == 8 ? 64 : cap - 4; /* 0 is common: rendezvous */
    else if (cap > 0) cap = 0;
    w->ch[i] = goro_chan_new(sizeof(elem), cap, NULL);
    if (!w->ch[i]) FAIL("goro_chan_new");
  }
  for (int k = 0; k < NACT; k++) {
    actor *a = &A[k];
    memset(a, 0, sizeof *a);
    a->w = w;
    a->id = k;
    for (int c = 0; c < 4; c++)
      for (int s = 0; s < NACT; s++) a->last[c][s] = -1;
  }
  /* ops: 3 bytes each, dealt to the actors in turn */
  for (int k = 0; p + 3 <= size; p += 3, k = (k + 1) % NACT) {
    actor *a = &A[k];
    if (a->nops == MAXOPS) break;
    a->ops[a->nops++] = (op){data[p], data[p + 1], data[p + 2]};
  }
  for (int k = 2; k < NACT; k++)
    if (goro_spawn(g_step, &A[k], NULL) != GORO_OK) FAIL("goro_spawn");
  pthread_t t;
  if (pthread_create(&t, NULL, thread_main, &A[1]) != 0) FAIL("pthread_create");
  run_ops(&A[0], false);
  pthread_join(t, NULL);
  int rc = goro_wait_all(goro_now() + 10000000000LL);
  if (rc != GORO_OK) FAIL("goro_wait_all: %s", goro_strerror(rc));
  /* close what is open, drain everything */
  for (int c = 0; c < w->nch; c++) {
    if (goro_chan_close(w->ch[c]) == GORO_OK) atomic_fetch_add(&w->closed[c], 1);
    A[0].kind = 1;
    drain(&A[0], c);
    if (goro_chan_len(w->ch[c]) != 0) FAIL("channel %d not empty after draining", c);
  }
  for (int c = 0; c < w->nch; c++)
    if (atomic_load(&w->closed[c]) != 1) FAIL("channel %d: %d successful closes", c, w->closed[c]);
  for (int id = 0; id < NACT * MAXSEQ; id++) {
    int s = atomic_load(&w->sentch[id]), r = atomic_load(&w->recvch[id]);
    int n = atomic_load(&w->recvn[id]);
    if (s && n != 1) FAIL("value %d/%d sent on %d, received %d times", id / MAXSEQ, id % MAXSEQ, s - 1, n);
    if (!s && n) FAIL("value %d/%d received but never sent", id / MAXSEQ, id % MAXSEQ);
    if (s && r != s) FAIL("value %d/%d sent on channel %d, received on %d", id / MAXSEQ, id % MAXSEQ, s - 1, r - 1);
  }
  for (int c = 0; c < w->nch; c++) goro_chan_unref(w->ch[c]);
  return 0;
}
