/*
** gsyscall.c — the standard libraries' blocking functions, as goroutine
** states open them (gstate.c's lazy libraries): io and os with the calls
** that may block the thread wrapped as syscalls.
*/
#include "gstate.h"

/* In goroutine states the library functions that may block the thread
** (os.execute, reads and writes of files and pipes) run as a syscall: the
** P stays marked, and sysmon hands it to another M if the call lasts over
** ~1 ms (Go's entersyscall / retake), so a goroutine in `os.execute("sleep
** 1")` does not stall the others on its P. */

static int syscall_k(lua_State *L) {
  int n = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  int old = goro_nopark(1);
  goro_enter_syscall();
  int st = lua_pcall(L, n, LUA_MULTRET, 0);
  goro_exit_blocking();
  goro_nopark(old);
  if (st != LUA_OK) return lua_error(L);
  return lua_gettop(L);
}

/* Wraps the listed C functions of the table at idx. */
static void wrap_blocking(lua_State *L, int idx, const char *const *names) {
  idx = lua_absindex(L, idx);
  for (; *names; names++) {
    if (lua_getfield(L, idx, *names) == LUA_TFUNCTION && lua_iscfunction(L, -1)) {
      lua_pushcclosure(L, syscall_k, 1);
      lua_setfield(L, idx, *names);
    } else {
      lua_pop(L, 1);
    }
  }
}

int gsyscall_open_os(lua_State *L) {
  static const char *const blocking[] = {"execute", "remove", "rename", "tmpname", NULL};
  luaopen_os(L);
  wrap_blocking(L, -1, blocking);
  return 1;
}

int gsyscall_open_io(lua_State *L) {
  static const char *const lib[] = {"read", "write", "popen", "close", "open", NULL};
  static const char *const methods[] = {"read", "write", "close", "flush", "seek", NULL};
  luaopen_io(L);
  wrap_blocking(L, -1, lib);
  if (luaL_getmetatable(L, LUA_FILEHANDLE) == LUA_TTABLE &&
      lua_getfield(L, -1, "__index") == LUA_TTABLE)
    wrap_blocking(L, -1, methods);
  lua_settop(L, lua_gettop(L) - 2);
  return 1;
}

