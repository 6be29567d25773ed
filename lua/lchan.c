/*
** lchan.c — channels for Lua: go.chan(cap), ch:send/recv/trysend/tryrecv/
** close/range, #ch. A goro channel object (lchan) wraps a core channel of
** xval elements; the elements are transferred values (xfer.c). Blocking
** operations go through park_op (park.c).
*/
#include <stdlib.h>

#include "api.h"

#define MT_CHAN "goro.chan"

/* A goro channel object: shared by reference between states (object.h);
** c is set at creation and read-only after (the core channel has its own
** lock). */
typedef struct lchan {
  gobj h;
  goro_chan *c; /* one reference held */
} lchan;

static void open_chan_mt(lua_State *L);

static void lchan_free(gobj *o) {
  lchan *c = (lchan *)o;
  goro_chan_unref(c->c);
  free(c);
}

/* A channel object for c, taking over the caller's reference on c. */
static lchan *lchan_wrap(lua_State *L, goro_chan *c) {
  lchan *lc = malloc(sizeof *lc);
  if (!lc) {
    goro_chan_unref(c);
    luaL_error(L, "goro: out of memory creating a channel");
  }
  lc->c = c;
  atomic_init(&lc->h.refs, 1);
  lc->h.type = GOBJ_CHAN;
  lc->h.free = lchan_free;
  lc->h.mtname = MT_CHAN;
  lc->h.openmt = open_chan_mt;
  return lc;
}

void lchan_push(lua_State *L, goro_chan *c) {
  goro_chan_ref(c);
  gobj_push(L, &lchan_wrap(L, c)->h);
}

goro_chan *lchan_test(lua_State *L, int idx) {
  gobj *o = gobj_test(L, idx);
  return o && o->type == GOBJ_CHAN ? ((lchan *)o)->c : NULL;
}

goro_chan *lchan_check(lua_State *L, int idx) {
  return ((lchan *)gobj_check(L, idx, GOBJ_CHAN))->c;
}

static int l_chan(lua_State *L) {
  CHECK_MAIN(L, gstate_of(L));
  if (lua_type(L, 1) == LUA_TNUMBER && !lua_isinteger(L, 1) &&
      (lua_tonumber(L, 1) > (1 << 24) || lua_tonumber(L, 1) < 0))
    return luaL_error(L, "goro: bad channel capacity %f: use 0 (unbuffered) to %d",
                      lua_tonumber(L, 1), 1 << 24);
  lua_Integer cap = arg_int(L, 1, "go.chan", 0);
  if (cap < 0 || cap > (1 << 24))
    return luaL_error(L, "goro: bad channel capacity %I: use 0 (unbuffered) to %d",
                      (LUAI_UACINT)cap, 1 << 24);
  goro_chan *c = goro_chan_new(sizeof(xval), (size_t)cap, xfer_drop_val);
  if (!c) return luaL_error(L, "goro: cannot create a channel of capacity %d", (int)cap);
  goro_chan_set_label(c, ldump_site(L));
  gobj_push(L, &lchan_wrap(L, c)->h);
  return 1;
}

/* ch:send(v), ch:recv() and the step of ch:range(): the element lives in
** the goroutine's parked state (it must outlive this frame if it parks),
** or on the C stack in the main state. */
static int chan_op(lua_State *L, int kind) {
  goro_chan *c = lchan_check(L, 1);
  gstate *s = gstate_of(L);
  CHECK_MAIN(L, s);
  parked *p = api_parked(s);
  bool send = kind == PARK_SEND;
  xval local = {0}, *v = !p ? &local : send ? &p->sendv : &p->recvv;
  xfer_drop_val(v);
  if (send) xfer_encode_val(L, 2, v, "the value sent");
  goro_case cs = {c, send ? GORO_SEND : GORO_RECV, v};
  return park_op(L, p, gstate_canpark(L, s), kind, &cs, 1, GORO_FOREVER, v);
}

static int ch_send(lua_State *L) { return chan_op(L, PARK_SEND); }

static int ch_trysend(lua_State *L) {
  goro_chan *c = lchan_check(L, 1);
  CHECK_MAIN(L, gstate_of(L));
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

static int ch_recv(lua_State *L) { return chan_op(L, PARK_RECV); }

/* called as iter(ch, control) */
static int ch_range_step(lua_State *L) {
  lua_settop(L, 1);
  return chan_op(L, PARK_RANGE);
}

/* for v in ch:range() do ... end: receives until closed and drained */
static int ch_range(lua_State *L) {
  lchan_check(L, 1);
  lua_pushcfunction(L, ch_range_step);
  lua_pushvalue(L, 1);
  return 2;
}

static int ch_tryrecv(lua_State *L) {
  goro_chan *c = lchan_check(L, 1);
  CHECK_MAIN(L, gstate_of(L));
  xval v = {0};
  bool ok;
  int rc = goro_chan_recv(c, &v, &ok, GORO_NOW);
  if (rc != GORO_OK) { /* would block: Go's select default */
    lua_pushnil(L);
    lua_pushboolean(L, 0);
    return 2;
  }
  xfer_decode_val(L, &v);
  lua_pushboolean(L, ok);
  if (ok) return 2;
  lua_pushboolean(L, 1); /* closed and drained (Go's ok == false): nil, false, true */
  return 3;
}

static int ch_close(lua_State *L) {
  goro_chan *c = lchan_check(L, 1);
  CHECK_MAIN(L, gstate_of(L));
  if (goro_chan_close(c) == GORO_ECLOSED)
    return luaL_error(L, "goro: close of closed channel");
  return 0;
}

static int ch_len(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)goro_chan_len(lchan_check(L, 1)));
  return 1;
}

static int ch_cap(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)goro_chan_cap(lchan_check(L, 1)));
  return 1;
}

static int ch_closed(lua_State *L) {
  lua_pushboolean(L, goro_chan_closed(lchan_check(L, 1)));
  return 1;
}

static int ch_tostring(lua_State *L) {
  goro_chan *c = lchan_check(L, 1);
  lua_pushfstring(L, "goro.chan(%d/%d)%s: %p", (int)goro_chan_len(c), (int)goro_chan_cap(c),
                  goro_chan_closed(c) ? " closed" : "", (void *)c);
  return 1;
}

static const luaL_Reg chan_methods[] = {
  {"send", ch_send}, {"recv", ch_recv}, {"trysend", ch_trysend},
  {"tryrecv", ch_tryrecv}, {"close", ch_close}, {"cap", ch_cap},
  {"len", ch_len}, {"closed", ch_closed}, {"range", ch_range}, {NULL, NULL}};

/* Made in a state on first use (a goroutine that only sees a channel never
** pays for the other metatables), and at the module's opening. */
static void open_chan_mt(lua_State *L) {
  gobj_newmt_methods(L, MT_CHAN, chan_methods);
  lua_pushcfunction(L, ch_len);
  lua_setfield(L, -2, "__len");
  lua_pushcfunction(L, ch_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
}

void lchan_open(lua_State *L) {
  static const luaL_Reg funcs[] = {{"chan", l_chan}, {NULL, NULL}};
  open_chan_mt(L);
  luaL_setfuncs(L, funcs, 0);
}
