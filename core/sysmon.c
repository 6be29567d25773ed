/*
** sysmon.c — the system monitor (Go's sysmon): a thread without a P that
** looks at every P each millisecond and asks a G that has run for more than
** GORO_PREEMPT_NS without going back to the scheduler to yield.
**
** A P's `tick` changes at every schedule (execute). If sysmon sees the
** same tick for 10 ms, the G running there has held the P that long: sysmon
** sets the G's `preempt` flag and, if the binding asked for it, sends the
** preemption signal to that M's thread (Go's preemptone + SIGURG). The
** binding's handler, on that thread, arms a one-shot hook that makes the
** running code yield; the G goes to the back of the global queue. If the G
** cannot yield yet (a C boundary), the request is repeated every 10 ms.
**
** sysmon reads p->curg (only to see the P busy) and p->curm (atomics
** written by the owner in execute()); Ms are never freed while the runtime
** runs, so a stale M at worst gets a signal its handler finds nothing to do
** for: the request in the P carries the tick it was made for.
*/
#include "port.h"
#include "sched.h"

#if !defined(GORO_PREEMPT_NS)
#define GORO_PREEMPT_NS 10000000 /* 10 ms, as Go's forcePreemptNS */
#endif
#define SYSMON_PERIOD_NS 1000000 /* look every 1 ms */
#define RETAKE_GRACE_NS 2000000  /* after a preemption request, then retake */

static struct {
  note_t note;          /* sysmon sleeps here; woken to stop */
  _Atomic int stop;
  _Atomic int signo;    /* preemption signal, 0: flag only */
  bool started;
  pthread_t thread;
  uint32_t lasttick[GORO_MAXPROCS]; /* sysmon only */
  int64_t since[GORO_MAXPROCS];     /* sysmon only: when lasttick was seen */
  bool asked[GORO_MAXPROCS];        /* sysmon only: preemption asked at lasttick */
  bool incall[GORO_MAXPROCS];       /* sysmon only: its M was seen in a call a
                                    ** signal would cut (preemptone) */
  int stuckreported;                /* sysmon only: the stuck hook said 1 slow, 2 forever */
  _Atomic int64_t preemptall;       /* until then, preempt every long runner */
} S;

void goro_preempt_all(void) {
  /* relaxed: a hint, read by sysmon at its next look */
  atomic_store_explicit(&S.preemptall, goro_now() + 3 * GORO_PREEMPT_NS, memory_order_relaxed);
}

void goro_set_preempt_signal(int signo) {
  atomic_store_explicit(&S.signo, signo, memory_order_relaxed);
}

/* The request lives in the P (Ps are never freed while the runtime runs;
** a dead G may be), stamped with the P's tick: it is for the G of that
** scheduling slot only. */
int goro_preempt_take(goro_g *g) {
  M *m = tls_m;
  if (!g || !m || m->curg != g) return 0;
  /* sysmon retook the P while the step ran outside the core (m->p is
  ** stale until p_enter notices; userp NULL says so; G_SYSCALL: in a
  ** blocking call, whose exit finds a P) */
  if (m->inuser && atomic_load_explicit(&g->status, memory_order_relaxed) != G_SYSCALL &&
      (!m->p || (m->published && atomic_load_explicit(&m->userp, memory_order_relaxed) == NULL)))
    return 2;
  if (!m->p) return 0;
  P *p = m->p;
  /* acquire: pairs with sysmon's release store of the flag. */
  if (!atomic_exchange_explicit(&p->preempt, 0, memory_order_acquire)) return 0;
  return atomic_load_explicit(&p->preempttick, memory_order_relaxed) ==
         atomic_load_explicit(&p->tick, memory_order_relaxed);
}

static void preemptone(P *p, int64_t now) {
  /* acquire: pairs with execute's release store of curm. */
  M *m = atomic_load_explicit(&p->curm, memory_order_acquire);
  if (!m || !atomic_load_explicit(&p->curg, memory_order_relaxed)) return;
  atomic_store_explicit(&p->preempttick, S.lasttick[p->id], memory_order_relaxed);
  /* release: the handler's acquire exchange sees the tick. */
  atomic_store_explicit(&p->preempt, 1, memory_order_release);
  STAT_ADD(preempt, 1);
  int signo = atomic_load_explicit(&S.signo, memory_order_relaxed);
  /* Go signals only threads running Go code. A thread waiting in a
  ** system call runs no Lua now: it is in a call of a C module goro does
  ** not know (goro's own blocking calls hand their P off). Where the call
  ** is one SA_RESTART resumes (read, write, wait...), the signal still
  ** goes: its handler publishes the P, which sysmon then hands to another
  ** M. Where the signal would cut it short (poll, select, nanosleep...:
  ** EINTR), it does not: the thread keeps its P until the call returns,
  ** and the next request (10 ms on) looks again. A thread that enters such
  ** a call between this look and the signal gets one EINTR; the signal
  ** publishes its P, sysmon retakes it and that step gets no further
  ** signal. A thread seen in such a call and now out of it may still be
  ** in the kernel, on its way back (a signal now would still cut the call):
  ** it is signalled at the request after, if it still runs. */
  int tid = atomic_load_explicit(&m->tid, memory_order_relaxed);
  bool incall = signo > 0 && tid && port_thread_in_unrestarted_call(tid);
  bool wascall = S.incall[p->id];
  S.incall[p->id] = incall;
  if (signo > 0 && !incall && !wascall) port_signal_thread(m->thread, signo);
  S.since[p->id] = now; /* ask again in GORO_PREEMPT_NS if it did not yield */
}

/* A G readied into the runnext of a P whose G keeps running (no park for
** a millisecond) would wait for it: with a P idle, move it to the global
** queue and wake an M (goready skips that wake-up for speed). */
static void rescue_runnext(P *p) {
  if (atomic_load_explicit(&sched.npidle, memory_order_relaxed) == 0) return;
  goro_g *g = atomic_load_explicit(&p->runnext, memory_order_relaxed);
  /* acquire: pairs with runqput's release of runnext. */
  if (!g || !atomic_compare_exchange_strong_explicit(&p->runnext, &g, NULL,
                                                     memory_order_acquire,
                                                     memory_order_relaxed))
    return;
  globrunq_add(g);
  wakep();
}

static void (*stuck_hook)(int threads, int cap, bool forever);
void goro_set_stuck_hook(void (*fn)(int threads, int cap, bool forever)) { stuck_hook = fn; }

/* sysmon, each tick: a thread could not be started (the cap), runnable Gs
** wait while a P is idle and no M is idle: nobody can run them until a
** blocking call returns. If that lasts a second, tell the binding (once).
** Whether it ever ends is known only when every M waits on a channel
** without a deadline (the G that would wake it is among those with no
** thread): forever. An M in a system call or a go.blocking call may come
** back at any time (a slow call is not a hang), so then it is a warning. */
static void check_stuck(int64_t now) {
  static int64_t since; /* sysmon only */
  bool stuck = atomic_load_explicit(&sched.mfail, memory_order_relaxed) &&
               atomic_load_explicit(&sched.npidle, memory_order_relaxed) > 0;
  bool forever = true;
  if (stuck) {
    bool work = atomic_load_explicit(&sched.runqsize, memory_order_relaxed) > 0;
    int procs = atomic_load_explicit(&rt.gomaxprocs, memory_order_relaxed);
    for (int i = 0; i < procs && !work; i++) work = runqlen(rt.allp[i]) > 0;
    lock_acquire(&sched.lock);
    stuck = work && sched.nmidle == 0 && sched.mcount >= sched.maxmcount;
    /* relaxed: a hint; it must hold for the whole second below */
    for (M *m = sched.allm; m && stuck && forever; m = m->alllink)
      forever = atomic_load_explicit(&m->chanwait, memory_order_relaxed);
    lock_release(&sched.lock);
  }
  static int64_t foreversince; /* sysmon only: since when every look said forever */
  if (!stuck) {
    since = foreversince = 0;
    return;
  }
  if (since == 0) since = now;
  if (!forever) foreversince = 0;
  else if (foreversince == 0) foreversince = now;
  if (now - since < 1000000000) return;
  bool wasforever = foreversince != 0 && now - foreversince >= 1000000000;
  if (S.stuckreported == 2 || (S.stuckreported == 1 && !wasforever)) return;
  S.stuckreported = wasforever ? 2 : 1;
  if (stuck_hook) stuck_hook(sched.mcount, sched.maxmcount, wasforever);
}

static void *sysmon_main(void *arg) {
  (void)arg;
  /* acquire: pairs with sysmon_stop's release store. */
  while (!atomic_load_explicit(&S.stop, memory_order_acquire)) {
    note_clear(&S.note);
    note_sleep(&S.note, 0, goro_now() + SYSMON_PERIOD_NS);
    int64_t now = goro_now();
    check_stuck(now);
    int procs = atomic_load_explicit(&rt.gomaxprocs, memory_order_relaxed);
    for (int i = 0; i < procs && i < GORO_MAXPROCS; i++) {
      P *p = rt.allp[i];
      if (!p) continue;
      uint32_t t = atomic_load_explicit(&p->tick, memory_order_relaxed);
      int pst = atomic_load_explicit(&p->status, memory_order_relaxed);
      if (pst == P_SYSCALL || pst == P_OUTSIDE) { /* P_OUTSIDE: park.c */
        /* in a syscall since the last look (>= 1 ms): hand the P off */
        if (t == S.lasttick[i] && S.since[i] != 0 && retake_syscall(p)) {
          S.since[i] = 0;
          continue;
        }
        if (t != S.lasttick[i] || S.since[i] == 0) {
          S.lasttick[i] = t;
          S.since[i] = now;
        }
        continue;
      }
      bool busy = atomic_load_explicit(&p->status, memory_order_relaxed) == P_RUNNING &&
                  atomic_load_explicit(&p->curg, memory_order_relaxed) != NULL;
      if (!busy || t != S.lasttick[i]) {
        S.lasttick[i] = t;
        S.since[i] = now;
        S.asked[i] = false;
        S.incall[i] = false;
        continue;
      }
      /* preempt only when somebody waits for a P: a lone long runner
      ** would just be resumed again (W4 loses nothing to preemption); a G
      ** that did not yield RETAKE_GRACE_NS after being asked (a hook yields
      ** within microseconds) is stuck where no hook runs (a C function, Lua
      ** that cannot yield): its P goes to another M */
      /* also while the runtime stops or a host state closed (goro_preempt_all):
      ** a lone busy loop must come back to the scheduler to end */
      bool waits = runqlen(p) > 0 ||
                   atomic_load_explicit(&rt.stopping, memory_order_relaxed) ||
                   now < atomic_load_explicit(&S.preemptall, memory_order_relaxed) ||
                   atomic_load_explicit(&sched.runqsize, memory_order_relaxed) > 0 ||
                   atomic_load_explicit(&sched.nwaitp, memory_order_relaxed) > 0;
      if (waits && !S.asked[i] && now - S.since[i] >= GORO_PREEMPT_NS) {
        preemptone(p, now);
        S.asked[i] = true;
      } else if (waits && S.asked[i] && now - S.since[i] >= RETAKE_GRACE_NS) {
        if (retake_running(p)) {
          S.asked[i] = false;
          S.since[i] = now;
        } else if (now - S.since[i] >= GORO_PREEMPT_NS) {
          preemptone(p, now); /* again: the signal also publishes the P */
        }
      } else if (now - S.since[i] >= SYSMON_PERIOD_NS) {
        rescue_runnext(p);
      }
    }
  }
  return NULL;
}

void sysmon_start(void) {
  atomic_store_explicit(&S.stop, 0, memory_order_relaxed); /* pthread_create orders it */
  note_clear(&S.note);
  for (int i = 0; i < GORO_MAXPROCS; i++) {
    S.lasttick[i] = 0;
    S.since[i] = 0;
    S.asked[i] = false;
    S.incall[i] = false;
  }
  S.stuckreported = 0;
  port_sigmask om;
  port_nosigint_begin(&om);
  S.started = pthread_create(&S.thread, NULL, sysmon_main, NULL) == 0;
  port_nosigint_end(&om);
}

void sysmon_stop(void) {
  /* release: pairs with sysmon_main's acquire load. */
  atomic_store_explicit(&S.stop, 1, memory_order_release);
  note_wakeup(&S.note);
  if (S.started) pthread_join(S.thread, NULL);
  S.started = false;
}
