/*
** lsmap.c — sync.Map for Lua: go.syncmap() is a table shared by reference
** between goroutines (a goro object, object.h). Keys are strings, numbers
** or booleans (kept as bytes: they mean the same in every state); values
** are copied in and out by the transfer rules (xfer.h), as channel values.
**
** The map: a chained hash table under one mutex. Nothing under the mutex
** can raise or run Lua: values are encoded before it is taken and decoded
** after it is released. A value is a shared value (sval.h: immutable,
** refcounted); a load takes a reference under the lock and decodes it
** outside. Every value has a fresh id (never reused), so update's
** compare-and-swap compares ids, not pointers (no ABA).
**
** m:update(k, fn) is a compare-and-swap loop, as one writes with Go's
** atomics: fn(old) runs in the caller's state, unlocked (called with a
** continuation, so it may park; or raise), and its result is stored only if k still holds the value fn saw;
** otherwise fn runs again on the newer value. So fn may run more than once
** and should compute only from its argument.
*/
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "skey.h"
#include "sval.h"

#define MT_SMAP "goro.syncmap"
#define MT_SNAP "goro.syncmap.snapshot"

typedef struct sment {
  struct sment *next; /* bucket chain */
  uint32_t hash;
  sval *v;            /* never NULL: one reference */
  size_t klen;
  char key[];         /* tag byte, then the key's bytes */
} sment;

typedef struct lsmap {
  gobj h;
  pthread_mutex_t lock;
  sment **buckets; /* lock */
  size_t nb, n;    /* lock: buckets (a power of 2), entries */
} lsmap;

static void open_smap_mt(lua_State *L);

static void lsmap_free(gobj *o) {
  lsmap *m = (lsmap *)o;
  for (size_t i = 0; i < m->nb; i++)
    for (sment *e = m->buckets[i], *nx; e; e = nx) {
      nx = e->next;
      sval_unref(e->v);
      free(e);
    }
  free(m->buckets);
  pthread_mutex_destroy(&m->lock);
  free(m);
}

static int l_syncmap(lua_State *L) {
  CHECK_MAIN(L, gstate_of(L));
  lsmap *m = calloc(1, sizeof *m);
  if (m) m->buckets = calloc(8, sizeof *m->buckets);
  if (!m || !m->buckets) {
    free(m);
    return luaL_error(L, "goro: out of memory creating a syncmap");
  }
  m->nb = 8;
  pthread_mutex_init(&m->lock, NULL);
  gobj_init(&m->h, GOBJ_SMAP, lsmap_free, MT_SMAP, open_smap_mt);
  gobj_push(L, &m->h);
  return 1;
}

static lsmap *check(lua_State *L) { return (lsmap *)gobj_check(L, 1, GOBJ_SMAP); }

/* ------------------------------------------------------------ keys */

/* The key at idx (skey.h), or a "goro:" error naming fn. */
static void getkey(lua_State *L, int idx, skey *k, const char *fn) {
  int rc = lua_isnoneornil(L, idx) ? SKEY_BAD : skey_get(L, idx, k);
  if (rc == SKEY_NAN)
    luaL_error(L, "goro: %s: the key is NaN: use a string, number or boolean", fn);
  if (rc == SKEY_BAD)
    luaL_error(L, "goro: %s: the key must be a string, number or boolean, got %s (a "
                  "table or function would be a different value in another goroutine: "
                  "use a string that names it)", fn,
               lua_isnoneornil(L, idx) ? "nil" : luaL_typename(L, idx));
}

static bool keyeq(const sment *e, const skey *k) {
  return e->hash == k->hash && skey_eq(e->key, e->klen, k);
}

/* lock held */
static sment **findp(lsmap *m, const skey *k) {
  sment **pp = &m->buckets[k->hash & (m->nb - 1)];
  while (*pp && !keyeq(*pp, k)) pp = &(*pp)->next;
  return pp;
}

/* lock held: doubles the buckets past a load of 1 (a failed allocation
** keeps the old ones: longer chains, still correct) */
static void grow(lsmap *m) {
  if (m->n <= m->nb) return;
  size_t nb = m->nb * 2;
  sment **nbk = calloc(nb, sizeof *nbk);
  if (!nbk) return;
  for (size_t i = 0; i < m->nb; i++)
    for (sment *e = m->buckets[i], *nx; e; e = nx) {
      nx = e->next;
      e->next = nbk[e->hash & (nb - 1)];
      nbk[e->hash & (nb - 1)] = e;
    }
  free(m->buckets);
  m->buckets = nbk;
  m->nb = nb;
}

/* ------------------------------------------------------------ values */

/* The value at idx as a new sval, or NULL for nil (which deletes). */
static sval *newval(lua_State *L, int idx, const char *what) {
  return lua_isnoneornil(L, idx) ? NULL : sval_new(L, idx, what);
}

/* lock held: sets k to v (NULL: deletes it). Returns the old value (its
** reference passes to the caller) or NULL; *oom if a new entry could not
** be made (v is then the caller's again). */
static sval *put(lsmap *m, sment **pp, const skey *k, sval *v, bool *oom) {
  sment *e = *pp;
  *oom = false;
  if (e) {
    sval *old = e->v;
    if (v) {
      e->v = v;
    } else {
      *pp = e->next;
      free(e);
      m->n--;
    }
    return old;
  }
  if (!v) return NULL;
  e = malloc(sizeof *e + k->n + 1);
  if (!e) {
    *oom = true;
    return NULL;
  }
  e->hash = k->hash;
  e->v = v;
  e->klen = k->n + 1;
  skey_copy(e->key, k);
  e->next = NULL;
  *pp = e;
  m->n++;
  grow(m);
  return NULL;
}

static void oom_error(lua_State *L, sval *v) {
  sval_unref(v);
  luaL_error(L, "goro: out of memory storing into a syncmap");
}

/* ------------------------------------------------------------ methods */

/* Sets the key at 2 to the value at 3 (with val; else deletes it) and
** returns the old value (the caller's reference) or NULL. */
static sval *exchange(lua_State *L, const char *fn, bool val) {
  lsmap *m = check(L);
  skey k;
  getkey(L, 2, &k, fn);
  sval *v = val ? newval(L, 3, "the value stored") : NULL;
  bool oom;
  pthread_mutex_lock(&m->lock);
  sval *old = put(m, findp(m, &k), &k, v, &oom);
  pthread_mutex_unlock(&m->lock);
  if (oom) oom_error(L, v);
  return old;
}

/* Pushes v's value and whether there was one (Go's v, loaded). */
static int push_loaded(lua_State *L, sval *v) {
  bool loaded = v != NULL;
  sval_push(L, v);
  lua_pushboolean(L, loaded);
  return 2;
}

/* m:load(k) -> v, true, or nil, false */
static int sm_load(lua_State *L) {
  lsmap *m = check(L);
  skey k;
  getkey(L, 2, &k, "m:load");
  pthread_mutex_lock(&m->lock);
  sment *e = *findp(m, &k);
  sval *v = e ? e->v : NULL;
  if (v) sval_ref(v);
  pthread_mutex_unlock(&m->lock);
  return push_loaded(L, v);
}

/* m:store(k, v); v nil deletes k */
static int sm_store(lua_State *L) {
  sval_unref(exchange(L, "m:store", true));
  return 0;
}

/* m:swap(k, v) -> previous, loaded */
static int sm_swap(lua_State *L) { return push_loaded(L, exchange(L, "m:swap", true)); }

/* m:load_and_delete(k) -> v, loaded */
static int sm_load_and_delete(lua_State *L) {
  return push_loaded(L, exchange(L, "m:load_and_delete", false));
}

static int sm_delete(lua_State *L) {
  sval_unref(exchange(L, "m:delete", false));
  return 0;
}

/* m:load_or_store(k, v) -> actual, loaded */
static int sm_load_or_store(lua_State *L) {
  lsmap *m = check(L);
  skey k;
  getkey(L, 2, &k, "m:load_or_store");
  sval *v = newval(L, 3, "the value stored");
  bool oom = false;
  pthread_mutex_lock(&m->lock);
  sment **pp = findp(m, &k);
  sval *cur = *pp ? (*pp)->v : NULL;
  if (cur) sval_ref(cur);
  else put(m, pp, &k, v, &oom);
  pthread_mutex_unlock(&m->lock);
  if (oom) oom_error(L, v);
  if (cur) {
    sval_unref(v);
    sval_push(L, cur);
  } else {
    lua_pushvalue(L, 3);
  }
  lua_pushboolean(L, cur != NULL);
  return 2;
}

/* m:update(k, fn) -> the value stored (see the header: a CAS loop) */
/* The continuation of update's and range's callbacks (ctx: which loop). */
static int loop_k(lua_State *L, int status, lua_KContext ctx);

/* The loop of m:update; the stack is m, k, fn [, seen id, fn's result]. fn
** is called with a continuation, so it may park (yield) in a goroutine;
** k stays at 2 (its bytes are the key's). */
static int update_loop(lua_State *L, bool have_result) {
  lsmap *m = check(L);
  skey k;
  getkey(L, 2, &k, "m:update");
  for (;;) {
    if (have_result) {
      uint64_t seen = (uint64_t)lua_tointeger(L, 4);
      sval *v = newval(L, 5, "the value update's function returned");
      bool oom = false, done = false;
      sval *old = NULL;
      pthread_mutex_lock(&m->lock);
      sment **pp = findp(m, &k);
      if ((*pp ? (*pp)->v->id : 0) == seen) {
        old = put(m, pp, &k, v, &oom);
        done = !oom;
      }
      pthread_mutex_unlock(&m->lock);
      if (oom) oom_error(L, v);
      if (done) {
        sval_unref(old);
        return 1;
      }
      sval_unref(v); /* another store came first: again, on the newer value */
      lua_settop(L, 3);
    }
    pthread_mutex_lock(&m->lock);
    sment *e = *findp(m, &k);
    sval *cur = e ? e->v : NULL;
    if (cur) sval_ref(cur);
    pthread_mutex_unlock(&m->lock);
    lua_pushinteger(L, cur ? (lua_Integer)cur->id : 0); /* ids stay below 2^63 */
    lua_pushvalue(L, 3);
    sval_push(L, cur);
    lua_callk(L, 1, 1, 0, loop_k); /* unlocked: fn may park or raise */
    have_result = true;
  }
}

static int sm_update(lua_State *L) {
  check(L);
  CHECK_MAIN(L, gstate_of(L));
  skey k;
  getkey(L, 2, &k, "m:update");
  if (lua_type(L, 3) != LUA_TFUNCTION) arg_error(L, 3, "m:update", "a function");
  lua_settop(L, 3);
  return update_loop(L, false);
}

static int sm_len(lua_State *L) {
  lsmap *m = check(L);
  pthread_mutex_lock(&m->lock);
  size_t n = m->n;
  pthread_mutex_unlock(&m->lock);
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

/* ------------------------------------------------------------ range
** A snapshot: the keys and a reference to each value, taken under the lock
** into a userdata (its __gc drops what an iteration left, even after an
** error); the iteration runs unlocked. As Go's Range, it sees each key
** once, with a value it held at some point during the call. */

typedef struct snap {
  size_t n, i;
  sment **e; /* copies of the entries: own key bytes, one sval reference */
} snap;

static int snap_gc(lua_State *L) {
  snap *s = lua_touserdata(L, 1);
  for (size_t j = s->i; j < s->n; j++) {
    sval_unref(s->e[j]->v);
    free(s->e[j]);
  }
  free(s->e);
  s->e = NULL;
  s->n = s->i = 0;
  return 0;
}

static snap *snapshot(lua_State *L, lsmap *m) {
  snap *s = lua_newuserdatauv(L, sizeof *s, 0);
  s->n = s->i = 0;
  s->e = NULL;
  if (luaL_newmetatable(L, MT_SNAP)) {
    lua_pushcfunction(L, snap_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  bool oom = false;
  pthread_mutex_lock(&m->lock);
  s->e = malloc(sizeof *s->e * (m->n ? m->n : 1));
  oom = !s->e;
  for (size_t b = 0; b < m->nb && !oom; b++)
    for (sment *e = m->buckets[b]; e && !oom; e = e->next) {
      sment *c = malloc(sizeof *c + e->klen);
      if (!c) {
        oom = true;
        break;
      }
      memcpy(c, e, sizeof *c + e->klen);
      sval_ref(c->v);
      s->e[s->n++] = c;
    }
  pthread_mutex_unlock(&m->lock);
  if (oom) luaL_error(L, "goro: out of memory taking a syncmap's snapshot for range");
  return s;
}

/* Pushes the next key and value of s; false when done. */
static bool snap_next(lua_State *L, snap *s) {
  if (s->i >= s->n) return false;
  sment *c = s->e[s->i++];
  skey_push(L, c->key, c->klen);
  sval *v = c->v;
  free(c);
  sval_push(L, v);
  return true;
}

static int range_step(lua_State *L) {
  snap *s = lua_touserdata(L, lua_upvalueindex(1));
  return snap_next(L, s) ? 2 : 0;
}

/* The loop of m:range(fn); the stack is m, fn, the snapshot [, fn's
** result]. fn is called with a continuation: it may park. */
static int range_loop(lua_State *L, bool have_result) {
  snap *s = lua_touserdata(L, 3);
  for (;;) {
    if (have_result && lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1)) return 0;
    lua_settop(L, 3);
    lua_pushvalue(L, 2);
    if (!snap_next(L, s)) return 0;
    lua_callk(L, 2, 1, 1, loop_k);
    have_result = true;
  }
}

static int loop_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return ctx ? range_loop(L, true) : update_loop(L, true);
}

/* m:range(fn): fn(k, v) for each key until fn returns false (Go's Range);
** m:range(): an iterator, `for k, v in m:range() do ... end` */
static int sm_range(lua_State *L) {
  lsmap *m = check(L);
  bool call = !lua_isnoneornil(L, 2);
  if (call && lua_type(L, 2) != LUA_TFUNCTION) arg_error(L, 2, "m:range", "a function");
  lua_settop(L, 2);
  snapshot(L, m); /* at 3 */
  if (!call) {
    lua_pushcclosure(L, range_step, 1);
    return 1;
  }
  return range_loop(L, false);
}

static int sm_tostring(lua_State *L) {
  lsmap *m = check(L);
  pthread_mutex_lock(&m->lock);
  size_t n = m->n;
  pthread_mutex_unlock(&m->lock);
  lua_pushfstring(L, "goro.syncmap(%d): %p", (int)n, (void *)m);
  return 1;
}

static void open_smap_mt(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"load", sm_load}, {"store", sm_store}, {"swap", sm_swap},
    {"load_or_store", sm_load_or_store}, {"load_and_delete", sm_load_and_delete},
    {"delete", sm_delete}, {"update", sm_update}, {"range", sm_range}, {"len", sm_len},
    {NULL, NULL}};
  gobj_newmt_methods(L, MT_SMAP, methods);
  lua_pushcfunction(L, sm_len);
  lua_setfield(L, -2, "__len");
  lua_pushcfunction(L, sm_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
}

void lsmap_open(lua_State *L) {
  static const luaL_Reg funcs[] = {{"syncmap", l_syncmap}, {NULL, NULL}};
  open_smap_mt(L);
  luaL_setfuncs(L, funcs, 0);
}
