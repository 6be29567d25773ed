/*
** trace.c — what the core tells about itself: channel labels and the
** waits of parked Gs (for goroutine dumps, lua/ldump.c), and the execution
** trace (trace.h).
**
** Dumps read a G's operation (g->op) from another thread. That is safe
** only while the G's step cannot run: the binding holds the G (its own
** per-goroutine lock, which the G's M holds around every step), and the
** fields read here (op.pending, op.n, sg[i].c, sg[i].dir) are written only
** by the G's own step (select.c), before it returns PARKED and after it is
** resumed. Wakers write other fields (done, fired, status, queued).
**
** The trace. Every thread that emits (an M, sysmon, the main state)
** appends fixed-size records to a buffer of its own, taken from a list
** of buffers that only grows (a buffer whose thread exited is reused). The
** owner appends without a lock or an atomic read-modify-write (emit); when
** the buffer is full it spools it, raw, under the file's lock; the records
** become Chrome trace-event JSON at stop, off the hot path: a complete slice
** ("X") per step of a G, on the track of the P it ran on, or on its M's
** own track when the P left it during the step (a blocking call's handoff,
** a retake: another M may have run the P meanwhile); instants for spawn,
** block (with the reason), unblock (by whom), steal, handoff, retake,
** preemption; the main state's waits as slices of its own track. A step's
** block and the first unblock it does travel in its slice's record (one
** record, one emit per ping-pong step).
** goro_trace_stop clears trace_on, then spools what each buffer holds,
** writes the JSON and closes the file; a hook that read trace_on just
** before loses its event (its record is older than any later trace).
** Timestamps are ticks of tnow(): the x86 time-stamp counter where there
** is one (invariant on every CPU this runs on; ~8 ns to read against ~20
** for clock_gettime), converted to ns at stop from two goro_now() samples;
** elsewhere goro_now() (CLOCK_MONOTONIC: one clock for all threads);
** a block is stamped before the G's sudogs are queued, so the waker's
** unblock, which must dequeue one first, is always later.
*/
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched.h"
#include "chan.h"

void goro_chan_set_label(goro_chan *c, const char *label) { c->label = label; }
const char *goro_chan_label(goro_chan *c) { return c->label; }

const char *goro_g_state(goro_g *g) {
  /* relaxed: a snapshot for people; nothing is ordered by it */
  switch (atomic_load_explicit(&g->status, memory_order_relaxed)) {
  case G_IDLE: return "idle";
  case G_RUNNABLE: return "runnable";
  case G_RUNNING: return "running";
  case G_SYSCALL: return "syscall";
  case G_WAITING: return "waiting";
  default: return "dead";
  }
}

int goro_g_waitchans(goro_g *g, goro_chan **chans, int *dirs, int max) {
  if (!g->op.pending) return 0;
  int k = 0;
  for (int i = 0; i < g->op.n && k < max; i++) {
    goro_chan *c = g->op.sg[i].c;
    if (k > 0 && chans[k - 1] == c && dirs[k - 1] == g->op.sg[i].dir) continue;
    chans[k] = c;
    dirs[k] = g->op.sg[i].dir;
    k++;
  }
  return k;
}

/* ------------------------------------------------------------ per-P figures */

static _Atomic int64_t pstats[GORO_MAXPROCS][2]; /* steals, handoffs (relaxed) */

void trace_pstat(int kind) {
  M *m = tls_m;
  P *p = m ? (m->p ? m->p : m->oldp) : NULL;
  if (!p) return;
  atomic_fetch_add_explicit(&pstats[p->id][kind == STAT_steals ? 0 : 1], 1,
                            memory_order_relaxed);
}

int goro_pstats(goro_pstat *out, int n) {
  int procs = atomic_load_explicit(&rt.gomaxprocs, memory_order_relaxed);
  int k = 0;
  for (int i = 0; i < n && i < procs && i < rt.nallp; i++, k++) {
    P *p = rt.allp[i];
    out[i].runs = atomic_load_explicit(&p->tick, memory_order_relaxed);
    out[i].steals = atomic_load_explicit(&pstats[i][0], memory_order_relaxed);
    out[i].handoffs = atomic_load_explicit(&pstats[i][1], memory_order_relaxed);
    out[i].runqueue = runqlen(p);
  }
  return k;
}

/* ------------------------------------------------------------ records */

_Atomic int trace_on;

/* ------------------------------------------------------------ the clock */

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
static inline int64_t tnow(void) { return (int64_t)__rdtsc(); }
#else
static inline int64_t tnow(void) { return goro_now(); }
#endif
static int64_t tick0, ns0;   /* tlock: a sample of both clocks at start */
static double tick_ns = 1.0; /* tlock: ns per tick, measured at stop */

int64_t goro_trace_now(void) { return tnow(); }

enum { EV_RUN = 1, EV_BLOCK, EV_UNBLOCK, EV_SPAWN, EV_STAT, EV_SLICE };

typedef struct trec {    /* 64 bytes: the spool's bandwidth is the cost */
  int64_t ts, dur;         /* ticks */
  uint64_t g, by;          /* the G concerned; who did it (0: main/timer); in
                              EV_RUN: the first G its step readied (0: none) */
  const char *name;        /* function, reason, or stat name (static / interned) */
  int64_t bts, uts;        /* EV_RUN: when it blocked, when it readied `by` */
  int32_t tid;
  uint8_t type, arg;
  uint8_t reason;          /* EV_RUN: index in block_reasons, 0: no block */
} trec;
_Static_assert(sizeof(trec) <= 64, "a trace record is 64 bytes at most");

static const char *block_reasons[] = {NULL, "sleep", "select", "chan send", "chan receive"};

#define TBUF_RECS 2048
typedef struct tbuf {
  _Atomic int n;         /* records appended: the owner's; read by stop */
  int w;                 /* tlock: records before it are spooled */
  int inuse;             /* owned by a live thread: tlock */
  struct tbuf *next;     /* tlock */
  trec r[TBUF_RECS];
} tbuf;

static pthread_mutex_t tlock = PTHREAD_MUTEX_INITIALIZER; /* buffers list, the file */
static tbuf *tbufs;
static FILE *tfile;        /* tlock: the JSON file */
static FILE *tspool;       /* tlock: raw records until stop */
static int64_t tstart;     /* ns at start (tlock; read by writers under it) */
static bool tseen[GORO_MAXPROCS + 1]; /* tlock: P tracks used */
static int tmseen[64], ntmseen;         /* tlock: M tracks used (first 64) */
static _Thread_local tbuf *mybuf;
static pthread_key_t tkey;
static pthread_once_t tonce = PTHREAD_ONCE_INIT;

#define TID_MAIN 900
#define TID_SYSMON 901
#define TID_OTHER 902 /* timer thread, other outside threads */
#define TID_M 1000

static _Thread_local bool tls_tracemain; /* this thread started a trace: the main state's */

static void tbuf_release(void *b) {
  pthread_mutex_lock(&tlock);
  ((tbuf *)b)->inuse = 0;
  pthread_mutex_unlock(&tlock);
}
static void tkey_init(void) { pthread_key_create(&tkey, tbuf_release); }

static tbuf *getbuf(void) {
  if (mybuf) return mybuf;
  pthread_once(&tonce, tkey_init);
  pthread_mutex_lock(&tlock);
  tbuf *b = tbufs;
  while (b && b->inuse) b = b->next;
  if (!b && (b = calloc(1, sizeof *b)) != NULL) {
    b->next = tbufs;
    tbufs = b;
  }
  if (b) b->inuse = 1;
  pthread_mutex_unlock(&tlock);
  if (b) pthread_setspecific(tkey, b);
  return mybuf = b;
}

static const char *stat_names[] = {"spawned", "steal", "globalget", "mstart", "mpark",
                                   "handoff", "chanop", "preempt", "retake"};
static const char *end_names[] = {"done", "parked", "yielded"};

/* tlock held: one record as JSON. */
static void write_rec(const trec *r) {
  double ts = (double)(r->ts - tstart) * tick_ns / 1e3, dur = (double)r->dur * tick_ns / 1e3;
  if (r->ts < tstart) return; /* from before this trace started */
  if (r->tid > 0 && r->tid <= GORO_MAXPROCS) tseen[r->tid] = true;
  else if (r->tid >= TID_M) {
    bool have = false;
    for (int i = 0; i < ntmseen; i++) have = have || tmseen[i] == r->tid;
    if (!have && ntmseen < 64) tmseen[ntmseen++] = r->tid;
  }
  switch (r->type) {
  case EV_RUN:
    fprintf(tfile, ",\n{\"ph\":\"X\",\"cat\":\"goroutine\",\"name\":\"G%llu %s\",\"pid\":1,"
                   "\"tid\":%d,\"ts\":%.3f,\"dur\":%.3f,\"args\":{\"g\":%llu,\"fn\":\"%s\","
                   "\"end\":\"%s\"}}",
            (unsigned long long)r->g, r->name ? r->name : "", r->tid, ts, dur,
            (unsigned long long)r->g, r->name ? r->name : "?", end_names[r->arg % 3]);
    if (r->reason && r->reason < sizeof block_reasons / sizeof *block_reasons)
      fprintf(tfile, ",\n{\"ph\":\"i\",\"s\":\"t\",\"cat\":\"goroutine\",\"name\":\"block\","
                     "\"pid\":1,\"tid\":%d,\"ts\":%.3f,\"args\":{\"g\":%llu,\"by\":0,"
                     "\"reason\":\"%s\"}}", r->tid, (double)(r->bts - tstart) * tick_ns / 1e3,
              (unsigned long long)r->g, block_reasons[r->reason]);
    if (r->by)
      fprintf(tfile, ",\n{\"ph\":\"i\",\"s\":\"t\",\"cat\":\"goroutine\",\"name\":\"unblock\","
                     "\"pid\":1,\"tid\":%d,\"ts\":%.3f,\"args\":{\"g\":%llu,\"by\":%llu}}",
              r->tid, (double)(r->uts - tstart) * tick_ns / 1e3, (unsigned long long)r->by,
              (unsigned long long)r->g);
    break;
  case EV_SLICE:
    fprintf(tfile, ",\n{\"ph\":\"X\",\"cat\":\"main\",\"name\":\"%s\",\"pid\":1,\"tid\":%d,"
                   "\"ts\":%.3f,\"dur\":%.3f}", r->name, r->tid, ts, dur);
    break;
  case EV_BLOCK: case EV_UNBLOCK: case EV_SPAWN: case EV_STAT: {
    const char *what = r->type == EV_BLOCK ? "block" : r->type == EV_UNBLOCK ? "unblock"
                       : r->type == EV_SPAWN ? "spawn" : stat_names[r->arg];
    fprintf(tfile, ",\n{\"ph\":\"i\",\"s\":\"t\",\"cat\":\"%s\",\"name\":\"%s\",\"pid\":1,"
                   "\"tid\":%d,\"ts\":%.3f,\"args\":{\"g\":%llu,\"by\":%llu",
            r->type == EV_STAT ? "sched" : "goroutine", what, r->tid, ts,
            (unsigned long long)r->g, (unsigned long long)r->by);
    if (r->type == EV_BLOCK) fprintf(tfile, ",\"reason\":\"%s\"", r->name);
    if (r->type == EV_SPAWN && r->name) fprintf(tfile, ",\"fn\":\"%s\"", r->name);
    fprintf(tfile, "}}");
    break;
  }
  }
}

/* tlock held: b's records from w up to n, raw, to the spool file (JSON is
** made at stop, off the hot path). */
static void spool(tbuf *b, int n) {
  if (tspool && n > b->w) fwrite(b->r + b->w, sizeof b->r[0], (size_t)(n - b->w), tspool);
  b->w = n;
}

/* Appends r to this thread's buffer. No lock, no CAS: only the owner writes
** records and n; stop, under tlock, spools [w, n) of every buffer, and
** the owner resets n to 0 only under tlock too (when its buffer is full),
** so the two never touch the same record. */
static void emit(const trec *r) {
  tbuf *b = getbuf();
  if (!b) return;
  int n = atomic_load_explicit(&b->n, memory_order_relaxed); /* our own */
  b->r[n++] = *r;
  if (n == TBUF_RECS) {
    pthread_mutex_lock(&tlock);
    spool(b, n);
    b->w = 0;
    atomic_store_explicit(&b->n, 0, memory_order_relaxed); /* under tlock: stop waits */
    pthread_mutex_unlock(&tlock);
    return;
  }
  /* release: stop's acquire load of n sees the record written */
  atomic_store_explicit(&b->n, n, memory_order_release);
}

/* The track of the calling thread. */
static int mytid(void) {
  M *m = tls_m;
  if (!m) return tls_tracemain ? TID_MAIN : TID_OTHER;
  return m->p ? m->p->id + 1 : m->id < 0 ? TID_MAIN : TID_M + m->id; /* -1: main's M */
}

static uint64_t curgid(void) {
  M *m = tls_m;
  return m && m->curg ? m->curg->id : 0;
}

/* ------------------------------------------------------------ hooks */

/* The step this thread runs: its start, its P, and its block (if it parks) */
static _Thread_local struct {
  int64_t t0, bts, uts;
  P *p;
  goro_g *g;
  int reason;  /* index in block_reasons, 0: none */
  uint64_t ub; /* the first G this step readied (0: none yet) */
  uint32_t tick;
} run;

void trace_run_begin(M *m, P *p, goro_g *g) {
  run.p = p;
  run.g = g;
  run.reason = 0;
  run.ub = 0;
  run.tick = atomic_load_explicit(&p->tick, memory_order_relaxed);
  run.t0 = tnow();
}

void trace_run_end(M *m, P *p, goro_g *g, int result) {
  if (!run.p) return; /* tracing began during the step */
  trec r = {.ts = run.t0, .dur = tnow() - run.t0, .g = g->id, .name = g->tname,
            .type = EV_RUN, .arg = (uint8_t)result, .bts = run.bts,
            .reason = (uint8_t)run.reason, .uts = run.uts, .by = run.ub};
  /* the P stayed ours the whole step (no handoff, no retake, no syscall) */
  bool kept = p == run.p && atomic_load_explicit(&p->tick, memory_order_relaxed) == run.tick;
  r.tid = kept ? p->id + 1 : m->id < 0 ? TID_MAIN : TID_M + m->id;
  run.p = NULL;
  emit(&r);
}

void trace_block(goro_g *g, int n, int dir) {
  int why = n == 0 ? 1 : n > 1 ? 2 : dir == GORO_SEND ? 3 : 4; /* block_reasons */
  if (run.p && run.g == g) { /* written with the step's slice */
    run.bts = tnow();
    run.reason = why;
    return;
  }
  trec r = {.ts = tnow(), .g = g->id, .type = EV_BLOCK, .tid = mytid(),
            .name = block_reasons[why]};
  emit(&r);
}

void trace_unblock(goro_g *g) {
  if (run.p && run.ub == 0 && tls_m && tls_m->curg == run.g) {
    /* the step's first: written with its slice (a ping-pong step readies
    ** one G: one record per step instead of two) */
    run.uts = tnow();
    run.ub = g->id;
    return;
  }
  trec r = {.ts = tnow(), .g = g->id, .by = curgid(), .type = EV_UNBLOCK, .tid = mytid()};
  emit(&r);
}

void trace_spawn(goro_g *g) {
  trec r = {.ts = tnow(), .g = g->id, .by = curgid(), .type = EV_SPAWN, .tid = mytid(),
            .name = g->tname};
  emit(&r);
}

void trace_stat(int kind) {
  if (kind == STAT_spawned || kind == STAT_chanops) return; /* spawn has its own event */
  trec r = {.ts = tnow(), .by = curgid(), .type = EV_STAT, .arg = (uint8_t)kind,
            .tid = tls_m || tls_tracemain ? mytid() : TID_SYSMON};
  emit(&r);
}

static _Thread_local const char *nextname;
void goro_trace_name(const char *fn) { nextname = fn; }
const char *trace_take_name(void) {
  const char *n = nextname;
  nextname = NULL;
  return n;
}

void goro_trace_slice(const char *name, int64_t t0, int64_t t1) {
  if (!TRACING()) return;
  trec r = {.ts = t0, .dur = t1 - t0, .name = name, .type = EV_SLICE, .tid = TID_MAIN};
  emit(&r);
}

bool goro_tracing(void) { return TRACING(); }

/* ------------------------------------------------------------ start / stop */

int goro_trace_start(const char *path) {
  pthread_mutex_lock(&tlock);
  if (tfile) {
    pthread_mutex_unlock(&tlock);
    return GORO_EINVAL;
  }
  FILE *f = fopen(path, "w");
  if (!f) {
    pthread_mutex_unlock(&tlock);
    return GORO_EINVAL;
  }
  FILE *spool = tmpfile();
  if (!spool) {
    fclose(f);
    pthread_mutex_unlock(&tlock);
    return GORO_EINVAL;
  }
  setvbuf(f, NULL, _IOFBF, 1 << 16);
  setvbuf(spool, NULL, _IOFBF, 1 << 20);
  tfile = f;
  tspool = spool;
  if (!tls_m) tls_tracemain = true;
  tstart = tick0 = tnow();
  ns0 = goro_now();
  memset(tseen, 0, sizeof tseen);
  ntmseen = 0;
  fprintf(f, "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n"
             "{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":1,\"args\":{\"name\":\"goro\"}}");
  pthread_mutex_unlock(&tlock);
  /* seq_cst: hooks that see it see the file open (they take tlock anyway) */
  atomic_store(&trace_on, 1);
  return GORO_OK;
}

static void track(int tid, const char *fmt, int k, int sort) {
  fprintf(tfile, ",\n{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":1,\"tid\":%d,"
                 "\"args\":{\"name\":\"", tid);
  fprintf(tfile, fmt, k);
  fprintf(tfile, "\"}},\n{\"ph\":\"M\",\"name\":\"thread_sort_index\",\"pid\":1,\"tid\":%d,"
                 "\"args\":{\"sort_index\":%d}}", tid, sort);
}

int goro_trace_stop(void) {
  if (!atomic_exchange(&trace_on, 0)) return GORO_EINVAL;
  pthread_mutex_lock(&tlock);
  for (tbuf *b = tbufs; b; b = b->next)
    /* acquire: pairs with emit's release (the records before n written);
    ** an owner that read trace_on just before appends past n: kept in its
    ** buffer, and dropped at a later spool (older than that trace) */
    spool(b, atomic_load_explicit(&b->n, memory_order_acquire));
  int64_t t1 = tnow(), n1 = goro_now();
  if (t1 > tick0 && n1 > ns0) tick_ns = (double)(n1 - ns0) / (double)(t1 - tick0);
  rewind(tspool);
  static trec chunk[TBUF_RECS];
  size_t k;
  while ((k = fread(chunk, sizeof chunk[0], TBUF_RECS, tspool)) > 0)
    for (size_t i = 0; i < k; i++) write_rec(&chunk[i]);
  fclose(tspool);
  tspool = NULL;
  for (int i = 1; i <= GORO_MAXPROCS; i++)
    if (tseen[i]) track(i, "P%d", i - 1, i);
  for (int i = 0; i < ntmseen; i++) track(tmseen[i], "M%d (no P)", tmseen[i] - TID_M, tmseen[i]);
  track(TID_MAIN, "main state", 0, 0);
  track(TID_SYSMON, "sysmon", 0, 899);
  track(TID_OTHER, "timers", 0, 898);
  fprintf(tfile, "\n]}\n");
  int rc = fclose(tfile) == 0 ? GORO_OK : GORO_EINVAL;
  tfile = NULL;
  pthread_mutex_unlock(&tlock);
  return rc;
}
