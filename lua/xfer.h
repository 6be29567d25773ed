/*
** xfer.h — copying values between lua_States (DESIGN.md "Transfer"): the
** messages, the channel elements, and the calls the rest of the binding
** makes. What crosses, and how:
**   nil, booleans, integers, floats (math.type kept), strings: copied.
**   tables: deep copies; cycles and shared sub-tables are preserved, and so
**     are metatables.
**   Lua functions: the prototype's bytecode (string.dump, debug info kept)
**     plus each upvalue, recursively. An upvalue holding the sender's
**     globals (_ENV) is bound to the receiver's globals; upvalues shared
**     between copied closures stay shared (lua_upvaluejoin). Globals the
**     function's code names and the sender defined (REPL lines) travel too
**     (read raw: a strict _ENV's __index is never called).
**   C functions: by name when they belong to a loaded module (re-required
**     in the receiver, so per-state setup such as io's is done), else by
**     pointer when they have no upvalues.
**   module tables (values of package.loaded): re-required by name.
**   goro objects (channels, waitgroups...): shared by reference.
**   light userdata: copied as a pointer.
**   anything else (files, coroutines, other userdata): refused, with an
**     error that names the type and the path to the value.
**
** The files:
**   xfer_buf.c     message buffers (xbuf) and their per-thread cache
**   xfer_proto.c   the prototype registry: bytecode shared by every state
**   xfer_names.c   module and C-function names, the package.loaded tracker
**   xfer_encode.c  the encoder: values to bytes, paths for its errors
**   xfer_decode.c  the decoder: bytes to values in the receiving state
**   xfer_int.h     what they share: the wire format, the prototype record
*/
#ifndef XFER_H
#define XFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lua.h"

struct gobj;
struct fnproto;

/* A serialized message: the values, plus the references it holds (goro
** objects, function prototypes), released if it is dropped undelivered.
** Owner: the encoder until it returns it, then one holder at a time (a
** channel slot under the channel's lock, a spawn's G, the decoder), so no
** field needs a lock. The header itself is recycled (xfer_buf.c). */
typedef struct xbuf {
  unsigned char *data; /* inl, or malloc'd when it grew */
  size_t len, cap;
  void **refs;        /* gobj* or fnproto* (tagged in the low bit); inlrefs or malloc'd */
  int nrefs, caprefs;
  size_t memlimit;    /* spawn messages: the goroutine's memory limit, 0 = none */
  void *owner;        /* spawn messages: the goroutine's host (a ghost, gstate.h), one reference */
  void *inlrefs[2];
  unsigned char inl[96]; /* small messages need one malloc */
} xbuf;

/* A channel element: small values inline, others in a heap xbuf. Owned by
** the channel's buffer (under its lock) or by the gstate parked on it. */
typedef struct xval {
  uint8_t tag;        /* XV_* */
  uint8_t len;        /* inline string length */
  char s[14];         /* inline string */
  union {
    lua_Integer i;
    lua_Number n;
    xbuf *buf;
    struct gobj *obj;
    void *p;
  } u;
} xval;

enum { XV_NIL, XV_FALSE, XV_TRUE, XV_INT, XV_FLT, XV_STR, XV_OBJ, XV_LUD, XV_BUF };

/* A prototype a goroutine state received (its key, see xfer_proto.c
** protokey) and the fnproto it came with: sent on, it stays that fnproto.
** Owned by its gstate: only the thread running that state touches it. */
typedef struct xproto {
  const void *key;
  struct fnproto *fp; /* one reference held */
  unsigned gen;       /* the RK_PROTOS generation its closure is in */
} xproto;

/* The prototypes a goroutine state received with its goroutines' entry
** functions: a C array, not a Lua object, so a pooled state that never
** sends pays 16 bytes. Embedded in the gstate (its owner); filled and
** freed only by xfer_proto.c, on the thread running that state. */
typedef struct xprotos {
  xproto *v;
  int n, cap;
  unsigned gen;       /* RK_PROTOS's young generation */
} xprotos;

/* What transfer needs of the state it encodes from or decodes into. The
** layer above (gstate.c) supplies it once, before the first transfer
** (xfer_set_host), so that the transfer files never call up; until then a
** state is taken for the main state (its globals, no received prototypes,
** the standard openers). */
typedef struct xfer_host {
  /* the globals user code in L sees (a goroutine's own environment) */
  void (*push_env)(lua_State *L);
  /* the loader of a standard library or of a module goro preloads
  ** ("goro", "goro.ffi"), or NULL */
  lua_CFunction (*opener)(const char *name);
  /* the received prototypes of L's goroutine, NULL in the main state */
  xprotos *(*protos)(lua_State *L);
} xfer_host;
/* Called once, before the runtime starts; h is kept, not copied. */
void xfer_set_host(const xfer_host *h);

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
** first is `what0`, then "argument 2", ... A failure raises and leaves
** nothing behind (no buffer, no reference). */
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
/* Frees the message cache and the prototypes left (at runtime shutdown). */
void xfer_fini(void);
/* Drops the fnproto references a goroutine state holds (gstate_free). */
void xfer_free_protos(xprotos *p);
/* A goroutine ended in L: its entry closure's upvalues are cleared and the
** prototypes it sent are forgotten, so that the pooled state keeps nothing
** of it (gstate.c's scrub). */
void xfer_scrub_state(lua_State *L);

#endif
