/*
** gstate.h — goroutine states (gstate.c): the lua_State a goroutine runs
** in, its pool, its lazy standard libraries, its step function. Above the
** transfer files (xfer.h) and the park helper (park.h), below the API
** files (api.h) and the module (goro.c).
*/
#ifndef GORO_GSTATE_H
#define GORO_GSTATE_H

#include "goro_lua.h"

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
  xprotos protos;     /* the fnprotos its goroutines' entry functions came
                      ** with, held (xfer_proto.c fills and frees it) */
  xbuf *bootmsg;      /* the spawn message until boot decoded it */
  unsigned pathgen;   /* package paths generation this state has */
  size_t mem, memlimit; /* bytes in use by the state; 0 limit = none */
  size_t mem0;        /* mem when its goroutine started (pool hygiene) */
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
** resume/wrap pass parks up; package inherits the main state's paths), or
** of a module set by gstate_set_preload; NULL if name is neither. */
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
/* What transfer needs of goroutine states (see xfer.h): pass it to
** xfer_set_host before the runtime starts. */
extern const xfer_host gstate_xfer_host;

#endif
