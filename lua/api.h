/*
** api.h — what the files of the Lua API share: argument checks with
** "goro:" messages, the binding groups goro.c assembles into the module
** (lchan.c, lselect.c, ltime.c, lwg.c, lruntime.c, latomic.c, lsmap.c,
** lcontext.c), and the channels that
** the other groups hand out (timers, select).
*/
#ifndef GORO_API_H
#define GORO_API_H

#include "errors.h"
#include "goro_lua.h"
#include "gstate.h"
#include "park.h"

/* ------------------------------------------------------ argument checks
** Like luaL_check*, with messages that start with "goro:" and name the
** function as the user wrote it (go.chan, ch:send...). */

static inline int arg_error(lua_State *L, int arg, const char *fn, const char *expected) {
  return luaL_error(L, "goro: %s: argument #%d must be %s, got %s", fn, arg, expected,
                    lua_isnoneornil(L, arg) ? "nothing" : luaL_typename(L, arg));
}

static inline lua_Integer arg_int(lua_State *L, int arg, const char *fn, lua_Integer dflt) {
  if (lua_isnoneornil(L, arg)) return dflt;
  int isnum;
  lua_Integer v = lua_tointegerx(L, arg, &isnum);
  if (!isnum) {
    if (lua_type(L, arg) == LUA_TNUMBER)
      luaL_error(L, "goro: %s: argument #%d must be an integer, got %s", fn, arg,
                 lua_tostring(L, arg));
    arg_error(L, arg, fn, "an integer");
  }
  return v;
}

#define MAX_DURATION_S 1e9 /* ~31 years: longer waits are "forever" */

/* A duration in seconds as nanoseconds; NaN and non-numbers are errors,
** huge values are clamped (then nothing will fire in this process's life). */
static inline int64_t arg_duration(lua_State *L, int arg, const char *fn, bool negative_ok) {
  if (lua_type(L, arg) != LUA_TNUMBER) arg_error(L, arg, fn, "a number of seconds");
  lua_Number sec = lua_tonumber(L, arg);
  if (sec != sec)
    luaL_error(L, "goro: %s: the duration is NaN: pass a number of seconds", fn);
  if (sec < 0 && !negative_ok)
    luaL_error(L, "goro: %s: negative duration %f: pass a number of seconds >= 0", fn, sec);
  if (sec > MAX_DURATION_S) sec = MAX_DURATION_S;
  if (sec < 0) sec = 0;
  return (int64_t)(sec * 1e9);
}

/* The parked-operation state of L's goroutine for park_op, NULL in the
** main state. */
static inline parked *api_parked(gstate *s) { return s ? s->park : NULL; }

/* ------------------------------------------------------ channels (lchan.c) */

/* The core channel of the goro channel at idx; NULL (test) or an error
** (check) if it is something else. */
goro_chan *lchan_test(lua_State *L, int idx);
goro_chan *lchan_check(lua_State *L, int idx);
/* Pushes a new goro channel object for c (taking a reference of its own). */
void lchan_push(lua_State *L, goro_chan *c);

/* ------------------------------------------------------ the groups
** Each opens its metatables in L and adds its functions to the module
** table on top of the stack. */
void lchan_open(lua_State *L);   /* go.chan and channel methods */
void lselect_open(lua_State *L); /* go.select */
void ltime_open(lua_State *L);   /* go.sleep, go.now, timers, tickers */
void lwg_open(lua_State *L);     /* go.waitgroup */
void lruntime_open(lua_State *L); /* go(), go.yield, go.gomaxprocs, go.wait, ... */
void latomic_open(lua_State *L);  /* go.atomic */
void lsmap_open(lua_State *L);    /* go.syncmap */
void lcontext_open(lua_State *L); /* go._ctx: the C side of goro.context */

/* go(fn, ...): the module's __call (goro.c). */
int lruntime_spawn(lua_State *L);

/* ltime.c, at the runtime's start and stop (main thread, no goroutine
** running): the epoch of go.now; frees go.tick's tickers. */
void ltime_start(void);
void ltime_fini(void);

#endif
