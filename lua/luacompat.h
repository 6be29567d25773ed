/*
** luacompat.h — what differs between the Lua 5.4 releases, in one place.
** goro is built and its whole suite run against 5.4.0, 5.4.3, 5.4.4
** (Debian 12), 5.4.5, 5.4.6 and 5.4.8 (`make test-lua-versions`).
**
** Resetting a thread (closing its pending to-be-closed variables, unwinding
** its stack) so that it can run again; a pooled goroutine state is reset
** after an error:
**
**   release        call                       status of the thread after it
**   5.4.0 – 5.4.2  lua_resetthread(L)         LUA_OK, unless a __close failed
**   5.4.3          lua_resetthread(L)         the error's, always: dead for good
**   5.4.4          lua_resetthread(L)         LUA_OK
**   5.4.5          lua_resetthread(L, from)   LUA_OK
**   5.4.6 –        lua_closethread(L, from)   LUA_OK (lua_resetthread deprecated)
**
** Each returns the status of the closing (from 5.4.3: the thread's error, or
** a __close error that replaced it), with its error object on top.
** LUA_VERSION_RELEASE_NUM reads 50400 in 5.4.0 to 5.4.3 (it was not bumped
** before 5.4.4), so the build picks only the call by it; whether a thread
** can run again is read from the thread (luacompat_reset's result), never
** guessed from the release.
**
** Lua's own rules that differ by release, which the specs check per release
** (spec/support.lua, S.lua_release; goroutines follow them as plain Lua):
**   - an error raised in __close while an error unwinds replaces that error
**     from 5.4.3 on; before, it is a warning and the first error stays (so
**     coroutine.wrap raises a failing __close's error from 5.4.3 on: goro's
**     wrap asks luacompat_close_replaces);
**   - the __close of a thread being reset after an error receives that
**     error from 5.4.3 on; before, nil.
*/
#ifndef LUACOMPAT_H
#define LUACOMPAT_H

#include <stdbool.h>

#include "lua.h"

#if LUA_VERSION_NUM != 504
#error "goro needs Lua 5.4"
#endif

/* The release goro was compiled against ("Lua 5.4.6"): go.stats().lua. */
#define LUACOMPAT_RELEASE LUA_RELEASE

/* Closes L's pending to-be-closed variables and resets it; from: the state
** resuming it (its C-call count), or NULL. Returns the closing's status. */
static inline int luacompat_closethread(lua_State *L, lua_State *from) {
#if LUA_VERSION_RELEASE_NUM >= 50406
  return lua_closethread(L, from);
#elif LUA_VERSION_RELEASE_NUM == 50405
  return lua_resetthread(L, from);
#else
  (void)from;
  return lua_resetthread(L);
#endif
}

/* Whether an error raised in __close replaces the error being unwound (Lua
** 5.4.3 on): probed once on a scratch state (luacompat.c), as the release
** number cannot tell 5.4.3 from 5.4.0. */
bool luacompat_close_replaces(void);

/* Resets L for reuse: true if it can run again (its status is LUA_OK);
** false if it keeps an error status (5.4.3 after any error, 5.4.0 to 5.4.2
** after a failed __close): such a thread must be closed, never reused. */
static inline bool luacompat_reset(lua_State *L, lua_State *from) {
  luacompat_closethread(L, from);
  return lua_status(L) == LUA_OK;
}

#endif
