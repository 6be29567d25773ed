/*
** ldump.h — goroutine dumps (ldump.c): what every goroutine waits on, for
** the deadlock error, go.dump() and SIGQUIT. Below gstate.c (which embeds
** a gwatch in every goroutine state) and park.c (which says when the main
** state waits); knows nothing of either.
*/
#ifndef GORO_LDUMP_H
#define GORO_LDUMP_H

#include <time.h>

#include "goro_lua.h"

/* A goroutine state as a dump sees it. own is its ownership lock: the M
** running the goroutine holds it (1) around every step; a dump holds it (2)
** while it reads the parked coroutine's stack (lua_getstack and
** lua_getinfo only: nothing written to the state). Uncontended, it costs
** the step one CAS and one store. */
typedef struct gwatch {
  _Atomic int own;         /* 0 free, 1 a step runs, 2 a dump reads */
  _Atomic uint64_t gid;    /* the goroutine's id, 0 when pooled (relaxed: for "running") */
  lua_State *co;           /* the goroutine's coroutine; set by gwatch_add */
  goro_g *g;               /* own: its G, NULL when pooled or finished */
  int kind;                /* own: PARK_* it parked in (park.h), 0 none */
  int64_t since;           /* own: when it parked (coarse clock, ns) */
  struct gwatch *next, *prev; /* the registry (ldump.c's lock) */
} gwatch;

/* A coarse monotonic clock (a few ns to read; ms resolution). */
static inline int64_t ldump_coarse_now(void) {
  struct timespec ts;
#if defined(CLOCK_MONOTONIC_COARSE)
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
#else
  clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A new state joins / leaves the registry (gstate_new, gstate_free). */
void gwatch_add(gwatch *w, lua_State *co);
void gwatch_remove(gwatch *w);

/* Around each step of g (gstate.c's gstep; id is goro_id(g)): enter
** before lua_resume; leave after it with the PARK_* kind it parked in, 0 if
** it yielded, -1 if it finished. */
static inline void gwatch_enter(gwatch *w, goro_g *g, uint64_t id) {
  int z = 0;
  /* acquire: pairs with the release in gwatch_leave / the dump's unlock */
  while (!atomic_compare_exchange_weak_explicit(&w->own, &z, 1, memory_order_acquire,
                                                memory_order_relaxed))
    z = 0;
  w->g = g;
  atomic_store_explicit(&w->gid, id, memory_order_relaxed);
}

static inline void gwatch_leave(gwatch *w, int kind) {
  if (kind < 0) {
    w->g = NULL;
    atomic_store_explicit(&w->gid, 0, memory_order_relaxed);
    kind = 0;
  }
  if ((w->kind = kind) != 0) w->since = ldump_coarse_now();
  /* release: a dump that takes the lock sees the stack as the step left it */
  atomic_store_explicit(&w->own, 0, memory_order_release);
}

/* The main state waits (kind: PARK_* or LDUMP_WAITALL) on n cases, or
** stops waiting (L NULL). cases stay valid until the next call. */
#define LDUMP_WAITALL 100
void ldump_main_wait(lua_State *L, int kind, const goro_case *cases, int n);

/* Raises msg followed by the dump of every goroutine (the main state's
** deadlock error). Never returns. */
int ldump_deadlock(lua_State *L, const char *msg);

/* SIGQUIT prints every goroutine's dump to stderr and exits with status 2
** (as Go); installed at the runtime's start unless the program has a
** handler of its own. */
void ldump_init(void);

/* go.dump: adds it to the module table on top of the stack. */
void ldump_open(lua_State *L);

/* Where the caller of a goro function stands in user code ("main.lua:4"),
** skipping goro's own Lua library: an interned string, never freed. */
const char *ldump_site(lua_State *L);
/* The function at idx as "file:line" (where it is defined), interned. */
const char *ldump_fn_site(lua_State *L, int idx);
/* GORO_TRACE=path: starts the execution trace (the runtime's start). */
void ldump_trace_env(lua_State *L);

#endif
