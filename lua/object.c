/*
** object.c — the registry of goro objects (object.h): a goro object is a
** refcounted C struct; each lua_State that sees it holds one userdata (a
** gud) with one reference, found again through a weak table in the state's
** registry (RK_OBJS), so `ch == ch` holds after a round trip through
** another state. The userdata's metatable is made in a state on first use.
*/
#include <string.h>

#include "goro_lua.h"

/* The userdata of a goro object in one state, owned by that state (its
** __gc drops the reference). The magic tells our userdata from any other
** without a metatable lookup. */
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
  case GOBJ_ATOMIC: return "atomic";
  case GOBJ_VALUE: return "atomic value";
  case GOBJ_SMAP: return "syncmap";
  case GOBJ_CTX: return "context";
  default: return "goro object";
  }
}

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

gobj *gobj_check(lua_State *L, int idx, int type) {
  gobj *o = gobj_test(L, idx);
  if (o && o->type == type) return o;
  const char *got = o ? gobj_typename(o->type) : luaL_typename(L, idx);
  lua_Debug ar;
  /* obj.method(x) instead of obj:method(x): the object is missing from #1 */
  if (idx == 1 && lua_getstack(L, 0, &ar) && lua_getinfo(L, "n", &ar) && ar.name &&
      ar.namewhat && strcmp(ar.namewhat, "field") == 0) {
    if (strcmp(ar.name, "?") == 0)
      luaL_error(L, "goro: bad argument #1: %s expected, got %s: call it as a method, "
                 "with a colon (x:method(...), not x.method(...))", gobj_typename(type), got);
    luaL_error(L, "goro: bad argument #1 to '%s': %s expected, got %s: call it as a "
               "method, with a colon (x:%s(...), not x.%s(...))", ar.name,
               gobj_typename(type), got, ar.name, ar.name);
  }
  luaL_error(L, "goro: bad argument #%d: %s expected, got %s", idx, gobj_typename(type), got);
  return NULL;
}

static int obj_gc(lua_State *L) {
  gud *u = lua_touserdata(L, 1);
  if (u->o) gobj_unref(u->o);
  u->o = NULL;
  u->magic = 0;
  return 0;
}

void gobj_newmt(lua_State *L, const char *name) {
  luaL_newmetatable(L, name);
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, "__goro");
  lua_pushcfunction(L, obj_gc);
  lua_setfield(L, -2, "__gc");
}

void gobj_newmt_methods(lua_State *L, const char *name, const luaL_Reg *methods) {
  gobj_newmt(L, name);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
}
