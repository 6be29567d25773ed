/*
** xfer.c — copying values between lua_States (DESIGN.md "Transfer").
**
** A value crosses states as bytes in an xbuf (or inline in an xval for
** small ones). Rules:
**   nil, booleans, integers, floats (math.type kept), strings: copied.
**   tables: deep copies; cycles and shared sub-tables are preserved (a
**     per-message table of already-seen objects), and so are metatables.
**   Lua functions: the prototype's bytecode (string.dump, debug info kept)
**     plus each upvalue, recursively. An upvalue holding the sender's
**     globals (_ENV) is bound to the receiver's globals; upvalues shared
**     between copied closures stay shared (lua_upvaluejoin). Globals the
**     function's code names and the sender defined (REPL lines) travel too.
**   C functions: by name when they belong to a loaded module (re-required
**     in the receiver, so per-state setup such as io's is done), else by
**     pointer when they have no upvalues.
**   module tables (values of package.loaded): re-required by name.
**   goro objects (channels, waitgroups...): shared by reference.
**   light userdata: copied as a pointer.
**   anything else (files, coroutines, other userdata): refused, with an
**     error that names the type and the path to the value.
**
** Prototype cache. Dumping costs ~0.7 us and loading ~1 us, too much for a
** spawn. The sender caches one dump per prototype (keyed by the Proto
** address read from the closure, after a self-check at load time that this
** build's layout is the one expected; else by closure). The receiver keeps
** the closure it loaded for a goroutine's entry function and reuses it for
** the next goroutine in that state, setting fresh upvalues.
*/
#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goro_lua.h"

#define XFER_MAXDEPTH 200 /* nesting limit: no C stack overflow */
#define FNCACHE_MAX 4096  /* prototypes cached per sending state */

/* Message tags. */
enum {
  T_NIL, T_FALSE, T_TRUE, T_INT, T_FLT, T_STR, T_TABLE, T_REF, T_LFUNC,
  T_CFUNC, T_CNAMED, T_MODULE, T_OBJ, T_LUD, T_END, T_META, T_NOMETA,
  T_UPENV, T_UPVAL, T_UPJOIN, T_GLOBALS
};

/* A function prototype shared by every state that received it. */
typedef struct fnproto {
  _Atomic int refs;
  uint64_t id;          /* unique: the receivers' cache key */
  size_t len;
  char *code;           /* lua_dump output */
  int nglobals;         /* candidate global names (string constants) */
  char **globals;
  struct fnproto *prev, *next; /* all live prototypes: fnlock */
} fnproto;

static _Atomic uint64_t fnproto_ids;
/* Every live fnproto, so the ones a state cached while it was being closed
** (whose cache entry is never finalized) are freed at runtime shutdown. */
static pthread_mutex_t fnlock = PTHREAD_MUTEX_INITIALIZER;
static fnproto *fnlive; /* fnlock */

static void fnproto_destroy(fnproto *p) {
  for (int i = 0; i < p->nglobals; i++) free(p->globals[i]);
  free(p->globals);
  free(p->code);
  free(p);
}

static void fnproto_unref(fnproto *p) {
  /* acq_rel: the last owner frees. */
  if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1) return;
  pthread_mutex_lock(&fnlock);
  if (p->prev) p->prev->next = p->next;
  else fnlive = p->next;
  if (p->next) p->next->prev = p->prev;
  pthread_mutex_unlock(&fnlock);
  fnproto_destroy(p);
}

/* ------------------------------------------------------------ xbuf */

static void bgrow(lua_State *L, xbuf *b, size_t n) {
  size_t cap = b->cap * 2;
  while (cap < b->len + n) cap *= 2;
  unsigned char *d = b->data == b->inl ? malloc(cap) : realloc(b->data, cap);
  if (!d) luaL_error(L, "goro: out of memory while copying a value");
  if (b->data == b->inl) memcpy(d, b->inl, b->len);
  b->data = d;
  b->cap = cap;
}

static inline void bput(lua_State *L, xbuf *b, const void *p, size_t n) {
  if (b->len + n > b->cap) bgrow(L, b, n);
  memcpy(b->data + b->len, p, n);
  b->len += n;
}

static void bbyte(lua_State *L, xbuf *b, int c) {
  unsigned char x = (unsigned char)c;
  bput(L, b, &x, 1);
}

static void bsize(lua_State *L, xbuf *b, size_t n) {
  unsigned char tmp[10];
  int k = 0;
  do {
    tmp[k++] = (unsigned char)((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
    n >>= 7;
  } while (n);
  bput(L, b, tmp, (size_t)k);
}

static void bref(lua_State *L, xbuf *b, void *p) {
  if (b->nrefs == b->caprefs) {
    int cap = b->caprefs * 2;
    void **r = b->refs == b->inlrefs ? malloc(sizeof *r * (size_t)cap)
                                     : realloc(b->refs, sizeof *r * (size_t)cap);
    if (!r) luaL_error(L, "goro: out of memory while copying a value");
    if (b->refs == b->inlrefs) memcpy(r, b->inlrefs, sizeof b->inlrefs);
    b->refs = r;
    b->caprefs = cap;
  }
  b->refs[b->nrefs++] = p;
}

/* ------------------------------------------------------------ xbuf cache
** A message is made on the sender's thread and freed on the receiver's:
** with glibc every such free takes the sender's arena lock, which the
** sender's mallocs contend for (W8's futex storm). Message headers are
** recycled instead: each thread keeps a small free list, and moves them
** to and from a shared list in batches, one lock per XCACHE_BATCH. */
#define XCACHE_BATCH 32
#define XCACHE_LOCAL 64     /* a thread keeps at most this many */
#define XCACHE_GLOBAL 2048  /* the shared list keeps at most this many */

static pthread_mutex_t xcache_lock = PTHREAD_MUTEX_INITIALIZER;
static xbuf *xcache;        /* xcache_lock; linked through ->refs */
static _Atomic int nxcache; /* changed under xcache_lock; read as a hint */
static pthread_key_t xcache_key;
static pthread_once_t xcache_once = PTHREAD_ONCE_INIT;

typedef struct xlocal {
  xbuf *head;
  int n;
} xlocal;

#define XNEXT(b) (*(xbuf **)&(b)->refs)

static void xlocal_flush(xlocal *l, int keep) {
  pthread_mutex_lock(&xcache_lock);
  while (l->n > keep) {
    xbuf *b = l->head;
    l->head = XNEXT(b);
    l->n--;
    if (nxcache < XCACHE_GLOBAL) {
      XNEXT(b) = xcache;
      xcache = b;
      nxcache++;
    } else {
      free(b);
    }
  }
  pthread_mutex_unlock(&xcache_lock);
}

static void xlocal_destroy(void *p) {
  xlocal *l = p;
  xlocal_flush(l, 0);
  free(l);
}

static bool xcache_ready; /* the key exists (set once, by pthread_once) */

static void xcache_init(void) {
  xcache_ready = pthread_key_create(&xcache_key, xlocal_destroy) == 0;
}

static xlocal *xlocal_get(void) {
  pthread_once(&xcache_once, xcache_init);
  if (!xcache_ready) return NULL;
  xlocal *l = pthread_getspecific(xcache_key);
  if (!l && (l = calloc(1, sizeof *l)) != NULL) pthread_setspecific(xcache_key, l);
  return l;
}

static xbuf *xbuf_alloc(void) {
  xlocal *l = xlocal_get();
  if (l && !l->head && atomic_load_explicit(&nxcache, memory_order_relaxed) > 0) {
    pthread_mutex_lock(&xcache_lock);
    while (l->n < XCACHE_BATCH && xcache) {
      xbuf *b = xcache;
      xcache = XNEXT(b);
      nxcache--;
      XNEXT(b) = l->head;
      l->head = b;
      l->n++;
    }
    pthread_mutex_unlock(&xcache_lock);
  }
  if (l && l->head) {
    xbuf *b = l->head;
    l->head = XNEXT(b);
    l->n--;
    return b;
  }
  return malloc(sizeof(xbuf));
}

static void xbuf_recycle(xbuf *b) {
  xlocal *l = xlocal_get();
  if (!l) {
    free(b);
    return;
  }
  XNEXT(b) = l->head;
  l->head = b;
  if (++l->n > XCACHE_LOCAL) xlocal_flush(l, XCACHE_LOCAL - XCACHE_BATCH);
}

/* Frees the shared cache (runtime shutdown; threads' lists went with them)
** and the prototypes nobody will release any more. */
void xfer_fini(void) {
  pthread_mutex_lock(&fnlock);
  fnproto *p = fnlive;
  fnlive = NULL;
  pthread_mutex_unlock(&fnlock);
  while (p) {
    fnproto *next = p->next;
    fnproto_destroy(p);
    p = next;
  }
  pthread_once(&xcache_once, xcache_init);
  xlocal *l = xcache_ready ? pthread_getspecific(xcache_key) : NULL;
  if (l) { /* the stopping thread may never exit (the main thread): its
           ** destructor would not run */
    xlocal_flush(l, 0);
    pthread_setspecific(xcache_key, NULL);
    free(l);
  }
  pthread_mutex_lock(&xcache_lock);
  while (xcache) {
    xbuf *b = xcache;
    xcache = XNEXT(b);
    free(b);
  }
  nxcache = 0;
  pthread_mutex_unlock(&xcache_lock);
}

void xbuf_free(xbuf *b, bool release) {
  if (!b) return;
  if (release) {
    for (int i = 0; i < b->nrefs; i++) {
      uintptr_t r = (uintptr_t)b->refs[i];
      if (r & 1) fnproto_unref((fnproto *)(r & ~(uintptr_t)1));
      else gobj_unref((gobj *)r);
    }
  }
  if (b->refs != b->inlrefs) free(b->refs);
  if (b->data != b->inl) free(b->data);
  free(b->seenkeys);
  free(b->seenvals);
  xbuf_recycle(b);
}

/* ------------------------------------------------------------ reading */

typedef struct rd {
  const unsigned char *p, *end;
} rd;

static int rbyte(rd *r) { return r->p < r->end ? *r->p++ : -1; }

static size_t rsize(rd *r) {
  size_t n = 0;
  int shift = 0, c;
  do {
    c = rbyte(r);
    if (c < 0) return 0;
    n |= (size_t)(c & 0x7f) << shift;
    shift += 7;
  } while (c & 0x80);
  return n;
}

static void rget(rd *r, void *p, size_t n) {
  memcpy(p, r->p, n);
  r->p += n;
}

/* -------------------------------------------------- prototype identity */

static bool protokeys_ok; /* set by xfer_selfcheck in the main state */

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
  static bool warned;
  protokeys_ok = selfcheck(L);
  if (!protokeys_ok && !warned) {
    warned = true;
    fprintf(stderr, "goro: the closure layout of %s is not the one goro reads (lua/xfer.c, "
            "lclosure_view): functions are cached per closure instead of per prototype, "
            "so spawns are slower; please report this with the output of `lua -v`\n",
            LUACOMPAT_RELEASE);
  }
}

bool xfer_protokeys(void) { return protokeys_ok; }

/* ------------------------------------------- string constants of a dump */

/* Walks a Lua 5.4 binary chunk (lundump.c's format) and collects the
** string constants of every prototype: the names the code may look up as
** globals. Returns false if the format is not the one expected. */
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

/* ------------------------------------------------------------ encoding */

/* A path segment, rendered only for an error message. s points at a
** string alive while it is on the encoder's stack (a key, an upvalue name). */
typedef struct seg {
  char kind;     /* 'f' field, 'i' index, 'u' upvalue, 'g' global, 'm' metatable, 'k' key */
  const char *s;
  lua_Integer i;
} seg;

/* The objects already numbered in a message (tables, Lua functions, upvalue
** cells), keyed by address: an open-addressing hash map, inline while small,
** so a small message makes no garbage. Heap arrays hang off the xbuf so a
** Lua error (longjmp) cannot leak them. */
#define SEEN_INLINE 32
typedef struct seenmap {
  const void **keys;
  int *vals;
  size_t cap, n;
  const void *ikeys[SEEN_INLINE];
  int ivals[SEEN_INLINE];
} seenmap;

typedef struct enc {
  lua_State *L;
  xbuf *b;
  seenmap seen;  /* objects numbered so far -> their number */
  int nseen;     /* objects numbered so far */
  bool backrefs; /* a T_REF or T_UPJOIN was written: the receiver numbers */
  int depth;     /* current nesting: seg[1..depth] is the path */
  int gidx;      /* stack index of the sender's globals table */
  int envidx;    /* stack index of the sender's environment */
  const char *what; /* the root: "argument 2", "value", ... ("" for none) */
  jmp_buf fail;  /* enc_error jumps here (xfer_encode_n), then raises */
  seg seg[XFER_MAXDEPTH + 2]; /* 1..depth; depth is MAXDEPTH + 1 at the error */
} enc;

static void encode(enc *e, int idx);

static const char *hint_for(lua_State *L, int idx, const char *tname) {
  switch (lua_type(L, idx)) {
  case LUA_TTHREAD:
    return "a coroutine cannot move to another goroutine: create it inside the goroutine";
  case LUA_TUSERDATA:
    if (strcmp(tname, "FILE*") == 0)
      return "pass a path and open the file inside the goroutine";
    return "send plain data, or a goro object (channel, waitgroup, mutex...)";
  case LUA_TFUNCTION:
    return "call it inside the goroutine, or require its module there";
  default:
    return "send plain data instead";
  }
}

/* Renders the path: root, then "upvalue 'f'", "field 'cfg.out'", ... */
static void addpath(enc *e, luaL_Buffer *B) {
  bool any = e->what && *e->what;
  if (any) luaL_addstring(B, e->what);
  for (int i = 1; i <= e->depth; i++) {
    seg *s = &e->seg[i];
    bool field = s->kind == 'f' || s->kind == 'i';
    bool infield = i > 1 && (e->seg[i - 1].kind == 'f' || e->seg[i - 1].kind == 'i');
    char num[32];
    const char *text = s->s ? s->s : "?";
    if (s->kind == 'i') {
      snprintf(num, sizeof num, "[%lld]", (long long)s->i);
      text = num;
    }
    if (field && infield) {
      if (s->kind == 'f') luaL_addchar(B, '.');
      luaL_addstring(B, text);
      continue;
    }
    if (any) luaL_addstring(B, ", ");
    any = true;
    switch (s->kind) {
    case 'f': luaL_addstring(B, "field '"); luaL_addstring(B, text); break;
    case 'i': luaL_addstring(B, "field '"); luaL_addstring(B, text); break;
    case 'u': luaL_addstring(B, "upvalue '"); luaL_addstring(B, text); luaL_addchar(B, '\''); break;
    case 'g': luaL_addstring(B, "global '"); luaL_addstring(B, text); luaL_addchar(B, '\''); break;
    case 'm': luaL_addstring(B, "metatable"); break;
    default: luaL_addstring(B, "a table key"); break;
    }
    bool nextfield = i < e->depth && (e->seg[i + 1].kind == 'f' || e->seg[i + 1].kind == 'i');
    if (field && !nextfield) luaL_addchar(B, '\'');
    if (field && nextfield) continue;
  }
  /* close a field group that ran to the end */
  if (e->depth >= 1) {
    char k = e->seg[e->depth].kind;
    bool field = k == 'f' || k == 'i';
    bool alone = e->depth == 1 || !(e->seg[e->depth - 1].kind == 'f' || e->seg[e->depth - 1].kind == 'i');
    if (field && !alone) luaL_addchar(B, '\'');
  }
  if (!any) luaL_addstring(B, "value");
}

static _Noreturn void enc_error(enc *e, int idx, const char *why) {
  lua_State *L = e->L;
  idx = lua_absindex(L, idx);
  const char *base = lua_typename(L, lua_type(L, idx));
  const char *tname = base;
  if (lua_type(L, idx) == LUA_TUSERDATA && luaL_getmetafield(L, idx, "__name") == LUA_TSTRING)
    tname = lua_tostring(L, -1);
  luaL_Buffer P; /* the path first, finished before anything else is pushed */
  luaL_buffinit(L, &P);
  addpath(e, &P);
  luaL_pushresult(&P);
  size_t plen;
  const char *path = lua_tolstring(L, -1, &plen);
  if (plen > 160) { /* a very deep value: keep both ends */
    lua_pushlstring(L, path, 70);
    lua_pushfstring(L, "%s ... %s", lua_tostring(L, -1), path + plen - 70);
    lua_replace(L, -3);
    lua_pop(L, 1);
    path = lua_tostring(L, -1);
  }
  bool named = strcmp(tname, base) != 0;
  lua_pushfstring(L, "goro: cannot transfer %s (%s%s%s): %s", path, base, named ? " " : "",
                  named ? tname : "", why ? why : hint_for(L, idx, tname));
  /* unwind our frames first, freeing the half-made message, then raise */
  e->b->errmsg = strdup(lua_tostring(L, -1));
  longjmp(e->fail, 1);
}

static inline void setpath(enc *e, int depth, char kind, const char *s, lua_Integer i) {
  seg *g = &e->seg[depth];
  g->kind = kind;
  g->s = s;
  g->i = i;
}

static size_t seen_slot(const seenmap *m, const void *k) {
  uintptr_t h = (uintptr_t)k;
  h ^= h >> 17;
  h *= 0x9E3779B97F4A7C15ULL;
  size_t i = (size_t)(h >> 20) & (m->cap - 1);
  while (m->keys[i] && m->keys[i] != k) i = (i + 1) & (m->cap - 1);
  return i;
}

static int seen_get(const seenmap *m, const void *k) {
  size_t i = seen_slot(m, k);
  return m->keys[i] ? m->vals[i] : -1;
}

static void seen_put(enc *e, const void *k, int v) {
  seenmap *m = &e->seen;
  if (2 * (m->n + 1) > m->cap) { /* grow: keep the load under 1/2 */
    size_t cap = m->cap * 2;
    const void **keys = calloc(cap, sizeof *keys);
    int *vals = calloc(cap, sizeof *vals);
    if (!keys || !vals) {
      free(keys);
      free(vals);
      luaL_error(e->L, "goro: out of memory while copying a value");
    }
    seenmap nm = *m;
    nm.keys = keys;
    nm.vals = vals;
    nm.cap = cap;
    nm.n = 0;
    for (size_t i = 0; i < m->cap; i++) {
      if (!m->keys[i]) continue;
      size_t j = seen_slot(&nm, m->keys[i]);
      keys[j] = m->keys[i];
      vals[j] = m->vals[i];
      nm.n++;
    }
    if (m->keys != m->ikeys) { free(m->keys); free(m->vals); }
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
    e->b->seenkeys = keys; /* freed with the buffer if we error out */
    e->b->seenvals = vals;
  }
  size_t i = seen_slot(m, k);
  m->keys[i] = k;
  m->vals[i] = v;
  m->n++;
}

/* Looks v (at idx) up in the seen table; emits T_REF and returns true if
** found, else numbers it. */
static bool enc_seen(enc *e, int idx) {
  const void *p = lua_topointer(e->L, idx);
  int n = seen_get(&e->seen, p);
  if (n >= 0) {
    bbyte(e->L, e->b, T_REF);
    bsize(e->L, e->b, (size_t)n);
    e->backrefs = true;
    return true;
  }
  seen_put(e, p, ++e->nseen);
  return false;
}

/* Name of a loaded module whose table is at idx, or NULL. */
static const char *module_name(lua_State *L, int idx) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, RK_MODNAMES) != LUA_TTABLE) {
    lua_pop(L, 1);
    xfer_init_state(L); /* first use in this state */
    lua_rawgetp(L, LUA_REGISTRYINDEX, RK_MODNAMES);
  }
  lua_pushvalue(L, idx);
  lua_rawget(L, -2);
  const char *s = lua_tostring(L, -1);
  lua_pop(L, 2); /* the string stays alive in the modnames table */
  return s;
}

/* "module\0field" of a C function that is a field of a loaded module. */
static bool cfunc_name(lua_State *L, int idx, const char **mod, const char **field) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, RK_CFNAMES) != LUA_TTABLE) {
    lua_pop(L, 1);
    /* build it: every C function field of every loaded module */
    lua_newtable(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
          if (lua_type(L, -2) == LUA_TSTRING && lua_iscfunction(L, -1)) {
            lua_pushvalue(L, -1);
            if (lua_rawget(L, -7) == LUA_TNIL) { /* first name wins */
              lua_pop(L, 1);
              lua_createtable(L, 2, 0);
              lua_pushvalue(L, -5);
              lua_rawseti(L, -2, 1);
              lua_pushvalue(L, -3);
              lua_rawseti(L, -2, 2);
              lua_pushvalue(L, -2);
              lua_insert(L, -2);
              lua_rawset(L, -8);
            } else {
              lua_pop(L, 1);
            }
          }
          lua_pop(L, 1);
        }
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, RK_CFNAMES);
  }
  lua_pushvalue(L, idx);
  if (lua_rawget(L, -2) != LUA_TTABLE) {
    lua_pop(L, 2);
    return false;
  }
  lua_rawgeti(L, -1, 1);
  lua_rawgeti(L, -2, 2);
  *mod = lua_tostring(L, -2);
  *field = lua_tostring(L, -1);
  lua_pop(L, 4); /* strings stay alive in the cfnames table */
  return true;
}

static void bstr(lua_State *L, xbuf *b, const char *s, size_t n) {
  bsize(L, b, n);
  bput(L, b, s, n);
}

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

static int fncache_gc(lua_State *L) {
  fnproto **pp = lua_touserdata(L, 1);
  if (*pp) fnproto_unref(*pp);
  *pp = NULL;
  return 0;
}

/* Pushes this state's prototype cache (RK_FNCACHE), emptied when it has
** grown to FNCACHE_MAX entries (the dropped fnprotos are released by
** their finalizers). */
static void fncache_push(lua_State *L, bool adding) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, RK_FNCACHE) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, RK_FNCACHE);
  }
  if (!adding) return;
  lua_getfield(L, -1, "n");
  lua_Integer n = lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (n >= FNCACHE_MAX) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, RK_FNCACHE);
    n = 0;
  }
  lua_pushinteger(L, n + 1);
  lua_setfield(L, -2, "n");
}

/* Caches fp (taking one reference, which the entry's finalizer drops) as
** the fnproto of the Lua function at idx, whose prototype it is. */
static void fncache_put(lua_State *L, int idx, fnproto *fp) {
  idx = lua_absindex(L, idx);
  const void *key = protokey(L, idx);
  fncache_push(L, true);
  fnproto **ud = lua_newuserdatauv(L, sizeof *ud, 1);
  *ud = fp;
  atomic_fetch_add_explicit(&fp->refs, 1, memory_order_relaxed); /* owner holds one */
  if (luaL_newmetatable(L, "goro.fnproto")) {
    lua_pushcfunction(L, fncache_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  lua_pushvalue(L, idx); /* keeps the prototype alive: its key stays unique */
  lua_setiuservalue(L, -2, 1);
  lua_pushlightuserdata(L, (void *)key);
  lua_insert(L, -2);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

/* A goroutine state loaded the Lua function at idx (kept in RK_PROTOS)
** from fp: remember it, so that sent on from here the function stays fp
** and the caches do not grow with every hop. A C array in the gstate,
** not a Lua object: a pooled state that never sends pays 16 bytes. */
static void remember_proto(lua_State *L, int idx, fnproto *fp) {
  gstate *s = gstate_of(L);
  if (!s) return;
  if (s->nprotos == s->capprotos) {
    int cap = s->capprotos ? 2 * s->capprotos : 1;
    xproto *np = realloc(s->protos, sizeof *np * (size_t)cap);
    if (!np) return; /* only an optimization */
    s->protos = np;
    s->capprotos = cap;
  }
  atomic_fetch_add_explicit(&fp->refs, 1, memory_order_relaxed); /* owner holds one */
  s->protos[s->nprotos].key = protokey(L, idx);
  s->protos[s->nprotos].fp = fp;
  s->nprotos++;
}

void xfer_free_protos(gstate *s) {
  for (int i = 0; i < s->nprotos; i++) fnproto_unref(s->protos[i].fp);
  free(s->protos);
  s->protos = NULL;
  s->nprotos = s->capprotos = 0;
}

/* The fnproto for the Lua function at idx (cached per prototype: the
** sender's own functions get one when first sent, functions a state
** received keep the one they came with, so a function relayed from state
** to state is one fnproto everywhere and the caches do not grow per hop). */
static fnproto *get_fnproto(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  const void *key = protokey(L, idx);
  fncache_push(L, false);
  lua_pushlightuserdata(L, (void *)key);
  if (lua_rawget(L, -2) == LUA_TUSERDATA) {
    fnproto *fp = *(fnproto **)lua_touserdata(L, -1);
    lua_pop(L, 2);
    return fp;
  }
  lua_pop(L, 2);
  gstate *s = gstate_of(L);
  for (int i = 0; s && i < s->nprotos; i++) {
    if (s->protos[i].key == key) { /* received: it stays that fnproto */
      fncache_put(L, idx, s->protos[i].fp);
      return s->protos[i].fp;
    }
  }
  dumpbuf d = {NULL, 0, 0};
  lua_pushvalue(L, idx);
  int bad = lua_dump(L, dump_writer, &d, 0);
  lua_pop(L, 1);
  fnproto *fp = bad ? NULL : calloc(1, sizeof *fp);
  if (!fp) {
    free(d.p);
    luaL_error(L, "goro: out of memory while copying a function");
  }
  fp->code = d.p;
  fp->len = d.len;
  atomic_init(&fp->refs, 0); /* fncache_put takes the cache's */
  fp->id = atomic_fetch_add_explicit(&fnproto_ids, 1, memory_order_relaxed) + 1;
  pthread_mutex_lock(&fnlock);
  fp->next = fnlive;
  if (fnlive) fnlive->prev = fp;
  fnlive = fp;
  pthread_mutex_unlock(&fnlock);
  dump_globals(fp);
  fncache_put(L, idx, fp);
  return fp;
}

static int lua_rawget_str(lua_State *L, int idx, const char *k) {
  idx = lua_absindex(L, idx);
  lua_pushstring(L, k);
  return lua_rawget(L, idx);
}

static bool is_globals(enc *e, int idx) {
  return lua_rawequal(e->L, idx, e->gidx) || lua_rawequal(e->L, idx, e->envidx);
}

static void enc_function(enc *e, int idx) {
  lua_State *L = e->L;
  if (lua_iscfunction(L, idx)) {
    const char *mod, *field;
    if (cfunc_name(L, idx, &mod, &field)) {
      bbyte(L, e->b, T_CNAMED);
      bstr(L, e->b, mod, strlen(mod));
      bstr(L, e->b, field, strlen(field));
      return;
    }
    if (lua_getupvalue(L, idx, 1) != NULL) {
      lua_pop(L, 1);
      enc_error(e, idx, "a C function with upvalues belongs to its state: call "
                        "it inside the goroutine, or require its module there");
    }
    lua_CFunction f = lua_tocfunction(L, idx);
    bbyte(L, e->b, T_CFUNC);
    bput(L, e->b, &f, sizeof f);
    return;
  }
  if (enc_seen(e, idx)) return;
  int myref = e->nseen;
  fnproto *fp = get_fnproto(L, idx);
  atomic_fetch_add_explicit(&fp->refs, 1, memory_order_relaxed);
  bref(L, e->b, (void *)((uintptr_t)fp | 1));
  bbyte(L, e->b, T_LFUNC);
  bput(L, e->b, &fp, sizeof fp);
  int nups = 0;
  while (lua_getupvalue(L, idx, nups + 1) != NULL) {
    lua_pop(L, 1);
    nups++;
  }
  bsize(L, e->b, (size_t)nups);
  bool usesenv = false;
  for (int i = 1; i <= nups; i++) {
    const char *name = lua_getupvalue(L, idx, i);
    int v = lua_gettop(L);
    if (lua_type(L, v) == LUA_TTABLE && is_globals(e, v)) {
      /* _ENV: bound to the receiver's globals (never joined: every copy
      ** gets the same table anyway), and its globals may travel */
      bbyte(L, e->b, T_UPENV);
      usesenv = true;
      lua_pop(L, 1);
      continue;
    }
    void *id = lua_upvalueid(L, idx, i);
    /* shared upvalue cell seen before: join it */
    int ref = seen_get(&e->seen, id);
    if (ref >= 0) {
      lua_pop(L, 1);
      bbyte(L, e->b, T_UPJOIN);
      bsize(L, e->b, (size_t)(ref >> 8));
      bsize(L, e->b, (size_t)(ref & 0xff));
      e->backrefs = true;
      continue;
    }
    if (i < 256 && myref < (1 << 22)) seen_put(e, id, (myref << 8) | i);
    bbyte(L, e->b, T_UPVAL);
    /* the segment first: the error names it (seg has room for depth 201) */
    setpath(e, ++e->depth, 'u', name && *name ? name : "?", 0);
    if (e->depth > XFER_MAXDEPTH) enc_error(e, v, "nesting is too deep (limit 200)");
    encode(e, v);
    e->depth--;
    lua_pop(L, 1);
  }
  /* globals the code names that the sender defined */
  int nglob = 0;
  size_t countpos = 0;
  if (usesenv && fp->nglobals > 0) {
    for (int i = 0; i < fp->nglobals; i++) {
      const char *g = fp->globals[i];
      /* a goroutine's own globals live in its environment table: raw */
      bool mainenv = lua_rawequal(L, e->envidx, e->gidx);
      int t = mainenv ? lua_getfield(L, e->envidx, g) : lua_rawget_str(L, e->envidx, g);
      if (t == LUA_TNIL) {
        lua_pop(L, 1);
        continue;
      }
      bool user = true;
      if (mainenv) { /* main state: skip names that were there */
        if (lua_rawgetp(L, LUA_REGISTRYINDEX, RK_BASE) == LUA_TTABLE) {
          user = lua_getfield(L, -1, g) == LUA_TNIL;
          lua_pop(L, 1);
        }
        lua_pop(L, 1);
      }
      if (user) {
        if (nglob == 0) {
          bbyte(L, e->b, T_GLOBALS);
          countpos = e->b->len;
          bput(L, e->b, "\0\0\0\0", 4);
        }
        bstr(L, e->b, g, strlen(g));
        setpath(e, ++e->depth, 'g', g, 0);
        if (e->depth > XFER_MAXDEPTH) enc_error(e, -1, "nesting is too deep (limit 200)");
        encode(e, lua_gettop(L));
        e->depth--;
        nglob++;
      }
      lua_pop(L, 1);
    }
  }
  if (nglob) {
    uint32_t n = (uint32_t)nglob;
    memcpy(e->b->data + countpos, &n, 4);
  }
}

static void encode(enc *e, int idx) {
  lua_State *L = e->L;
  xbuf *b = e->b;
  idx = lua_absindex(L, idx);
  /* each level keeps a few values on the stack: room for them */
  if (!lua_checkstack(L, 12)) enc_error(e, idx, "nesting is too deep for the Lua stack");
  switch (lua_type(L, idx)) {
  case LUA_TNIL: bbyte(L, b, T_NIL); break;
  case LUA_TBOOLEAN: bbyte(L, b, lua_toboolean(L, idx) ? T_TRUE : T_FALSE); break;
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) {
      lua_Integer i = lua_tointeger(L, idx);
      bbyte(L, b, T_INT);
      bput(L, b, &i, sizeof i);
    } else {
      lua_Number n = lua_tonumber(L, idx);
      bbyte(L, b, T_FLT);
      bput(L, b, &n, sizeof n);
    }
    break;
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    bbyte(L, b, T_STR);
    bstr(L, b, s, n);
    break;
  }
  case LUA_TTABLE: {
    const char *mod = module_name(L, idx);
    if (mod) {
      bbyte(L, b, T_MODULE);
      bstr(L, b, mod, strlen(mod));
      break;
    }
    if (is_globals(e, idx)) {
      bbyte(L, b, T_UPENV);
      break;
    }
    if (enc_seen(e, idx)) break;
    bbyte(L, b, T_TABLE);
    if (++e->depth > XFER_MAXDEPTH) {
      e->depth--;
      enc_error(e, idx, "nesting is too deep (limit 200): flatten the table");
    }
    /* sizes for the receiver's lua_createtable (no rehash while filling),
    ** patched in once the entries are counted */
    size_t sizepos = b->len;
    bput(L, b, "\0\0\0\0\0\0\0\0", 8);
    uint32_t narr = (uint32_t)lua_rawlen(L, idx), nall = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      nall++;
      int kt = lua_type(L, -2);
      if (kt == LUA_TSTRING) setpath(e, e->depth, 'f', lua_tostring(L, -2), 0);
      else if (kt == LUA_TNUMBER && lua_isinteger(L, -2))
        setpath(e, e->depth, 'i', NULL, lua_tointeger(L, -2));
      else setpath(e, e->depth, 'k', NULL, 0);
      if (kt == LUA_TSTRING) { /* fast path: no path copy of a key */
        size_t n;
        const char *s = lua_tolstring(L, -2, &n);
        bbyte(L, b, T_STR);
        bstr(L, b, s, n);
      } else {
        encode(e, lua_gettop(L) - 1);
      }
      encode(e, lua_gettop(L));
      lua_pop(L, 1);
    }
    if (narr > nall) narr = nall;
    uint32_t nhash = nall - narr;
    memcpy(b->data + sizepos, &narr, 4);
    memcpy(b->data + sizepos + 4, &nhash, 4);
    bbyte(L, b, T_END);
    if (lua_getmetatable(L, idx)) {
      setpath(e, e->depth, 'm', NULL, 0);
      bbyte(L, b, T_META);
      encode(e, lua_gettop(L));
      lua_pop(L, 1);
    } else {
      bbyte(L, b, T_NOMETA);
    }
    e->depth--;
    break;
  }
  case LUA_TFUNCTION:
    enc_function(e, idx);
    break;
  case LUA_TUSERDATA: {
    gobj *o = gobj_test(L, idx);
    if (!o) enc_error(e, idx, NULL);
    gobj_ref(o);
    bref(L, b, o);
    bbyte(L, b, T_OBJ);
    bput(L, b, &o, sizeof o);
    break;
  }
  case LUA_TLIGHTUSERDATA: {
    void *p = lua_touserdata(L, idx);
    bbyte(L, b, T_LUD);
    bput(L, b, &p, sizeof p);
    break;
  }
  default:
    enc_error(e, idx, NULL);
  }
}

/* ------------------------------------------------------------ decoding */

typedef struct dec {
  lua_State *L;
  rd r;
  int objs;      /* stack index of the objects table (0: not made yet) */
  int nobjs;
  int env;       /* stack index of the receiver's globals */
  bool entry;    /* the next function is a goroutine's entry */
} dec;

static void decode(dec *d);

/* The receiver's globals (a goroutine's environment is made on demand). */
static int dec_env(dec *d) {
  if (lua_isnil(d->L, d->env)) {
    gstate_push_env(d->L);
    lua_replace(d->L, d->env);
  }
  return d->env;
}

static void dec_register(dec *d) {
  ++d->nobjs;
  if (!d->objs) return; /* no back-references in this message */
  lua_pushvalue(d->L, -1);
  lua_rawseti(d->L, d->objs, d->nobjs);
}

static void rstr(dec *d) {
  size_t n = rsize(&d->r);
  lua_pushlstring(d->L, (const char *)d->r.p, n);
  d->r.p += n;
}

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

/* Pushes module `name` of this state, loading it if needed. */
static void push_module(lua_State *L, const char *name) {
  if (strcmp(name, LUA_GNAME) == 0) { /* the base library: the globals */
    lua_pushglobaltable(L);
    return;
  }
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getfield(L, -1, name) != LUA_TNIL) {
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 2);
  lua_CFunction open = gstate_opener(name);
  if (open) {
    luaL_requiref(L, name, open, 1);
    return;
  }
  if (strcmp(name, "goro") == 0) {
    luaL_requiref(L, name, luaopen_goro, 0);
    return;
  }
  lua_pushglobaltable(L);
  if (lua_getfield(L, -1, "require") != LUA_TFUNCTION) {
    lua_pop(L, 2);
    luaL_requiref(L, LUA_LOADLIBNAME, gstate_opener(LUA_LOADLIBNAME), 1);
    lua_pop(L, 1);
    lua_pushglobaltable(L);
    lua_getfield(L, -1, "require");
  }
  lua_remove(L, -2);
  lua_pushstring(L, name);
  lua_call(L, 1, 1);
}

static void dec_function(dec *d) {
  lua_State *L = d->L;
  fnproto *fp;
  rget(&d->r, &fp, sizeof fp);
  bool entry = d->entry;
  d->entry = false;
  bool loaded = false;
  if (entry) { /* reuse this state's closure of the same prototype */
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, RK_PROTOS) != LUA_TTABLE) {
      lua_pop(L, 1);
      lua_newtable(L);
      lua_pushvalue(L, -1);
      lua_rawsetp(L, LUA_REGISTRYINDEX, RK_PROTOS);
    }
    if (lua_rawgeti(L, -1, (lua_Integer)fp->id) == LUA_TFUNCTION) {
      lua_remove(L, -2);
      loaded = true;
    } else {
      lua_pop(L, 1);
      loadst ls = {fp->code, fp->len};
      if (lua_load(L, load_reader, &ls, "=goroutine", "b") != LUA_OK) {
        lua_remove(L, -2);
        lua_error(L);
      }
      lua_pushvalue(L, -1);
      lua_rawseti(L, -3, (lua_Integer)fp->id);
      lua_remove(L, -2);
      remember_proto(L, -1, fp);
      loaded = true;
    }
  }
  if (!loaded) {
    loadst ls = {fp->code, fp->len};
    if (lua_load(L, load_reader, &ls, "=goroutine", "b") != LUA_OK) lua_error(L);
  }
  dec_register(d);
  int f = lua_gettop(L);
  int nups = (int)rsize(&d->r);
  for (int i = 1; i <= nups; i++) {
    int t = rbyte(&d->r);
    if (t == T_UPENV) {
      lua_pushvalue(L, dec_env(d));
      lua_setupvalue(L, f, i);
    } else if (t == T_UPJOIN) {
      int ref = (int)rsize(&d->r);
      int n = (int)rsize(&d->r);
      lua_rawgeti(L, d->objs, ref);
      lua_upvaluejoin(L, f, i, -1, n);
      lua_pop(L, 1);
    } else { /* T_UPVAL */
      decode(d);
      lua_setupvalue(L, f, i);
    }
  }
  if (d->r.p < d->r.end && *d->r.p == T_GLOBALS) {
    d->r.p++;
    uint32_t n;
    rget(&d->r, &n, 4);
    for (uint32_t i = 0; i < n; i++) {
      rstr(d);
      decode(d);
      lua_rawset(L, dec_env(d));
    }
  }
}

static void decode(dec *d) {
  lua_State *L = d->L;
  luaL_checkstack(L, 6, "goro: value too deep");
  int t = rbyte(&d->r);
  switch (t) {
  case T_NIL: lua_pushnil(L); break;
  case T_FALSE: lua_pushboolean(L, 0); break;
  case T_TRUE: lua_pushboolean(L, 1); break;
  case T_INT: {
    lua_Integer i;
    rget(&d->r, &i, sizeof i);
    lua_pushinteger(L, i);
    break;
  }
  case T_FLT: {
    lua_Number n;
    rget(&d->r, &n, sizeof n);
    lua_pushnumber(L, n);
    break;
  }
  case T_STR: rstr(d); break;
  case T_TABLE: {
    uint32_t narr, nhash;
    rget(&d->r, &narr, 4);
    rget(&d->r, &nhash, 4);
    lua_createtable(L, narr > (1u << 24) ? 0 : (int)narr, nhash > (1u << 24) ? 0 : (int)nhash);
    dec_register(d);
    int tb = lua_gettop(L);
    while (d->r.p < d->r.end && *d->r.p != T_END) {
      decode(d);
      decode(d);
      lua_rawset(L, tb);
    }
    d->r.p++; /* T_END */
    if (rbyte(&d->r) == T_META) {
      decode(d);
      lua_setmetatable(L, tb);
    }
    break;
  }
  case T_REF: {
    lua_Integer n = (lua_Integer)rsize(&d->r);
    lua_rawgeti(L, d->objs, n);
    break;
  }
  case T_LFUNC: dec_function(d); break;
  case T_CFUNC: {
    lua_CFunction f;
    rget(&d->r, &f, sizeof f);
    lua_pushcfunction(L, f);
    break;
  }
  case T_CNAMED: {
    rstr(d);
    rstr(d);
    push_module(L, lua_tostring(L, -2));
    lua_pushvalue(L, -2);
    lua_gettable(L, -2);
    lua_replace(L, -4);
    lua_pop(L, 2);
    break;
  }
  case T_MODULE: {
    rstr(d);
    push_module(L, lua_tostring(L, -1));
    lua_remove(L, -2);
    break;
  }
  case T_UPENV: lua_pushvalue(L, dec_env(d)); break;
  case T_OBJ: {
    gobj *o;
    rget(&d->r, &o, sizeof o);
    gobj_ref(o);
    gobj_push(L, o);
    break;
  }
  case T_LUD: {
    void *p;
    rget(&d->r, &p, sizeof p);
    lua_pushlightuserdata(L, p);
    break;
  }
  default:
    luaL_error(L, "goro: corrupt message (tag %d): this is a bug in goro", t);
  }
}

/* ------------------------------------------------------------ public */

typedef struct xguard {
  xbuf *b; /* freed by __gc unless detached */
} xguard;

static int xguard_gc(lua_State *L) {
  xguard *g = lua_touserdata(L, 1);
  if (g->b) xbuf_free(g->b, true);
  g->b = NULL;
  return 0;
}

void xfer_guard(lua_State *L, xbuf *b) {
  xguard *g = lua_newuserdatauv(L, sizeof *g, 0);
  g->b = b;
  if (luaL_newmetatable(L, "goro.xguard")) {
    lua_pushcfunction(L, xguard_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
}

void xfer_unguard(lua_State *L, int idx) {
  xguard *g = lua_touserdata(L, idx);
  if (g) g->b = NULL;
}

static void push_sender_globals(lua_State *L) {
  lua_pushglobaltable(L);
  gstate_push_env(L);
}

static xbuf *encode_n(lua_State *L, int idx0, int n, const char *what0, bool raise);

xbuf *xfer_encode_n(lua_State *L, int idx0, int n, const char *what0) {
  return encode_n(L, idx0, n, what0, true);
}

/* raise false: on a value that cannot cross, returns NULL with the error
** message pushed (the caller frees what it holds, then raises). */
static xbuf *encode_n(lua_State *L, int idx0, int n, const char *what0, bool raise) {
  const int idx = lua_absindex(L, idx0);
  luaL_checkstack(L, 16, "goro: too many values");
  xbuf *b = xbuf_alloc();
  if (!b) luaL_error(L, "goro: out of memory while copying a value");
  b->data = b->inl;
  b->len = 0;
  b->cap = sizeof b->inl;
  b->refs = b->inlrefs;
  b->nrefs = 0;
  b->caprefs = 2;
  b->memlimit = 0;
  b->seenkeys = NULL;
  b->seenvals = NULL;
  b->errmsg = NULL;
  int top = lua_gettop(L) + 1;
  lua_pushnil(L); /* keeps the stack layout of the error path */
  push_sender_globals(L);
  enc e;
  e.L = L;
  e.b = b;
  e.seen.keys = e.seen.ikeys;
  e.seen.vals = e.seen.ivals;
  e.seen.cap = SEEN_INLINE;
  e.seen.n = 0;
  memset(e.seen.ikeys, 0, sizeof e.seen.ikeys);
  e.backrefs = false;
  e.nseen = 0;
  e.depth = 0;
  e.gidx = top + 1;
  e.envidx = top + 2;
  char what[32];
  if (setjmp(e.fail)) { /* enc_error: a value that cannot cross */
    char *msg = b->errmsg;
    b->errmsg = NULL;
    xbuf_free(b, true);
    lua_settop(L, top - 1);
    if (!msg) luaL_error(L, "goro: out of memory while copying a value");
    lua_pushstring(L, msg);
    free(msg);
    if (!raise) return NULL;
    lua_error(L);
  }
  bbyte(L, b, 0); /* becomes 1 if tables or functions are numbered */
  bsize(L, b, (size_t)n);
  for (int i = 0; i < n; i++) {
    if (i == 0 && what0) e.what = what0;
    else {
      snprintf(what, sizeof what, "argument %d", i + 1);
      e.what = what;
    }
    encode(&e, idx + i);
  }
  b->data[0] = e.backrefs;
  free(b->seenkeys);
  free(b->seenvals);
  b->seenkeys = NULL;
  b->seenvals = NULL;
  lua_settop(L, top - 1);
  return b;
}

int xfer_decode_n(lua_State *L, xbuf *b, bool entry) {
  dec d;
  d.L = L;
  d.r.p = b->data;
  d.r.end = b->data + b->len;
  d.objs = 0;
  d.nobjs = 0;
  d.entry = entry;
  lua_pushnil(L); /* the receiver's globals, pushed here when first needed */
  d.env = lua_gettop(L);
  if (rbyte(&d.r) == 1) { /* the message has tables or functions */
    lua_createtable(L, 4, 0);
    d.objs = lua_gettop(L);
  }
  int n = (int)rsize(&d.r);
  luaL_checkstack(L, n + 8, "goro: too many values");
  for (int i = 0; i < n; i++) decode(&d);
  lua_remove(L, d.env); /* env (and objs) from under the values */
  if (d.objs) lua_remove(L, d.env);
  return n;
}

static bool encode_val(lua_State *L, int idx, xval *v, const char *what, bool raise);

void xfer_encode_val(lua_State *L, int idx, xval *v, const char *what) {
  encode_val(L, idx, v, what, true);
}

bool xfer_try_encode_val(lua_State *L, int idx, xval *v, const char *what) {
  return encode_val(L, idx, v, what, false);
}

static bool encode_val(lua_State *L, int idx, xval *v, const char *what, bool raise) {
  idx = lua_absindex(L, idx);
  switch (lua_type(L, idx)) {
  case LUA_TNIL: v->tag = XV_NIL; return true;
  case LUA_TBOOLEAN: v->tag = lua_toboolean(L, idx) ? XV_TRUE : XV_FALSE; return true;
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) {
      v->tag = XV_INT;
      v->u.i = lua_tointeger(L, idx);
    } else {
      v->tag = XV_FLT;
      v->u.n = lua_tonumber(L, idx);
    }
    return true;
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    if (n <= sizeof v->s) {
      v->tag = XV_STR;
      v->len = (uint8_t)n;
      memcpy(v->s, s, n);
      return true;
    }
    break;
  }
  case LUA_TUSERDATA: {
    gobj *o = gobj_test(L, idx);
    if (o) {
      gobj_ref(o);
      v->tag = XV_OBJ;
      v->u.obj = o;
      return true;
    }
    break;
  }
  case LUA_TLIGHTUSERDATA:
    v->tag = XV_LUD;
    v->u.p = lua_touserdata(L, idx);
    return true;
  default:
    break;
  }
  v->tag = XV_NIL;
  xbuf *b = encode_n(L, idx, 1, what, raise);
  if (!b) return false;
  v->tag = XV_BUF;
  v->u.buf = b;
  return true;
}

void xfer_decode_val(lua_State *L, xval *v) {
  switch (v->tag) {
  case XV_NIL: lua_pushnil(L); break;
  case XV_FALSE: lua_pushboolean(L, 0); break;
  case XV_TRUE: lua_pushboolean(L, 1); break;
  case XV_INT: lua_pushinteger(L, v->u.i); break;
  case XV_FLT: lua_pushnumber(L, v->u.n); break;
  case XV_STR: lua_pushlstring(L, v->s, v->len); break;
  case XV_OBJ: gobj_push(L, v->u.obj); break; /* takes over the ref */
  case XV_LUD: lua_pushlightuserdata(L, v->u.p); break;
  case XV_BUF: {
    xbuf *b = v->u.buf;
    v->tag = XV_NIL;
    /* guard b while decoding: a Lua error (a missing module) frees it */
    xfer_guard(L, b);
    int gi = lua_gettop(L);
    xfer_decode_n(L, b, false);
    xfer_unguard(L, gi);
    lua_remove(L, gi);
    xbuf_free(b, true);
    return;
  }
  }
  v->tag = XV_NIL;
}

void xfer_drop_val(void *elem) {
  xval *v = elem;
  if (v->tag == XV_OBJ) gobj_unref(v->u.obj);
  else if (v->tag == XV_BUF) xbuf_free(v->u.buf, true);
  v->tag = XV_NIL;
}

/* Tracks package.loaded so module tables can be named (T_MODULE): a
** __newindex on package.loaded records each new module. */
static int loaded_newindex(lua_State *L) {
  lua_settop(L, 3);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  lua_rawset(L, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, RK_MODNAMES);
  if (lua_type(L, 3) == LUA_TTABLE && lua_type(L, 2) == LUA_TSTRING &&
      lua_type(L, -1) == LUA_TTABLE) {
    lua_pushvalue(L, 3);
    lua_pushvalue(L, 2);
    lua_rawset(L, -3);
  }
  lua_pushnil(L); /* C function names may change */
  lua_rawsetp(L, LUA_REGISTRYINDEX, RK_CFNAMES);
  return 0;
}

void xfer_init_state(lua_State *L) {
  lua_newtable(L); /* module table -> name (weak keys) */
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    if (lua_type(L, -1) == LUA_TTABLE && lua_type(L, -2) == LUA_TSTRING &&
        strcmp(lua_tostring(L, -2), LUA_GNAME) != 0) {
      lua_pushvalue(L, -1);
      lua_pushvalue(L, -3);
      lua_rawset(L, -6);
    }
    lua_pop(L, 1);
  }
  if (!lua_getmetatable(L, -1)) {
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, loaded_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_setmetatable(L, -2);
  } else {
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, RK_MODNAMES);
}
