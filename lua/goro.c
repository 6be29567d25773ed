/*
** goro.c — the Lua module: `local go = require "goro"`.
**
** Every blocking operation (send, recv, select, sleep, wait) goes through
** blockop(): in a goroutine that can yield it parks (the core answers
** GORO_EPARK, we yield with a continuation that collects the outcome); in a
** goroutine that cannot yield (a C boundary) it blocks the M with a P
** handoff; in the main state it blocks the thread, and a hopeless wait
** becomes the error "all goroutines are asleep - deadlock!". The main state
** also raises, at every goro call, the errors of goroutines that failed.
*/
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goro_lua.h"

const char goro_regkeys[16];

#define MT_CHAN "goro.chan"
#define MT_WG "goro.waitgroup"
#define MT_TIMER "goro.timer"

/* ------------------------------------------------------------ objects */

typedef struct lchan {
  gobj h;
  goro_chan *c;
} lchan;

/* The userdata of a goro object in one state. The magic tells our
** userdata from any other without a metatable lookup. */
#define GUD_MAGIC 0x676f726f2e6f626aULL /* "goro.obj" */
typedef struct gud {
  uint64_t magic;
  gobj *o;
} gud;

const char *gobj_typename(int type) {
  switch (type) {
  case GOBJ_CHAN: return "channel";
  case GOBJ_WG: return "waitgroup";
  case GOBJ_TIMER: return "timer";
  case GOBJ_FFI: return "ffi function";
  default: return "goro object";
  }
}

static void open_chan_mt(lua_State *L);
static void open_wg_mt(lua_State *L);
static void open_timer_mt(lua_State *L);

void gobj_push(lua_State *L, gobj *o) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, RK_OBJS) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, RK_OBJS);
  }
  if (lua_rawgetp(L, -1, o) == LUA_TUSERDATA) {
    gud *u = lua_touserdata(L, -1);
    if (u->o == o) {
      lua_remove(L, -2);
      gobj_unref(o); /* the userdata already holds one */
      return;
    }
  }
  lua_pop(L, 1);
  gud *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->magic = GUD_MAGIC;
  u->o = o;
  if (luaL_getmetatable(L, o->mtname) != LUA_TTABLE) {
    lua_pop(L, 1);
    o->openmt(L);
    luaL_getmetatable(L, o->mtname);
  }
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, -3, o);
  lua_remove(L, -2);
}

gobj *gobj_test(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TUSERDATA || lua_rawlen(L, idx) != sizeof(gud)) return NULL;
  gud *u = lua_touserdata(L, idx);
  return u->magic == GUD_MAGIC ? u->o : NULL;
}

static gobj *checkobj(lua_State *L, int idx, int type) {
  gobj *o = gobj_test(L, idx);
  if (!o || o->type != type)
    luaL_error(L, "goro: bad argument #%d: %s expected, got %s", idx, gobj_typename(type),
               o ? gobj_typename(o->type) : luaL_typename(L, idx));
  return o;
}

static int obj_gc(lua_State *L) {
  gud *u = lua_touserdata(L, 1);
  if (u->o) gobj_unref(u->o);
  u->o = NULL;
  u->magic = 0;
  return 0;
}

/* ------------------------------------------------------------ errors */

typedef struct errnode {
  struct errnode *next;
  size_t len;
  char msg[];
} errnode;

static pthread_mutex_t errlock = PTHREAD_MUTEX_INITIALIZER;
static errnode *errhead, **errtail = &errhead; /* errlock */
static _Atomic int nerrors;  /* pending; read without the lock */
static _Atomic int errors_ever;  /* goroutine errors not yet raised in main */

void goro_post_error(const char *msg, size_t len) {
  errnode *e = malloc(sizeof *e + len + 1);
  fprintf(stderr, "goro: %.*s\n", (int)len, msg);
  fflush(stderr);
  if (!e) return;
  e->next = NULL;
  e->len = len;
  memcpy(e->msg, msg, len);
  e->msg[len] = 0;
  pthread_mutex_lock(&errlock);
  *errtail = e;
  errtail = &e->next;
  pthread_mutex_unlock(&errlock);
  atomic_fetch_add_explicit(&nerrors, 1, memory_order_release);
  atomic_fetch_add_explicit(&errors_ever, 1, memory_order_relaxed);
  goro_interrupt();
}

void goro_check_errors(lua_State *L) {
  /* acquire: pairs with the release in goro_post_error. */
  if (atomic_load_explicit(&nerrors, memory_order_acquire) == 0) return;
  pthread_mutex_lock(&errlock);
  errnode *e = errhead;
  if (e) {
    errhead = e->next;
    if (!errhead) errtail = &errhead;
    atomic_fetch_sub_explicit(&nerrors, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&errors_ever, 1, memory_order_relaxed);
  }
  if (!errhead) goro_interrupt_clear();
  pthread_mutex_unlock(&errlock);
  if (!e) return;
  lua_pushfstring(L, "goro: %s", e->msg);
  free(e);
  lua_error(L);
}

/* Main state, after a wait answered GORO_EINTR: raises the goroutine error
** that interrupted it; if there is none (an interrupt that raced with an
** error already raised), clears it. Returns true: wait again. */
static bool retry_after_interrupt(lua_State *L) {
  goro_check_errors(L);
  pthread_mutex_lock(&errlock);
  if (!errhead) goro_interrupt_clear();
  pthread_mutex_unlock(&errlock);
  return true;
}

static void free_errors(void) {
  pthread_mutex_lock(&errlock);
  while (errhead) {
    errnode *e = errhead;
    errhead = e->next;
    free(e);
  }
  errtail = &errhead;
  atomic_store(&nerrors, 0);
  pthread_mutex_unlock(&errlock);
}

/* In the main state, raise goroutine errors at each goro call. */
#define CHECK_MAIN(L, s) do { if (!(s)) goro_check_errors(L); } while (0)

int goro_print(lua_State *L) {
  int n = lua_gettop(L);
  luaL_Buffer B;
  luaL_buffinit(L, &B);
  for (int i = 1; i <= n; i++) {
    size_t len;
    const char *s = luaL_tolstring(L, i, &len);
    if (i > 1) luaL_addchar(&B, '\t');
    luaL_addvalue(&B);
    (void)s;
  }
  luaL_addchar(&B, '\n');
  luaL_pushresult(&B);
  size_t len;
  const char *line = lua_tolstring(L, -1, &len);
  fwrite(line, 1, len, stdout); /* one stdio call: stdout's lock makes it atomic */
  fflush(stdout);
  return 0;
}

/* ------------------------------------------------------ blocking ops */

enum { K_SEND = 1, K_RECV, K_SELECT, K_WAIT, K_SLEEP }; /* 0: none (gstate.opkind) */

static int deadlock_error(lua_State *L) {
  return luaL_error(L, "goro: all goroutines are asleep - deadlock! "
                       "(the main state waits on something no goroutine can ever do)");
}

/* The outcome of a finished operation, as Lua results. */
static int op_results(lua_State *L, int kind, int rc, int idx, bool ok, xval *vals,
                      int n, const goro_case *cases) {
  if (rc == GORO_EDEADLOCK) {
    for (int i = 0; i < n; i++) xfer_drop_val(&vals[i]);
    return deadlock_error(L);
  }
  if (rc == GORO_EINTR) {
    for (int i = 0; i < n; i++) xfer_drop_val(&vals[i]);
    goro_check_errors(L);
    return luaL_error(L, "goro: wait interrupted");
  }
  switch (kind) {
  case K_SEND:
    if (rc == GORO_ECLOSED) {
      xfer_drop_val(&vals[0]);
      return luaL_error(L, "goro: send on closed channel");
    }
    if (rc != GORO_OK) {
      xfer_drop_val(&vals[0]);
      if (rc == GORO_ETIMEDOUT) { lua_pushboolean(L, 0); return 1; }
      return luaL_error(L, "goro: send failed: %s", goro_strerror(rc));
    }
    vals[0].tag = XV_NIL; /* moved into the channel */
    lua_pushboolean(L, 1);
    return 1;
  case K_RECV:
    if (rc == GORO_ETIMEDOUT || rc == GORO_EAGAIN) {
      lua_pushnil(L);
      lua_pushboolean(L, 0);
      return 2;
    }
    if (rc != GORO_OK) return luaL_error(L, "goro: receive failed: %s", goro_strerror(rc));
    xfer_decode_val(L, &vals[0]);
    lua_pushboolean(L, ok);
    return 2;
  case K_SELECT: {
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
  }
  case K_WAIT:
  case K_SLEEP:
  default:
    return 0;
  }
}

static int op_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  gstate *s = gstate_of(L);
  int idx;
  bool ok;
  int rc = goro_select_finish(&idx, &ok);
  int kind = (int)(ctx & 0xff);
  s->opkind = 0;
  xval *vals = kind == K_SELECT ? s->selvals : kind == K_SEND ? &s->sendv : &s->recvv;
  int n = kind == K_SELECT ? s->ncases : 1;
  if (kind == K_WAIT) {
    goro_chan_unref(s->waitchan);
    s->waitchan = NULL;
    return 0;
  }
  if (kind == K_SLEEP) return 0;
  return op_results(L, kind, rc, idx, ok, vals, n, s->cases);
}

/* The runtime stopped while s's goroutine was parked in an operation (or
** woken from it, not yet resumed): the element a receiver took is no
** longer ours; the other elements stay, for gstate_free to drop. */
void blockop_reap(gstate *s, goro_g *g) {
  int idx;
  int rc = goro_op_outcome(g, &idx);
  if (rc == GORO_OK && idx >= 0) {
    if (s->opkind == K_SEND) s->sendv.tag = XV_NIL;
    else if (s->opkind == K_SELECT && idx < s->ncases && s->cases[idx].dir == GORO_SEND)
      s->selvals[idx].tag = XV_NIL;
  }
  s->opkind = 0;
}

/* Runs a select-shaped operation. cases/vals: for a parking G they must be
** s->cases/s->selvals, s->sendv or s->recvv. */
static int blockop(lua_State *L, gstate *s, int kind, goro_case *cases, int n,
                   int64_t deadline, xval *vals, int nvals) {
  int idx = -1;
  bool ok = false;
  int rc;
  if (s && deadline != GORO_NOW && gstate_canpark(L, s)) {
    rc = goro_select(cases, n, deadline, &idx, &ok);
    if (rc == GORO_EPARK) {
      s->parking = 1;
      s->opkind = kind;
      return lua_yieldk(L, 0, (lua_KContext)kind, op_k);
    }
  } else {
    int old = s ? goro_nopark(1) : 0;
    do {
      rc = goro_select(cases, n, deadline, &idx, &ok);
    } while (rc == GORO_EINTR && !s && retry_after_interrupt(L));
    if (s) goro_nopark(old);
  }
  if (kind == K_SLEEP) return 0;
  return op_results(L, kind, rc, idx, ok, vals, nvals, cases);
}

/* ------------------------------------------------------ argument checks
** Like luaL_check*, with messages that start with "goro:" and name the
** function as the user wrote it (go.chan, ch:send...). */

static int argerr(lua_State *L, int arg, const char *fn, const char *expected) {
  return luaL_error(L, "goro: %s: argument #%d must be %s, got %s", fn, arg, expected,
                    lua_isnoneornil(L, arg) ? "nothing" : luaL_typename(L, arg));
}

static lua_Integer arg_int(lua_State *L, int arg, const char *fn, lua_Integer dflt) {
  if (lua_isnoneornil(L, arg)) return dflt;
  int isnum;
  lua_Integer v = lua_tointegerx(L, arg, &isnum);
  if (!isnum) {
    if (lua_type(L, arg) == LUA_TNUMBER)
      luaL_error(L, "goro: %s: argument #%d must be an integer, got %s", fn, arg,
                 lua_tostring(L, arg));
    argerr(L, arg, fn, "an integer");
  }
  return v;
}

#define MAX_DURATION_S 1e9 /* ~31 years: longer waits are "forever" */

/* A duration in seconds as nanoseconds; NaN and non-numbers are errors,
** huge values are clamped (then nothing will fire in this process's life). */
static int64_t arg_duration(lua_State *L, int arg, const char *fn, bool negative_ok) {
  if (lua_type(L, arg) != LUA_TNUMBER) argerr(L, arg, fn, "a number of seconds");
  lua_Number sec = lua_tonumber(L, arg);
  if (sec != sec)
    luaL_error(L, "goro: %s: the duration is NaN: pass a number of seconds", fn);
  if (sec < 0 && !negative_ok)
    luaL_error(L, "goro: %s: negative duration %f: pass a number of seconds >= 0", fn, sec);
  if (sec > MAX_DURATION_S) sec = MAX_DURATION_S;
  if (sec < 0) sec = 0;
  return (int64_t)(sec * 1e9);
}

/* ------------------------------------------------------------ channels */

static void lchan_free(gobj *o) {
  lchan *c = (lchan *)o;
  goro_chan_unref(c->c);
  free(c);
}

static lchan *lchan_new(lua_State *L, size_t cap) {
  lchan *c = malloc(sizeof *c);
  if (!c) luaL_error(L, "goro: out of memory creating a channel");
  c->c = goro_chan_new(sizeof(xval), cap, xfer_drop_val);
  if (!c->c) {
    free(c);
    luaL_error(L, "goro: cannot create a channel of capacity %d", (int)cap);
  }
  atomic_init(&c->h.refs, 1);
  c->h.type = GOBJ_CHAN;
  c->h.free = lchan_free;
  c->h.mtname = MT_CHAN;
  c->h.openmt = open_chan_mt;
  return c;
}

static int l_chan(lua_State *L) {
  gstate *s = gstate_of(L);
  CHECK_MAIN(L, s);
  if (lua_type(L, 1) == LUA_TNUMBER && !lua_isinteger(L, 1) &&
      (lua_tonumber(L, 1) > (1 << 24) || lua_tonumber(L, 1) < 0))
    return luaL_error(L, "goro: bad channel capacity %f: use 0 (unbuffered) to %d",
                      lua_tonumber(L, 1), 1 << 24);
  lua_Integer cap = arg_int(L, 1, "go.chan", 0);
  if (cap < 0 || cap > (1 << 24))
    return luaL_error(L, "goro: bad channel capacity %I: use 0 (unbuffered) to %d",
                      (LUAI_UACINT)cap, 1 << 24);
  lchan *c = lchan_new(L, (size_t)cap);
  gobj_push(L, &c->h);
  return 1;
}

static goro_chan *checkchan(lua_State *L, int idx) {
  return ((lchan *)checkobj(L, idx, GOBJ_CHAN))->c;
}

static int ch_send(lua_State *L) {
  goro_chan *c = checkchan(L, 1);
  gstate *s = gstate_of(L);
  CHECK_MAIN(L, s);
  xval local = {0}, *v = s ? &s->sendv : &local;
  xfer_drop_val(v);
  xfer_encode_val(L, 2, v, "the value sent");
  goro_case cs = {c, GORO_SEND, v};
  int n = blockop(L, s, K_SEND, &cs, 1, GORO_FOREVER, v, 1);
  return n > 0 ? 0 : n; /* send returns nothing */
}

static int ch_trysend(lua_State *L) {
  goro_chan *c = checkchan(L, 1);
  gstate *s = gstate_of(L);
  CHECK_MAIN(L, s);
  xval v = {0};
  xfer_encode_val(L, 2, &v, "the value sent");
  int rc = goro_chan_send(c, &v, GORO_NOW);
  if (rc == GORO_OK) {
    lua_pushboolean(L, 1);
    return 1;
  }
  xfer_drop_val(&v);
  if (rc == GORO_ECLOSED) return luaL_error(L, "goro: send on closed channel");
  lua_pushboolean(L, 0);
  return 1;
}

static int ch_recv(lua_State *L) {
  goro_chan *c = checkchan(L, 1);
  gstate *s = gstate_of(L);
  CHECK_MAIN(L, s);
  xval local = {0}, *v = s ? &s->recvv : &local;
  xfer_drop_val(v);
  goro_case cs = {c, GORO_RECV, v};
  return blockop(L, s, K_RECV, &cs, 1, GORO_FOREVER, v, 1);
}

static int ch_tryrecv(lua_State *L) {
  goro_chan *c = checkchan(L, 1);
  gstate *s = gstate_of(L);
  CHECK_MAIN(L, s);
  xval v = {0};
  bool ok;
  int rc = goro_chan_recv(c, &v, &ok, GORO_NOW);
  if (rc != GORO_OK) {
    lua_pushnil(L);
    lua_pushboolean(L, 0);
    return 2;
  }
  xfer_decode_val(L, &v);
  lua_pushboolean(L, ok);
  return 2;
}

static int ch_close(lua_State *L) {
  goro_chan *c = checkchan(L, 1);
  CHECK_MAIN(L, gstate_of(L));
  if (goro_chan_close(c) == GORO_ECLOSED)
    return luaL_error(L, "goro: close of closed channel");
  return 0;
}

static int ch_len(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)goro_chan_len(checkchan(L, 1)));
  return 1;
}

static int ch_cap(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)goro_chan_cap(checkchan(L, 1)));
  return 1;
}

static int ch_closed(lua_State *L) {
  lua_pushboolean(L, goro_chan_closed(checkchan(L, 1)));
  return 1;
}

static int ch_tostring(lua_State *L) {
  goro_chan *c = checkchan(L, 1);
  lua_pushfstring(L, "goro.chan(%d/%d)%s: %p", (int)goro_chan_len(c), (int)goro_chan_cap(c),
                  goro_chan_closed(c) ? " closed" : "", (void *)c);
  return 1;
}

/* for v in ch:range() do ... end: receives until closed and drained */
static int range_k(lua_State *L, int status, lua_KContext ctx);

static int ch_range_step(lua_State *L) {
  /* called as iter(state=ch, control) */
  goro_chan *c = checkchan(L, 1);
  gstate *s = gstate_of(L);
  CHECK_MAIN(L, s);
  lua_settop(L, 1);
  xval local = {0}, *v = s ? &s->recvv : &local;
  xfer_drop_val(v);
  goro_case cs = {c, GORO_RECV, v};
  int idx;
  bool ok;
  int rc;
  if (s && gstate_canpark(L, s)) {
    rc = goro_select(&cs, 1, GORO_FOREVER, &idx, &ok);
    if (rc == GORO_EPARK) {
      s->parking = 1;
      return lua_yieldk(L, 0, 0, range_k);
    }
  } else {
    int old = s ? goro_nopark(1) : 0;
    do {
      rc = goro_select(&cs, 1, GORO_FOREVER, &idx, &ok);
    } while (rc == GORO_EINTR && !s && retry_after_interrupt(L));
    if (s) goro_nopark(old);
  }
  int r = op_results(L, K_RECV, rc, idx, ok, v, 1, &cs);
  (void)r;
  if (!lua_toboolean(L, -1)) return 0;
  lua_pop(L, 1);
  return 1;
}

static int range_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  gstate *s = gstate_of(L);
  int idx;
  bool ok;
  int rc = goro_select_finish(&idx, &ok);
  op_results(L, K_RECV, rc, idx, ok, &s->recvv, 1, NULL);
  if (!lua_toboolean(L, -1)) return 0;
  lua_pop(L, 1);
  return 1;
}

static int ch_range(lua_State *L) {
  checkchan(L, 1);
  lua_pushcfunction(L, ch_range_step);
  lua_pushvalue(L, 1);
  return 2;
}

/* ------------------------------------------------------------ select */

static int l_select(lua_State *L) {
  if (!lua_istable(L, 1)) argerr(L, 1, "go.select", "a table of cases");
  gstate *s = gstate_of(L);
  CHECK_MAIN(L, s);
  int n = (int)lua_rawlen(L, 1);
  lua_getfield(L, 1, "default");
  bool dflt = lua_toboolean(L, -1);
  lua_pop(L, 1);
  goro_case stackc[8];
  xval stackv[8];
  goro_case *cases = stackc;
  xval *vals = stackv;
  if (s) { /* a parking goroutine keeps them in its state */
    if (n > s->ncasescap) {
      goro_case *nc = realloc(s->cases, sizeof *nc * (size_t)n);
      if (nc) s->cases = nc;
      xval *nv = nc ? realloc(s->selvals, sizeof *nv * (size_t)n) : NULL;
      if (nv) s->selvals = nv;
      if (!nc || !nv) return luaL_error(L, "goro: out of memory in select");
      s->ncasescap = n;
    }
    cases = s->cases;
    vals = s->selvals;
    s->ncases = n;
  } else if (n > 8) {
    cases = lua_newuserdatauv(L, sizeof *cases * (size_t)n, 0);
    vals = lua_newuserdatauv(L, sizeof *vals * (size_t)n, 0);
  }
  for (int i = 0; i < n; i++) vals[i].tag = XV_NIL;
  for (int i = 0; i < n; i++) {
    if (lua_rawgeti(L, 1, i + 1) != LUA_TTABLE) {
      for (int j = 0; j < i; j++) xfer_drop_val(&vals[j]);
      return luaL_error(L, "goro: select case %d must be a table {ch, \"recv\"} or "
                           "{ch, \"send\", value}, got %s", i + 1, luaL_typename(L, -1));
    }
    int ct = lua_gettop(L);
    lua_rawgeti(L, ct, 1);
    lua_rawgeti(L, ct, 2);
    const char *dir = lua_tostring(L, -1);
    goro_chan *c = NULL;
    if (!lua_isnil(L, -2)) {
      gobj *o = gobj_test(L, -2);
      if (!o || o->type != GOBJ_CHAN) {
        for (int j = 0; j < i; j++) xfer_drop_val(&vals[j]);
        return luaL_error(L, "goro: select case %d: a channel (or nil) expected, got %s",
                          i + 1, luaL_typename(L, -2));
      }
      c = ((lchan *)o)->c;
    }
    if (!dir || (strcmp(dir, "recv") != 0 && strcmp(dir, "send") != 0)) {
      for (int j = 0; j < i; j++) xfer_drop_val(&vals[j]);
      return luaL_error(L, "goro: select case %d: direction must be \"send\" or \"recv\"",
                        i + 1);
    }
    cases[i].c = c;
    cases[i].elem = &vals[i];
    if (dir[0] == 's') {
      cases[i].dir = GORO_SEND;
      lua_rawgeti(L, ct, 3);
      char what[40];
      snprintf(what, sizeof what, "select case %d's value", i + 1);
      if (!xfer_try_encode_val(L, -1, &vals[i], what)) {
        for (int j = 0; j < i; j++) xfer_drop_val(&vals[j]);
        return lua_error(L);
      }
    } else {
      cases[i].dir = GORO_RECV;
    }
    lua_settop(L, ct - 1);
  }
  return blockop(L, s, K_SELECT, cases, n, dflt ? GORO_NOW : GORO_FOREVER, vals, n);
}

/* ------------------------------------------------------------ time */

static int l_sleep(lua_State *L) {
  int64_t ns = arg_duration(L, 1, "go.sleep", true);
  gstate *s = gstate_of(L);
  CHECK_MAIN(L, s);
  if (ns <= 0) return 0;
  int64_t d = goro_now() + ns;
  if (s && gstate_canpark(L, s)) {
    int rc = goro_sleep(d);
    if (rc == GORO_EPARK) {
      s->parking = 1;
      return lua_yieldk(L, 0, K_SLEEP, op_k);
    }
    return 0;
  }
  int old = s ? goro_nopark(1) : 0;
  int rc;
  do {
    rc = goro_sleep(d);
  } while (rc == GORO_EINTR && !s && retry_after_interrupt(L));
  if (s) goro_nopark(old);
  return 0;
}

static int64_t t0;

static int l_now(lua_State *L) {
  lua_pushnumber(L, (lua_Number)(goro_now() - t0) / 1e9);
  return 1;
}

/* A timer object: a channel that receives the time when it fires. */
typedef struct lchan lchan;
typedef struct ltimer {
  gobj h;
  goro_timer *t;
  goro_chan *c;
  gobj *ch;       /* t.c: the channel's goro object, the same each time */
  int64_t period; /* ns; 0 for a one-shot timer */
} ltimer;

static void ltimer_fire(void *arg, int64_t now) {
  ltimer *t = arg;
  xval v = {0};
  v.tag = XV_FLT;
  v.u.n = (lua_Number)(now - t0) / 1e9;
  goro_chan_send(t->c, &v, GORO_NOW); /* a full channel drops it, as Go */
}

static void ltimer_free(gobj *o) {
  ltimer *t = (ltimer *)o;
  goro_timer_free(t->t);
  if (t->ch) gobj_unref(t->ch);
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
  t->period = periodic ? ns : 0;
  if (t->c) t->t = goro_timer_new(goro_now() + ns, periodic ? ns : 0, ltimer_fire, t);
  if (!t->c || !t->t) {
    if (t->c) goro_chan_unref(t->c);
    free(t);
    luaL_error(L, "goro: out of memory creating a timer");
  }
  return t;
}

static void push_chan_of(lua_State *L, goro_chan *c) {
  lchan *lc = malloc(sizeof *lc);
  if (!lc) luaL_error(L, "goro: out of memory");
  goro_chan_ref(c);
  lc->c = c;
  atomic_init(&lc->h.refs, 1);
  lc->h.type = GOBJ_CHAN;
  lc->h.free = lchan_free;
  lc->h.mtname = MT_CHAN;
  lc->h.openmt = open_chan_mt;
  gobj_push(L, &lc->h);
}

static int l_timer(lua_State *L) {
  CHECK_MAIN(L, gstate_of(L));
  ltimer *t = ltimer_new(L, arg_duration(L, 1, "go.timer", false), false);
  gobj_push(L, &t->h);
  return 1;
}

static int l_ticker(lua_State *L) {
  CHECK_MAIN(L, gstate_of(L));
  ltimer *t = ltimer_new(L, arg_duration(L, 1, "go.ticker", false), true);
  gobj_push(L, &t->h);
  return 1;
}

static ltimer **leaked_ticks; /* go.tick's tickers: they never stop */
static int nleaked_ticks;
static pthread_mutex_t ticklock = PTHREAD_MUTEX_INITIALIZER;

typedef struct after {
  goro_chan *c;
} after;

static void after_fire(void *arg, int64_t now) {
  after *a = arg;
  if (now > 0) {
    xval v = {0};
    v.tag = XV_FLT;
    v.u.n = (lua_Number)(now - t0) / 1e9;
    goro_chan_send(a->c, &v, GORO_NOW);
  }
  goro_chan_unref(a->c);
  free(a);
}

/* go.after(sec): a channel that receives the time once, after sec. */
static int l_after(lua_State *L) {
  CHECK_MAIN(L, gstate_of(L));
  int64_t ns = arg_duration(L, 1, "go.after", false);
  after *a = malloc(sizeof *a);
  goro_chan *c = goro_chan_new(sizeof(xval), 1, xfer_drop_val);
  if (!a || !c) {
    free(a);
    if (c) goro_chan_unref(c);
    return luaL_error(L, "goro: out of memory creating a timer");
  }
  push_chan_of(L, c); /* takes its own reference */
  a->c = c;           /* the timer keeps the creation reference */
  if (!goro_timer_new(goro_now() + ns, GORO_TIMER_ONESHOT_FREE, after_fire, a)) {
    goro_chan_unref(c);
    free(a);
    return luaL_error(L, "goro: out of memory creating a timer");
  }
  return 1;
}

/* go.tick(sec): a channel that receives every sec, forever (as Go's). */
static int l_tick(lua_State *L) {
  CHECK_MAIN(L, gstate_of(L));
  ltimer *t = ltimer_new(L, arg_duration(L, 1, "go.tick", false), true);
  push_chan_of(L, t->c);
  pthread_mutex_lock(&ticklock);
  ltimer **n = realloc(leaked_ticks, sizeof *n * (size_t)(nleaked_ticks + 1));
  if (n) {
    leaked_ticks = n;
    leaked_ticks[nleaked_ticks++] = t;
  }
  pthread_mutex_unlock(&ticklock);
  return 1;
}

static ltimer *checktimer(lua_State *L) { return (ltimer *)checkobj(L, 1, GOBJ_TIMER); }

static int tm_stop(lua_State *L) {
  lua_pushboolean(L, goro_timer_stop(checktimer(L)->t));
  return 1;
}

static int tm_reset(lua_State *L) {
  ltimer *t = checktimer(L);
  int64_t ns = arg_duration(L, 2, "t:reset", false);
  if (t->period > 0 && ns <= 0)
    return luaL_error(L, "goro: a ticker needs a positive period in seconds");
  bool was = goro_timer_stop(t->t);
  goro_timer_reset(t->t, goro_now() + ns, t->period > 0 ? ns : 0);
  if (t->period > 0) t->period = ns;
  lua_pushboolean(L, was);
  return 1;
}

static int tm_index(lua_State *L) {
  ltimer *t = checktimer(L);
  const char *k = lua_tostring(L, 2);
  if (!k) return 0;
  if (strcmp(k, "c") == 0 || strcmp(k, "C") == 0) {
    if (!t->ch) { /* made on first use, kept: t.c == t.c */
      push_chan_of(L, t->c);
      t->ch = gobj_test(L, -1);
      gobj_ref(t->ch);
      return 1;
    }
    gobj_ref(t->ch);
    gobj_push(L, t->ch);
    return 1;
  }
  if (strcmp(k, "stop") == 0) { lua_pushcfunction(L, tm_stop); return 1; }
  if (strcmp(k, "reset") == 0) { lua_pushcfunction(L, tm_reset); return 1; }
  return 0;
}

/* ------------------------------------------------------------ waitgroup */

typedef struct lwg {
  gobj h;
  pthread_mutex_t mu;
  int64_t count;    /* mu */
  goro_chan *zero;  /* mu: closed when count falls to 0 */
} lwg;

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
  lwg *w = (lwg *)checkobj(L, 1, GOBJ_WG);
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
  if (z) {
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
  lwg *w = (lwg *)checkobj(L, 1, GOBJ_WG);
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
  xval local = {0}, *v = s ? &s->recvv : &local;
  xfer_drop_val(v);
  goro_case cs = {c, GORO_RECV, v};
  int idx;
  bool ok;
  int rc;
  if (s && gstate_canpark(L, s)) {
    rc = goro_select(&cs, 1, GORO_FOREVER, &idx, &ok);
    if (rc == GORO_EPARK) {
      s->parking = 1;
      s->waitchan = c; /* op_k drops this reference */
      return lua_yieldk(L, 0, K_WAIT, op_k);
    }
  } else {
    int old = s ? goro_nopark(1) : 0;
    do {
      rc = goro_select(&cs, 1, GORO_FOREVER, &idx, &ok);
    } while (rc == GORO_EINTR && !s && retry_after_interrupt(L));
    if (s) goro_nopark(old);
  }
  goro_chan_unref(c);
  if (rc == GORO_EDEADLOCK) return deadlock_error(L);
  if (rc == GORO_EINTR) {
    goro_check_errors(L);
    return luaL_error(L, "goro: wait interrupted");
  }
  return 0;
}

static int wg_count(lua_State *L) {
  lwg *w = (lwg *)checkobj(L, 1, GOBJ_WG);
  pthread_mutex_lock(&w->mu);
  lua_Integer n = w->count;
  pthread_mutex_unlock(&w->mu);
  lua_pushinteger(L, n);
  return 1;
}

/* ------------------------------------------------------------ goroutines */

/* go(fn, ...) or go.spawn({limit = bytes}, fn, ...) */
static int l_go(lua_State *L) {
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
  gstate_spawn(L, 1, n, limit);
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

/* go(fn, ...) through the module's __call */
static int l_call(lua_State *L) {
  lua_remove(L, 1);
  return l_go(L);
}

static int yield_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  return 0;
}

static int l_yield(lua_State *L) {
  gstate *s = gstate_of(L);
  CHECK_MAIN(L, s);
  if (s && gstate_canpark(L, s)) {
    s->preempted = 1; /* passes through user coroutines like a park */
    return lua_yieldk(L, 0, 0, yield_k);
  }
  sched_yield();
  return 0;
}

static int l_gomaxprocs(lua_State *L) {
  CHECK_MAIN(L, gstate_of(L));
  lua_Integer n = arg_int(L, 1, "go.gomaxprocs", 0);
  if (n < 0 || n > GORO_MAXPROCS)
    return luaL_error(L, "goro: gomaxprocs(%d): use 1 to %d (or no argument to read it)",
                      (int)n, GORO_MAXPROCS);
  if (n == 0 && !lua_isnoneornil(L, 1))
    return luaL_error(L, "goro: gomaxprocs(0): use 1 to %d (or no argument to read it)",
                      GORO_MAXPROCS);
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
  goro_check_errors(L);
  int rc;
  do {
    rc = goro_wait_all(GORO_FOREVER);
  } while (rc == GORO_EINTR && retry_after_interrupt(L));
  if (rc == GORO_EDEADLOCK) {
    lua_pushfstring(L, "goro: all goroutines are asleep - deadlock! (go.wait: %d "
                       "goroutines are blocked forever)", (int)goro_numgoroutine());
    return lua_error(L);
  }
  goro_check_errors(L);
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
  lua_pushliteral(L, LUACOMPAT_RELEASE); /* the Lua release goro was built for */
  lua_setfield(L, -2, "lua");
  lua_pushboolean(L, xfer_protokeys()); /* false: the closure-layout self-check failed */
  lua_setfield(L, -2, "closure_layout");
  return 1;
}

/* GORO_SCHEDTRACE=ms: a line per interval on stderr, as GODEBUG=schedtrace */
static pthread_t tracer;
static _Atomic int tracing;

static void *trace_main(void *arg) {
  int ms = (int)(intptr_t)arg;
  int64_t start = goro_now();
  while (atomic_load_explicit(&tracing, memory_order_acquire)) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    if (!atomic_load_explicit(&tracing, memory_order_acquire)) break;
    goro_stats st;
    goro_get_stats(&st);
    int lens[GORO_MAXPROCS];
    int np = goro_runq_lens(lens, GORO_MAXPROCS);
    char buf[2048];
    int off = snprintf(buf, sizeof buf,
                       "SCHED %lldms: gomaxprocs=%d idleprocs=%d threads=%d "
                       "spinningthreads=%d idlethreads=%d runqueue=%lld gs=%lld [",
                       (long long)((goro_now() - start) / 1000000), st.gomaxprocs,
                       st.idleprocs, st.threads, st.spinning, st.idlethreads,
                       (long long)st.runnable, (long long)st.goroutines);
    for (int i = 0; i < np && off < (int)sizeof buf - 16; i++)
      off += snprintf(buf + off, sizeof buf - (size_t)off, i ? " %d" : "%d", lens[i]);
    fprintf(stderr, "%s]\n", buf);
  }
  return NULL;
}

/* go.blocking(fn, ...): runs fn with its P handed to another M, for calls
** known to block (Go's entersyscallblock). Returns fn's results; errors
** propagate after the P is back. */
static int l_blocking(lua_State *L) {
  if (!lua_isfunction(L, 1)) argerr(L, 1, "go.blocking", "a function");
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

/* ------------------------------------------------------------ module */

/* The thread cap stops goroutines from running: an error for main. */
static void on_stuck(int threads, int cap) {
  char msg[256];
  int n = snprintf(msg, sizeof msg,
                   "cannot start another OS thread (%d running, cap %d) while goroutines wait "
                   "to run and every thread is blocked in a call: raise the cap with "
                   "GORO_MAXTHREADS or go.maxthreads(n)", threads, cap);
  goro_post_error(msg, (size_t)n);
}

/* Stops the runtime: at the main state's close, or at process exit (a
** script's os.exit does not close the state). */
static bool shutting_down; /* while goro_stop closes states: never restart */

static void shutdown_runtime_now(void);
static void shutdown_runtime(void) {
  shutting_down = true;
  shutdown_runtime_now();
  shutting_down = false;
}

static void shutdown_runtime_now(void) {
  if (atomic_exchange(&tracing, 0)) pthread_join(tracer, NULL);
  if (!goro_running()) return;
  int rc = goro_stop(200000000); /* running steps get 200 ms to return */
  if (rc == GORO_OK) {
    gstate_fini_preemption();
    xfer_fini();
  }
  if (rc == GORO_OK) {
    pthread_mutex_lock(&ticklock);
    for (int i = 0; i < nleaked_ticks; i++) ltimer_free(&leaked_ticks[i]->h);
    free(leaked_ticks);
    leaked_ticks = NULL;
    nleaked_ticks = 0;
    pthread_mutex_unlock(&ticklock);
  }
}

static int runtime_gc(lua_State *L) {
  (void)L;
  shutdown_runtime();
  int unhandled = atomic_load(&errors_ever);
  free_errors();
  gstate_set_paths(NULL, NULL);
  if (unhandled > 0) {
    fflush(stdout);
    fprintf(stderr, "goro: exiting with status 1: %d goroutine error%s never handled\n",
            unhandled, unhandled > 1 ? "s were" : " was");
    exit(1);
  }
  return 0;
}

/* Keeps goro.so mapped until the process ends (lua_close dlcloses C
** modules): threads of a runtime that could not stop (a goroutine stuck in
** C), an exit handler, a late signal, must never run unmapped code. */
static void pin_module(void) {
  Dl_info info;
  if (dladdr((void *)pin_module, &info) && info.dli_fname)
    dlopen(info.dli_fname, RTLD_NOW | RTLD_NODELETE | RTLD_NOLOAD);
}

static const luaL_Reg chan_methods[] = {
  {"send", ch_send}, {"recv", ch_recv}, {"trysend", ch_trysend},
  {"tryrecv", ch_tryrecv}, {"close", ch_close}, {"cap", ch_cap},
  {"len", ch_len}, {"closed", ch_closed}, {"range", ch_range}, {NULL, NULL}};

static const luaL_Reg wg_methods[] = {
  {"add", wg_add}, {"done", wg_done}, {"wait", wg_wait}, {"count", wg_count},
  {NULL, NULL}};

void gobj_newmt(lua_State *L, const char *name) {
  luaL_newmetatable(L, name);
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, "__goro");
  lua_pushcfunction(L, obj_gc);
  lua_setfield(L, -2, "__gc");
}

static void newmt(lua_State *L, const char *name, const luaL_Reg *methods) {
  gobj_newmt(L, name);
  if (methods) {
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
  }
}

/* Each metatable is made in a state on first use (a goroutine that only
** sees a channel never pays for the others). */
static void open_chan_mt(lua_State *L) {
  newmt(L, MT_CHAN, chan_methods);
  lua_pushcfunction(L, ch_len);
  lua_setfield(L, -2, "__len");
  lua_pushcfunction(L, ch_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
}

static void open_wg_mt(lua_State *L) {
  newmt(L, MT_WG, wg_methods);
  lua_pop(L, 1);
}

static void open_timer_mt(lua_State *L) {
  newmt(L, MT_TIMER, NULL);
  lua_pushcfunction(L, tm_index);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

static void open_metatables(lua_State *L) {
  open_chan_mt(L);
  open_wg_mt(L);
  open_timer_mt(L);
}

static const luaL_Reg funcs[] = {
  {"go", l_go}, {"spawn", l_go}, {"chan", l_chan}, {"select", l_select},
  {"sleep", l_sleep}, {"after", l_after}, {"tick", l_tick}, {"timer", l_timer},
  {"ticker", l_ticker}, {"now", l_now}, {"yield", l_yield},
  {"gomaxprocs", l_gomaxprocs}, {"numgoroutine", l_numgoroutine}, {"id", l_id},
  {"stats", l_stats}, {"wait", l_wait}, {"waitgroup", l_waitgroup},
  {"blocking", l_blocking}, {"maxthreads", l_maxthreads},
  {NULL, NULL}};

/* __index of the module: the pure-Lua pattern library loads on first use
** (go.mutex -> require "goro.sync", ...). */
static int lazy_pattern(lua_State *L) {
  if (lua_type(L, 2) != LUA_TSTRING) return 0;
  lua_getfield(L, lua_upvalueindex(1), lua_tostring(L, 2));
  if (lua_isnil(L, -1)) return 1;
  const char *mod = lua_tostring(L, -1);
  lua_getglobal(L, "require");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    luaL_requiref(L, LUA_LOADLIBNAME, gstate_opener(LUA_LOADLIBNAME), 1);
    lua_pop(L, 1);
    lua_getglobal(L, "require");
  }
  lua_pushstring(L, mod);
  lua_call(L, 1, 1);
  /* go.mutex is goro.sync's field `mutex`; go.context, go.ffi (no such
  ** field) are the modules themselves */
  if (lua_type(L, -1) == LUA_TTABLE && lua_getfield(L, -1, lua_tostring(L, 2)) == LUA_TNIL)
    lua_pop(L, 1);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, -2);
  lua_rawset(L, 1); /* cache it in the module table */
  return 1;
}

static const char *patterns[][2] = {
  {"mutex", "goro.sync"}, {"rwmutex", "goro.sync"}, {"once", "goro.sync"},
  {"cond", "goro.sync"}, {"semaphore", "goro.sync"}, {"singleflight", "goro.sync"},
  {"context", "goro.context"}, {"errgroup", "goro.errgroup"}, {"pool", "goro.pool"},
  {"map", "goro.pool"}, {"pipeline", "goro.pool"}, {"merge", "goro.pool"},
  {"generate", "goro.pool"}, {"limiter", "goro.pool"}, {"ffi", "goro.ffi"},
  {NULL, NULL}};

int luaopen_goro(lua_State *L) {
  /* the main state: not a goroutine's state (those may also be touched by
  ** the main thread, when goro_stop closes them) */
  bool main = goro_self() == NULL &&
              lua_rawgetp(L, LUA_REGISTRYINDEX, RK_GSTATE) != LUA_TBOOLEAN;
  lua_pop(L, 1);
  if (main && !goro_running() && shutting_down)
    return luaL_error(L, "goro: the runtime has stopped (the program is exiting)");
  if (main && !goro_running()) {
    t0 = goro_now();
    int rc = goro_start(0, gstate_reap);
    if (rc != GORO_OK) return luaL_error(L, "goro: cannot start the runtime: %s", goro_strerror(rc));
    goro_set_cache_free(gstate_cache_free);
    goro_set_stuck_hook(on_stuck);
    pin_module();
    gstate_init_preemption();
    static bool atexit_done;
    if (!atexit_done) atexit_done = atexit(shutdown_runtime) == 0;
    xfer_selfcheck(L);
    const char *tr = getenv("GORO_SCHEDTRACE");
    int ms = tr ? atoi(tr) : 0;
    if (ms > 0) {
      atomic_store(&tracing, 1);
      if (pthread_create(&tracer, NULL, trace_main, (void *)(intptr_t)ms) != 0)
        atomic_store(&tracing, 0);
    }
  }
  if (main) {
    /* inherit package paths; the runtime stops when this state closes */
    lua_getglobal(L, "package");
    if (lua_istable(L, -1)) {
      lua_getfield(L, -1, "preload");
      if (lua_istable(L, -1)) {
        lua_pushcfunction(L, goro_open_ffi);
        lua_setfield(L, -2, "goro.ffi");
      }
      lua_pop(L, 1);
      lua_getfield(L, -1, "path");
      lua_getfield(L, -2, "cpath");
      gstate_set_paths(lua_tostring(L, -2), lua_tostring(L, -1));
      lua_pop(L, 2);
    }
    lua_pop(L, 1);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, RK_RUNTIME) == LUA_TNIL) {
      lua_newuserdatauv(L, 1, 0);
      lua_createtable(L, 0, 1);
      lua_pushcfunction(L, runtime_gc);
      lua_setfield(L, -2, "__gc");
      lua_setmetatable(L, -2);
      lua_rawsetp(L, LUA_REGISTRYINDEX, RK_RUNTIME);
      /* the standard globals' names (a fresh state's): any other global
      ** the user's functions name is the user's and travels with them */
      lua_newtable(L);
      lua_State *fresh = luaL_newstate();
      if (fresh) {
        luaL_openlibs(fresh);
        lua_pushglobaltable(fresh);
        lua_pushnil(fresh);
        while (lua_next(fresh, -2)) {
          lua_pop(fresh, 1);
          if (lua_type(fresh, -1) == LUA_TSTRING) {
            lua_pushstring(L, lua_tostring(fresh, -1));
            lua_pushboolean(L, 1);
            lua_rawset(L, -3);
          }
        }
        lua_close(fresh);
      }
      lua_rawsetp(L, LUA_REGISTRYINDEX, RK_BASE);
      xfer_init_state(L);
      lua_pushcfunction(L, goro_print);
      lua_setglobal(L, "print");
    }
    lua_pop(L, 1);
  }
  open_metatables(L);
  luaL_newlib(L, funcs);
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, l_call);
  lua_setfield(L, -2, "__call");
  lua_createtable(L, 0, 16);
  for (int i = 0; patterns[i][0]; i++) {
    lua_pushstring(L, patterns[i][1]);
    lua_setfield(L, -2, patterns[i][0]);
  }
  lua_pushcclosure(L, lazy_pattern, 1);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
  return 1;
}
