/*
** timer.c — one binary heap of timers (sleep, after, tick, deadlines).
**
** Expired timers are fired by whichever M finds them first in findrunnable
** (a try-lock, so Ms never queue up here) and, when every M is idle, by the
** timer thread, which sleeps on its note until the earliest deadline and is
** woken when an earlier one is added: no busy waiting.
**
** Callbacks run with T.lock held, so goro_timer_stop() returning means the
** callback is not running and never will. Hence a callback must not call
** timer functions. Lock order: T.lock, then channel locks (callbacks send on
** channels), then the scheduler's locks.
**
** Each timer in the heap counts once in live.nactive (deadlock detection,
** park.c: a pending timer may still wake somebody).
*/
#include <stdlib.h>

#include "port.h"
#include "sched.h"

struct goro_timer {
  int64_t when;    /* T.lock */
  int64_t period;  /* T.lock; > 0: re-armed after each firing */
  bool autofree;   /* one-shot, freed here after it fired */
  void (*fn)(void *arg, int64_t now);
  void *arg;
  int idx;         /* T.lock: heap position, -1 when not in the heap */
};

static struct {
  lock_t lock;
  goro_timer **heap;        /* lock */
  int n, cap;               /* lock */
  _Atomic int64_t next;     /* heap top's when, INT64_MAX if empty */
  int64_t sleepuntil;       /* lock: what the timer thread sleeps until */
  bool stop;                /* lock */
  bool started;
  note_t note;              /* the timer thread sleeps here */
  pthread_t thread;
} T;

static bool less(goro_timer *a, goro_timer *b) { return a->when < b->when; }

static void setat(int i, goro_timer *t) {
  T.heap[i] = t;
  t->idx = i;
}

static void siftup(int i) {
  goro_timer *t = T.heap[i];
  while (i > 0) {
    int p = (i - 1) / 2;
    if (!less(t, T.heap[p])) break;
    setat(i, T.heap[p]);
    i = p;
  }
  setat(i, t);
}

static void siftdown(int i) {
  goro_timer *t = T.heap[i];
  for (;;) {
    int c = 2 * i + 1;
    if (c >= T.n) break;
    if (c + 1 < T.n && less(T.heap[c + 1], T.heap[c])) c++;
    if (!less(T.heap[c], t)) break;
    setat(i, T.heap[c]);
    i = c;
  }
  setat(i, t);
}

static void publish_next(void) {
  /* relaxed: a hint for findrunnable; the lock orders the real work. */
  atomic_store_explicit(&T.next, T.n ? T.heap[0]->when : INT64_MAX,
                        memory_order_relaxed);
}

/* lock held. Returns true if t became the earliest and the thread sleeps
** past it. */
static bool heap_add(goro_timer *t) {
  if (T.n == T.cap) {
    int cap = T.cap ? T.cap * 2 : 64;
    goro_timer **h = realloc(T.heap, sizeof *h * (size_t)cap);
    if (!h) abort(); /* a lost timer would hang its waiter: fail loudly */
    T.heap = h;
    T.cap = cap;
  }
  setat(T.n++, t);
  siftup(t->idx);
  active_add(1);
  publish_next();
  return t->idx == 0 && t->when < T.sleepuntil;
}

/* lock held. */
static void heap_del(goro_timer *t) {
  int i = t->idx;
  goro_timer *last = T.heap[--T.n];
  t->idx = -1;
  if (i != T.n) {
    setat(i, last);
    siftdown(i);
    siftup(last->idx);
  }
  publish_next();
  active_add(-1);
}

static void wake_thread(void) { note_wakeup(&T.note); }

/* lock held. */
static void run_expired(int64_t now) {
  while (T.n && T.heap[0]->when <= now) {
    goro_timer *t = T.heap[0];
    if (t->period > 0) {
      t->when += t->period;
      if (t->when <= now) t->when = now + t->period; /* fell behind: skip */
      siftdown(0);
      publish_next();
      t->fn(t->arg, now);
    } else {
      /* fire before leaving the heap: the wake-up it causes counts in
      ** nactive before the timer's own count goes. */
      T.heap[0] = T.heap[--T.n];
      if (T.n) {
        T.heap[0]->idx = 0;
        siftdown(0);
      }
      t->idx = -1;
      publish_next();
      t->fn(t->arg, now);
      if (t->autofree) free(t);
      active_add(-1);
    }
  }
}

static void *timerthread(void *arg) {
  (void)arg;
  lock_acquire(&T.lock);
  while (!T.stop) {
    run_expired(goro_now());
    T.sleepuntil = T.n ? T.heap[0]->when : INT64_MAX;
    note_clear(&T.note);
    lock_release(&T.lock);
    note_sleep(&T.note, 0, T.sleepuntil == INT64_MAX ? -1 : T.sleepuntil);
    lock_acquire(&T.lock);
  }
  lock_release(&T.lock);
  return NULL;
}

void timers_init(void) {
  lock_init(&T.lock);
  T.n = 0;
  T.stop = false;
  T.sleepuntil = INT64_MAX;
  /* relaxed: a hint (publish_next); pthread_create orders it anyway */
  atomic_store_explicit(&T.next, INT64_MAX, memory_order_relaxed);
  note_clear(&T.note);
  port_sigmask om;
  port_nosigint_begin(&om);
  T.started = pthread_create(&T.thread, NULL, timerthread, NULL) == 0;
  port_nosigint_end(&om);
}

void timers_fini(void) {
  lock_acquire(&T.lock);
  T.stop = true;
  lock_release(&T.lock);
  wake_thread();
  if (T.started) pthread_join(T.thread, NULL);
  T.started = false;
  /* timers still pending belong to their owners; forget the heap, but
  ** let self-freeing ones release their argument */
  for (int i = 0; i < T.n; i++) {
    goro_timer *t = T.heap[i];
    t->idx = -1;
    if (t->autofree) {
      t->fn(t->arg, 0);
      free(t);
    }
  }
  free(T.heap);
  T.heap = NULL;
  T.n = T.cap = 0;
  atomic_store_explicit(&T.next, INT64_MAX, memory_order_relaxed); /* a hint */
}

int64_t timers_next(void) {
  return atomic_load_explicit(&T.next, memory_order_relaxed);
}

void timers_run(int64_t now) {
  if (!lock_try(&T.lock)) return; /* someone is firing them */
  run_expired(now);
  lock_release(&T.lock);
}

goro_timer *goro_timer_new(int64_t when, int64_t period,
                           void (*fn)(void *, int64_t), void *arg) {
  if (!fn) return NULL;
  goro_timer *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->fn = fn;
  t->arg = arg;
  t->idx = -1;
  t->autofree = period == GORO_TIMER_ONESHOT_FREE;
  goro_timer_reset(t, when, t->autofree ? 0 : period);
  return t;
}

void goro_timer_reset(goro_timer *t, int64_t when, int64_t period) {
  lock_acquire(&T.lock);
  if (t->idx >= 0) heap_del(t);
  t->when = when;
  t->period = period > 0 ? period : 0;
  bool wake = false;
  if (!T.stop) wake = heap_add(t);
  else if (t->autofree) { /* too late: release the argument now */
    lock_release(&T.lock);
    t->fn(t->arg, 0);
    free(t);
    return;
  }
  lock_release(&T.lock);
  if (wake) wake_thread();
}

bool goro_timer_stop(goro_timer *t) {
  if (!t) return false;
  lock_acquire(&T.lock);
  bool pending = t->idx >= 0;
  if (pending) heap_del(t);
  lock_release(&T.lock);
  return pending;
}

void goro_timer_free(goro_timer *t) {
  if (!t) return;
  goro_timer_stop(t);
  free(t);
}

