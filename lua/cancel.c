/*
** cancel.c — the cancelled goroutines (cancel.h).
**
** go.cancel(id) adds id to a small set and looks for the thread running
** goroutine id at that moment: each thread that runs goroutine steps has a
** record (made on its first step, dropped at its exit) whose `curid` it
** sets around every step. A thread found running it gets the preemption
** signal; the handler arms gstate.c's hook, which raises the cancellation
** error. A goroutine not running now sees the mark when its next step
** starts (cancel_running); one parked on a channel, a select or a timer
** is woken for it (goro_wake_parked: its operation ends as a deadline
** would). The two sides are a Dekker pair: the step
** stores curid then reads ncancel; go.cancel stores ncancel then reads
** curid (seq_cst both): one of them sees the other, so a step in a busy
** loop is never missed.
** The set is usually empty: a step then pays one seq_cst store and one
** load at its start, and a relaxed store at its end (cancel_stopped). An
** id stays marked until its goroutine ends (cancel_take) or nothing is
** alive (cancel_clear): go.cancel of a goroutine that already ended leaves
** a mark until then, costing a locked look-up per step.
*/
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "cancel.h"
#include "goro.h"

typedef struct mrec {
  struct mrec *next;       /* cancellock */
  pthread_t thread;        /* the thread it describes */
  _Atomic uint64_t curid;  /* goroutine its step runs now, 0 none */
} mrec;

static pthread_mutex_t cancellock = PTHREAD_MUTEX_INITIALIZER;
static mrec *mrecs;           /* cancellock: threads that ran a step, alive */
static uint64_t *ids;         /* cancellock: cancelled goroutines */
static int nids, capids;      /* cancellock */
static _Atomic int ncancel;   /* nids, written under the lock, read without */
static pthread_key_t mreckey;
static pthread_once_t mreconce = PTHREAD_ONCE_INIT;
static _Thread_local mrec *tls_mrec;

static void mrec_drop(void *p) { /* thread exit: unlinked before the thread ends */
  pthread_mutex_lock(&cancellock);
  for (mrec **pp = &mrecs; *pp; pp = &(*pp)->next)
    if (*pp == p) {
      *pp = ((mrec *)p)->next;
      break;
    }
  pthread_mutex_unlock(&cancellock);
  free(p);
}

static void mrec_init(void) { pthread_key_create(&mreckey, mrec_drop); }

static mrec *mymrec(void) {
  if (tls_mrec) return tls_mrec;
  pthread_once(&mreconce, mrec_init);
  mrec *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->thread = pthread_self();
  pthread_mutex_lock(&cancellock);
  r->next = mrecs;
  mrecs = r;
  pthread_mutex_unlock(&cancellock);
  pthread_setspecific(mreckey, r);
  return tls_mrec = r;
}

static int find(uint64_t id) { /* cancellock */
  for (int i = 0; i < nids; i++)
    if (ids[i] == id) return i;
  return -1;
}

bool cancel_pending(uint64_t id) {
  /* seq_cst: the load of the Dekker pair (see the top) */
  if (id == 0 || atomic_load_explicit(&ncancel, memory_order_seq_cst) == 0) return false;
  pthread_mutex_lock(&cancellock);
  bool on = find(id) >= 0;
  pthread_mutex_unlock(&cancellock);
  return on;
}

bool cancel_running(uint64_t id) {
  mrec *r = mymrec();
  /* seq_cst: the store of the Dekker pair (see the top) */
  if (r) atomic_store_explicit(&r->curid, id, memory_order_seq_cst);
  return cancel_pending(id);
}

void cancel_stopped(void) {
  /* relaxed: only the start of a step is half of the Dekker pair; a
  ** go.cancel that still reads the old id signals a thread whose hook then
  ** finds its own goroutine not cancelled (cancel_pending), and does
  ** nothing */
  if (tls_mrec) atomic_store_explicit(&tls_mrec->curid, 0, memory_order_relaxed);
}

bool cancel_take(uint64_t id) {
  if (!cancel_pending(id)) return false;
  pthread_mutex_lock(&cancellock);
  int i = find(id);
  if (i >= 0) {
    ids[i] = ids[--nids];
    atomic_store_explicit(&ncancel, nids, memory_order_seq_cst); /* pairs as above */
  }
  pthread_mutex_unlock(&cancellock);
  return i >= 0;
}

void cancel_request(uint64_t id, int signo) {
  if (id == 0) return;
  pthread_mutex_lock(&cancellock);
  if (find(id) < 0) {
    if (nids == capids) {
      int cap = capids ? capids * 2 : 8;
      uint64_t *a = realloc(ids, sizeof *a * (size_t)cap);
      if (!a) {
        pthread_mutex_unlock(&cancellock);
        return;
      }
      ids = a;
      capids = cap;
    }
    ids[nids++] = id;
    /* seq_cst: the store of the Dekker pair (see the top) */
    atomic_store_explicit(&ncancel, nids, memory_order_seq_cst);
  }
  /* the records are unlinked under the lock before their thread ends: a
  ** thread found here is alive */
  for (mrec *r = mrecs; r; r = r->next)
    if (atomic_load_explicit(&r->curid, memory_order_seq_cst) == id && signo > 0)
      pthread_kill(r->thread, signo);
  pthread_mutex_unlock(&cancellock);
  /* parked: its operation ends as a deadline would; its next step raises */
  goro_wake_parked(id);
}

void cancel_clear(void) {
  pthread_mutex_lock(&cancellock);
  nids = 0;
  atomic_store_explicit(&ncancel, 0, memory_order_seq_cst);
  pthread_mutex_unlock(&cancellock);
}
