/*
** lwg.c — go.waitgroup(): wg:add(n), wg:done(), wg:wait(), wg:count(), as
** Go's sync.WaitGroup. A waiter receives from a channel that is closed
** when the counter falls to zero (made on the first wait of each round),
** so waiting is a channel wait through park_op.
*/
#include <pthread.h>
#include <stdlib.h>

#include "api.h"

#define MT_WG "goro.waitgroup"

/* A waitgroup: shared by reference between states (object.h). */
typedef struct lwg {
  gobj h;
  pthread_mutex_t mu;
  int64_t count;    /* mu */
  goro_chan *zero;  /* mu: closed when count falls to 0; NULL until a wait */
} lwg;

static void open_wg_mt(lua_State *L);

static void lwg_free(gobj *o) {
  lwg *w = (lwg *)o;
  if (w->zero) goro_chan_unref(w->zero);
  pthread_mutex_destroy(&w->mu);
  free(w);
}

static int l_waitgroup(lua_State *L) {
  CHECK_MAIN(L, gstate_of(L));
  lwg *w = calloc(1, sizeof *w);
  if (!w) return luaL_error(L, "goro: out of memory");
  atomic_init(&w->h.refs, 1);
  w->h.type = GOBJ_WG;
  w->h.free = lwg_free;
  w->h.mtname = MT_WG;
  w->h.openmt = open_wg_mt;
  pthread_mutex_init(&w->mu, NULL);
  gobj_push(L, &w->h);
  return 1;
}

static int wg_add(lua_State *L) {
  lwg *w = (lwg *)gobj_check(L, 1, GOBJ_WG);
  lua_Integer d = arg_int(L, 2, "wg:add", 1);
  pthread_mutex_lock(&w->mu);
  if (d > 0 && w->count > INT64_MAX - d) {
    pthread_mutex_unlock(&w->mu);
    return luaL_error(L, "goro: WaitGroup counter overflow (add(%I) to %I)", (LUAI_UACINT)d,
                      (LUAI_UACINT)w->count);
  }
  if (w->count + d < 0) {
    pthread_mutex_unlock(&w->mu);
    return luaL_error(L, "goro: negative WaitGroup counter (more done() than add())");
  }
  w->count += d;
  goro_chan *z = NULL;
  if (w->count == 0) {
    z = w->zero;
    w->zero = NULL;
  }
  pthread_mutex_unlock(&w->mu);
  if (z) { /* wake the waiters after unlocking */
    goro_chan_close(z);
    goro_chan_unref(z);
  }
  return 0;
}

static int wg_done(lua_State *L) {
  lua_settop(L, 1);
  lua_pushinteger(L, -1);
  return wg_add(L);
}

static int wg_wait(lua_State *L) {
  lwg *w = (lwg *)gobj_check(L, 1, GOBJ_WG);
  gstate *s = gstate_of(L);
  CHECK_MAIN(L, s);
  pthread_mutex_lock(&w->mu);
  if (w->count == 0) {
    pthread_mutex_unlock(&w->mu);
    return 0;
  }
  if (!w->zero) w->zero = goro_chan_new(sizeof(xval), 0, xfer_drop_val);
  goro_chan *c = w->zero;
  if (c) goro_chan_ref(c);
  pthread_mutex_unlock(&w->mu);
  if (!c) return luaL_error(L, "goro: out of memory");
  parked *p = api_parked(s);
  xval local = {0}, *v = p ? &p->recvv : &local;
  xfer_drop_val(v);
  goro_case cs = {c, GORO_RECV, v};
  /* PARK_WAIT: park_op drops our reference on c */
  return park_op(L, p, gstate_canpark(L, s), PARK_WAIT, &cs, 1, GORO_FOREVER, v);
}

static int wg_count(lua_State *L) {
  lwg *w = (lwg *)gobj_check(L, 1, GOBJ_WG);
  pthread_mutex_lock(&w->mu);
  lua_Integer n = w->count;
  pthread_mutex_unlock(&w->mu);
  lua_pushinteger(L, n);
  return 1;
}

static void open_wg_mt(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"add", wg_add}, {"done", wg_done}, {"wait", wg_wait}, {"count", wg_count},
    {NULL, NULL}};
  gobj_newmt_methods(L, MT_WG, methods);
  lua_pop(L, 1);
}

void lwg_open(lua_State *L) {
  static const luaL_Reg funcs[] = {{"waitgroup", l_waitgroup}, {NULL, NULL}};
  open_wg_mt(L);
  luaL_setfuncs(L, funcs, 0);
}
