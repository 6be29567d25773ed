/*
** park.c — park or block (park.h): every wait of the binding (send, recv,
** range, select, sleep, waitgroup wait) is one call to park_op.
**
** In a goroutine whose coroutine chain can yield, the core's operation
** answers GORO_EPARK: the G is queued on the channels (or the timer); we set
** p->parking and yield with park_k as continuation; gstate.c's step returns
** GORO_STEP_PARKED, and when the core readies the G its next step resumes
** us in park_k, which collects the outcome (goro_select_finish). The
** elements stay in p meanwhile: the C frame that made them is gone.
** Where a yield is impossible (a C boundary), goro_nopark(1) makes the
** operation block the M with a P handoff. The main state blocks its thread.
**
** Ctrl-C while main waits. The interpreter's SIGINT handler (lua.c's
** laction) arms a hook on the main state that raises "interrupted!" at the
** next call or return; main, asleep in the core, would never get there.
** So while main waits, a handler of ours stands in front of the host's
** (installed by the core's wait hook, before main first sleeps, when the
** host has one: with SIG_DFL a SIGINT ends the process, as Go's does). It
** calls the host's handler, and if that armed a hook on the waiting state
** (or on the main thread, when main waits inside a coroutine), it wakes
** the wait (goro_signal_interrupt, async-signal-safe). The wait ends with
** nothing done (the core claims the op: a receive consumed nothing, a
** send sent nothing), and the C function returns with no results, so the
** host's hook fires right there, with its own message and traceback. A
** host handler that arms no hook just runs: the wait goes on.
*/
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "errors.h"
#include "ldump.h"
#include "park.h"

parked *park_new(void) { return calloc(1, sizeof(parked)); }

void park_end(parked *p) {
  p->parking = 0;
  xfer_drop_val(&p->sendv);
  xfer_drop_val(&p->recvv);
}

void park_free(parked *p) {
  if (!p) return;
  park_end(p);
  for (int i = 0; i < p->ncases; i++) xfer_drop_val(&p->selvals[i]);
  if (p->waitchan) goro_chan_unref(p->waitchan);
  free(p->cases);
  free(p->selvals);
  free(p);
}

void park_reap(parked *p, goro_g *g) {
  int idx;
  int rc = goro_op_outcome(g, &idx);
  if (rc == GORO_OK && idx >= 0) {
    if (p->kind == PARK_SEND) p->sendv.tag = XV_NIL;
    else if (p->kind == PARK_SELECT && idx < p->ncases && p->cases[idx].dir == GORO_SEND)
      p->selvals[idx].tag = XV_NIL;
  }
  p->kind = 0;
}

bool park_cases(parked *p, int n) {
  if (n > p->ncasescap) {
    goro_case *nc = realloc(p->cases, sizeof *nc * (size_t)n);
    if (nc) p->cases = nc;
    xval *nv = nc ? realloc(p->selvals, sizeof *nv * (size_t)n) : NULL;
    if (nv) p->selvals = nv;
    if (!nc || !nv) return false;
    p->ncasescap = n;
  }
  p->ncases = n;
  return true;
}

/* The outcome of a finished operation, as Lua results. vals: the n
** elements; those not moved into a channel or decoded are dropped. */
static int results(lua_State *L, int kind, int rc, int idx, bool ok, xval *vals, int n,
                   const goro_case *cases) {
  if (rc == GORO_EDEADLOCK || rc == GORO_EINTR) {
    for (int i = 0; i < n; i++) xfer_drop_val(&vals[i]);
    if (rc == GORO_EDEADLOCK)
      return ldump_deadlock(L, "goro: all goroutines are asleep - deadlock! "
                               "(the main state waits on something no goroutine can ever do)");
    errq_raise(L);
    return luaL_error(L, "goro: wait interrupted");
  }
  switch (kind) {
  case PARK_SEND:
    if (rc == GORO_ECLOSED) {
      xfer_drop_val(&vals[0]);
      return luaL_error(L, "goro: send on closed channel");
    }
    if (rc != GORO_OK) {
      xfer_drop_val(&vals[0]);
      return luaL_error(L, "goro: send failed: %s", goro_strerror(rc));
    }
    vals[0].tag = XV_NIL; /* moved into the channel */
    return 0; /* send returns nothing, parked or not */
  case PARK_RECV:
  case PARK_RANGE:
    if (rc == GORO_ETIMEDOUT || rc == GORO_EAGAIN) {
      lua_pushnil(L);
      ok = false;
    } else if (rc != GORO_OK) {
      return luaL_error(L, "goro: receive failed: %s", goro_strerror(rc));
    } else {
      xfer_decode_val(L, &vals[0]);
    }
    if (kind == PARK_RANGE) return ok ? 1 : 0; /* v ends the loop when nil */
    lua_pushboolean(L, ok);
    return 2;
  case PARK_SELECT:
    /* unsent values go back to their owner: us */
    for (int i = 0; i < n; i++) {
      if (i == idx && rc == GORO_OK) continue;
      xfer_drop_val(&vals[i]);
    }
    if (rc == GORO_ECLOSED)
      return luaL_error(L, "goro: select case %d: send on closed channel", idx + 1);
    if (rc == GORO_EAGAIN || rc == GORO_ETIMEDOUT) {
      lua_pushnil(L);
      return 1;
    }
    if (rc != GORO_OK) return luaL_error(L, "goro: select failed: %s", goro_strerror(rc));
    lua_pushinteger(L, idx + 1);
    if (cases[idx].dir == GORO_SEND) { /* the value moved into the channel */
      vals[idx].tag = XV_NIL;
      return 1;
    }
    xfer_decode_val(L, &vals[idx]);
    lua_pushboolean(L, ok);
    return 3;
  default: /* PARK_WAIT, PARK_SLEEP */
    return 0;
  }
}

/* The elements of p's parked operation of this kind. */
static xval *parked_vals(parked *p, int kind, int *n) {
  *n = kind == PARK_SELECT ? p->ncases : kind == PARK_SLEEP ? 0 : 1;
  return kind == PARK_SELECT ? p->selvals : kind == PARK_SEND ? &p->sendv : &p->recvv;
}

/* The continuation of a parked operation: its G was readied and resumed. */
static int park_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  parked *p = (parked *)ctx;
  int idx, n;
  bool ok;
  int rc = goro_select_finish(&idx, &ok);
  int kind = p->kind;
  p->kind = 0;
  if (kind == PARK_WAIT) {
    goro_chan_unref(p->waitchan);
    p->waitchan = NULL;
  }
  xval *vals = parked_vals(p, kind, &n);
  return results(L, kind, rc, idx, ok, vals, n, p->cases);
}

/* ------------------------------------------------ main's waits, Ctrl-C */

/* The main state's wait in progress, as the SIGINT handler sees it:
** written by the main thread before it is published in sig_mw. */
typedef struct mainwait {
  lua_State *L;    /* the waiting state: main, or a coroutine of it */
  lua_State *main; /* the main thread's state (== L when not in a coroutine) */
  lua_Hook h, mh;  /* their hooks when the wait began */
  int m, mm;       /* ... and hook masks */
} mainwait;

static mainwait mw;
static _Atomic(mainwait *) sig_mw; /* &mw while main waits, else NULL */
static _Atomic int sig_in;         /* handlers between reading sig_mw and done */
static struct sigaction host_sa;   /* the handler ours forwards to */

static bool hooks_moved(const mainwait *w) {
  return lua_gethook(w->L) != w->h || lua_gethookmask(w->L) != w->m ||
         lua_gethook(w->main) != w->mh || lua_gethookmask(w->main) != w->mm;
}

static void on_sigint(int sig, siginfo_t *si, void *uc) {
  int saved = errno;
  /* seq_cst: the count before the read of sig_mw; main_end clears sig_mw
  ** and then waits for the count to fall (as park.c's insignal). */
  atomic_fetch_add_explicit(&sig_in, 1, memory_order_seq_cst);
  if (host_sa.sa_flags & SA_RESETHAND) signal(sig, SIG_DFL);
  if (host_sa.sa_flags & SA_SIGINFO) host_sa.sa_sigaction(sig, si, uc);
  else host_sa.sa_handler(sig);
  mainwait *w = atomic_load_explicit(&sig_mw, memory_order_seq_cst);
  if (w && hooks_moved(w)) goro_signal_interrupt();
  atomic_fetch_sub_explicit(&sig_in, 1, memory_order_seq_cst);
  errno = saved;
}

/* The core's wait hook, before main sleeps: our handler in front of the
** host's (lua.c sets its own again at every chunk it runs), and whether
** a hook was armed since the wait began (a SIGINT that came before). */
static bool main_wait_hook(void *ud) {
  struct sigaction cur;
  if (sigaction(SIGINT, NULL, &cur) == 0) {
    bool ours = (cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_sigint;
    bool fn = (cur.sa_flags & SA_SIGINFO) ||
              (cur.sa_handler != SIG_DFL && cur.sa_handler != SIG_IGN);
    if (!ours && fn) {
      host_sa = cur;
      struct sigaction sa = cur;
      sa.sa_sigaction = on_sigint;
      sa.sa_flags = (cur.sa_flags & ~SA_RESETHAND) | SA_SIGINFO;
      sigaction(SIGINT, &sa, NULL);
    }
  }
  return hooks_moved(ud);
}

static void main_begin(lua_State *L) {
  mw.L = L;
  mw.main = L;
  if (!lua_pushthread(L)) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    mw.main = lua_tothread(L, -1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  mw.h = lua_gethook(L);
  mw.m = lua_gethookmask(L);
  mw.mh = lua_gethook(mw.main);
  mw.mm = lua_gethookmask(mw.main);
  goro_set_wait_hook(main_wait_hook, &mw);
  /* seq_cst: as on_sigint's read. */
  atomic_store_explicit(&sig_mw, &mw, memory_order_seq_cst);
}

/* Ends the wait main_begin began; true when a hook was armed meanwhile:
** the caller returns to Lua at once, where it fires. A hook armed on the
** main thread while main waits in a coroutine moves to the coroutine. */
static bool main_end(void) {
  bool moved = hooks_moved(&mw);
  /* seq_cst: see on_sigint. */
  atomic_store_explicit(&sig_mw, NULL, memory_order_seq_cst);
  while (atomic_load_explicit(&sig_in, memory_order_seq_cst) != 0) {}
  goro_set_wait_hook(NULL, NULL);
  goro_signal_take();
  if (moved && mw.main != mw.L && lua_gethook(mw.L) == mw.h && lua_gethookmask(mw.L) == mw.m) {
    lua_sethook(mw.L, lua_gethook(mw.main), lua_gethookmask(mw.main),
                lua_gethookcount(mw.main));
    lua_sethook(mw.main, mw.mh, mw.mm, lua_gethookcount(mw.main));
  }
  return moved;
}

/* The main state's wait: run(arg) until it ends with anything but
** GORO_EINTR; a goroutine error that interrupted it is raised. Returns
** PARK_SIGNALLED when a signal's hook is armed (see the header). */
static int main_wait(lua_State *L, int (*run)(void *), void *arg, int kind,
                     const goro_case *cases, int n) {
  for (;;) {
    ldump_main_wait(L, kind, cases, n); /* what a dump says main waits for */
    main_begin(L);
    int rc = run(arg);
    bool signalled = main_end();
    ldump_main_wait(NULL, 0, NULL, 0); /* also when the error below is raised */
    if (signalled) return PARK_SIGNALLED;
    if (rc != GORO_EINTR) return rc;
    errq_interrupted(L); /* raises the error that interrupted main, if any */
  }
}

static int run_wait_all(void *arg) {
  (void)arg;
  return goro_wait_all(GORO_FOREVER);
}

int park_wait_all(lua_State *L) {
  return main_wait(L, run_wait_all, NULL, LDUMP_WAITALL, NULL, 0);
}

/* ------------------------------------------------------------ park_op */

static int start(int kind, goro_case *cases, int n, int64_t deadline, int *idx, bool *ok) {
  return kind == PARK_SLEEP ? goro_sleep(deadline) : goro_select(cases, n, deadline, idx, ok);
}

struct opargs {
  int kind;
  goro_case *cases;
  int n;
  int64_t deadline;
  int *idx;
  bool *ok;
};

static int run_op(void *arg) {
  struct opargs *a = arg;
  return start(a->kind, a->cases, a->n, a->deadline, a->idx, a->ok);
}

int park_op(lua_State *L, parked *p, bool canpark, int kind, goro_case *cases, int n,
            int64_t deadline, xval *vals) {
  int idx = -1;
  bool ok = false;
  int rc;
  if (p && canpark && deadline != GORO_NOW) {
    rc = start(kind, cases, n, deadline, &idx, &ok);
    if (rc == GORO_EPARK) {
      p->parking = 1;
      p->kind = kind;
      if (kind == PARK_WAIT) p->waitchan = cases[0].c; /* park_k drops it */
      return lua_yieldk(L, 0, (lua_KContext)p, park_k);
    }
  } else if (p) {
    int old = goro_nopark(1);
    rc = start(kind, cases, n, deadline, &idx, &ok);
    goro_nopark(old);
    if (rc == GORO_EINTR) { /* only on the main thread: core/park.c's ext_wait */
      if (kind == PARK_WAIT) goro_chan_unref(cases[0].c);
      for (int i = 0; i < (kind == PARK_SLEEP ? 0 : n); i++) xfer_drop_val(&vals[i]);
      return luaL_error(L, "goro: this goroutine's wait was interrupted: it blocked the "
                           "main thread (a wait inside a C call, such as a sort comparator) "
                           "when a goroutine error or Ctrl-C had to reach the main state");
    }
  } else if (deadline == GORO_NOW) {
    rc = start(kind, cases, n, deadline, &idx, &ok);
  } else {
    struct opargs a = {kind, cases, n, deadline, &idx, &ok};
    rc = main_wait(L, run_op, &a, kind, cases, n);
    if (rc == PARK_SIGNALLED) {
      if (kind == PARK_WAIT) goro_chan_unref(cases[0].c);
      for (int i = 0; i < (kind == PARK_SLEEP ? 0 : n); i++) xfer_drop_val(&vals[i]);
      return 0; /* the host's hook fires as we return */
    }
  }
  if (kind == PARK_WAIT) goro_chan_unref(cases[0].c);
  return results(L, kind, rc, idx, ok, vals, n, cases);
}
