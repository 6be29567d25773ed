/*
** ltime.c — time for Lua: go.sleep, go.now, and the channels that receive
** the time: go.after, go.tick, go.timer, go.ticker (a timer object, t.c
** its channel, t:stop(), t:reset(sec)). Timer callbacks run in the core's
** timer code and only try-send into their channel (a full one drops the
** tick, as Go's).
*/
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

#define MT_TIMER "goro.timer"

/* go.now()'s epoch: set by ltime_start before any goroutine runs, read-only
** after. */
static int64_t t0;

void ltime_start(void) { t0 = goro_now(); }

static int l_sleep(lua_State *L) {
  int64_t ns = arg_duration(L, 1, "go.sleep", true);
  gstate *s = gstate_of(L);
  CHECK_MAIN(L, s);
  if (ns <= 0) return 0;
  return park_op(L, api_parked(s), gstate_canpark(L, s), PARK_SLEEP, NULL, 0,
                 goro_now() + ns, NULL);
}

static int l_now(lua_State *L) {
  lua_pushnumber(L, (lua_Number)(goro_now() - t0) / 1e9);
  return 1;
}

/* A timer object: shared by reference between states (object.h). t and c
** are set at creation, read-only after (the core timer and channel have
** their own locks); ch and period are atomics, as any state may set them. */
typedef struct ltimer {
  gobj h;
  goro_timer *t;
  goro_chan *c;            /* receives the time when t fires */
  _Atomic(gobj *) ch;      /* t.c: the channel's goro object, made on first
                           ** use and the same after (one reference held) */
  _Atomic int64_t period;  /* ns; 0 for a one-shot timer */
} ltimer;

static void open_timer_mt(lua_State *L);

/* Sends the time into c without waiting (a full channel drops it, as Go). */
static void send_time(goro_chan *c, int64_t now) {
  xval v = {0};
  v.tag = XV_FLT;
  v.u.n = (lua_Number)(now - t0) / 1e9;
  goro_chan_send(c, &v, GORO_NOW);
}

static void ltimer_fire(void *arg, int64_t now) { send_time(((ltimer *)arg)->c, now); }

static void ltimer_free(gobj *o) {
  ltimer *t = (ltimer *)o;
  goro_timer_free(t->t);
  /* relaxed: the last reference; gobj_unref's acq_rel ordered the rest */
  gobj *ch = atomic_load_explicit(&t->ch, memory_order_relaxed);
  if (ch) gobj_unref(ch);
  goro_chan_unref(t->c);
  free(t);
}

static ltimer *ltimer_new(lua_State *L, int64_t ns, bool periodic) {
  if (periodic && ns <= 0)
    luaL_error(L, "goro: a ticker needs a positive period in seconds");
  ltimer *t = calloc(1, sizeof *t);
  if (!t) luaL_error(L, "goro: out of memory creating a timer");
  atomic_init(&t->h.refs, 1);
  t->h.type = GOBJ_TIMER;
  t->h.free = ltimer_free;
  t->h.mtname = MT_TIMER;
  t->h.openmt = open_timer_mt;
  t->c = goro_chan_new(sizeof(xval), 1, xfer_drop_val);
  atomic_init(&t->period, periodic ? ns : 0);
  if (t->c) t->t = goro_timer_new(goro_now() + ns, periodic ? ns : 0, ltimer_fire, t);
  if (!t->c || !t->t) {
    if (t->c) goro_chan_unref(t->c);
    free(t);
    luaL_error(L, "goro: out of memory creating a timer");
  }
  return t;
}

static int l_timer(lua_State *L) {
  CHECK_MAIN(L, gstate_of(L));
  ltimer *t = ltimer_new(L, arg_duration(L, 1, "go.timer", true), false);
  gobj_push(L, &t->h);
  return 1;
}

static int l_ticker(lua_State *L) {
  CHECK_MAIN(L, gstate_of(L));
  ltimer *t = ltimer_new(L, arg_duration(L, 1, "go.ticker", false), true);
  gobj_push(L, &t->h);
  return 1;
}

/* go.tick's tickers: they never stop; freed by ltime_fini once the runtime
** stopped. Appended by any state. */
static pthread_mutex_t ticklock = PTHREAD_MUTEX_INITIALIZER;
static ltimer **leaked_ticks; /* ticklock */
static int nleaked_ticks;     /* ticklock */

/* go.tick(sec): a channel that receives every sec, forever (as Go's);
** nil for sec <= 0, as Go's Tick returns a nil channel. */
static int l_tick(lua_State *L) {
  CHECK_MAIN(L, gstate_of(L));
  int64_t ns = arg_duration(L, 1, "go.tick", true);
  if (ns <= 0) {
    lua_pushnil(L);
    return 1;
  }
  ltimer *t = ltimer_new(L, ns, true);
  lchan_push(L, t->c);
  pthread_mutex_lock(&ticklock);
  ltimer **n = realloc(leaked_ticks, sizeof *n * (size_t)(nleaked_ticks + 1));
  if (n) {
    leaked_ticks = n;
    leaked_ticks[nleaked_ticks++] = t;
  }
  pthread_mutex_unlock(&ticklock);
  return 1;
}

void ltime_fini(void) {
  pthread_mutex_lock(&ticklock);
  for (int i = 0; i < nleaked_ticks; i++) ltimer_free(&leaked_ticks[i]->h);
  free(leaked_ticks);
  leaked_ticks = NULL;
  nleaked_ticks = 0;
  pthread_mutex_unlock(&ticklock);
}

/* go.after's one-shot timer: owned by the core's timer, which calls
** after_fire once (now == 0: the runtime stopped first) and frees itself. */
typedef struct after {
  goro_chan *c; /* one reference, dropped by after_fire */
} after;

static void after_fire(void *arg, int64_t now) {
  after *a = arg;
  if (now > 0) send_time(a->c, now);
  goro_chan_unref(a->c);
  free(a);
}

/* go.after(sec): a channel that receives the time once, after sec. */
static int l_after(lua_State *L) {
  CHECK_MAIN(L, gstate_of(L));
  int64_t ns = arg_duration(L, 1, "go.after", true); /* < 0: now, as Go */
  after *a = malloc(sizeof *a);
  goro_chan *c = goro_chan_new(sizeof(xval), 1, xfer_drop_val);
  if (!a || !c) {
    free(a);
    if (c) goro_chan_unref(c);
    return luaL_error(L, "goro: out of memory creating a timer");
  }
  lchan_push(L, c); /* takes its own reference */
  a->c = c;         /* the timer keeps the creation reference */
  if (!goro_timer_new(goro_now() + ns, GORO_TIMER_ONESHOT_FREE, after_fire, a)) {
    goro_chan_unref(c);
    free(a);
    return luaL_error(L, "goro: out of memory creating a timer");
  }
  return 1;
}

static ltimer *checktimer(lua_State *L) { return (ltimer *)gobj_check(L, 1, GOBJ_TIMER); }

static int tm_stop(lua_State *L) {
  lua_pushboolean(L, goro_timer_stop(checktimer(L)->t));
  return 1;
}

static int tm_reset(lua_State *L) {
  ltimer *t = checktimer(L);
  int64_t ns = arg_duration(L, 2, "t:reset", true);
  /* relaxed: only whether it is a ticker (never changes) and its period
  ** (resets racing each other end with either period, as in Go) */
  bool ticker = atomic_load_explicit(&t->period, memory_order_relaxed) > 0;
  if (ticker && ns <= 0)
    return luaL_error(L, "goro: a ticker needs a positive period in seconds");
  bool was = goro_timer_stop(t->t);
  goro_timer_reset(t->t, goro_now() + ns, ticker ? ns : 0);
  if (ticker) atomic_store_explicit(&t->period, ns, memory_order_relaxed);
  lua_pushboolean(L, was);
  return 1;
}

static int tm_index(lua_State *L) {
  ltimer *t = checktimer(L);
  const char *k = lua_tostring(L, 2);
  if (!k) return 0;
  if (strcmp(k, "c") == 0 || strcmp(k, "C") == 0) {
    /* acquire: pairs with the release of the CAS that published it */
    gobj *ch = atomic_load_explicit(&t->ch, memory_order_acquire);
    if (!ch) { /* made on first use, kept: t.c == t.c, in every state */
      lchan_push(L, t->c);
      gobj *mine = gobj_test(L, -1);
      gobj_ref(mine); /* t's reference */
      /* acq_rel: release publishes mine; acquire (also on failure) sees the
      ** winner's object if another state set it first */
      if (atomic_compare_exchange_strong_explicit(&t->ch, &ch, mine, memory_order_acq_rel,
                                                  memory_order_acquire))
        return 1;
      gobj_unref(mine); /* lost the race: use the winner's */
      lua_pop(L, 1);
    }
    gobj_ref(ch);
    gobj_push(L, ch);
    return 1;
  }
  if (strcmp(k, "stop") == 0) { lua_pushcfunction(L, tm_stop); return 1; }
  if (strcmp(k, "reset") == 0) { lua_pushcfunction(L, tm_reset); return 1; }
  return 0;
}

static void open_timer_mt(lua_State *L) {
  gobj_newmt(L, MT_TIMER);
  lua_pushcfunction(L, tm_index);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

void ltime_open(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"sleep", l_sleep}, {"after", l_after}, {"tick", l_tick}, {"timer", l_timer},
    {"ticker", l_ticker}, {"now", l_now}, {NULL, NULL}};
  open_timer_mt(L);
  luaL_setfuncs(L, funcs, 0);
}
