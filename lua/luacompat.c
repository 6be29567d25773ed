/*
** luacompat.c — the Lua rules that goro probes on the running Lua rather
** than guess from its release number (luacompat.h).
*/
#include <pthread.h>
#include <string.h>

#include "lauxlib.h"
#include "lualib.h"

#include "luacompat.h"

static bool close_replaces; /* written once, under close_once */
static pthread_once_t close_once = PTHREAD_ONCE_INIT;

static void probe_close(void) {
  static const char chunk[] =
      "local _, e = pcall(function() "
      "local x <close> = setmetatable({}, {__close = function() error('second', 0) end}) "
      "error('first', 0) end) "
      "return e";
  lua_State *L = luaL_newstate();
  if (!L) return; /* out of memory: keep the older rule */
  luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
  lua_pop(L, 1);
  lua_setwarnf(L, NULL, NULL); /* 5.4.0-5.4.2 warn about the dropped error */
  if (luaL_dostring(L, chunk) == LUA_OK && lua_type(L, -1) == LUA_TSTRING)
    close_replaces = strcmp(lua_tostring(L, -1), "second") == 0;
  lua_close(L);
}

bool luacompat_close_replaces(void) {
  pthread_once(&close_once, probe_close); /* its writes happen before our read */
  return close_replaces;
}
