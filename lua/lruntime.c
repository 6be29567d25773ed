/*
** lruntime.c — the runtime for Lua: go(fn, ...) / go.spawn, go.yield,
** go.gomaxprocs, go.numgoroutine, go.id, go.wait, go.stats, go.blocking,
** go.maxthreads, go.exit, go.cancel. Thin calls into the core (goro.h) and gstate_spawn.
*/
#include <sched.h>

#include "api.h"
#include "cancel.h"

/* go(fn, ...) or go.spawn({limit = bytes}, fn, ...) */
int lruntime_spawn(lua_State *L) {
  CHECK_MAIN(L, gstate_of(L));
  if (!goro_running()) /* e.g. a __gc at exit, after the runtime stopped */
    return luaL_error(L, "goro: cannot start a goroutine: the runtime has stopped "
                         "(the program is exiting)");
  size_t limit = 0;
  if (lua_type(L, 1) == LUA_TTABLE) {
    lua_getfield(L, 1, "limit");
    if (!lua_isnil(L, -1)) {
      lua_Integer lim = lua_isinteger(L, -1) ? lua_tointeger(L, -1)
                                             : (lua_Integer)lua_tonumber(L, -1);
      if (lim <= 0)
        return luaL_error(L, "goro: spawn option 'limit' must be a positive number of "
                             "bytes, got %s", luaL_tolstring(L, -1, NULL));
      limit = (size_t)lim;
    }
    lua_pop(L, 1);
    lua_remove(L, 1);
  }
  int n = lua_gettop(L);
  if (n < 1 || lua_type(L, 1) != LUA_TFUNCTION)
    return luaL_error(L, "goro: go(fn, ...) needs a function, got %s", luaL_typename(L, 1));
  lua_pushinteger(L, (lua_Integer)gstate_spawn(L, 1, n, limit));
  return 1; /* its id: go.cancel takes it */
}

/* go.cancel(id): the hard stop of a goroutine (a runaway job, a busy loop
** at the REPL): it raises "goroutine N cancelled" at its next Lua
** instruction, again after each pcall that catches it, so it ends; it is
** not reported as a failure. A goroutine parked on a channel or timer is
** woken for it. Cooperative cancellation is a context's. */
static int l_cancel(lua_State *L) {
  CHECK_MAIN(L, gstate_of(L));
  lua_Integer id = lua_isinteger(L, 1) ? lua_tointeger(L, 1) : 0;
  if (id <= 0)
    return luaL_error(L, "goro: go.cancel(id) needs a goroutine id (what go() returned, "
                         "or go.id() inside it), got %s", luaL_typename(L, 1));
  gstate_cancel((uint64_t)id);
  return 0;
}

static int l_maxthreads(lua_State *L) {
  lua_Integer n = arg_int(L, 1, "go.maxthreads", 0);
  if (n < 0 || n > 1000000)
    return luaL_error(L, "goro: maxthreads(%d): use 1 to 1000000 (or no argument to read it)",
                      (int)n);
  lua_pushinteger(L, goro_set_maxthreads((int)n));
  return 1;
}

static int yield_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  return 0;
}

static int l_yield(lua_State *L) {
  gstate *s = gstate_of(L);
  CHECK_MAIN(L, s);
  if (gstate_canpark(L, s)) {
    s->preempted = 1; /* passes through user coroutines like a park */
    return lua_yieldk(L, 0, 0, yield_k);
  }
  sched_yield();
  return 0;
}

/* go.exit(): ends the calling goroutine (runtime.Goexit): a yield that
** travels up to the step function (gstate.c, GSTATE_EXIT), which closes the
** goroutine's pending to-be-closed variables and ends it with no error. A
** yield, not an error, so pcall cannot stop it, as recover cannot stop
** Goexit. */
static int l_exit(lua_State *L) {
  gstate *s = gstate_of(L);
  if (!s)
    return luaL_error(L, "goro: go.exit() ends a goroutine; in the main state use os.exit");
  if (!gstate_canpark(L, s))
    return luaL_error(L, "goro: go.exit() cannot end the goroutine from inside a C call "
                         "that cannot yield (a metamethod, a sort comparator, a C "
                         "module's callback): return from it first");
  s->preempted = GSTATE_EXIT;
  return lua_yieldk(L, 0, 0, yield_k);
}

static int l_gomaxprocs(lua_State *L) {
  CHECK_MAIN(L, gstate_of(L));
  lua_Integer n = arg_int(L, 1, "go.gomaxprocs", 0);
  if (n < 0 || n > GORO_MAXPROCS)
    return luaL_error(L, "goro: gomaxprocs(%d): use 1 to %d (or 0, or no argument, to read it)",
                      (int)n, GORO_MAXPROCS);
  int old = goro_gomaxprocs((int)n);
  if (old < 0) return luaL_error(L, "goro: gomaxprocs: %s", goro_strerror(old));
  lua_pushinteger(L, old);
  return 1;
}

static int l_numgoroutine(lua_State *L) {
  CHECK_MAIN(L, gstate_of(L));
  lua_pushinteger(L, (lua_Integer)goro_numgoroutine());
  return 1;
}

static int l_id(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)goro_id(goro_self()));
  return 1;
}

static int l_wait(lua_State *L) {
  if (gstate_of(L))
    return luaL_error(L, "goro: go.wait() waits for every goroutine: call it from the main "
                         "state (inside a goroutine, use a waitgroup)");
  errq_raise(L);
  int rc = park_wait_all(L);
  if (rc == PARK_SIGNALLED) return 0; /* the host's hook fires as we return */
  if (rc == GORO_OK) cancel_clear(); /* no goroutine left to cancel */
  if (rc == GORO_EDEADLOCK) {
    char msg[128];
    snprintf(msg, sizeof msg, "goro: all goroutines are asleep - deadlock! (go.wait: %d "
             "goroutines are blocked forever; each one's wait follows)", (int)goro_numgoroutine());
    return ldump_deadlock(L, msg);
  }
  errq_raise(L);
  return 0;
}

#define SETI(k, v) (lua_pushinteger(L, (lua_Integer)(v)), lua_setfield(L, -2, k))

static int l_stats(lua_State *L) {
  goro_stats st;
  goro_get_stats(&st);
  lua_createtable(L, 0, 20);
  SETI("gomaxprocs", st.gomaxprocs);
  SETI("procs", st.gomaxprocs);
  SETI("idleprocs", st.idleprocs);
  SETI("threads", st.threads);
  SETI("idlethreads", st.idlethreads);
  SETI("spinning", st.spinning);
  SETI("goroutines", st.goroutines);
  SETI("runnable", st.runnable);
  SETI("waiting", st.waiting);
  SETI("spawned", st.spawned);
  SETI("steals", st.steals);
  SETI("globalgets", st.globalgets);
  SETI("mstarts", st.mstarts);
  SETI("mparks", st.mparks);
  SETI("handoffs", st.handoffs);
  SETI("chanops", st.chanops);
  SETI("preemptions", st.preemptions);
  SETI("retakes", st.retakes);
  goro_pstat ps[GORO_MAXPROCS];
  int np = goro_pstats(ps, GORO_MAXPROCS);
  lua_createtable(L, np, 0); /* per P, as GODEBUG=schedtrace's detail */
  for (int i = 0; i < np; i++) {
    lua_createtable(L, 0, 4);
    SETI("runs", ps[i].runs);
    SETI("steals", ps[i].steals);
    SETI("handoffs", ps[i].handoffs);
    SETI("runqueue", ps[i].runqueue);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "p");
  lua_pushliteral(L, LUACOMPAT_RELEASE); /* the Lua release goro was built for */
  lua_setfield(L, -2, "lua");
  lua_pushboolean(L, xfer_protokeys()); /* false: the closure-layout self-check failed */
  lua_setfield(L, -2, "closure_layout");
  return 1;
}

/* go.blocking(fn, ...): runs fn with its P handed to another M, for calls
** known to block (Go's entersyscallblock). Returns fn's results; errors
** propagate after the P is back. */
static int l_blocking(lua_State *L) {
  if (!lua_isfunction(L, 1)) arg_error(L, 1, "go.blocking", "a function");
  CHECK_MAIN(L, gstate_of(L));
  int n = lua_gettop(L);
  int old = goro_nopark(1); /* nothing inside may park: it runs on this M */
  goro_enter_blocking();
  int st = lua_pcall(L, n - 1, LUA_MULTRET, 0);
  goro_exit_blocking();
  goro_nopark(old);
  if (st != LUA_OK) return lua_error(L);
  return lua_gettop(L);
}

void lruntime_open(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"go", lruntime_spawn}, {"spawn", lruntime_spawn}, {"yield", l_yield},
    {"gomaxprocs", l_gomaxprocs}, {"numgoroutine", l_numgoroutine}, {"id", l_id},
    {"stats", l_stats}, {"wait", l_wait}, {"blocking", l_blocking},
    {"maxthreads", l_maxthreads}, {"exit", l_exit}, {"cancel", l_cancel}, {NULL, NULL}};
  luaL_setfuncs(L, funcs, 0);
}
