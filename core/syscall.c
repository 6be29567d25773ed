/*
** syscall.c — blocking calls and the P ownership protocol (Go's
** entersyscall / entersyscallblock / exitsyscall / retake).
**
** A P has exactly one owner at a time: an M (m->p), sysmon (between a won
** retake and handoffp), the idle list (sched.lock), or nobody (gone). Only
** the owner moves its status or its m (thieves take from its run queue,
** lock-free: runq.c); the status says who owns it:
**
**   from       to         who                    how
**   IDLE       RUNNING    any M                  pidleget/pidletake (sched.lock)
**   RUNNING    IDLE       its owner              pidleput (sched.lock): findrunnable
**                                                found nothing, handoffp found no work
**   RUNNING    RUNNING    its owner -> an M      startm(p) / pidleput to an M in
**                                                sched.waitp (sched.lock): handoff
**   RUNNING    SYSCALL    its M                  goro_enter_syscall (release store);
**                                                the M keeps it in m->oldp
**   SYSCALL    RUNNING    its M                  goro_exit_blocking's CAS (acquire)
**   SYSCALL    RETAKEN    sysmon                 retake_syscall's CAS (acquire);
**                                                exactly one of M and sysmon wins
**   RUNNING    OUTSIDE    the main thread's M    outside_leave (park.c): kept
**                                                between main's operations
**   OUTSIDE    RUNNING    the main thread's M    outside_enter's CAS (acquire)
**   OUTSIDE    RETAKEN    sysmon                 retake_syscall, as SYSCALL
**   RETAKEN    IDLE or    sysmon                 handoffp -> pidleput / startm;
**              RUNNING                           the new M's acquirep
**   any        GONE       the owner / gomaxprocs pidleput or goro_gomaxprocs when
**                                                id >= GOMAXPROCS (sched.lock)
**   GONE       IDLE       goro_gomaxprocs        pidleput as GOMAXPROCS grows (or
**                                                RUNNING, to an M in sched.waitp)
**
** Two more moves change the owner without changing the status:
**   - goro_enter_blocking: the M drops the P (m->p = NULL, m->oldp = p) and
**     hands it off at once (handoffp): RUNNING to a new M or IDLE.
**   - retake_running: while its G's step runs outside the core, an M may
**     publish its RUNNING P in m->userp (sched.h, struct M); sysmon takes it
**     by CAS userp p -> NULL and hands it off; the M, at its next core
**     operation, takes it back by its own CAS (p_enter) or learns that it
**     lost and goes on without a P.
** An M back from a blocking call whose P is gone takes its old P if idle,
** else any idle P, else waits in sched.waitp for pidleput to hand it one.
**
** Readers without ownership only take hints from the status: thieves skip
** IDLE Ps, runqgrab takes runnext only from a P not RUNNING, sysmon looks
** for SYSCALL and busy RUNNING Ps. A P's `tick` changes at every schedule
** and every syscall entry/exit, so sysmon sees one call last.
*/
#include "sched.h"

/* Common to both entries: the G enters a call, its M drops p. Returns the P
** to hand off or mark, NULL when the M had none. */
static P *syscall_enter(M *m) {
  P *p;
  bool entered = p_enter(m, &p);
  if (!p) { /* already without a P: exit_blocking finds one */
    p_leave(m, entered);
    return NULL;
  }
  atomic_store_explicit(&m->curg->status, G_SYSCALL, memory_order_relaxed);
  /* release: pairs with sysmon's acquire of curg (it sees the P free). */
  atomic_store_explicit(&p->curg, NULL, memory_order_release);
  m->oldp = p;
  m->p = NULL;
  atomic_fetch_add_explicit(&p->tick, 1, memory_order_relaxed);
  p_leave(m, entered); /* m->p is NULL: nothing published */
  return p;
}

void goro_enter_blocking(void) {
  M *m = tls_m;
  if (!m || !m->curg) return;
  P *p = syscall_enter(m);
  if (!p) return;
  STAT_ADD(handoffs, 1);
  handoffp(p);
}

/* Go's entersyscall: the P stays with this M, marked P_SYSCALL; if the
** call lasts, sysmon retakes it (sysmon.c). Cheap when the call is short:
** exit_blocking takes the P back with one CAS. */
void goro_enter_syscall(void) {
  M *m = tls_m;
  if (!m || !m->curg) return;
  P *p = syscall_enter(m);
  if (!p) return;
  /* release: everything this M did with the P is visible to a retaker
  ** (pairs with retake_syscall's acquire CAS). */
  atomic_store_explicit(&p->status, P_SYSCALL, memory_order_release);
}

/* sysmon: takes a P from an M that has been in a syscall too long. */
bool retake_syscall(P *p) {
  int st = P_SYSCALL;
  /* acquire: pairs with enter_syscall's release (or park.c's, for
  ** P_OUTSIDE); P_RETAKEN holds it while handoffp decides (it sets the
  ** P's next status). */
  if (!atomic_compare_exchange_strong_explicit(&p->status, &st, P_RETAKEN,
                                               memory_order_acquire,
                                               memory_order_relaxed) &&
      (st != P_OUTSIDE ||
       !atomic_compare_exchange_strong_explicit(&p->status, &st, P_RETAKEN,
                                                memory_order_acquire,
                                                memory_order_relaxed)))
    return false;
  STAT_ADD(retake, 1);
  STAT_ADD(handoffs, 1);
  handoffp(p);
  return true;
}

/* The M has p again after a blocking call: sysmon may look at it. */
static void syscall_resume(M *m, P *p) {
  atomic_fetch_add_explicit(&p->tick, 1, memory_order_relaxed);
  /* release: sysmon's acquire loads of curm/curg see a consistent pair. */
  atomic_store_explicit(&p->curm, m, memory_order_release);
  atomic_store_explicit(&p->curg, m->curg, memory_order_release);
}

void goro_exit_blocking(void) {
  M *m = tls_m;
  if (!m || !m->curg) return;
  P *cur;
  bool entered = p_enter(m, &cur);
  if (cur) { /* never left it */
    p_leave(m, entered);
    return;
  }
  if (m->oldp) { /* fast path: our P was not retaken (exitsyscallfast) */
    int st = P_SYSCALL;
    /* acquire: pairs with the release in enter_syscall (same thread) and
    ** orders against sysmon's CAS: exactly one of us wins the P. */
    if (atomic_compare_exchange_strong_explicit(&m->oldp->status, &st, P_RUNNING,
                                                memory_order_acquire,
                                                memory_order_relaxed)) {
      P *p = m->oldp;
      m->oldp = NULL;
      m->p = p;
      syscall_resume(m, p);
      atomic_store_explicit(&m->curg->status, G_RUNNING, memory_order_relaxed);
      p_leave(m, entered);
      return;
    }
  }
  lock_acquire(&sched.lock);
  P *p = NULL;
  if (m->oldp && m->oldp->id < atomic_load_explicit(&rt.gomaxprocs, memory_order_relaxed))
    p = pidletake(m->oldp);
  if (!p) p = pidleget();
  if (!p) {
    note_clear(&m->park);
    m->nextp = NULL;
    m->link = sched.waitp;
    sched.waitp = m;
    atomic_fetch_add_explicit(&sched.nwaitp, 1, memory_order_relaxed);
    lock_release(&sched.lock);
    note_sleep(&m->park, SPIN_ROUNDS_M, -1);
    p = m->nextp;
    m->nextp = NULL;
  } else {
    lock_release(&sched.lock);
  }
  m->oldp = NULL;
  if (p) { /* NULL: the runtime stops; execute() sees it */
    acquirep(m, p);
    syscall_resume(m, p);
  }
  atomic_store_explicit(&m->curg->status, G_RUNNING, memory_order_relaxed);
  p_leave(m, entered);
}

/* sysmon: the G on p has held it for too long outside the core (a C
** function that is not ours, or Lua code that cannot yield) while other
** work waits: take p from its M (Go's retake, for a G it cannot preempt)
** and hand it to another. The M finds out at its next core operation
** (p_enter) and goes on without a P; its G yields at the first chance (the
** preemption hook asks it to) and waits in the global queue. */
bool retake_running(P *p) {
  /* acquire: pairs with execute's release store of curm. */
  M *m = atomic_load_explicit(&p->curm, memory_order_acquire);
  if (!m) return false;
  P *exp = p;
  /* acquire: pairs with the M's release store of userp; we see all it did
  ** with p. Fails unless m holds exactly p outside the core right now. */
  if (!atomic_compare_exchange_strong_explicit(&m->userp, &exp, NULL,
                                               memory_order_acquire,
                                               memory_order_relaxed))
    return false;
  atomic_store_explicit(&p->curg, NULL, memory_order_relaxed);
  /* a preemption request made for that G is void now */
  atomic_fetch_add_explicit(&p->tick, 1, memory_order_relaxed);
  STAT_ADD(retake, 1);
  STAT_ADD(handoffs, 1);
  handoffp(p);
  return true;
}

/* Signal handler context (async-signal-safe): sysmon's preemption signal
** reached this thread; if a step runs user code here, publish its P so
** sysmon can retake it should the step not yield. */
void goro_preempt_signal(void) {
  M *m = tls_m;
  if (!m || !m->inuser || m->published) return;
  p_publish(m);
}
