/*
** xfer_proto.c — the prototype registry: a Lua function's bytecode, dumped
** once and shared by every state that sends or receives it (fnproto).
**
** Dumping costs ~0.7 us and loading ~1 us, too much for a spawn. The sender
** caches one fnproto per prototype (RK_FNCACHE, keyed by the Proto address
** read from the closure, after a self-check at load time that this build's
** layout is the one expected; else by closure). The receiver keeps the
** closure it loaded for a goroutine's entry function (RK_PROTOS, by id) and
** reuses it for the next goroutine in that state, setting fresh upvalues;
** it also remembers which fnproto each received prototype came with
** (gstate.protos), so a function relayed from state to state stays one
** fnproto everywhere and no cache grows per hop.
**
** Ownership: an fnproto is refcounted (atomic refs): one per sender-cache
** entry (dropped by the entry's __gc), one per gstate.protos entry, one per
** message holding it. Every live fnproto is in the registry (fnlock), keyed
** by its bytes, so the same bytecode is one fnproto however many times it
** was loaded, and the ones a state cached while it was being closed (whose
** entry is never finalized) are freed at runtime shutdown.
**
** Both per-state caches are bounded, least recently used first (two
** generations, see genc_put): FNCACHE_MAX per sender, PROTOS_MAX per
** receiver; a goroutine state forgets what its goroutine sent and clears
** its entry closure's upvalues when the goroutine ends (xfer_scrub_state).
**
** Also here: the walker over the dump format (lundump.c's), which lists a
** prototype's string constants, the globals its code may name.
*/
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xfer_int.h"

#if !defined(FNCACHE_MAX)
#define FNCACHE_MAX 1024 /* prototypes cached per sending state (both generations) */
#endif
#if !defined(PROTOS_MAX)
#define PROTOS_MAX 256   /* entry closures cached per receiving state */
#endif

static _Atomic uint64_t fnproto_ids; /* the last id handed out (any thread) */

/* ------------------------------------------------------------ the registry
** Every live fnproto, in a hash table keyed by its dump's bytes: a
** function whose bytecode is already registered (the same source loaded
** twice, a function relayed back) gets the existing fnproto and so the
** same id, and the receivers' caches find it. An entry leaves the table
** when its last reference goes (fnproto_unref); a lookup that meets one
** whose count already reached 0 passes it by. */
static pthread_mutex_t fnlock = PTHREAD_MUTEX_INITIALIZER;
static fnproto **fntab; /* fnlock: buckets, a power of 2 of them (or none) */
static size_t fntab_size, fntab_count; /* fnlock */

static uint64_t code_hash(const char *p, size_t n) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
  return h;
}

static void fntab_grow(void) { /* fnlock held */
  size_t size = fntab_size ? 2 * fntab_size : 256;
  fnproto **t = calloc(size, sizeof *t);
  if (!t) return; /* chains only get longer */
  for (size_t i = 0; i < fntab_size; i++) {
    for (fnproto *p = fntab[i], *next; p; p = next) {
      next = p->hnext;
      p->hnext = t[p->hash & (size - 1)];
      t[p->hash & (size - 1)] = p;
    }
  }
  free(fntab);
  fntab = t;
  fntab_size = size;
}

static void fnproto_destroy(fnproto *p) {
  for (int i = 0; i < p->nglobals; i++) free(p->globals[i]);
  free(p->globals);
  free(p->code);
  free(p);
}

void fnproto_unref(fnproto *p) {
  /* acq_rel: the last owner frees. */
  if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1) return;
  pthread_mutex_lock(&fnlock);
  fnproto **pp = &fntab[p->hash & (fntab_size - 1)];
  while (*pp != p) pp = &(*pp)->hnext;
  *pp = p->hnext;
  fntab_count--;
  pthread_mutex_unlock(&fnlock);
  fnproto_destroy(p);
}

/* The registered fnproto with fp's bytes, with a reference taken for the
** caller, or NULL. */
static fnproto *fntab_find(const fnproto *fp) {
  pthread_mutex_lock(&fnlock);
  fnproto *p = fntab_size ? fntab[fp->hash & (fntab_size - 1)] : NULL;
  for (; p; p = p->hnext) {
    if (p->hash != fp->hash || p->len != fp->len || memcmp(p->code, fp->code, fp->len) != 0)
      continue;
    /* relaxed: fnlock orders this with the unlink of a dying one; a count
    ** of 0 is one being freed, not to be revived */
    int r = atomic_load_explicit(&p->refs, memory_order_relaxed);
    while (r > 0 && !atomic_compare_exchange_weak_explicit(&p->refs, &r, r + 1,
                                                           memory_order_relaxed,
                                                           memory_order_relaxed)) {
    }
    if (r > 0) break;
  }
  pthread_mutex_unlock(&fnlock);
  return p;
}

/* Registers fp with a new id and one reference (the caller's); false when
** out of memory. */
static bool fntab_insert(fnproto *fp) {
  atomic_init(&fp->refs, 1);
  /* relaxed: only uniqueness matters */
  fp->id = atomic_fetch_add_explicit(&fnproto_ids, 1, memory_order_relaxed) + 1;
  pthread_mutex_lock(&fnlock);
  if (fntab_count >= fntab_size) fntab_grow();
  bool ok = fntab_size > 0;
  if (ok) {
    fp->hnext = fntab[fp->hash & (fntab_size - 1)];
    fntab[fp->hash & (fntab_size - 1)] = fp;
    fntab_count++;
  }
  pthread_mutex_unlock(&fnlock);
  return ok;
}

/* Frees every fnproto left (a state closed while it was being closed never
** finalizes its cache entries) and the table. */
void fnproto_fini(void) {
  pthread_mutex_lock(&fnlock);
  fnproto **t = fntab;
  size_t size = fntab_size;
  fntab = NULL;
  fntab_size = fntab_count = 0;
  pthread_mutex_unlock(&fnlock);
  for (size_t i = 0; i < size; i++) {
    for (fnproto *p = t[i], *next; p; p = next) {
      next = p->hnext;
      fnproto_destroy(p);
    }
  }
  free(t);
}

/* -------------------------------------------------- prototype identity */

/* Set by xfer_selfcheck when the main state starts the runtime, before it
** spawns any goroutine (a spawn publishes its G with release, so the write
** happens before their reads); read-only while goroutines run. */
static bool protokeys_ok;

/* Lua 5.4's LClosure: CommonHeader (next, tt, marked), nupvalues, gclist,
** p. We read p; xfer_selfcheck verifies this on the running Lua. */
typedef struct lclosure_view {
  void *next;
  unsigned char tt, marked, nupvalues;
  void *gclist;
  void *p;
} lclosure_view;

static const void *protokey(lua_State *L, int idx) {
  const void *cl = lua_topointer(L, idx);
  if (!protokeys_ok) return cl;
  return ((const lclosure_view *)cl)->p;
}

static bool selfcheck(lua_State *L) {
  static const char chunk[] = "local function mk(a) return function() return a end end "
                              "return mk, mk(1), mk(2), function(b) return b end";
  if (luaL_loadstring(L, chunk) != LUA_OK) { lua_pop(L, 1); return false; }
  if (lua_pcall(L, 0, 4, 0) != LUA_OK) { lua_pop(L, 1); return false; }
  const lclosure_view *mk = lua_topointer(L, -4), *a = lua_topointer(L, -3),
                      *b = lua_topointer(L, -2), *c = lua_topointer(L, -1);
  bool ok = a != b && a->p == b->p && a->p != mk->p && c->p != a->p &&
            a->nupvalues == 1 && c->nupvalues == 0 && mk->nupvalues == 0 &&
            a->tt == b->tt && a->tt == mk->tt && a->p != NULL;
  lua_pop(L, 4);
  return ok;
}

/* The fallback is said once per process (and in go.stats().closure_layout),
** so that a layout change in a future Lua shows up instead of only
** slowing spawns down. */
void xfer_selfcheck(lua_State *L) {
  static bool warned; /* main state's thread only */
  protokeys_ok = selfcheck(L);
  if (!protokeys_ok && !warned) {
    warned = true;
    fprintf(stderr, "goro: the closure layout of %s is not the one goro reads "
            "(lua/xfer_proto.c, lclosure_view): functions are cached per closure "
            "instead of per prototype, so spawns are slower; please report this "
            "with the output of `lua -v`\n", LUACOMPAT_RELEASE);
  }
}

bool xfer_protokeys(void) { return protokeys_ok; }

/* ------------------------------------------- string constants of a dump */

/* Walks a Lua 5.4 binary chunk (lundump.c's format) and collects the
** string constants of every prototype: the names the code may look up as
** globals. Sets bad if the format is not the one expected. */
typedef struct dw {
  const unsigned char *p, *end;
  char **names;
  int n, cap;
  bool bad;
} dw;

static size_t dw_size(dw *w) {
  size_t x = 0;
  int b;
  do {
    if (w->p >= w->end) { w->bad = true; return 0; }
    b = *w->p++;
    x = (x << 7) | (size_t)(b & 0x7f);
  } while (!(b & 0x80));
  return x;
}

static void dw_skip(dw *w, size_t n) {
  if ((size_t)(w->end - w->p) < n) { w->bad = true; w->p = w->end; return; }
  w->p += n;
}

static void dw_string(dw *w, bool keep) {
  size_t n = dw_size(w);
  if (n == 0 || w->bad) return;
  n--;
  if ((size_t)(w->end - w->p) < n) { w->bad = true; return; }
  if (keep && n > 0 && n < 64) {
    for (int i = 0; i < w->n; i++)
      if (strlen(w->names[i]) == n && memcmp(w->names[i], w->p, n) == 0) goto skip;
    if (w->n == w->cap) {
      int cap = w->cap ? w->cap * 2 : 8;
      char **nn = realloc(w->names, sizeof *nn * (size_t)cap);
      if (!nn) { w->bad = true; return; }
      w->names = nn;
      w->cap = cap;
    }
    char *s = malloc(n + 1);
    if (!s) { w->bad = true; return; }
    memcpy(s, w->p, n);
    s[n] = 0;
    w->names[w->n++] = s;
  }
skip:
  w->p += n;
}

static void dw_function(dw *w, int depth) {
  if (depth > 200) { w->bad = true; return; }
  dw_string(w, false);           /* source */
  dw_size(w); dw_size(w);        /* linedefined, lastlinedefined */
  dw_skip(w, 3);                 /* numparams, is_vararg, maxstacksize */
  dw_skip(w, dw_size(w) * 4);    /* code */
  size_t nk = dw_size(w);
  for (size_t i = 0; i < nk && !w->bad; i++) {
    if (w->p >= w->end) { w->bad = true; return; }
    int tt = *w->p++;
    switch (tt) {
    case 0: case 1: case 17: break;                /* nil, false, true */
    case 3: case 19: dw_skip(w, 8); break;         /* integer, float */
    case 4: case 20: dw_string(w, true); break;    /* strings */
    default: w->bad = true; return;
    }
  }
  dw_skip(w, dw_size(w) * 3);    /* upvalues */
  size_t np = dw_size(w);
  for (size_t i = 0; i < np && !w->bad; i++) dw_function(w, depth + 1);
  dw_skip(w, dw_size(w));        /* lineinfo */
  size_t na = dw_size(w);
  for (size_t i = 0; i < na && !w->bad; i++) { dw_size(w); dw_size(w); }
  size_t nl = dw_size(w);
  for (size_t i = 0; i < nl && !w->bad; i++) { dw_string(w, false); dw_size(w); dw_size(w); }
  size_t nu = dw_size(w);
  for (size_t i = 0; i < nu && !w->bad; i++) dw_string(w, false);
}

/* Fills fp->globals from its dump; leaves none if the walk fails. */
static void dump_globals(fnproto *fp) {
  static const unsigned char sig[] = "\x1bLua\x54\x00\x19\x93\r\n\x1a\n";
  dw w = {(const unsigned char *)fp->code, (const unsigned char *)fp->code + fp->len,
          NULL, 0, 0, false};
  if (fp->len < 32 || memcmp(w.p, sig, 12) != 0 || w.p[12] != 4 || w.p[13] != 8 ||
      w.p[14] != 8) {
    return;
  }
  w.p += 31 + 1; /* header (31 bytes) + number of upvalues */
  dw_function(&w, 0);
  if (w.bad) {
    for (int i = 0; i < w.n; i++) free(w.names[i]);
    free(w.names);
    return;
  }
  fp->globals = w.names;
  fp->nglobals = w.n;
}

/* ------------------------------------------------------------ making */

typedef struct dumpbuf {
  char *p;
  size_t len, cap;
} dumpbuf;

static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud) {
  dumpbuf *d = ud;
  if (d->len + sz > d->cap) {
    size_t cap = d->cap ? d->cap * 2 : 1024;
    while (cap < d->len + sz) cap *= 2;
    char *n = realloc(d->p, cap);
    if (!n) return 1;
    d->p = n;
    d->cap = cap;
  }
  memcpy(d->p + d->len, p, sz);
  d->len += sz;
  return 0;
}

/* A fnproto for the Lua function at idx, with one reference for the
** caller: the registered one with the same bytes, else a new one; NULL
** when out of memory. Raises no Lua error. */
static fnproto *fnproto_make(lua_State *L, int idx) {
  dumpbuf d = {NULL, 0, 0};
  lua_pushvalue(L, idx);
  int bad = lua_dump(L, dump_writer, &d, 0);
  lua_pop(L, 1);
  fnproto *fp = bad ? NULL : calloc(1, sizeof *fp);
  if (!fp) {
    free(d.p);
    return NULL;
  }
  fp->code = d.p;
  fp->len = d.len;
  fp->hash = code_hash(d.p, d.len);
  fnproto *found = fntab_find(fp);
  if (found) {
    fnproto_destroy(fp);
    return found;
  }
  dump_globals(fp);
  if (!fntab_insert(fp)) {
    fnproto_destroy(fp);
    return NULL;
  }
  return fp;
}

/* ------------------------------------------------- two-generation caches
** The sender's cache (RK_FNCACHE) and the receiver's (RK_PROTOS) are
** bounded, least recently used first: registry[rk] is the young table, its
** field "old" the one before. A hit in the old table moves the entry to the
** young; when the young one holds max/2 entries it becomes the old one, and
** what the former old one still held (unused for a whole generation) is
** dropped. */
static const char OLDKEY[] = "old", NKEY[] = "n";

/* Pushes the young table of rk; returns its index. */
static int genc_push(lua_State *L, const void *rk) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, rk) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, rk);
  }
  return lua_gettop(L);
}

/* young[k] = v, the key and value on top (popped). Returns whether the
** generations turned first. */
static bool genc_put(lua_State *L, const void *rk, int max) {
  int y = genc_push(L, rk);
  lua_getfield(L, y, NKEY);
  lua_Integer n = lua_tointeger(L, -1);
  lua_pop(L, 1);
  bool roll = n >= max / 2;
  if (roll) {
    lua_pushnil(L);
    lua_setfield(L, y, OLDKEY);
    lua_createtable(L, 0, 2);
    lua_pushvalue(L, y);
    lua_setfield(L, -2, OLDKEY);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, rk);
    lua_replace(L, y);
    n = 0;
  }
  lua_pushinteger(L, n + 1);
  lua_setfield(L, y, NKEY);
  lua_insert(L, -3);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  return roll;
}

enum { GC_MISS, GC_YOUNG, GC_PROMOTED };

/* Replaces the key on top with its value (nil on a miss). A hit in the old
** table moves the entry to the young one; *rolled says whether that
** turned the generations. */
static int genc_get(lua_State *L, const void *rk, int max, bool *rolled) {
  *rolled = false;
  int y = genc_push(L, rk);
  lua_pushvalue(L, y - 1);
  if (lua_rawget(L, y) != LUA_TNIL) {
    lua_replace(L, y - 1);
    lua_pop(L, 1);
    return GC_YOUNG;
  }
  lua_pop(L, 1);
  if (lua_getfield(L, y, OLDKEY) != LUA_TTABLE) {
    lua_pop(L, 2);
    lua_pushnil(L);
    lua_replace(L, -2);
    return GC_MISS;
  }
  lua_pushvalue(L, y - 1);
  if (lua_rawget(L, -2) == LUA_TNIL) {
    lua_pop(L, 3);
    lua_pushnil(L);
    lua_replace(L, -2);
    return GC_MISS;
  }
  lua_pushvalue(L, y - 1); /* key y old v: old[key] = nil */
  lua_pushnil(L);
  lua_rawset(L, -4);
  lua_replace(L, y); /* key v old */
  lua_pop(L, 1);
  lua_pushvalue(L, -2);
  lua_pushvalue(L, -2);
  *rolled = genc_put(L, rk, max);
  lua_replace(L, -2);
  return GC_PROMOTED;
}

/* ------------------------------------------------------------ the sender's cache */

static int fncache_gc(lua_State *L) {
  fnproto **pp = lua_touserdata(L, 1);
  if (*pp) fnproto_unref(*pp);
  *pp = NULL;
  return 0;
}

/* Makes the cache entry of the Lua function at idx (whose prototype it
** keeps alive, so its key stays unique), empty; returns its slot. Every
** allocation of the entry is made here, before the fnproto it will hold:
** a memory error leaves an empty entry, which its finalizer ignores. */
static fnproto **fncache_slot(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  const void *key = protokey(L, idx);
  lua_pushlightuserdata(L, (void *)key);
  fnproto **ud = lua_newuserdatauv(L, sizeof *ud, 1);
  *ud = NULL;
  if (luaL_newmetatable(L, "goro.fnproto")) {
    lua_pushcfunction(L, fncache_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  lua_pushvalue(L, idx);
  lua_setiuservalue(L, -2, 1);
  genc_put(L, RK_FNCACHE, FNCACHE_MAX);
  return ud;
}

/* ------------------------------------------------------------ the receiver's */

/* The entries of s whose closures the last turn of RK_PROTOS dropped go
** too: their keys (Proto addresses) may be reused by new prototypes. */
static void protos_roll(xprotos *s) {
  s->gen++;
  int n = 0;
  for (int i = 0; i < s->n; i++) {
    if (s->gen - s->v[i].gen <= 1) s->v[n++] = s->v[i];
    else fnproto_unref(s->v[i].fp);
  }
  s->n = n;
}

/* A goroutine state loaded (or moved to RK_PROTOS's young table) the Lua
** function at idx from fp: remember it, so that sent on from here the
** function stays fp without a dump. A C array in the gstate, not a Lua
** object: a pooled state that never sends pays 16 bytes. */
static void remember_proto(lua_State *L, int idx, fnproto *fp) {
  xprotos *s = xhost->protos(L);
  if (!s) return;
  const void *key = protokey(L, idx);
  for (int i = 0; i < s->n; i++) {
    if (s->v[i].key == key) {
      s->v[i].gen = s->gen;
      return;
    }
  }
  if (s->n == s->cap) {
    int cap = s->cap ? 2 * s->cap : 1;
    xproto *np = realloc(s->v, sizeof *np * (size_t)cap);
    if (!np) return; /* only an optimization */
    s->v = np;
    s->cap = cap;
  }
  fnproto_ref(fp); /* the gstate's */
  s->v[s->n].key = key;
  s->v[s->n].fp = fp;
  s->v[s->n].gen = s->gen;
  s->n++;
}

void xfer_free_protos(xprotos *s) {
  for (int i = 0; i < s->n; i++) fnproto_unref(s->v[i].fp);
  free(s->v);
  s->v = NULL;
  s->n = s->cap = 0;
}

fnproto *fnproto_get(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  const void *key = protokey(L, idx);
  lua_pushlightuserdata(L, (void *)key);
  bool rolled;
  if (genc_get(L, RK_FNCACHE, FNCACHE_MAX, &rolled) != GC_MISS) {
    fnproto *fp = *(fnproto **)lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (fp) return fp;
  } else {
    lua_pop(L, 1);
  }
  xprotos *s = xhost->protos(L);
  for (int i = 0; s && i < s->n; i++) {
    if (s->v[i].key == key) { /* received: it stays that fnproto */
      fnproto **slot = fncache_slot(L, idx);
      fnproto_ref(s->v[i].fp); /* the entry's, dropped by its finalizer */
      *slot = s->v[i].fp;
      return s->v[i].fp;
    }
  }
  fnproto **slot = fncache_slot(L, idx);
  fnproto *fp = fnproto_make(L, idx);
  if (!fp) luaL_error(L, "goro: out of memory while copying a function");
  *slot = fp; /* the entry takes make's reference */
  return fp;
}

/* The last entry closure a goroutine of this state ran (RK_PROTOS holds it
** too): xfer_scrub_state clears its upvalues. */
static const char rk_entry;

void xfer_scrub_state(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &rk_entry) == LUA_TFUNCTION) {
    for (int i = 1;; i++) {
      lua_pushnil(L);
      if (!lua_setupvalue(L, -2, i)) {
        lua_pop(L, 1);
        break;
      }
    }
    lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &rk_entry);
  }
  lua_pop(L, 1);
  /* the closures it sent, and their upvalues: a dump and a lookup in the
  ** registry make them again */
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, RK_FNCACHE) != LUA_TNIL) {
    lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, RK_FNCACHE);
  }
  lua_pop(L, 1);
}

/* ------------------------------------------------------------ loading */

typedef struct loadst {
  const char *p;
  size_t n;
} loadst;

static const char *load_reader(lua_State *L, void *ud, size_t *size) {
  loadst *s = ud;
  if (!s->n) return NULL;
  *size = s->n;
  s->n = 0;
  return s->p;
}

static void fnproto_load(lua_State *L, fnproto *fp) {
  loadst ls = {fp->code, fp->len};
  if (lua_load(L, load_reader, &ls, "=goroutine", "b") != LUA_OK) lua_error(L);
}

void fnproto_push(lua_State *L, fnproto *fp, bool entry) {
  if (!entry) {
    fnproto_load(L, fp);
    return;
  }
  /* reuse this state's closure of the same prototype */
  xprotos *s = xhost->protos(L);
  lua_pushinteger(L, (lua_Integer)fp->id);
  bool rolled;
  int hit = genc_get(L, RK_PROTOS, PROTOS_MAX, &rolled);
  if (hit == GC_MISS) {
    lua_pop(L, 1);
    fnproto_load(L, fp);
    lua_pushinteger(L, (lua_Integer)fp->id);
    lua_pushvalue(L, -2);
    rolled = genc_put(L, RK_PROTOS, PROTOS_MAX);
  }
  if (rolled && s) protos_roll(s);
  if (hit != GC_YOUNG) remember_proto(L, -1, fp);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &rk_entry);
}
