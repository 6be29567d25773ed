/*
** sval.h — a shared value: one Lua value encoded once (xfer.h) and
** refcounted, so that many holders in many states can decode it, each into
** its own copy, without a lock held while Lua runs. Immutable after
** sval_new. Used where goro objects keep values (lsmap.c: a syncmap's
** values; lcontext.c: a context's cause).
*/
#ifndef GORO_SVAL_H
#define GORO_SVAL_H

#include <stdlib.h>

#include "goro_lua.h"

typedef struct sval {
  _Atomic int refs; /* one per holder */
  uint64_t id;      /* unique per value made, never 0 (compare-and-swap by id) */
  xbuf *b;          /* one encoded value */
} sval;

/* The value at idx as a new sval with one reference; raises on a value that
** cannot cross (named `what`) or out of memory, leaving nothing behind. */
static inline sval *sval_new(lua_State *L, int idx, const char *what) {
  static _Atomic uint64_t nextid = 1; /* relaxed: only uniqueness matters */
  xbuf *b = xfer_encode_n(L, idx, 1, what);
  sval *v = malloc(sizeof *v);
  if (!v) {
    xbuf_free(b, true);
    luaL_error(L, "goro: out of memory keeping %s", what);
  }
  atomic_init(&v->refs, 1);
  v->id = atomic_fetch_add_explicit(&nextid, 1, memory_order_relaxed);
  v->b = b;
  return v;
}

static inline void sval_ref(sval *v) {
  /* relaxed: made from a reference held */
  atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed);
}

/* Drops a reference (v may be NULL). The last one frees the message and
** the references it holds: never call it under a lock that freeing a goro
** object may take. */
static inline void sval_unref(sval *v) {
  /* acq_rel: the last holder frees after every other's reads */
  if (v && atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel) == 1) {
    xbuf_free(v->b, true);
    free(v);
  }
}

/* Pushes a copy of v's value (nil for NULL) and drops the caller's
** reference. (A decoding error, out of memory, leaves that reference.) */
static inline void sval_push(lua_State *L, sval *v) {
  if (!v) {
    lua_pushnil(L);
    return;
  }
  xfer_decode_n(L, v->b, false);
  sval_unref(v);
}

#endif
