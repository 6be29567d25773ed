/*
** object.h — the registry of goro objects: channels, waitgroups, timers,
** ffi functions, atomics, syncmaps, contexts are C structs shared by
** reference between lua_States, each state seeing one userdata per object
** (object.c).
*/
#ifndef GORO_OBJECT_H
#define GORO_OBJECT_H

#include <stdatomic.h>

#include "lauxlib.h"
#include "lua.h"

enum { GOBJ_CHAN = 1, GOBJ_WG, GOBJ_TIMER, GOBJ_FFI, GOBJ_ATOMIC, GOBJ_VALUE, GOBJ_SMAP,
       GOBJ_CTX };

/* The header of every goro object. Owned jointly by its references: no
** state owns it; the last gobj_unref frees it. Only refs changes after
** creation (atomically); the other fields are written before the object is
** first pushed and read-only after. */
typedef struct gobj {
  _Atomic int refs;   /* one per userdata in any state, + one per message */
  int type;           /* GOBJ_* */
  void (*free)(struct gobj *o);
  const char *mtname; /* its userdata's metatable in the registry */
  void (*openmt)(lua_State *L); /* registers mtname in a state lacking it */
} gobj;

static inline void gobj_ref(gobj *o) {
  /* relaxed: made from an existing reference. */
  atomic_fetch_add_explicit(&o->refs, 1, memory_order_relaxed);
}
static inline void gobj_unref(gobj *o) {
  /* acq_rel: the last owner frees after everyone else's writes. */
  if (atomic_fetch_sub_explicit(&o->refs, 1, memory_order_acq_rel) == 1) o->free(o);
}

/* Fills the header of a new object (one reference: the creator's). */
static inline void gobj_init(gobj *o, int type, void (*free)(gobj *o), const char *mtname,
                             void (*openmt)(lua_State *L)) {
  atomic_init(&o->refs, 1);
  o->type = type;
  o->free = free;
  o->mtname = mtname;
  o->openmt = openmt;
}

/* Pushes the userdata for o in L (the state's existing one, so identity
** holds within a state); takes over one reference of the caller's. */
void gobj_push(lua_State *L, gobj *o);
/* The gobj of the userdata at idx, or NULL. */
gobj *gobj_test(lua_State *L, int idx);
/* The gobj of the given type at idx; else a "goro: bad argument" error. */
gobj *gobj_check(lua_State *L, int idx, int type);
/* Name of a goro object type, for messages. */
const char *gobj_typename(int type);
/* Registers a goro object metatable (left on the stack): marks it (__goro)
** and sets __gc, which drops the userdata's reference. */
void gobj_newmt(lua_State *L, const char *name);
/* gobj_newmt, with the methods as __index. */
void gobj_newmt_methods(lua_State *L, const char *name, const luaL_Reg *methods);

#endif
