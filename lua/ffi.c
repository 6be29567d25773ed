/*
** ffi.c — go.ffi: declare and call native functions through libffi from
** any goroutine; functions declared blocking run with a P handoff.
** (Being written: see issue #4.)
*/
#include "goro_lua.h"

int goro_open_ffi(lua_State *L) {
  lua_newtable(L);
  return 1;
}
