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
*/
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

static int start(int kind, goro_case *cases, int n, int64_t deadline, int *idx, bool *ok) {
  return kind == PARK_SLEEP ? goro_sleep(deadline) : goro_select(cases, n, deadline, idx, ok);
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
  } else {
    int old = p ? goro_nopark(1) : 0;
    if (!p) ldump_main_wait(L, kind, cases, n);
    while ((rc = start(kind, cases, n, deadline, &idx, &ok)) == GORO_EINTR && !p)
      errq_interrupted(L); /* raises the error that interrupted main, if any */
    if (p) goro_nopark(old);
    else ldump_main_wait(NULL, 0, NULL, 0);
  }
  if (kind == PARK_WAIT) goro_chan_unref(cases[0].c);
  return results(L, kind, rc, idx, ok, vals, n, cases);
}
