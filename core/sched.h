/*
** sched.h — the core's internal structures and the calls between its
** files. Bindings include goro.h only.
**
** Who owns which state (each lock sits beside the fields it guards):
**   sched     sched.c    sched.lock: idle Ms and Ps, the global run queue,
**                        Ms waiting for a P; atomic mirrors of their lengths
**   rt        runtime.c  the runtime's life: running/stopping, GOMAXPROCS,
**                        the Ps, the binding's callbacks
**   live      park.c     what deadlock detection counts (lock-free)
**   counters  runtime.c  goro_get_stats' event counters (relaxed)
**   g.c's free lists and allg, park.c's outside waiters, timer.c's heap and
**   sysmon.c's bookkeeping are file statics behind their own locks.
*/
#ifndef GORO_SCHED_H
#define GORO_SCHED_H

#include <signal.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "goro.h"
#include "lock.h"
#include "trace.h"

#define RUNQ_SIZE 256 /* local run queue slots (a power of two) */
#define SCHED_FAIRNESS 61 /* every 61st tick a P looks at the global queue first */
#if !defined(SPIN_ROUNDS_M)
#define SPIN_ROUNDS_M 4000 /* cpu_relax rounds an idle M spins before sleeping */
#endif
#define SEL_INLINE 4 /* select cases whose sudogs live inside the G */
#define OP_READY 0x80000000u /* selop.word: the outcome is written */
#define OP_SLEEPING 0x40000000u /* selop.word: the waiter sleeps in wait_on */

typedef struct P P;
typedef struct M M;
typedef struct sudog sudog;
typedef struct selop selop;

/* G status (Go's _G*): the transitions and who makes them are in g.c. */
enum {
  G_IDLE,     /* fresh or recycled, not yet started */
  G_RUNNABLE, /* in a run queue, or being put there */
  G_RUNNING,  /* its step is executing on an M */
  G_SYSCALL,  /* its step is in a blocking call, its P handed off */
  G_WAITING,  /* parked: only a wake (goready) moves it on */
  G_DEAD      /* finished, on a free list */
};

/* sudog: one G (or outside thread) waiting on one channel, as in Go. Lives in
** its selop; linked into the channel's wait queue under the channel's lock.
** A waker that dequeues it must first win op->done. */
struct sudog {
  selop *op;        /* the operation it belongs to */
  goro_chan *c;     /* the channel it waits on */
  void *elem;       /* value to send / where to receive */
  sudog *next, *prev; /* wait-queue links: c->lock */
  int idx;          /* case index in the select */
  int dir;          /* GORO_SEND or GORO_RECV */
  bool queued;      /* in c's wait queue: c->lock */
};

/* selop: one blocking operation (a select, a send, a recv, a sleep) in
** flight. It lives in the G (goroutine) or on the waiting thread's stack. The
** first party to CAS `done` 0 -> 1 owns the outcome: a channel peer, close(),
** the deadline timer, or (outside threads) the timeout. It writes fired and
** ok, then wakes the owner (goready / wait_wake). */
struct selop {
  _Atomic uint32_t done; /* 0 pending, 1 claimed */
  int fired;        /* case index, -1 for the deadline; set by the claimer */
  int status;       /* GORO_OK or GORO_ECLOSED; set by the claimer */
  bool recvok;      /* recv cases: a value (true) or closed (false) */
  goro_g *g;        /* waiting G, or NULL for a waiting thread */
  /* Waiting thread's wait word: the claimer sets OP_READY (release) after
  ** writing the outcome, then wakes the address (its last touch: the
  ** waiter may return at once). Deadlock/interrupt checks add 1 to the
  ** low bits under park.c's lock while the op is registered. */
  _Atomic uint32_t word;
  selop *extnext;   /* park.c's lock: registered outside waits */
  bool counted;     /* a G waiting on its thread: out of live.nactive until claimed */
  sudog *sg;        /* n sudogs, one per non-nil case, in lock order */
  int n;
  goro_timer *timer; /* G with a deadline: fires the -1 outcome */
  bool pending;     /* G: a parked op awaits goro_select_finish */
};

struct goro_g {
  goro_step_fn fn;
  void *ud;
  void *cache;      /* binding's slot, survives recycling */
  _Atomic int status; /* G_*: see the transitions in g.c */
  _Atomic uint64_t id; /* set at spawn; goro_wake_parked reads others' */
  goro_g *schedlink; /* global run queue or free list link (owner's lock) */
  M *m;             /* M running it (G_RUNNING/G_SYSCALL), else NULL */
  selop op;         /* the blocking operation in flight, if any */
  sudog sgbuf[SEL_INLINE];
  sudog *sgheap;    /* larger selects: malloc'd, freed at finish */
  int nopark;       /* >0: operations block the M instead of parking */
  size_t allgidx;   /* position in g.c's allg: its lock */
  const char *tname; /* trace: its function (goro_trace_name), set at spawn */
};

/* P status: the state machine, and who may move a P along it, is in
** syscall.c's opening comment. */
enum {
  P_IDLE,    /* on sched.pidle */
  P_RUNNING, /* owned by an M (or by sysmon between a retake and handoffp) */
  P_SYSCALL, /* its M is in a short call (goro_enter_syscall): M or sysmon CAS */
  P_GONE,    /* id >= GOMAXPROCS: nobody's */
  P_RETAKEN, /* sysmon won it from P_SYSCALL or P_OUTSIDE and is handing it off */
  P_OUTSIDE  /* kept by the main thread between its operations (park.c): it
             ** or sysmon CAS, as P_SYSCALL */
};

struct P {
  int id;
  _Atomic int status;        /* P_*: see syscall.c */
  /* Local run queue: a ring. head is advanced by the owner (get) and by
  ** thieves (steal) with CAS; tail only by the owner. Slots are atomics read
  ** relaxed; head/tail acquire/release order them (Go's runqput/runqget). */
  _Atomic uint32_t runqhead;
  _Atomic uint32_t runqtail;
  _Atomic(goro_g *) runq[RUNQ_SIZE];
  _Atomic(goro_g *) runnext; /* readied by this P's G: runs next */
  uint32_t schedtick;        /* owner: incremented every schedule */
  _Atomic uint32_t tick;     /* schedtick mirror + syscalls, read by sysmon */
  M *m;                      /* owning M (sched.lock to change when idle) */
  P *link;                   /* idle list: sched.lock */
  goro_g *gfree;             /* dead Gs, owner only */
  int ngfree;
  uint64_t rand;             /* owner's PRNG state */
  _Atomic int64_t chanops;   /* owner adds (relaxed), stats read */
  _Atomic(goro_g *) curg;    /* G whose step runs on this P (sysmon reads) */
  _Atomic int preempt;       /* sysmon asks the G of tick preempttick to yield */
  _Atomic uint32_t preempttick;
  _Atomic(M *) curm;         /* ... and its M */
};

/* While its G's step runs code outside the core (Lua, or a C function
** goro does not wrap), an M may publish its P in `userp`; sysmon then may
** take the P from there (CAS userp p -> NULL) when the step has held it
** too long (retake_running). The M takes a published P back with a CAS of
** its own before it touches the P again (p_enter, below): exactly one
** side wins. Publishing is lazy: the preemption signal's handler, on the
** M's thread, publishes (goro_preempt_signal), so a core operation costs
** no atomic until sysmon asks; under ThreadSanitizer, which delivers
** signals late, the M publishes at the start of every step and after
** every core operation instead. */
struct M {
  int id;
  pthread_t thread;
  P *p;             /* P held, or NULL (owner only; see userp) */
  _Atomic(P *) userp; /* == p once published, until sysmon retakes it */
  /* owner's thread and its signal handler only (volatile: the handler
  ** reads and writes them between any two instructions of the owner) */
  volatile sig_atomic_t inuser;    /* its G's step runs outside the core */
  volatile sig_atomic_t published; /* userp was set: p_enter must CAS */
  _Atomic int tid;  /* kernel thread id (port_thread_id), 0 unknown: set by
                    ** the M at start, read by sysmon */
  P *nextp;         /* P handed to it when woken (set before note_wakeup) */
  P *oldp;          /* P it had before a blocking call */
  bool spinning;    /* counted in sched.nmspinning */
  bool exiting;     /* runtime stopping: left the loop (sched.lock) */
  note_t park;      /* sleeps here when idle */
  M *link;          /* idle list / waitp list: sched.lock */
  M *alllink;       /* sched.allm: sched.lock */
  goro_g *curg;     /* G being run */
  uint64_t rand;
  /* its G blocks the thread in a channel wait without deadline (select.c
  ** writes, sysmon's check_stuck reads: relaxed, a hint checked for 1 s) */
  _Atomic bool chanwait;
};

/* ------------------------------------------------------------ state */

/* sched.lock and what it guards (sched.c). The atomics mirror the lists'
** lengths for readers without the lock; they change under it. */
typedef struct sched_t {
  lock_t lock;
  M *midle;             /* idle Ms */
  int nmidle;
  int mcount;           /* Ms alive */
  int maxmcount;
  M *allm;
  P *pidle;             /* idle Ps */
  goro_g *runqhead, *runqtail; /* global run queue */
  M *waitp;             /* Ms back from a blocking call, waiting for a P */
  _Atomic int npidle;   /* length of pidle */
  _Atomic int runqsize; /* length of the global run queue */
  _Atomic int nwaitp;   /* length of waitp */
  /* lock-free */
  _Atomic int nmspinning; /* Ms spinning (see wakep) */
  _Atomic int mfail;    /* an M could not be started (sysmon's check_stuck) */
} sched_t;
extern sched_t sched;

/* The runtime's life (runtime.c): written by goro_start/goro_stop, whose
** release store of `running` publishes the rest. */
typedef struct rt_t {
  _Atomic int running;  /* started and not stopping: spawns allowed */
  _Atomic int stopping; /* goro_stop began: Ms leave their loops */
  uint64_t gen;         /* bumped by each goro_start */
  _Atomic int gomaxprocs; /* changed under sched.lock */
  /* Ps made so far; an entry is published (seq_cst store) once its P is
  ** fully set up, and never changes until goro_stop. Read without lock. */
  _Atomic(P *) allp[GORO_MAXPROCS];
  _Atomic int nallp;    /* Ps created (>= gomaxprocs); grows under sched.lock */
  goro_reap_fn reap;
  void (*cache_free)(void *); /* survives goro_stop: set before a start */
} rt_t;
extern rt_t rt;

/* Liveness (park.c explains why deadlock detection is correct). */
typedef struct live_t {
  _Atomic int64_t ngs;  /* live Gs: goro_wait_all's predicate */
  /* Gs that can still make progress (not parked) + pending timers + Gs
  ** blocked on their thread without a deadline. Incremented before the
  ** matching decrement so it never reads 0 falsely. */
  _Atomic int64_t nactive;
  _Atomic int nwaiting; /* Gs parked (stats only, relaxed) */
} live_t;
extern live_t live;

/* Event counters for goro_get_stats (runtime.c); relaxed. */
typedef struct counters_t {
  _Atomic int64_t spawned, steals, globalgets, mstarts, mparks, handoffs,
      chanops, preempt, retake;
} counters_t;
extern counters_t counters;
#define STAT_ADD(c, n) \
  (atomic_fetch_add_explicit(&counters.c, (n), memory_order_relaxed), stat_hook(STAT_##c))

/* Per-thread: the M this thread is (NULL outside). */
extern _Thread_local M *tls_m;

static inline uint64_t fastrand(uint64_t *s) {
  /* xorshift64* */
  uint64_t x = *s;
  x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
  *s = x;
  return x * 0x2545F4914F6CDD1DULL;
}

/* A full fence. ThreadSanitizer does not model fences (gcc rejects them
** under -fsanitize=thread), so there a seq_cst read-modify-write of a
** shared word stands in: TSan then sees the same ordering. */
#if defined(__SANITIZE_THREAD__)
extern _Atomic int sched_fence_word;
#define SEQ_CST_FENCE() atomic_fetch_add_explicit(&sched_fence_word, 0, memory_order_seq_cst)
#else
#define SEQ_CST_FENCE() atomic_thread_fence(memory_order_seq_cst)
#endif

/* ------------------------------------- P ownership with sysmon (struct M) */

/* Publish eagerly where signals come late (see struct M). */
#if defined(__SANITIZE_THREAD__)
#define EAGER_PUBLISH 1
#else
#define EAGER_PUBLISH 0
#endif

/* Publishes m's P for sysmon (struct M); m runs user code. */
static inline void p_publish(M *m) {
  if (!m->p) return;
  /* release: sysmon's acquire CAS that retakes the P (retake_running)
  ** sees every write this M made to it. */
  atomic_store_explicit(&m->userp, m->p, memory_order_release);
  m->published = 1;
}

/* A core operation in a G's step (spawn, ready, blocking-call entry)
** takes m's P back from user mode, where sysmon may have retaken it:
** *pp is the P the operation may use, NULL when m has none (in a blocking
** call, or retaken: the step goes on without a P, its spawns and wake-ups
** go to the global queue). Returns whether p_leave must go back to user
** mode (false when nested in another core operation or called from the
** scheduler itself). Never blocks. */
static inline bool p_enter(M *m, P **pp) {
  if (!m || !m->inuser) {
    *pp = m ? m->p : NULL;
    return false;
  }
  m->inuser = 0;
  /* seq_cst signal fence: from here the signal handler (same thread)
  ** leaves userp alone */
  atomic_signal_fence(memory_order_seq_cst);
  P *p = m->p;
  if (m->published) {
    m->published = 0;
    P *exp = p;
    /* relaxed: winning means nobody else touched p since our own release
    ** store; losing means sysmon owns it and we never touch it again. */
    if (p && !atomic_compare_exchange_strong_explicit(&m->userp, &exp, NULL,
                                                      memory_order_relaxed,
                                                      memory_order_relaxed)) {
      m->p = NULL;
      p = NULL;
    }
  }
  *pp = p;
  return true;
}

/* Back to user mode after p_enter (entered: its result). */
static inline void p_leave(M *m, bool entered) {
  if (!entered) return;
  if (EAGER_PUBLISH) p_publish(m);
  /* seq_cst signal fence: as in execute (sched.c). */
  atomic_signal_fence(memory_order_seq_cst);
  m->inuser = 1;
}

/* ------------------------------------------------ calls between files */

/* runq.c */
void runqput(P *p, goro_g *g, bool next);
goro_g *runqget(P *p);
goro_g *runqsteal(P *p, P *victim, bool stealnext);
bool runqempty(P *p);
int runqlen(P *p);
void globrunqput(goro_g *g);          /* sched.lock held */
void globrunq_add(goro_g *g);         /* takes sched.lock */
void globrunqputbatch(goro_g *h, goro_g *t, int n); /* sched.lock held */
goro_g *globrunqget(P *p, int max);   /* sched.lock held */

/* sched.c: the schedule loop and the P and M lists */
void wakep(void);
goro_g *findrunnable_now(M *m);       /* a G for m's P without blocking, or NULL */
goro_step execute(M *m, goro_g *g);   /* runs one step of g on m (m->p may go) */
void handoffp(P *p);                  /* p is the caller's to give away */
void pidleput(P *p);                  /* sched.lock held */
P *pidleget(void);                    /* sched.lock held */
P *pidletake(P *want);                /* sched.lock held */
M *mget(void);                        /* sched.lock held */
void acquirep(M *m, P *p);

/* g.c: Gs */
void goready(goro_g *g);              /* a parked G becomes runnable */
void gdestroy(P *p, goro_g *g);       /* g's step is done; p: its M's P or NULL */
void gs_reset(void);                  /* goro_start: empty free lists and allg */
void gs_free_all(void);               /* goro_stop: reap and free every G */

/* park.c: liveness and outside waits */
void active_add(int64_t n);           /* nactive += n, checks deadlock at 0 */
void ext_wake_all(void);              /* every outside waiter re-checks */
/* A thread waits for op; outside: deadlock and interrupt checks apply
** (only an outside thread waiting forever can deadlock). */
void ext_wait(selop *op, int64_t deadline, bool outside);
/* The main thread around an operation: takes back the P it kept (its M,
** or NULL on any other thread or inside an M), and keeps it again. Inside
** an M (every goroutine's operation) it is one TLS test. */
M *outside_enter_slow(void);
static inline M *outside_enter(void) { return tls_m ? NULL : outside_enter_slow(); }
void outside_leave(M *m);
void park_reset(void);                /* goro_start */

/* timer.c */
void timers_init(void);
void timers_fini(void);
int64_t timers_next(void);            /* next deadline, or INT64_MAX */
void timers_run(int64_t now);         /* fire expired timers */

/* select.c */
void select_cancel_all(goro_g *g);    /* goro_stop: unlink a parked G's sudogs */

/* syscall.c: retake (called by sysmon) */
bool retake_syscall(P *p);  /* P_SYSCALL or P_OUTSIDE too long -> handoff */
bool retake_running(P *p);  /* a step holds p too long -> handoff */

/* sysmon.c */
void sysmon_start(void);
void sysmon_stop(void);

#endif
