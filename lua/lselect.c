/*
** lselect.c — go.select{ {ch, "recv"}, {ch, "send", v}, ..., default = true }:
** reads the cases into a core goro_case array and waits through park_op.
** A goroutine keeps its cases in its parked state (they must outlive this
** C frame when it parks); the main state keeps them on the C stack, or in
** userdata past 8.
*/
#include <stdio.h>
#include <string.h>

#include "api.h"

/* Drops the values encoded for the first n cases. */
static void drop_vals(xval *vals, int n) {
  for (int j = 0; j < n; j++) xfer_drop_val(&vals[j]);
}

static int l_select(lua_State *L) {
  if (!lua_istable(L, 1)) arg_error(L, 1, "go.select", "a table of cases");
  gstate *s = gstate_of(L);
  CHECK_MAIN(L, s);
  parked *p = api_parked(s);
  int n = (int)lua_rawlen(L, 1);
  lua_getfield(L, 1, "default");
  bool dflt = lua_toboolean(L, -1);
  lua_pop(L, 1);
  goro_case stackc[8];
  xval stackv[8];
  goro_case *cases = stackc;
  xval *vals = stackv;
  if (p) {
    if (!park_cases(p, n)) return luaL_error(L, "goro: out of memory in select");
    cases = p->cases;
    vals = p->selvals;
  } else if (n > 8) {
    cases = lua_newuserdatauv(L, sizeof *cases * (size_t)n, 0);
    vals = lua_newuserdatauv(L, sizeof *vals * (size_t)n, 0);
  }
  for (int i = 0; i < n; i++) vals[i].tag = XV_NIL;
  for (int i = 0; i < n; i++) {
    if (lua_rawgeti(L, 1, i + 1) != LUA_TTABLE) {
      drop_vals(vals, i);
      return luaL_error(L, "goro: select case %d must be a table {ch, \"recv\"} or "
                           "{ch, \"send\", value}, got %s", i + 1, luaL_typename(L, -1));
    }
    int ct = lua_gettop(L);
    lua_rawgeti(L, ct, 1);
    lua_rawgeti(L, ct, 2);
    const char *dir = lua_tostring(L, -1);
    goro_chan *c = NULL;
    if (!lua_isnil(L, -2) && !(c = lchan_test(L, -2))) {
      drop_vals(vals, i);
      return luaL_error(L, "goro: select case %d: a channel (or nil) expected, got %s",
                        i + 1, luaL_typename(L, -2));
    }
    if (!dir || (strcmp(dir, "recv") != 0 && strcmp(dir, "send") != 0)) {
      drop_vals(vals, i);
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
        drop_vals(vals, i);
        return lua_error(L);
      }
    } else {
      cases[i].dir = GORO_RECV;
    }
    lua_settop(L, ct - 1);
  }
  return park_op(L, p, gstate_canpark(L, s), PARK_SELECT, cases, n,
                 dflt ? GORO_NOW : GORO_FOREVER, vals);
}

void lselect_open(lua_State *L) {
  static const luaL_Reg funcs[] = {{"select", l_select}, {NULL, NULL}};
  luaL_setfuncs(L, funcs, 0);
}
