/*
** goro_lua.h — internals shared by the Lua binding's C files:
**   goro.c    the module: API functions, channels, select, timers, errors
**   gstate.c  goroutine states: pool, lazy libraries, the step function
**   xfer.c    copying values between lua_States
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

#include "luacompat.h" /* the differences between 5.4 releases */

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

/* A serialized message: the values, plus the references it holds (goro
** objects, function prototypes), released if it is dropped undelivered. */
typedef struct xbuf {
  unsigned char *data; /* inl, or malloc'd when it grew */
  size_t len, cap;
  void **refs;        /* gobj* or fnproto* (tagged in the low bit); inlrefs or malloc'd */
  int nrefs, caprefs;
  size_t memlimit;    /* spawn messages: the goroutine's memory limit, 0 = none */
  const void **seenkeys; /* the encoder's grown seen map, freed on error */
  char *errmsg;       /* the encoder's error, while it unwinds */
  int *seenvals;
  void *inlrefs[2];
  unsigned char inl[96]; /* small messages need one malloc */
} xbuf;

/* A channel element: small values inline, others in a heap xbuf. */
typedef struct xval {
  uint8_t tag;        /* XV_* */
  uint8_t len;        /* inline string length */
  char s[14];         /* inline string */
  union {
    lua_Integer i;
    lua_Number n;
    xbuf *buf;
    gobj *obj;
    void *p;
  } u;
} xval;

enum { XV_NIL, XV_FALSE, XV_TRUE, XV_INT, XV_FLT, XV_STR, XV_OBJ, XV_LUD, XV_BUF };

/* Encodes the value at idx into v (allocating an xbuf if needed). On error
** pushes nothing, leaves v as nil and raises a Lua error naming `what` (e.g.
** "argument 2") and the path to the bad value. */
void xfer_encode_val(lua_State *L, int idx, xval *v, const char *what);
/* As xfer_encode_val, but on a value that cannot cross returns false with
** the error message pushed, so the caller can release what it holds. */
bool xfer_try_encode_val(lua_State *L, int idx, xval *v, const char *what);
/* Pushes the value and releases v's contents. */
void xfer_decode_val(lua_State *L, xval *v);
/* Releases v's contents without decoding (drop callback of channels). */
void xfer_drop_val(void *elem);

/* Encodes n values starting at idx into a new xbuf (spawn messages); the
** first is `what0`, then "argument 2", ... */
xbuf *xfer_encode_n(lua_State *L, int idx, int n, const char *what0);
/* Pushes the values of b (entry: the first value is a goroutine's main
** function, which may reuse this state's cached closure); returns how many.
** Does not free b. */
int xfer_decode_n(lua_State *L, xbuf *b, bool entry);
void xbuf_free(xbuf *b, bool release_refs);
/* Pushes a guard that frees b when collected, unless xfer_unguard'ed. */
void xfer_guard(lua_State *L, xbuf *b);
void xfer_unguard(lua_State *L, int idx);

/* Per-state setup of the transfer machinery (module/C-function maps). */
void xfer_init_state(lua_State *L);
void xfer_selfcheck(lua_State *L);
/* Whether the self-check passed: functions are cached per prototype. */
bool xfer_protokeys(void);
/* Frees the message cache (at runtime shutdown). */
void xfer_fini(void);
/* Drops the fnproto references a goroutine state holds (gstate_free). */
struct gstate;
void xfer_free_protos(struct gstate *s);

/* ---------------------------------------------------------- states */

/* The goroutine's per-state context, stored in the lua_State's extra space
** and in the G's cache slot while the state is pooled. */
/* A prototype a goroutine state received (its key, see xfer.c protokey)
** and the fnproto it came with: sent on, it stays that fnproto. */
typedef struct xproto {
  const void *key;
  struct fnproto *fp; /* one reference held */
} xproto;

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
                      ** came with, held (xfer.c: dec_function) */
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
