/*
** gstate.h — goroutine states (gstate.c): the lua_State a goroutine runs
** in, its pool, its lazy standard libraries, its step function. Above the
** transfer files (xfer.h) and the park helper (park.h), below the API
** files (api.h) and the module (goro.c).
*/
#ifndef GORO_GSTATE_H
#define GORO_GSTATE_H

#include "goro_lua.h"
#include "ldump.h"

/* ---------------------------------------------------------- hosts
** A host is a state that required goro outside any goroutine (the main
** state of lua5.4, or any state a C program opens). Every goroutine belongs
** to the host it was spawned from, directly or through other goroutines
** (a goroutine's spawns inherit its host). When the host closes, its
** goroutines end: a running one at its next preemption (goro.c asks sysmon
** to preempt every running goroutine), a parked one when it wakes, one
** not started yet at its first step; none runs Lua code of it again.
** Refcounted: the host state holds one reference, each spawn message and
** each goroutine one. */
typedef struct ghost {
  _Atomic int closed; /* set once, when the host state closes */
  _Atomic int refs;
} ghost;

/* host.c */
ghost *ghost_new(void);
void ghost_ref(ghost *h);
void ghost_unref(ghost *h);

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
  int preempted;      /* the yield is a preemption (1) or go.exit() (GSTATE_EXIT) */
  int cancelled;      /* go.cancel's error was raised in it */
  struct parked *park; /* the parked operation's state (park.h; park.c owns
                      ** its fields, gstate.c makes and frees it) */
  xprotos protos;     /* the fnprotos its goroutines' entry functions came
                      ** with, held (xfer_proto.c fills and frees it) */
  xbuf *bootmsg;      /* the spawn message until boot decoded it */
  unsigned pathgen;   /* package paths generation this state has */
  size_t mem, memlimit; /* bytes in use by the state; 0 limit = none */
  ghost *owner;       /* the host of the goroutine it runs, one reference */
  gwatch watch;       /* what goroutine dumps see of it (ldump.h) */
  size_t mem0;        /* mem when its goroutine started (pool hygiene) */
} gstate;

/* s->preempted of a yield that ends the goroutine (go.exit, lruntime.c):
** passed up through user coroutines, closing them; the step function then
** closes the goroutine's pending to-be-closed variables and ends it
** without an error, as runtime.Goexit. */
#define GSTATE_EXIT 2

/* The gstate of L, or NULL in the main state (not a goroutine). */
gstate *gstate_of(lua_State *L);
/* Whether an operation in L may park the goroutine of s (yield up to the
** scheduler); false where it must block the thread (s NULL: the main
** state). */
bool gstate_canpark(lua_State *L, gstate *s);
/* Spawns a goroutine running the function at idx with the n-1 values after
** it; returns its id. Raises Lua errors. */
uint64_t gstate_spawn(lua_State *L, int idx, int n, size_t memlimit);
/* go.cancel: goroutine id raises "goroutine N cancelled" at its next
** instruction of Lua code (see cancel.c). */
void gstate_cancel(uint64_t id);
/* Spawns a goroutine from a message made earlier by xfer_encode_n (its
** function first, "" as its name): from any thread, with no Lua state
** (context.after_func). Returns goro_spawn's status; on failure b is still
** the caller's. */
int gstate_spawn_msg(xbuf *b);
/* The opener of a standard library for goroutine states (coroutine's
** resume/wrap pass parks up; package inherits the main state's paths), or
** of a module set by gstate_set_preload; NULL if name is neither. */
lua_CFunction gstate_opener(const char *name);
/* The modules package.preload offers in goroutine states (goro, goro.ffi):
** set once by the main state before the runtime starts; kept, not copied. */
void gstate_set_preload(const luaL_Reg *mods);
void gstate_cache_free(void *p);
/* Preemption by signal (see gstate.c); called by the main state at the
** runtime's start and after it stopped. */
void gstate_init_preemption(void);
void gstate_fini_preemption(void);
/* io and os for goroutine states, their blocking calls run as syscalls
** (gsyscall.c). */
int gsyscall_open_io(lua_State *L);
int gsyscall_open_os(lua_State *L);
/* The reap callback of goro_start: g's goroutine will never run again. */
void gstate_reap(goro_g *g, void *ud);
/* What transfer needs of goroutine states (see xfer.h): pass it to
** xfer_set_host before the runtime starts. */
extern const xfer_host gstate_xfer_host;

#endif
