/*
** host.c — a minimal Lua 5.4 interpreter for the sanitizer runs: Debian's
** lua5.4 is not linked with the sanitizer runtimes, so `make tsan` / `make
** asan` run the specs with this instead.
**   lua-host script.lua [args...]     lua-host -e 'chunk'
** Errors print with a traceback; the exit status is 1 on error. The state
** is closed at the end, as lua5.4 does, so goro's shutdown runs. SIGINT
** is handled as lua.c does (laction): a hook raises "interrupted!".
*/
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "lauxlib.h"
#include "lua.h"
#include "lualib.h"

static int msgh(lua_State *L) {
  const char *m = lua_tostring(L, 1);
  luaL_traceback(L, L, m ? m : "(error object is not a string)", 1);
  return 1;
}

static lua_State *globalL;

static void lstop(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted!");
}

static void laction(int i) {
  signal(i, SIG_DFL);
  lua_sethook(globalL, lstop, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s script.lua [args] | -e chunk\n", argv[0]);
    return 2;
  }
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  lua_createtable(L, argc, 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - 1);
  }
  lua_setglobal(L, "arg");
  int st;
  lua_pushcfunction(L, msgh);
  if (strcmp(argv[1], "-e") == 0 && argc > 2) st = luaL_loadstring(L, argv[2]);
  else st = luaL_loadfile(L, argv[1]);
  if (st == LUA_OK) {
    int n = 0;
    for (int i = 2; i < argc && strcmp(argv[1], "-e") != 0; i++, n++) lua_pushstring(L, argv[i]);
    globalL = L;
    signal(SIGINT, laction);
    st = lua_pcall(L, n, 0, 1);
    signal(SIGINT, SIG_DFL);
  }
  if (st != LUA_OK) fprintf(stderr, "%s: %s\n", argv[0], lua_tostring(L, -1));
  lua_close(L);
  return st == LUA_OK ? 0 : 1;
}
