/*
** latomic.c — sync/atomic for Lua: go.atomic([n]) is an integer shared by
** reference between goroutines (a goro object, object.h), so that every
** goroutine that holds it reads and writes the same one; a global or an
** upvalue is copied into each goroutine instead. Every operation is one
** sequentially consistent atomic, as Go's sync/atomic (its memory model:
** "all the atomic operations executed in a program behave as though
** executed in some sequentially consistent order").
**
** go.atomic_value([v]) is Go's atomic.Value: one value of any kind that
** can cross (copied in and out by the transfer rules, as a channel's), under
** a mutex held only while no Lua runs (sval.h). Its compare-and-swap
** compares by value, so `old` must be nil, a boolean, a number or a
** string (skey.h: 1 == 1.0, as Lua's ==); a stored table or function
** equals no `old`.
*/
#include <stdlib.h>

#include <pthread.h>

#include "api.h"
#include "skey.h"
#include "sval.h"

#define MT_ATOMIC "goro.atomic"
#define MT_VALUE "goro.atomic_value"

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

/* ------------------------------------------------------------ atomic.Value */

typedef struct lvalue {
  gobj h;
  pthread_mutex_t lock;
  sval *v;    /* lock: NULL for nil */
  char *key;  /* lock: v's stored form (skey.h) when v is simple, else NULL */
  size_t klen;
} lvalue;

static void open_value_mt(lua_State *L);

static void lvalue_free(gobj *o) {
  lvalue *a = (lvalue *)o;
  sval_unref(a->v);
  free(a->key);
  pthread_mutex_destroy(&a->lock);
  free(a);
}

/* A new value for the one at idx: its sval (NULL for nil) and its stored
** form (NULL when it is not simple). Raises, leaving nothing, on a value
** that cannot cross. */
static void newvalue(lua_State *L, int idx, sval **v, char **key, size_t *klen) {
  skey k;
  bool simple = skey_get(L, idx, &k) == SKEY_OK;
  *v = lua_isnoneornil(L, idx) ? NULL : sval_new(L, idx, "the value stored");
  *key = NULL;
  *klen = 0;
  if (!simple) return;
  if (!(*key = malloc(k.n + 1))) {
    sval_unref(*v);
    luaL_error(L, "goro: out of memory storing an atomic value");
  }
  skey_copy(*key, &k);
  *klen = k.n + 1;
}

static lvalue *checkvalue(lua_State *L) { return (lvalue *)gobj_check(L, 1, GOBJ_VALUE); }

static int l_atomic_value(lua_State *L) {
  lua_settop(L, 1);
  lvalue *a = calloc(1, sizeof *a);
  if (!a) return luaL_error(L, "goro: out of memory creating an atomic value");
  pthread_mutex_init(&a->lock, NULL);
  gobj_init(&a->h, GOBJ_VALUE, lvalue_free, MT_VALUE, open_value_mt);
  gobj_push(L, &a->h); /* a failure below frees a through its __gc */
  newvalue(L, 1, &a->v, &a->key, &a->klen);
  return 1;
}

static int av_load(lua_State *L) {
  lvalue *a = checkvalue(L);
  pthread_mutex_lock(&a->lock);
  sval *v = a->v;
  if (v) sval_ref(v);
  pthread_mutex_unlock(&a->lock);
  sval_push(L, v);
  return 1;
}

/* Replaces the value with the one at 2; returns the old (the caller's). */
static sval *exchange(lua_State *L, lvalue *a) {
  sval *v;
  char *key;
  size_t klen;
  newvalue(L, 2, &v, &key, &klen);
  pthread_mutex_lock(&a->lock);
  sval *old = a->v;
  char *oldkey = a->key;
  a->v = v, a->key = key, a->klen = klen;
  pthread_mutex_unlock(&a->lock);
  free(oldkey);
  return old;
}

static int av_store(lua_State *L) {
  sval_unref(exchange(L, checkvalue(L)));
  return 0;
}

static int av_swap(lua_State *L) {
  sval_push(L, exchange(L, checkvalue(L)));
  return 1;
}

/* av:cas(old, new) -> true if the value equalled old and is now new */
static int av_cas(lua_State *L) {
  lvalue *a = checkvalue(L);
  lua_settop(L, 3);
  skey old;
  int rc = skey_get(L, 2, &old);
  if (rc == SKEY_BAD)
    return luaL_error(L, "goro: av:cas: old must be nil, a boolean, a number or a string "
                         "(compared by value), got %s", luaL_typename(L, 2));
  if (rc == SKEY_NAN) { /* NaN equals nothing */
    lua_pushboolean(L, 0);
    return 1;
  }
  sval *v;
  char *key;
  size_t klen;
  newvalue(L, 3, &v, &key, &klen); /* old stays at 2: old.p is its string's bytes */
  pthread_mutex_lock(&a->lock);
  bool eq = a->key ? skey_eq(a->key, a->klen, &old) : (old.small[0] == 'n' && !a->v);
  sval *prev = NULL;
  char *prevkey = NULL;
  if (eq) {
    prev = a->v, prevkey = a->key;
    a->v = v, a->key = key, a->klen = klen;
  }
  pthread_mutex_unlock(&a->lock);
  if (!eq) prev = v, prevkey = key; /* not stored: ours to drop */
  sval_unref(prev);
  free(prevkey);
  lua_pushboolean(L, eq);
  return 1;
}

static int av_tostring(lua_State *L) {
  lua_pushfstring(L, "goro.atomic_value: %p", (void *)checkvalue(L));
  return 1;
}

static void open_value_mt(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"load", av_load}, {"store", av_store}, {"swap", av_swap}, {"cas", av_cas},
    {"compare_and_swap", av_cas}, {NULL, NULL}};
  gobj_newmt_methods(L, MT_VALUE, methods);
  lua_pushcfunction(L, av_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
}

void latomic_open(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"atomic", l_atomic}, {"atomic_value", l_atomic_value}, {NULL, NULL}};
  open_atomic_mt(L);
  open_value_mt(L);
  luaL_setfuncs(L, funcs, 0);
}
