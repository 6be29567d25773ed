/*
** goro_lua.h — what the binding's C files share: the Lua headers and
** version check, the registry keys, the transfer machinery (xfer.h) and
** the goroutine states (gstate.c). Each other concept has its own header:
** object.h (goro objects), errors.h (error queue, print), park.h (park or
** block), api.h (the Lua API's files). goro.c's opening comment draws the
** layers.
*/
#ifndef GORO_LUA_H
#define GORO_LUA_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lauxlib.h"
#include "lua.h"
#include "lualib.h"

#include "goro.h"
#include "object.h"

#include "luacompat.h" /* the differences between 5.4 releases */

/* ---------------------------------------------------------- transfer */

#include "xfer.h" /* xbuf, xval, xproto, xfer_* */

/* ---------------------------------------------------------- modules */

/* Opens the module (shared by the main state and goroutine states). */
int luaopen_goro(lua_State *L);
/* Opens go.ffi (ffi.c), preloaded as "goro.ffi" in every state. */
int luaopen_goro_ffi(lua_State *L);

/* Registry keys: addresses (lua_rawgetp), cheaper than string keys. */
extern const char registry_keys[16]; /* goro.c; never written */
#define RK_ENV (&registry_keys[0])      /* the goroutine's fresh globals */
#define RK_BASE (&registry_keys[1])     /* main: names of pre-existing globals */
#define RK_OBJS (&registry_keys[2])     /* gobj* -> its userdata (weak values) */
#define RK_RUNTIME (&registry_keys[3])  /* host: the userdata that holds the runtime; its
                                        ** block is the host's ghost* (gstate.h) */
#define RK_ENVMT (&registry_keys[4])    /* metatable of goroutine environments */
#define RK_CO (&registry_keys[5])       /* the goroutine's coroutine */
#define RK_MODNAMES (&registry_keys[6]) /* module table -> name */
#define RK_CFNAMES (&registry_keys[7])  /* C function -> {module, field} */
#define RK_FNCACHE (&registry_keys[8])  /* prototype key -> fnproto (sender) */
#define RK_PROTOS (&registry_keys[9])   /* fnproto id -> closure (receiver) */
#define RK_PATHS (&registry_keys[10])   /* main: {package.path, cpath} last seen */
#define RK_GSTATE (&registry_keys[11])  /* true in goroutine states */
#define RK_MODOK (&registry_keys[14])   /* module name -> true: require finds it by name */

#endif
