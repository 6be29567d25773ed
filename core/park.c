/*
** park.c — threads that sleep: notes, outside waiters, the live count and
** deadlock detection, goro_wait_all, goro_interrupt.
**
** A G never sleeps a thread: it parks (its step returns) and goready puts
** it back. What sleeps a thread is a note (an idle M, sysmon, the timer
** thread) or an outside wait: an outside thread (the Lua main state), or a
** G that must not park (goro_nopark), waiting for its selop to be claimed.
**
** Deadlock detection. live.nactive counts what can still make progress:
**   + every G that is runnable, running or in a blocking call (spawn adds
**     1; a park commit takes it away, goready gives it back; gdestroy
**     takes it away);
**   + every pending timer (timer.c: it may still fire a wake-up);
**   + every G waiting on its thread without a deadline, while its op is
**     unclaimed: it leaves the count when it starts to wait (select.c) and
**     is put back by whoever claims its op (op_wake) or by its own timeout.
** Whoever makes another party live adds before it (or the party that was
** live) subtracts: goready adds before the waker's own step can end; a
** timer fires its callback before its own count goes (run_expired). So
** nactive never reads 0 while something can still run. At 0 nothing is
** left that could claim an op: no G runs, no timer is pending, every G is
** parked or waits forever on its thread; only another outside thread could,
** which is why one outside thread is assumed to block at a time (goro.h).
**
** An outside waiter registers its op (ext.waiters) before it tests
** nactive; the 1 -> 0 transition (active_add) and goro_interrupt bump the
** word of every registered op. The waiter announces its sleep by setting
** OP_SLEEPING in the word it read, by CAS, and sleeps only while the word
** still holds that value: a bump or a claim in between changes the word and
** the sleep does not happen (or returns at once). So it re-tests after
** every change and never misses the 0. When it reads 0 it claims its own op
** (GORO_EDEADLOCK); if a peer claimed it first, the peer's outcome wins.
** Only a wait without a deadline reports a deadlock: a wait with one ends
** by itself, as a Go select with a time.After case does.
**
** Signals. A host's signal handler (the Lua interpreter's SIGINT handler,
** through the binding) calls goro_signal_interrupt, which may take no
** lock: it sets ext.signalled and bumps the word of the one outside wait
** published in ext.sigop (the first registered), by atomics and a wake
** syscall only. ext.insignal counts the calls in flight: the waiter clears
** sigop (seq_cst), then waits for insignal to read 0 (seq_cst), so a call
** either saw NULL or is counted and finishes before the op's stack goes.
** The portable backend's wake takes a mutex (not async-signal-safe): there
** an outside wait with a wait hook sleeps in slices of EXT_SLICE and
** re-reads the flag. The wait hook (goro_set_wait_hook) is the thread's
** own test, called before each sleep: the binding installs its handler
** there and answers whether the host's handler asked to stop.
**
** The main thread as an M (Go: main is a goroutine). A sleep and a
** futex wake cost ~50 us on this VM, a goroutine's hand-over a flag. So
** the first outside thread to wait (the Lua main state's: one outside
** thread blocks at a time, goro.h) gets an M of its own, mainm, and:
**   - while it waits with that P, it runs the P's Gs on its thread
**     (findrunnable_now + execute, as an M's schedule) until its op is
**     claimed: the Gs main readied itself, its hand-over partners; never
**     the global queue nor a steal, since a G that blocks the thread (a
**     wait in a C call, go.blocking) holds main up until it returns. When
**     none is left it gives the P back (idle, or to an M if Gs remain)
**     and spins, then sleeps as any outside waiter. The G that completes
**     main's op sets OP_READY on main's own thread: no syscall at all.
**   - between its operations it keeps that P as P_OUTSIDE (as an M in a
**     short syscall keeps P_SYSCALL): the next operation takes it back
**     with one CAS (outside_enter), so the Gs main readies go to that P's
**     runnext and run on main's thread at its next wait. sysmon retakes a
**     P_OUTSIDE P that did not change for a period (retake_syscall), as a
**     syscall's: main running its own Lua for long keeps nobody waiting
**     more than ~1-2 ms. Only mainm ever sets P_OUTSIDE, so its CAS cannot
**     take a P that was retaken and given to someone else.
** Lua running at once stays <= GOMAXPROCS + 1 (main's own code), as
** before: main runs Gs only while it holds a P, and its own Lua while its
** P is P_OUTSIDE or gone. Deadlock detection is untouched: main's run
** loop ends when no G is runnable, and the sleep loop below reads nactive.
**
** goro_wait_all waits for live.ngs == 0 instead of a claim. ngs falls
** before nactive (gdestroy: acq_rel, then active_add), so a waiter that
** reads nactive == 0 (acquire) re-reads ngs before reporting a deadlock:
** the last G may just have finished. It reports GORO_EDEADLOCK with or
** without a deadline.
*/
#include <string.h>

#include "port.h"
#include "sched.h"

live_t live;

static struct {
  lock_t lock;
  selop *waiters;         /* lock: outside waits in progress */
  _Atomic uint32_t interrupted; /* goro_interrupt until goro_interrupt_clear */
  _Atomic uint32_t signalled; /* goro_signal_interrupt until goro_signal_take */
  _Atomic(selop *) sigop;     /* the outside wait a signal wakes, or NULL */
  _Atomic int insignal;       /* goro_signal_interrupt calls in flight */
} ext;

/* The main thread's M (see the header): owned by the thread whose
** tls_token address is in main_token (the first outside thread to enter
** an operation after goro_start); mainm_gen says for which runtime. */
static M mainm;
static uint64_t mainm_gen;          /* owner only */
static _Thread_local char tls_token;
static _Atomic(char *) main_token;

#if !defined(MAIN_CHECK_EVERY)
#define MAIN_CHECK_EVERY 64 /* G steps between two calls of the wait hook */
#endif

/* This thread's wait hook (goro_set_wait_hook). */
static _Thread_local goro_wait_hook tls_hook;
static _Thread_local void *tls_hookud;

#if !defined(EXT_SPIN)
#define EXT_SPIN 2000 /* rounds an outside waiter spins: a sleep costs ~50 us */
#endif
#if defined(GORO_WAIT_BACKEND_PORTABLE) && !defined(EXT_SLICE)
#define EXT_SLICE 10000000 /* ns: a hooked outside wait re-reads ext.signalled */
#endif

/* ------------------------------------------------------------ notes */

void note_sleep(note_t *n, int spin, int64_t deadline) {
  for (int i = 0; i < spin; i++) {
    if (note_ready(n)) return;
    cpu_relax();
  }
  for (;;) {
    uint32_t v = 0;
    /* acquire: if the CAS fails on a 1, the waker's release (note_wakeup)
    ** is seen. 0 -> 2: we are about to sleep; note_wakeup's exchange
    ** sees 2 and wakes the address. */
    if (!atomic_compare_exchange_strong_explicit(&n->key, &v, 2,
                                                 memory_order_acquire,
                                                 memory_order_acquire) &&
        v == 1)
      return;
    if (deadline < 0) {
      wait_on(&n->key, 2, -1);
    } else {
      int64_t left = deadline - goro_now();
      if (left <= 0) {
        uint32_t two = 2;
        /* back to 0 unless a wake-up came in the meantime (acquire: as
        ** above, when it did) */
        atomic_compare_exchange_strong_explicit(&n->key, &two, 0,
                                                memory_order_acquire,
                                                memory_order_acquire);
        return;
      }
      wait_on(&n->key, 2, left);
    }
    /* acquire: pairs with the release in note_wakeup. */
    if (atomic_load_explicit(&n->key, memory_order_acquire) == 1) return;
  }
}

/* ------------------------------------------------------------ liveness */

void ext_wake_all(void) {
  lock_acquire(&ext.lock);
  for (selop *op = ext.waiters; op; op = op->extnext) {
    /* release: pairs with the waiter's acquire load of the word; it
    ** re-reads nactive/interrupted after this. A registered op cannot go
    ** away while we hold the lock. */
    if (atomic_fetch_add_explicit(&op->word, 1, memory_order_release) & OP_SLEEPING)
      wait_wake(&op->word, false);
  }
  lock_release(&ext.lock);
}

void active_add(int64_t n) {
  /* acq_rel: a waiter that reads 0 (acquire) sees every claim made before
  ** the count fell (release). */
  if (atomic_fetch_add_explicit(&live.nactive, n, memory_order_acq_rel) + n == 0)
    ext_wake_all();
}

void goro_interrupt(void) {
  /* release: pairs with the waiter's acquire load after the wake-up. */
  atomic_store_explicit(&ext.interrupted, 1, memory_order_release);
  ext_wake_all();
}

void goro_interrupt_clear(void) {
  /* release: as in goro_interrupt. */
  atomic_store_explicit(&ext.interrupted, 0, memory_order_release);
}

void goro_signal_interrupt(void) {
  /* seq_cst, all four: the flag before the count (a waiter that missed
  ** the bump re-reads the flag); the count before the read of sigop, as
  ** the header says. */
  atomic_store_explicit(&ext.signalled, 1, memory_order_seq_cst);
  atomic_fetch_add_explicit(&ext.insignal, 1, memory_order_seq_cst);
  selop *op = atomic_load_explicit(&ext.sigop, memory_order_seq_cst);
  if (op && (atomic_fetch_add_explicit(&op->word, 1, memory_order_seq_cst) & OP_SLEEPING)) {
#if !defined(GORO_WAIT_BACKEND_PORTABLE)
    wait_wake(&op->word, false);
#endif
  }
  atomic_fetch_sub_explicit(&ext.insignal, 1, memory_order_seq_cst);
}

bool goro_signal_take(void) {
  /* acquire: pairs with goro_signal_interrupt's store. */
  return atomic_exchange_explicit(&ext.signalled, 0, memory_order_acquire) != 0;
}

void goro_set_wait_hook(goro_wait_hook fn, void *ud) {
  tls_hook = fn;
  tls_hookud = ud;
}

void park_reset(void) {
  memset(&live, 0, sizeof live);
  lock_init(&ext.lock);
  ext.waiters = NULL;
  atomic_store_explicit(&ext.interrupted, 0, memory_order_relaxed);
  /* relaxed: goro_start publishes it with rt.running. */
  atomic_store_explicit(&main_token, NULL, memory_order_relaxed);
  /* ext.signalled, sigop and insignal survive: a handler may run at any
  ** time, and no wait is in progress across a restart */
}

/* ----------------------------------------------- the main thread's P */

/* mainm if this thread owns it (claiming it if nobody does), else NULL. */
static M *main_m(void) {
  char *none = NULL;
  /* relaxed: the token only tells threads apart; mainm is the owner's. */
  if (atomic_load_explicit(&main_token, memory_order_relaxed) != &tls_token &&
      !atomic_compare_exchange_strong_explicit(&main_token, &none, &tls_token,
                                               memory_order_relaxed,
                                               memory_order_relaxed))
    return NULL;
  if (mainm_gen != rt.gen) { /* a new runtime: the old Ps are gone */
    memset(&mainm, 0, sizeof mainm);
    mainm.id = -1;
    mainm.thread = pthread_self();
    mainm.rand = 0x9E3779B97F4A7C15ULL ^ rt.gen;
    /* relaxed: as mstart's; sysmon reads it to decide on the signal */
    atomic_store_explicit(&mainm.tid, port_thread_id(), memory_order_relaxed);
    mainm_gen = rt.gen;
  }
  return &mainm;
}

M *outside_enter_slow(void) {
  M *m = main_m();
  if (!m) return NULL;
  tls_m = m;
  P *p = m->oldp;
  if (p) {
    m->oldp = NULL;
    int st = P_OUTSIDE;
    /* acquire: pairs with outside_leave's release and orders against
    ** sysmon's CAS (retake_syscall): exactly one of us wins the P. */
    if (atomic_compare_exchange_strong_explicit(&p->status, &st, P_RUNNING,
                                                memory_order_acquire,
                                                memory_order_relaxed)) {
      m->p = p;
      atomic_fetch_add_explicit(&p->tick, 1, memory_order_relaxed);
      if (p->id >= atomic_load_explicit(&rt.gomaxprocs, memory_order_relaxed)) {
        /* GOMAXPROCS shrank: the P retires, its Gs to the global queue */
        m->p = NULL;
        goro_g *g;
        lock_acquire(&sched.lock);
        while ((g = runqget(p)) != NULL) globrunqput(g);
        pidleput(p); /* GONE */
        lock_release(&sched.lock);
        wakep();
      }
    }
  } else if (atomic_load_explicit(&sched.npidle, memory_order_relaxed) > 0) {
    /* an idle P: the Gs this operation readies run here at main's next
    ** wait, instead of waking an M for them */
    lock_acquire(&sched.lock);
    p = pidleget();
    lock_release(&sched.lock);
    if (p) {
      acquirep(m, p);
      atomic_fetch_add_explicit(&p->tick, 1, memory_order_relaxed);
    }
  }
  return m;
}

void outside_leave(M *m) {
  if (!m) return;
  P *p = m->p;
  m->p = NULL;
  tls_m = NULL;
  if (!p) return;
  m->oldp = p;
  atomic_fetch_add_explicit(&p->tick, 1, memory_order_relaxed);
  /* release: what main did with the P is visible to whoever takes it
  ** (sysmon's acquire CAS, or our own in outside_enter). */
  atomic_store_explicit(&p->status, P_OUTSIDE, memory_order_release);
}

/* The main thread waits for op (or, all_gone, for ngs == 0): with a P,
** it runs Gs until the op is claimed (true) or nothing is runnable, an
** interrupt is due, an M waits for a P (false: the P is given away). */
static bool main_run(selop *op, bool all_gone) {
  M *m = tls_m;
  if (!m || m != &mainm || m->curg) return false; /* a G of ours blocks here */
  if (!m->p) return false; /* an idle P's queue is empty: nothing of ours to run */
  /* the acquire loads pair as in ext_wait_pred */
  for (int n = 1;; n++) {
    if (atomic_load_explicit(&op->word, memory_order_acquire) & OP_READY) return true;
    if (all_gone && atomic_load_explicit(&live.ngs, memory_order_acquire) == 0) return true;
    if (atomic_load_explicit(&ext.interrupted, memory_order_acquire) ||
        atomic_load_explicit(&ext.signalled, memory_order_acquire) ||
        (n % MAIN_CHECK_EVERY == 0 && tls_hook && tls_hook(tls_hookud)) ||
        atomic_load_explicit(&sched.nwaitp, memory_order_relaxed) > 0 ||
        /* acquire: as findrunnable's */
        atomic_load_explicit(&rt.stopping, memory_order_acquire) ||
        m->p->id >= atomic_load_explicit(&rt.gomaxprocs, memory_order_relaxed))
      break;
    goro_g *g = findrunnable_now(m);
    if (!g) break;
    execute(m, g);
    if (!m->p) return false; /* retaken, or handed off by a blocking call */
  }
  P *p = m->p;
  m->p = NULL;
  if (!runqempty(p)) {
    handoffp(p); /* its Gs need an M */
    return false;
  }
  /* idle. Gs in a busy P's queue are its M's; one in the global queue may
  ** have found no idle P while we held this one (wakep saw npidle 0): an M
  ** for it. Waking one for every other queue would split hand-over pairs
  ** that share a P (W2) onto two threads. */
  lock_acquire(&sched.lock);
  pidleput(p);
  lock_release(&sched.lock);
  SEQ_CST_FENCE(); /* seq_cst: pairs with wakep's fence (sched.c's header) */
  if (atomic_load_explicit(&sched.runqsize, memory_order_seq_cst) > 0) wakep();
  return false;
}

/* ------------------------------------------------------- outside waits */

/* outside: the op may also be the one a signal wakes; returns whether it is. */
static bool ext_register(selop *op, bool outside) {
  lock_acquire(&ext.lock);
  op->extnext = ext.waiters;
  ext.waiters = op;
  lock_release(&ext.lock);
  selop *none = NULL;
  /* seq_cst: see the header (Signals). */
  return outside && atomic_compare_exchange_strong_explicit(&ext.sigop, &none, op,
                                                            memory_order_seq_cst,
                                                            memory_order_relaxed);
}

static void ext_unregister(selop *op, bool sig) {
  if (sig) {
    /* seq_cst: see the header (Signals); a handler that read op is
    ** counted in insignal until it no longer touches it */
    atomic_store_explicit(&ext.sigop, NULL, memory_order_seq_cst);
    while (atomic_load_explicit(&ext.insignal, memory_order_seq_cst) != 0) cpu_relax();
  }
  lock_acquire(&ext.lock);
  for (selop **pp = &ext.waiters; *pp; pp = &(*pp)->extnext) {
    if (*pp == op) {
      *pp = op->extnext;
      break;
    }
  }
  lock_release(&ext.lock);
}

/* Waits until op is claimed (the claimer's outcome is in op), or claims it
** itself for a deadline, a deadlock, an interrupt. all_gone: goro_wait_all's
** predicate (ngs == 0) instead of a claim, and the result says why it
** ended. All acquire loads below pair with the release of what they read:
** op_wake's OR (OP_READY), gdestroy's decrement (ngs), goro_interrupt's
** store, active_add's decrement (nactive). */
static int ext_wait_pred(selop *op, int64_t deadline, bool all_gone, bool outside) {
  if (outside && main_run(op, all_gone)) return GORO_OK;
  for (int i = 0; i < EXT_SPIN; i++) {
    if (atomic_load_explicit(&op->word, memory_order_acquire) & OP_READY) return GORO_OK;
    if (all_gone && atomic_load_explicit(&live.ngs, memory_order_acquire) == 0) return GORO_OK;
    cpu_relax();
  }
  bool sig = ext_register(op, outside);
  int rc = GORO_OK;
  for (;;) {
    uint32_t w = atomic_load_explicit(&op->word, memory_order_acquire);
    if (w & OP_READY) break;
    int why = 0;
    if (all_gone && atomic_load_explicit(&live.ngs, memory_order_acquire) == 0) break;
    if (outside && (atomic_load_explicit(&ext.interrupted, memory_order_acquire) ||
                    atomic_load_explicit(&ext.signalled, memory_order_acquire) ||
                    (tls_hook && tls_hook(tls_hookud))))
      why = GORO_EINTR;
    else if (outside && (deadline == GORO_FOREVER || all_gone) &&
             atomic_load_explicit(&live.nactive, memory_order_acquire) == 0) {
      /* the last G may have finished between our read of ngs and this one
      ** (gdestroy lowers ngs, then nactive): the acquire read of nactive
      ** == 0 sees its ngs decrement, so read ngs again */
      if (all_gone && atomic_load_explicit(&live.ngs, memory_order_acquire) == 0) break;
      why = GORO_EDEADLOCK;
    }
    else if (deadline > 0 && goro_now() >= deadline) why = GORO_ETIMEDOUT;
    if (why) {
      if (all_gone) { rc = why; break; }
      uint32_t z = 0;
      /* acq_rel: as op_claim (chan.h); acquire on failure: the peer that
      ** won is about to write the outcome, which we then read after its
      ** OP_READY. */
      if (atomic_compare_exchange_strong_explicit(&op->done, &z, 1,
                                                  memory_order_acq_rel,
                                                  memory_order_acquire)) {
        op->fired = -1;
        op->status = why;
        if (op->counted) active_add(1); /* claimed by its own timeout */
        break;
      }
      /* claimed by a peer: its outcome arrives in a moment */
    }
    /* announce the sleep; a change of the word (a claim, a check) since
    ** we read it fails the CAS or the wait: no lost wake-up. acq_rel: the
    ** release side of the announcement pairs with nothing; acquire on
    ** failure: as the load above. */
    uint32_t ws = w | OP_SLEEPING;
    if (w != ws && !atomic_compare_exchange_strong_explicit(&op->word, &w, ws,
                                                            memory_order_acq_rel,
                                                            memory_order_acquire))
      continue;
    int64_t left = -1;
    if (deadline > 0) {
      left = deadline - goro_now();
      if (left < 0) left = 0;
    }
#if defined(EXT_SLICE)
    if (outside && tls_hook && (left < 0 || left > EXT_SLICE)) left = EXT_SLICE;
#endif
    wait_on(&op->word, ws, left);
  }
  ext_unregister(op, sig);
  return rc;
}

void ext_wait(selop *op, int64_t deadline, bool outside) {
  /* A G run by main's wait that blocks the thread (it cannot park) blocks
  ** main too: it takes main's part, so that an interrupt or a deadlock
  ** still ends the wait (its binding raises the error in that G). */
  if (!outside && tls_m == &mainm) outside = true;
  ext_wait_pred(op, deadline, false, outside);
}

int goro_wait_all(int64_t deadline) {
  if (goro_self()) return GORO_EINVAL;
  /* acquire: pairs with goro_start's release store. */
  if (!atomic_load_explicit(&rt.running, memory_order_acquire)) return GORO_OK;
  selop op;
  memset(&op, 0, sizeof op);
  M *om = outside_enter();
  int rc = ext_wait_pred(&op, deadline, true, true);
  outside_leave(om);
  return rc;
}
