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

#if LUA_VERSION_NUM != 504
#error "goro needs Lua 5.4"
#endif

/* ---------------------------------------------------------- transfer */

#include "xfer.h" /* xbuf, xval, xproto, xfer_* */

/* ---------------------------------------------------------- states */

/* A goroutine's lua_State and what goes with it. Owned by the G it runs
** for: reached through the G's cache slot (goro_cache), touched only by the
** M running that G; between goroutines it waits in its M's pool (gstate.c),
** and the G keeps it in its cache slot for the next goroutine started on
** it. goro_stop's thread frees what is left once every M stopped. */
typedef struct gstate {
  lua_State *L;       /* the state's main thread */
  lua_State *co;      /* the coroutine that runs the goroutine */
  goro_g *g;          /* the G it runs for, or NULL when pooled */
  int nargs;          /* values to pass to the next resume */
  int chain_ok;       /* the chain of user coroutines can pass a yield up */
  int preempted;      /* the yield is a preemption */
  struct parked *park; /* the parked operation's state (park.h; park.c owns
                      ** its fields, gstate.c makes and frees it) */
  struct xproto *protos; /* the fnprotos its goroutines' entry functions
                      ** came with, held (xfer_proto.c) */
  int nprotos, capprotos;
  xbuf *bootmsg;      /* the spawn message until boot decoded it */
  unsigned pathgen;   /* package paths generation this state has */
  size_t mem, memlimit; /* bytes in use by the state; 0 limit = none */
} gstate;

/* The gstate of L, or NULL in the main state (not a goroutine). */
gstate *gstate_of(lua_State *L);
/* Whether an operation in L may park the goroutine of s (yield up to the
** scheduler); false where it must block the thread (s NULL: the main
** state). */
bool gstate_canpark(lua_State *L, gstate *s);
/* Spawns a goroutine running the function at idx with the n-1 values after
** it. Raises Lua errors. */
void gstate_spawn(lua_State *L, int idx, int n, size_t memlimit);
/* The opener of a standard library for goroutine states (coroutine's
** resume/wrap pass parks up; package inherits the main state's paths). */
lua_CFunction gstate_opener(const char *name);
void gstate_set_paths(const char *path, const char *cpath);
/* The modules package.preload offers in goroutine states (goro, goro.ffi):
** set once by the main state before the runtime starts; kept, not copied. */
void gstate_set_preload(const luaL_Reg *mods);
void gstate_cache_free(void *p);
/* Preemption by signal (see gstate.c); called by the main state at the
** runtime's start and after it stopped. */
void gstate_init_preemption(void);
void gstate_fini_preemption(void);
/* The reap callback of goro_start: g's goroutine will never run again. */
void gstate_reap(goro_g *g, void *ud);
/* The environment table user code of this goroutine runs in (globals). */
void gstate_push_env(lua_State *L);

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
#define RK_RUNTIME (&registry_keys[3])  /* main: the userdata that stops the runtime */
#define RK_ENVMT (&registry_keys[4])    /* metatable of goroutine environments */
#define RK_CO (&registry_keys[5])       /* the goroutine's coroutine */
#define RK_MODNAMES (&registry_keys[6]) /* module table -> name */
#define RK_CFNAMES (&registry_keys[7])  /* C function -> {module, field} */
#define RK_FNCACHE (&registry_keys[8])  /* prototype key -> fnproto (sender) */
#define RK_PROTOS (&registry_keys[9])   /* fnproto id -> closure (receiver) */
#define RK_PATHS (&registry_keys[10])   /* main: {package.path, cpath} last seen */
#define RK_GSTATE (&registry_keys[11])  /* true in goroutine states */

#endif
