/*
** goro_lua.h — internals shared by the Lua binding's C files:
**   goro.c    the module: API functions, channels, select, timers, errors
**   gstate.c  goroutine states: pool, lazy libraries, the step function
**   xfer_*.c  copying values between lua_States (xfer.h)
*/
#ifndef GORO_LUA_H
#define GORO_LUA_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <signal.h>
#include <stdint.h>

#include "lauxlib.h"
#include "lua.h"
#include "lualib.h"

#include "goro.h"

#if LUA_VERSION_NUM != 504
#error "goro needs Lua 5.4"
#endif

#if LUA_VERSION_RELEASE_NUM >= 50406
#define goro_resetthread(L) lua_closethread((L), NULL)
#else
#define goro_resetthread(L) lua_resetthread(L)
#endif

/* ---------------------------------------------------------- shared objects
** A goro object (channel, waitgroup, mutex, ...) is a C struct shared by
** reference between states: each state's userdata holds one reference. */
enum { GOBJ_CHAN = 1, GOBJ_WG, GOBJ_TIMER, GOBJ_FFI };

typedef struct gobj {
  _Atomic int refs;   /* one per userdata in any state, + one per message */
  int type;           /* GOBJ_* */
  void (*free)(struct gobj *o);
  const char *mtname; /* its userdata's metatable in the registry */
  void (*openmt)(lua_State *L); /* registers mtname in a state lacking it */
} gobj;

/* Registers a goro object metatable: marks it (__goro) and sets __gc. */
void gobj_newmt(lua_State *L, const char *name);

static inline void gobj_ref(gobj *o) {
  /* relaxed: made from an existing reference. */
  atomic_fetch_add_explicit(&o->refs, 1, memory_order_relaxed);
}
static inline void gobj_unref(gobj *o) {
  /* acq_rel: the last owner frees after everyone else's writes. */
  if (atomic_fetch_sub_explicit(&o->refs, 1, memory_order_acq_rel) == 1) o->free(o);
}

/* Pushes the userdata for o in L (the state's existing one, so identity
** holds within a state); takes over one reference of the caller's. */
void gobj_push(lua_State *L, gobj *o);
/* The gobj of the userdata at idx, or NULL. */
gobj *gobj_test(lua_State *L, int idx);
/* Name of a goro object type, for messages. */
const char *gobj_typename(int type);

/* ---------------------------------------------------------- transfer */

#include "xfer.h" /* xbuf, xval, xproto, xfer_* */

/* ---------------------------------------------------------- states */

/* The goroutine's per-state context, stored in the lua_State's extra space
** and in the G's cache slot while the state is pooled. */
typedef struct gstate {
  lua_State *L;       /* the state's main thread */
  lua_State *co;      /* the coroutine that runs the goroutine */
  goro_g *g;          /* the G it runs for, or NULL when pooled */
  int nargs;          /* values to pass to the next resume */
  int parking;        /* an operation answered EPARK: the yield is a park */
  int chain_ok;       /* the chain of user coroutines can pass a yield up */
  int preempted;      /* the yield is a preemption */
  xval sendv;         /* a parked send's element */
  xval recvv;         /* a parked recv's element */
  goro_case *cases;   /* a parked select's cases */
  xval *selvals;      /* ... and their elements */
  int ncases, ncasescap;
  goro_chan *waitchan; /* a parked waitgroup wait's channel reference */
  struct xproto *protos; /* the fnprotos its goroutines' entry functions
                      ** came with, held (xfer_proto.c) */
  int nprotos, capprotos;
  int opkind;         /* the parked operation (K_* in goro.c, 0 none) until
                      ** its continuation collects the outcome */
  xbuf *bootmsg;      /* the spawn message until boot decoded it */
  unsigned pathgen;   /* package paths generation this state has */
  size_t mem, memlimit; /* bytes in use by the state; 0 limit = none */
} gstate;

/* The gstate of L, or NULL in the main state (not a goroutine). */
gstate *gstate_of(lua_State *L);
/* 1 if an operation in L may park the goroutine (yield up to the
** scheduler), 0 if it must block the thread. */
int gstate_canpark(lua_State *L, gstate *s);
/* Spawns a goroutine running the function at idx with the n-1 values after
** it. Raises Lua errors. */
void gstate_spawn(lua_State *L, int idx, int n, size_t memlimit);
/* The opener of a standard library for goroutine states (coroutine's
** resume/wrap pass parks up; package inherits the main state's paths). */
lua_CFunction gstate_opener(const char *name);
void gstate_set_paths(const char *path, const char *cpath);
void gstate_cache_free(void *p);
/* Preemption by signal (see gstate.c); called once by the main state. */
#define GORO_PREEMPT_SIGNAL SIGURG
void gstate_init_preemption(void);
void gstate_fini_preemption(void);
void gstate_reap(goro_g *g, void *ud);
void blockop_reap(gstate *s, goro_g *g); /* goro.c: gstate_reap's part */
/* The environment table user code of this goroutine runs in (globals). */
void gstate_push_env(lua_State *L);

/* ---------------------------------------------------------- errors */

/* Records an uncaught goroutine error (message with traceback) for the
** main state, prints it, and interrupts the main thread's wait. */
void goro_post_error(const char *msg, size_t len);
/* In the main state: raises the first pending goroutine error, if any. */
void goro_check_errors(lua_State *L);

/* Line-atomic print. */
int goro_print(lua_State *L);

/* Opens the module (shared by the main state and goroutine states). */
int luaopen_goro(lua_State *L);
/* Opens go.ffi (ffi.c), preloaded as "goro.ffi" in every state. */
int goro_open_ffi(lua_State *L);

/* Registry keys: addresses (lua_rawgetp), cheaper than string keys. */
extern const char goro_regkeys[16];
#define RK_ENV (&goro_regkeys[0])      /* the goroutine's fresh globals */
#define RK_BASE (&goro_regkeys[1])     /* main: names of pre-existing globals */
#define RK_OBJS (&goro_regkeys[2])     /* gobj* -> its userdata (weak values) */
#define RK_RUNTIME (&goro_regkeys[3])  /* main: the userdata that stops the runtime */
#define RK_ENVMT (&goro_regkeys[4])    /* metatable of goroutine environments */
#define RK_CO (&goro_regkeys[5])       /* the goroutine's coroutine */
#define RK_MODNAMES (&goro_regkeys[6]) /* module table -> name */
#define RK_CFNAMES (&goro_regkeys[7])  /* C function -> {module, field} */
#define RK_FNCACHE (&goro_regkeys[8])  /* prototype key -> fnproto (sender) */
#define RK_PROTOS (&goro_regkeys[9])   /* fnproto id -> closure (receiver) */
#define RK_PATHS (&goro_regkeys[10])   /* main: {package.path, cpath} last seen */
#define RK_GSTATE (&goro_regkeys[11])  /* true in goroutine states */

#endif
