/*
** latomic.c — sync/atomic for Lua: go.atomic([n]) is an integer shared by
** reference between goroutines (a goro object, object.h), so that every
** goroutine that holds it reads and writes the same one; a global or an
** upvalue is copied into each goroutine instead. Every operation is one
** sequentially consistent atomic, as Go's sync/atomic (its memory model:
** "all the atomic operations executed in a program behave as though
** executed in some sequentially consistent order").
*/
#include <stdlib.h>

#include "api.h"

#define MT_ATOMIC "goro.atomic"

typedef struct latomic {
  gobj h;
  _Atomic lua_Integer v; /* seq_cst everywhere, as Go's sync/atomic */
} latomic;

static void open_atomic_mt(lua_State *L);

static void latomic_free(gobj *o) { free(o); }

static lua_Integer int_arg(lua_State *L, int arg, const char *fn) {
  if (lua_isnoneornil(L, arg)) arg_error(L, arg, fn, "an integer");
  return arg_int(L, arg, fn, 0);
}

static int l_atomic(lua_State *L) {
  lua_Integer n = arg_int(L, 1, "go.atomic", 0);
  latomic *a = malloc(sizeof *a);
  if (!a) return luaL_error(L, "goro: out of memory creating an atomic");
  gobj_init(&a->h, GOBJ_ATOMIC, latomic_free, MT_ATOMIC, open_atomic_mt);
  atomic_init(&a->v, n);
  gobj_push(L, &a->h);
  return 1;
}

static latomic *check(lua_State *L) { return (latomic *)gobj_check(L, 1, GOBJ_ATOMIC); }

static int at_load(lua_State *L) {
  lua_pushinteger(L, atomic_load(&check(L)->v));
  return 1;
}

static int at_store(lua_State *L) {
  latomic *a = check(L);
  atomic_store(&a->v, int_arg(L, 2, "a:store"));
  return 0;
}

/* a:add(d) -> the new value (wraps around as Lua integers do) */
static int at_add(lua_State *L) {
  latomic *a = check(L);
  lua_Integer d = arg_int(L, 2, "a:add", 1);
  /* unsigned arithmetic: wrap-around without signed overflow */
  lua_pushinteger(L, (lua_Integer)((lua_Unsigned)atomic_fetch_add(&a->v, d) + (lua_Unsigned)d));
  return 1;
}

/* a:swap(v) -> the old value */
static int at_swap(lua_State *L) {
  latomic *a = check(L);
  lua_pushinteger(L, atomic_exchange(&a->v, int_arg(L, 2, "a:swap")));
  return 1;
}

/* a:cas(old, new) -> true if the value was old and is now new */
static int at_cas(lua_State *L) {
  latomic *a = check(L);
  lua_Integer old = int_arg(L, 2, "a:cas"), new = int_arg(L, 3, "a:cas");
  lua_pushboolean(L, atomic_compare_exchange_strong(&a->v, &old, new));
  return 1;
}

static int at_tostring(lua_State *L) {
  latomic *a = check(L);
  lua_pushfstring(L, "goro.atomic(%I): %p", (LUAI_UACINT)atomic_load(&a->v), (void *)a);
  return 1;
}

static void open_atomic_mt(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"load", at_load}, {"store", at_store}, {"add", at_add}, {"swap", at_swap},
    {"cas", at_cas}, {"compare_and_swap", at_cas}, {NULL, NULL}};
  gobj_newmt_methods(L, MT_ATOMIC, methods);
  lua_pushcfunction(L, at_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
}

void latomic_open(lua_State *L) {
  static const luaL_Reg funcs[] = {{"atomic", l_atomic}, {NULL, NULL}};
  open_atomic_mt(L);
  luaL_setfuncs(L, funcs, 0);
}
