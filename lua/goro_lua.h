/*
** goro_lua.h — what the binding's C files share: the Lua headers and
** version check, the registry keys, the transfer machinery (xfer.c) and
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
/* Frees the message cache (at runtime shutdown). */
void xfer_fini(void);
/* Drops the fnproto references a goroutine state holds (gstate_free). */
struct gstate;
void xfer_free_protos(struct gstate *s);

/* ---------------------------------------------------------- states */

/* A prototype a goroutine state received (its key, see xfer.c protokey)
** and the fnproto it came with: sent on, it stays that fnproto. */
typedef struct xproto {
  const void *key;
  struct fnproto *fp; /* one reference held */
} xproto;

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
                      ** came with, held (xfer.c: dec_function) */
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
