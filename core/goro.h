/*
** goro.h — the public face of the goro core: Go's G-M-P scheduler, channels,
** select and timers in C11. This is the only header a binding includes; it
** knows nothing about Lua.
**
** Vocabulary (as in Go's runtime):
**   G  a goroutine: a step callback plus user data. The core calls the step on
**      some M; the step returns DONE, PARKED (it started an operation that
**      answered GORO_EPARK) or YIELDED (runnable again, to the back of a queue).
**   M  an OS thread that runs Gs. Ms are started on demand and parked when idle.
**   P  a logical processor: the right to run Gs, with a local run queue.
**      There are GOMAXPROCS of them.
**
** Blocking operations take one absolute deadline on the monotonic clock, as
** libdill does: GORO_FOREVER (-1), GORO_NOW (0, try without waiting), or the
** value of goro_now() + a duration in nanoseconds.
**
** Who may call what:
**   - From a G's step (a "G context"): every function. A blocking operation
**     never blocks the M: it enqueues the G and answers GORO_EPARK; the step
**     must then return GORO_STEP_PARKED, and when the step is called again the
**     binding collects the outcome with goro_select_finish(). A step that cannot
**     return at that point (it is deep in foreign C frames) first calls
**     goro_nopark(1): operations then block the M with a P handoff instead.
**   - From any other thread ("outside", e.g. the Lua main state): operations
**     block the thread (a futex on Linux) after a short spin, and report
**     GORO_EDEADLOCK when no G could ever wake them (only for waits without
**     a deadline: a wait with one ends at its deadline, as a Go select with
**     a time.After case does; goro_wait_all reports it at once either way), GORO_EINTR after goro_interrupt(). Deadlock
**     detection assumes one outside thread blocks at a time (the Lua main
**     state): outside threads waking each other are not seen. The first
**     outside thread to wait becomes the main thread: it keeps a P
**     between its operations and runs the Gs it readied while it waits,
**     on its own thread (park.c); so a step may run on that thread too.
*/
#ifndef GORO_H
#define GORO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Status codes. Every operation returns GORO_OK (0) or one of these. */
enum {
  GORO_OK = 0,
  GORO_EAGAIN = -1,    /* a try (deadline GORO_NOW) found nothing ready */
  GORO_ECLOSED = -2,   /* send on a closed channel / close of a closed one */
  GORO_EDEADLOCK = -3, /* all goroutines are asleep - deadlock! */
  GORO_ETIMEDOUT = -4, /* the deadline passed */
  GORO_EINTR = -5,     /* an outside wait was interrupted by goro_interrupt() */
  GORO_EPARK = -6,     /* G context: return GORO_STEP_PARKED, then finish */
  GORO_ENOMEM = -7,    /* out of memory */
  GORO_ETHREAD = -8,   /* an M could not be started (cap reached or OS said no) */
  GORO_EINVAL = -9,    /* bad argument */
  GORO_ESTOPPED = -10  /* the runtime is not running */
};

#define GORO_FOREVER ((int64_t)-1)
#define GORO_NOW ((int64_t)0)

/* A human-readable sentence for a status code (static storage). */
const char *goro_strerror(int err);

/* Monotonic clock in nanoseconds (never 0 or negative). */
int64_t goro_now(void);

/* ---------------------------------------------------------------- runtime */

typedef struct goro_g goro_g;

typedef enum {
  GORO_STEP_DONE,    /* the G finished: it is recycled */
  GORO_STEP_PARKED,  /* an operation answered GORO_EPARK: wait for a wake-up */
  GORO_STEP_YIELDED  /* still runnable: requeue it behind the others */
} goro_step;

typedef goro_step (*goro_step_fn)(goro_g *g, void *ud);

/* Called for every G still alive when goro_stop() frees the runtime (parked
** forever, or never run), so the binding can free its user data. */
typedef void (*goro_reap_fn)(goro_g *g, void *ud);

/* In the reap callback: how g's last blocking operation ended, as
** goro_select_finish would have told g. GORO_OK or GORO_ECLOSED: case
** *index completed it (a send case with GORO_OK: the receiver took the
** element); GORO_ETIMEDOUT: its deadline (*index -1); GORO_EAGAIN: nothing
** completed it (*index -2): every element it was sending is still its own. */
int goro_op_outcome(goro_g *g, int *index);

/* Starts the runtime with nprocs Ps (<= 0: env GOMAXPROCS, else online CPUs).
** Idempotent while running. Returns GORO_OK or an error code. */
int goro_start(int nprocs, goro_reap_fn reap);

/* Stops every M, waits up to timeout_ns for running steps to return, frees
** the runtime. Gs still alive are handed to the reap callback. sysmon
** preempts running steps meanwhile; one still running on its P at the
** timeout gets 4 * timeout_ns more (40 * under valgrind, which delivers the
** preemption signal late). If a step is still running then (stuck in C),
** the memory is left to the process exit and GORO_ETIMEDOUT is returned.
** Call from an outside thread. */
int goro_stop(int64_t timeout_ns);

/* Whether the process runs under valgrind (spec/valgrind.sh sets
** GORO_VALGRIND; else valgrind's preload library is in LD_PRELOAD). */
bool goro_under_valgrind(void);

bool goro_running(void);

/* GOMAXPROCS: n > 0 sets it (at most GORO_MAXPROCS); returns the previous
** value, or GORO_EINVAL for a bad n. n == 0 only reads it. */
#define GORO_MAXPROCS 256
int goro_gomaxprocs(int n);

/* Cap on the number of Ms (default 10000). Returns the previous cap. */
int goro_set_maxthreads(int n);
/* fn is called from sysmon when runnable Gs have waited a second while a
** P is idle because the thread cap forbids a new M (every M blocks in a
** call): once with forever false (some M is in a system call, which may
** return: slow, not stuck), and once with forever true if every M waited
** that second on a channel without deadline (nothing can wake them). */
void goro_set_stuck_hook(void (*fn)(int threads, int cap, bool forever));

/* Creates a G that will run fn(g, ud) and makes it runnable. From a G context
** it goes to this P's runnext slot (it runs soon, on this P). */
int goro_spawn(goro_step_fn fn, void *ud, goro_g **out);
/* The id of the last G this thread spawned (*out may be running, ended and
** reused by then: its id is not that G's any more). */
uint64_t goro_spawned_id(void);
/* If goroutine id is parked in an operation (channel, select, sleep), ends
** it as its deadline would (GORO_ETIMEDOUT) and readies it; true if so. */
bool goro_wake_parked(uint64_t id);

/* The G running on this thread, or NULL on an outside thread. */
goro_g *goro_self(void);
uint64_t goro_id(goro_g *g);
void *goro_userdata(goro_g *g);
/* A slot owned by the binding that survives the G's recycling (a pooled
** lua_State lives here). The core never touches it except in goro_stop(),
** where cache_free is called for each non-NULL slot. */
void **goro_cache(goro_g *g);
void goro_set_cache_free(void (*cache_free)(void *));

/* G context: 1 = operations must not park (block the M instead). Returns the
** previous setting. */
int goro_nopark(int on);

/* Handoff around a blocking call (Go's entersyscallblock / exitsyscall): the
** P is given to another M while this M blocks; exit takes a P back, waiting
** for one if none is idle. No-ops outside a G. */
void goro_enter_blocking(void);
void goro_exit_blocking(void);
/* Like goro_enter_blocking, for calls that are usually short (Go's
** entersyscall): the P stays, marked in a syscall; sysmon hands it to
** another M if the call lasts over ~1 ms ("retake"). Leave it with
** goro_exit_blocking, which takes the P back with one CAS if it is still
** there. */
void goro_enter_syscall(void);

/* Outside threads: wake every outside wait with GORO_EINTR, and keep failing
** outside waits with GORO_EINTR until goro_interrupt_clear(). */
void goro_interrupt(void);
void goro_interrupt_clear(void);

/* Signals (Ctrl-C while an outside thread waits). Async-signal-safe: wakes
** the outside wait in progress with GORO_EINTR (and every one after it)
** until goro_signal_take(), which says whether it was called and clears
** it. A host's signal handler calls it when it wants the waiting thread
** back, as the Lua binding does after the interpreter's SIGINT handler. */
void goro_signal_interrupt(void);
bool goro_signal_take(void);
/* This thread's wait hook: fn(ud) is called before each sleep of an
** outside wait on this thread; true ends the wait with GORO_EINTR.
** fn NULL: none. */
typedef bool (*goro_wait_hook)(void *ud);
void goro_set_wait_hook(goro_wait_hook fn, void *ud);

/* Outside thread: wait until no G is alive. GORO_EDEADLOCK if the remaining
** Gs can never finish. From a G context: GORO_EINVAL. */
int goro_wait_all(int64_t deadline);

/* Number of live Gs (runnable, running, blocked, parked). */
int64_t goro_numgoroutine(void);

/* Preemption (sysmon.c): a G that has run 10 ms without returning to the
** scheduler gets its preempt flag set and, with signo > 0, signo is sent to
** its M's thread (the binding's handler makes the G yield). 0: flag only. */
void goro_set_preempt_signal(int signo);
/* Asks sysmon to preempt every G that runs long, for the next 30 ms, even
** when nobody waits for its P (a host closed: its goroutines must come back
** to the scheduler to end). */
void goro_preempt_all(void);
/* Takes (and clears) g's pending preemption request: 0 none, 1 yield,
** 2 yield, and keep asking until it does: sysmon retook the P of g's M
** (the step is stuck outside the core; see sched.h, struct M), so g runs
** without a P until it yields or parks. */
int goro_preempt_take(goro_g *g);
/* The binding's handler of the preemption signal calls this first (it is
** async-signal-safe): it lets sysmon retake the P of a step stuck where
** no hook runs. Without it, such a step keeps its P. */
void goro_preempt_signal(void);

/* ---------------------------------------------------------------- channels */

typedef struct goro_chan goro_chan;

/* A channel of elements of elemsize bytes (1..256) with cap slots (0 =
** unbuffered). drop (may be NULL) releases an element left in the buffer
** when the channel is freed. The new channel has one reference. */
goro_chan *goro_chan_new(size_t elemsize, size_t cap, void (*drop)(void *elem));
void goro_chan_ref(goro_chan *c);
void goro_chan_unref(goro_chan *c);

/* Closes c: wakes every waiter; waiting senders fail with GORO_ECLOSED.
** GORO_ECLOSED if it was already closed. */
int goro_chan_close(goro_chan *c);
size_t goro_chan_len(goro_chan *c);
size_t goro_chan_cap(goro_chan *c);
bool goro_chan_closed(goro_chan *c);

/* Send copies elemsize bytes from elem into the channel; on failure the
** caller still owns the element. Recv copies into elem; *ok is false (and elem
** is zeroed) when c is closed and drained. A G context may get GORO_EPARK. */
int goro_chan_send(goro_chan *c, const void *elem, int64_t deadline);
int goro_chan_recv(goro_chan *c, void *elem, bool *ok, int64_t deadline);

/* ---------------------------------------------------------------- select */

enum { GORO_SEND = 1, GORO_RECV = 2 };

typedef struct goro_case {
  goro_chan *c; /* NULL: the case never fires (a nil channel, as in Go) */
  int dir;      /* GORO_SEND or GORO_RECV */
  void *elem;   /* the value to send / where to receive; valid until done */
} goro_case;

/* Waits until one case can proceed and performs it, choosing uniformly at
** random among ready cases. *index gets the case's position. Returns GORO_OK,
** GORO_EAGAIN (deadline GORO_NOW and nothing ready: Go's default case),
** GORO_ETIMEDOUT, GORO_ECLOSED (the chosen send case's channel is closed;
** *index says which), GORO_EDEADLOCK, GORO_EINTR, or GORO_EPARK in a G context.
** *recvok is as for goro_chan_recv. n == 0 waits for the deadline only
** (goro_select(NULL, 0, d, ...) is sleep). The cases array and the elems
** must stay valid until the operation is finished. */
int goro_select(goro_case *cases, int n, int64_t deadline, int *index,
                bool *recvok);

/* G context, after GORO_EPARK and the step's next call: the operation's
** outcome, as goro_select would have returned it. */
int goro_select_finish(int *index, bool *recvok);

/* Sleep until the deadline (a G parks: GORO_EPARK, finish gives
** GORO_ETIMEDOUT). Outside threads return GORO_OK or GORO_EINTR. */
int goro_sleep(int64_t deadline);

/* ---------------------------------------------------------------- timers */

typedef struct goro_timer goro_timer;

/* fn(arg, now) runs on an M at `when` (and every period ns if period > 0).
** It runs with the timer heap locked: it must not block nor touch timers;
** a non-blocking channel send (deadline GORO_NOW) is what it is for. A
** pending timer keeps the program from being declared deadlocked. */
goro_timer *goro_timer_new(int64_t when, int64_t period,
                           void (*fn)(void *arg, int64_t now), void *arg);
/* period for a one-shot timer that the core frees after it fired (nobody
** may stop or free it). If the runtime stops first, fn runs with now == 0
** so it can release arg. */
#define GORO_TIMER_ONESHOT_FREE ((int64_t)-1)
/* Stops a timer; true if it was still pending. After it returns, fn is not
** running and will not run again. */
bool goro_timer_stop(goro_timer *t);
/* Re-arms a timer (stopped or fired) at when/period. */
void goro_timer_reset(goro_timer *t, int64_t when, int64_t period);
/* Stops and frees. */
void goro_timer_free(goro_timer *t);

/* ---------------------------------------------------------------- stats */

typedef struct goro_stats {
  int gomaxprocs;
  int64_t spawned;      /* Gs created since start */
  int64_t goroutines;   /* live Gs */
  int64_t runnable;     /* in run queues (approximate) */
  int64_t waiting;      /* parked on a channel, select or timer */
  int64_t steals;       /* successful steals */
  int64_t globalgets;   /* Gs taken from the global run queue */
  int64_t mstarts;      /* Ms created */
  int64_t mparks;       /* times an M parked */
  int64_t handoffs;     /* Ps handed off around a blocking call */
  int64_t chanops;      /* channel sends + receives completed */
  int64_t preemptions;  /* Gs asked to yield by sysmon */
  int64_t retakes;      /* Ps retaken from Ms in a long syscall */
  int threads;          /* Ms alive */
  int idlethreads;      /* Ms parked */
  int spinning;         /* Ms spinning */
  int idleprocs;        /* Ps idle */
} goro_stats;

void goro_get_stats(goro_stats *st);

/* Run-queue length of each P (up to n) into lens; returns GOMAXPROCS. */
int goro_runq_lens(int *lens, int n);

/* ---------------------------------------------------------------- introspection (trace.c) */

/* A channel's label (where it was made, for goroutine dumps): a string that
** outlives the channel (interned), set before the channel is shared. */
void goro_chan_set_label(goro_chan *c, const char *label);
const char *goro_chan_label(goro_chan *c);
/* g's status as Go's dump words it: "runnable", "running", "waiting",
** "syscall", "dead", "idle". */
const char *goro_g_state(goro_g *g);
/* The channels g's parked operation waits on, up to max, with their
** directions (GORO_SEND/GORO_RECV); 0 when none (a sleep, not parked).
** Only where g's step cannot run meanwhile (the binding holds it). */
int goro_g_waitchans(goro_g *g, goro_chan **chans, int *dirs, int max);

/* Per-P figures: runs (schedules, plus its short syscalls), steals (Gs this
** P stole), handoffs (blocking calls made on it that handed it off), the
** local run queue's length. Fills up to n; returns how many (GOMAXPROCS). */
typedef struct goro_pstat {
  int64_t runs, steals, handoffs;
  int runqueue;
} goro_pstat;
int goro_pstats(goro_pstat *out, int n);

/* The execution trace (trace.c): Chrome trace-event JSON written to path
** until goro_trace_stop. GORO_EINVAL: already tracing / cannot open the
** file (start), not tracing (stop). */
int goro_trace_start(const char *path);
int goro_trace_stop(void);
bool goro_tracing(void);
/* The function of the next G this thread spawns, for its slices (a string
** that outlives the trace). */
void goro_trace_name(const char *fn);
/* The trace's clock (ticks: not ns), and a slice on the main state's track
** (its waits), t0..t1 from goro_trace_now. */
int64_t goro_trace_now(void);
void goro_trace_slice(const char *name, int64_t t0, int64_t t1);

#endif
