/*
** xfer_names.c — the names values travel by: module tables and C functions
** that belong to a loaded module are sent as names (T_MODULE, T_CNAMED)
** and looked up again in the receiver, so that per-state setup (io's
** files, a C module's upvalues) is the receiver's own.
**
** Two maps per state, in its registry (only that state's thread uses them):
**   RK_MODNAMES  module table -> name (weak keys), kept up to date by a
**                __newindex on package.loaded (the tracker below);
**   RK_CFNAMES   C function -> {module, field}, built on first use from
**                package.loaded, dropped whenever a module is added.
*/
#include <string.h>

#include "xfer_int.h"

const char *xfer_modname(lua_State *L, int idx) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, RK_MODNAMES) != LUA_TTABLE) {
    lua_pop(L, 1);
    xfer_init_state(L); /* first use in this state */
    lua_rawgetp(L, LUA_REGISTRYINDEX, RK_MODNAMES);
  }
  lua_pushvalue(L, idx);
  lua_rawget(L, -2);
  const char *s = lua_tostring(L, -1);
  lua_pop(L, 2); /* the string stays alive in the modnames table */
  return s;
}

/* Pushes a new C function -> {module, field} map of every C function field
** of every loaded module (the first name found wins). */
static void cfnames_build(lua_State *L) {
  lua_newtable(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_pushnil(L);
  while (lua_next(L, -2)) { /* map, loaded, modname, module */
    if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TTABLE) {
      lua_pushnil(L);
      while (lua_next(L, -2)) { /* ..., module, field, value */
        if (lua_type(L, -2) == LUA_TSTRING && lua_iscfunction(L, -1)) {
          lua_pushvalue(L, -1);
          if (lua_rawget(L, -7) == LUA_TNIL) {
            lua_pop(L, 1);
            lua_createtable(L, 2, 0);
            lua_pushvalue(L, -5);
            lua_rawseti(L, -2, 1);
            lua_pushvalue(L, -3);
            lua_rawseti(L, -2, 2);
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, -8);
          } else {
            lua_pop(L, 1);
          }
        }
        lua_pop(L, 1);
      }
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

bool xfer_cfname(lua_State *L, int idx, const char **mod, const char **field) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, RK_CFNAMES) != LUA_TTABLE) {
    lua_pop(L, 1);
    cfnames_build(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, RK_CFNAMES);
  }
  lua_pushvalue(L, idx);
  if (lua_rawget(L, -2) != LUA_TTABLE) {
    lua_pop(L, 2);
    return false;
  }
  lua_rawgeti(L, -1, 1);
  lua_rawgeti(L, -2, 2);
  *mod = lua_tostring(L, -2);
  *field = lua_tostring(L, -1);
  lua_pop(L, 4); /* strings stay alive in the cfnames table */
  return true;
}

void xfer_push_module(lua_State *L, const char *name) {
  if (strcmp(name, LUA_GNAME) == 0) { /* the base library: the globals */
    lua_pushglobaltable(L);
    return;
  }
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getfield(L, -1, name) != LUA_TNIL) {
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 2);
  lua_CFunction open = gstate_opener(name);
  if (open) {
    luaL_requiref(L, name, open, 1);
    return;
  }
  if (strcmp(name, "goro") == 0) {
    luaL_requiref(L, name, luaopen_goro, 0);
    return;
  }
  lua_pushglobaltable(L);
  if (lua_getfield(L, -1, "require") != LUA_TFUNCTION) {
    lua_pop(L, 2);
    luaL_requiref(L, LUA_LOADLIBNAME, gstate_opener(LUA_LOADLIBNAME), 1);
    lua_pop(L, 1);
    lua_pushglobaltable(L);
    lua_getfield(L, -1, "require");
  }
  lua_remove(L, -2);
  lua_pushstring(L, name);
  lua_call(L, 1, 1);
}

/* ------------------------------------------------ the package.loaded tracker */

/* __newindex of package.loaded: stores the module, records its name, and
** drops the C function map (names may have changed). */
static int loaded_newindex(lua_State *L) {
  lua_settop(L, 3);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  lua_rawset(L, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, RK_MODNAMES);
  if (lua_type(L, 3) == LUA_TTABLE && lua_type(L, 2) == LUA_TSTRING &&
      lua_type(L, -1) == LUA_TTABLE) {
    lua_pushvalue(L, 3);
    lua_pushvalue(L, 2);
    lua_rawset(L, -3);
  }
  lua_pushnil(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, RK_CFNAMES);
  return 0;
}

void xfer_init_state(lua_State *L) {
  lua_newtable(L); /* module table -> name (weak keys) */
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    if (lua_type(L, -1) == LUA_TTABLE && lua_type(L, -2) == LUA_TSTRING &&
        strcmp(lua_tostring(L, -2), LUA_GNAME) != 0) {
      lua_pushvalue(L, -1);
      lua_pushvalue(L, -3);
      lua_rawset(L, -6);
    }
    lua_pop(L, 1);
  }
  if (!lua_getmetatable(L, -1)) {
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, loaded_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_setmetatable(L, -2);
  } else {
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, RK_MODNAMES);
}
