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
#include <stdio.h>
#include <string.h>

#include "xfer_int.h"

/* --------------------------------------------------------------- the host */

static void main_env(lua_State *L) { lua_pushglobaltable(L); }
static lua_CFunction std_opener(const char *name) {
  static const luaL_Reg std[] = {
    {LUA_COLIBNAME, luaopen_coroutine}, {LUA_TABLIBNAME, luaopen_table},
    {LUA_IOLIBNAME, luaopen_io},        {LUA_OSLIBNAME, luaopen_os},
    {LUA_STRLIBNAME, luaopen_string},   {LUA_MATHLIBNAME, luaopen_math},
    {LUA_UTF8LIBNAME, luaopen_utf8},    {LUA_DBLIBNAME, luaopen_debug},
    {LUA_LOADLIBNAME, luaopen_package}, {NULL, NULL}};
  for (const luaL_Reg *l = std; l->name; l++)
    if (strcmp(l->name, name) == 0) return l->func;
  return NULL;
}
static xprotos *no_protos(lua_State *L) { (void)L; return NULL; }
static const xfer_host main_host = {main_env, std_opener, no_protos};

/* Written once by the main state before the runtime starts (no goroutine
** runs yet), read-only after. */
const xfer_host *xhost = &main_host;

void xfer_set_host(const xfer_host *h) { xhost = h ? h : &main_host; }

/* ------------------------------------------------------------ the names */

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
  lua_CFunction open = xhost->opener(name);
  if (open) { /* a standard library becomes a global, as in lua.c */
    luaL_requiref(L, name, open, strncmp(name, "goro", 4) != 0);
    return;
  }
  lua_pushglobaltable(L);
  if (lua_getfield(L, -1, "require") != LUA_TFUNCTION) {
    lua_pop(L, 2);
    luaL_requiref(L, LUA_LOADLIBNAME, xhost->opener(LUA_LOADLIBNAME), 1);
    lua_pop(L, 1);
    lua_pushglobaltable(L);
    lua_getfield(L, -1, "require");
  }
  lua_remove(L, -2);
  lua_pushstring(L, name);
  lua_call(L, 1, 1);
}

/* Whether a template list (package.path or cpath) names a readable file
** for module name, as package.searchpath would find it. */
static bool on_path(const char *templates, const char *name) {
  char file[1024], mod[256];
  size_t n = strlen(name);
  if (n >= sizeof mod) return false;
  for (size_t i = 0; i <= n; i++) mod[i] = name[i] == '.' ? LUA_DIRSEP[0] : name[i];
  for (const char *t = templates; t && *t;) {
    const char *end = strchr(t, *LUA_PATH_SEP);
    size_t tl = end ? (size_t)(end - t) : strlen(t);
    size_t o = 0;
    bool fits = true;
    for (size_t i = 0; i < tl && fits; i++) {
      const char *piece = t[i] == *LUA_PATH_MARK ? mod : NULL;
      size_t pl = piece ? strlen(piece) : 1;
      if (o + pl >= sizeof file) fits = false;
      else if (piece) memcpy(file + o, piece, pl), o += pl;
      else file[o++] = t[i];
    }
    if (fits && tl > 0) {
      file[o] = 0;
      FILE *f = fopen(file, "r");
      if (f) {
        fclose(f);
        return true;
      }
    }
    t = end ? end + 1 : t + tl;
  }
  return false;
}

bool xfer_module_rebuildable(lua_State *L, const char *name) {
  if (strcmp(name, LUA_GNAME) == 0 || xhost->opener(name)) return true;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, RK_MODOK) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, RK_MODOK);
  }
  if (lua_getfield(L, -1, name) != LUA_TNIL) {
    lua_pop(L, 2);
    return true;
  }
  lua_pop(L, 1);
  bool found = true; /* without a package library, nothing to check against */
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getfield(L, -1, LUA_LOADLIBNAME) == LUA_TTABLE) {
    lua_getfield(L, -1, "path");
    lua_getfield(L, -2, "cpath");
    const char *path = lua_tostring(L, -2), *cpath = lua_tostring(L, -1);
    found = on_path(path, name) || on_path(cpath, name);
    if (!found && strchr(name, '.')) { /* cpath's all-in-one loader: "a" for "a.b" */
      char root[256];
      size_t rl = (size_t)(strchr(name, '.') - name);
      if (rl < sizeof root) {
        memcpy(root, name, rl);
        root[rl] = 0;
        found = on_path(cpath, root);
      }
    }
    lua_pop(L, 2);
  }
  lua_pop(L, 2);
  if (found) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, name);
  }
  lua_pop(L, 1);
  return found;
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
