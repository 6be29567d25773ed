/*
** sched.h — internal structures of the scheduler, shared by sched.c, runq.c,
** chan.c, timer.c and sysmon.c. Bindings include goro.h only.
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

#define RUNQ_SIZE 256 /* local run queue slots (a power of two) */
#define SCHED_FAIRNESS 61 /* every 61st tick a P looks at the global queue first */
#define GFREE_MAX 64 /* a P keeps at most this many dead Gs */
#define SEL_INLINE 4 /* select cases whose sudogs live inside the G */
#define OP_READY 0x80000000u /* selop.word: the outcome is written */
#define OP_SLEEPING 0x40000000u /* selop.word: the waiter is in futex_wait */

typedef struct P P;
typedef struct M M;
typedef struct sudog sudog;
typedef struct selop selop;

/* G status (Go's _G*): who may change it is said at each transition. */
enum {
  G_IDLE,     /* fresh or recycled, not yet started */
  G_RUNNABLE, /* in a run queue, or being put there */
  G_RUNNING,  /* its step is executing on an M */
  G_SYSCALL,  /* its step is in a blocking call, its P handed off */
  G_WAITING,  /* parked: only a wake (goro_ready) moves it on */
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
** ok, then wakes the owner (goro_ready / futex). */
struct selop {
  _Atomic uint32_t done; /* 0 pending, 1 claimed */
  int fired;        /* case index, -1 for the deadline; set by the claimer */
  int status;       /* GORO_OK or GORO_ECLOSED; set by the claimer */
  bool recvok;      /* recv cases: a value (true) or closed (false) */
  goro_g *g;        /* waiting G, or NULL for a waiting thread */
  /* Waiting thread's futex word: the claimer sets OP_READY (release) after
  ** writing the outcome, then futex-wakes the address (its last touch: the
  ** waiter may return at once). Deadlock/interrupt checks add 1 to the
  ** low bits under sched.extlock while the op is registered. */
  _Atomic uint32_t word;
  selop *extnext;   /* sched.extlock: registered outside waits */
  bool counted;     /* a G waiting on its thread: out of sched.nactive until claimed */
  sudog *sg;        /* n sudogs, one per non-nil case, in lock order */
  int n;
  goro_timer *timer; /* G with a deadline: fires the -1 outcome */
  bool pending;     /* G: a parked op awaits goro_select_finish */
};

struct goro_g {
  goro_step_fn fn;
  void *ud;
  void *cache;      /* binding's slot, survives recycling */
  _Atomic int status; /* G_*: see the transitions in sched.c */
  uint64_t id;
  goro_g *schedlink; /* global run queue or free list link (owner's lock) */
  M *m;             /* M running it (G_RUNNING/G_SYSCALL), else NULL */
  selop op;         /* the blocking operation in flight, if any */
  sudog sgbuf[SEL_INLINE];
  sudog *sgheap;    /* larger selects: malloc'd, freed at finish */
  int nopark;       /* >0: operations block the M instead of parking */
  size_t allgidx;   /* position in sched.allg: allglock */
};

/* P status. */
enum { P_IDLE, P_RUNNING, P_SYSCALL, P_GONE, P_RETAKEN }; /* P_RETAKEN: sysmon owns it, handing it off */

struct P {
  int id;
  _Atomic int status;        /* P_*; P_SYSCALL -> P_IDLE by retake (CAS) */
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
** its own before it touches the P again (p_enter in sched.c): exactly one
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
  P *nextp;         /* P handed to it when woken (set before note_wakeup) */
  P *oldp;          /* P it had before a blocking call */
  bool spinning;    /* counted in sched.nmspinning */
  bool exiting;     /* runtime stopping: leave the loop */
  note_t park;      /* sleeps here when idle */
  M *link;          /* idle list / all list: sched.lock */
  M *alllink;
  goro_g *curg;     /* G being run */
  uint64_t rand;
};

/* The scheduler's globals. Fields are grouped by what protects them. */
typedef struct sched_t {
  lock_t lock;          /* protects the fields down to the next comment */
  M *midle;             /* idle Ms */
  int nmidle;
  int mcount;           /* Ms alive */
  int maxmcount;
  M *allm;
  P *pidle;             /* idle Ps */
  goro_g *runqhead, *runqtail; /* global run queue */
  M *waitp;             /* Ms back from a blocking call, waiting for a P */
  /* atomics */
  _Atomic int npidle;   /* length of pidle (read without the lock) */
  _Atomic int nmspinning;
  _Atomic int runqsize; /* length of the global run queue */
  _Atomic int gomaxprocs;
  _Atomic int nwaitp;   /* Ms in waitp */
  _Atomic int64_t ngs;  /* live Gs */
  /* Liveness for deadlock detection: Gs that can still make progress (not
  ** parked) + pending timers + Ms blocked outside the scheduler with a G.
  ** Incremented before the matching decrement so it never reads 0 falsely. */
  _Atomic int64_t nactive;
  _Atomic int running;  /* runtime started */
  _Atomic int stopping;
  _Atomic uint64_t goidgen;
  uint64_t gen;         /* runtime generation: bumped by each goro_start */
  /* Ps made so far; an entry is published (seq_cst store) once its P is
  ** fully set up, and never changes until goro_stop. Read without lock. */
  _Atomic(P *) allp[GORO_MAXPROCS];
  _Atomic int nallp;    /* Ps created (>= gomaxprocs); grows under sched.lock */
  /* dead Gs shared between Ps: gflock */
  lock_t gflock;
  goro_g *gfree;
  _Atomic int ngfree; /* read without gflock as a hint */
  /* every G ever made (for goro_stop): allglock */
  lock_t allglock;
  goro_g **allg;
  size_t nallg, capallg;
  goro_reap_fn reap;
  void (*cache_free)(void *);
  /* outside waiters for deadlock/interrupt wake-ups: extlock */
  lock_t extlock;
  _Atomic uint32_t interrupted;
  /* counters for goro_get_stats (relaxed) */
  _Atomic int64_t c_spawned, c_steals, c_globalgets, c_mstarts, c_mparks,
      c_handoffs, c_chanops, c_preempt, c_retake;
  _Atomic int nwaiting;
  _Atomic int mfail;          /* an M could not be started (the cap was reached) */
  _Atomic int stuckreported;  /* the stuck hook was called */
  /* sysmon */
  pthread_t sysmon;
  bool sysmon_started;
  note_t sysmon_note;
} sched_t;

extern sched_t sched;

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

#define STAT_ADD(c, n) atomic_fetch_add_explicit(&sched.c, (n), memory_order_relaxed)

/* runq.c */
void runqput(P *p, goro_g *g, bool next);
goro_g *runqget(P *p, bool *inherit);
goro_g *runqsteal(P *p, P *victim, bool stealnext);
bool runqempty(P *p);
int runqlen(P *p);
void globrunqput(goro_g *g);          /* sched.lock held */
void globrunq_add(goro_g *g);         /* takes sched.lock */
void globrunqputbatch(goro_g *h, goro_g *t, int n); /* sched.lock held */
goro_g *globrunqget(P *p, int max);   /* sched.lock held */

/* sched.c */
void goro_ready(goro_g *g);           /* a parked G becomes runnable */
void wakep(void);
void active_add(int64_t n);           /* nactive += n, checks deadlock at 0 */
/* A thread waits for op (see sched.c); outside: deadlock and interrupt
** checks apply (only an outside thread waiting forever can deadlock). */
int ext_wait(selop *op, int64_t deadline, bool outside);

/* timer.c */
void timers_init(void);
void timers_fini(void);
int64_t timers_next(void);            /* next deadline, or INT64_MAX */
int timers_run(int64_t now);          /* fire expired timers; count fired */
void timers_wake_sleeper(void);

/* chan.c */
void select_cancel_all(goro_g *g);

bool retake_syscall(P *p);  /* sysmon: P_SYSCALL too long -> handoff */
bool retake_running(P *p);  /* sysmon: a step holds p too long -> handoff */
void check_stuck(int64_t now); /* sysmon: work waits for a thread the cap forbids */

/* sysmon.c */
void sysmon_start(void);
void sysmon_stop(void);

#endif
