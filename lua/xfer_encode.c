/*
** xfer_encode.c — the encoder: the values of a sending state written as a
** message (the wire format is in xfer_int.h), and the error that names
** the path to a value that cannot cross.
**
** Containment: the encoder runs as a C function under lua_pcall, so any
** Lua error raised while a message is half made (a value that cannot
** cross, out of memory in the Lua heap or in malloc, a limited goroutine at
** its limit) lands in encode_n, which frees the buffer with the references
** it took, and only then re-raises (or returns the message, for select).
** No user code runs in here: globals are read raw, tables walked with
** lua_next, metatables fetched raw. The state's maps (xfer_names.c) and
** prototype cache (xfer_proto.c) may grow, and stay consistent if that
** fails midway.
*/
#include <stdlib.h>
#include <string.h>

#include "xfer_int.h"

/* A path segment, rendered only for an error message. s points at a
** string alive while it is on the encoder's stack (a key, an upvalue name). */
typedef struct seg {
  char kind;     /* 'f' field, 'i' index, 'u' upvalue, 'g' global, 'm' metatable, 'k' key */
  const char *s;
  lua_Integer i;
} seg;

/* The objects already numbered in a message (tables, Lua functions, upvalue
** cells), keyed by address: an open-addressing hash map, inline while small,
** so a small message makes no garbage. Grown arrays are freed by encode_n,
** also when the encoding fails. */
#define SEEN_INLINE 32
typedef struct seenmap {
  const void **keys;
  int *vals;
  size_t cap, n;
  const void *ikeys[SEEN_INLINE];
  int ivals[SEEN_INLINE];
} seenmap;

/* One encoding, on encode_n's C stack; only its thread touches it. */
typedef struct enc {
  lua_State *L;
  xbuf *b;
  int idx, n;    /* the values: n from stack index idx of the pcall'd frame */
  const char *what0; /* the first value's name ("" for none, NULL: "argument 1") */
  seenmap seen;  /* objects numbered so far -> their number */
  int nseen;     /* objects numbered so far */
  bool backrefs; /* a T_REF or T_UPJOIN was written: the receiver numbers */
  int depth;     /* current nesting: seg[1..depth] is the path */
  int gidx;      /* stack index of the sender's globals table */
  int envidx;    /* stack index of the sender's environment */
  const char *what; /* the root: "value", ... ("" for none); NULL: argument argn */
  int argn;
  seg seg[XFER_MAXDEPTH + 2]; /* 1..depth; depth is MAXDEPTH + 1 at the error */
} enc;

static void encode(enc *e, int idx);

/* ------------------------------------------------------------ errors */

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

static bool isfield(const seg *s) { return s->kind == 'f' || s->kind == 'i'; }

/* Renders the path: root, then "upvalue 'f'", "field 'cfg.out'", ... */
static void addpath(enc *e, luaL_Buffer *B) {
  char arg[32];
  const char *what = e->what;
  if (!what) { /* formatted only for an error: not on every spawn */
    snprintf(arg, sizeof arg, "argument %d", e->argn);
    what = arg;
  }
  bool any = *what != '\0';
  if (any) luaL_addstring(B, what);
  for (int i = 1; i <= e->depth; i++) {
    seg *s = &e->seg[i];
    bool field = isfield(s);
    bool infield = i > 1 && isfield(&e->seg[i - 1]);
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
    case 'f': case 'i': luaL_addstring(B, "field '"); luaL_addstring(B, text); break;
    case 'u': luaL_addstring(B, "upvalue '"); luaL_addstring(B, text); luaL_addchar(B, '\''); break;
    case 'g': luaL_addstring(B, "global '"); luaL_addstring(B, text); luaL_addchar(B, '\''); break;
    case 'm': luaL_addstring(B, "metatable"); break;
    default: luaL_addstring(B, "a table key"); break;
    }
    bool nextfield = i < e->depth && isfield(&e->seg[i + 1]);
    if (field && !nextfield) luaL_addchar(B, '\'');
  }
  /* close a field group that ran to the end */
  if (e->depth >= 1) {
    bool alone = e->depth == 1 || !isfield(&e->seg[e->depth - 1]);
    if (isfield(&e->seg[e->depth]) && !alone) luaL_addchar(B, '\'');
  }
  if (!any) luaL_addstring(B, "value");
}

/* Raises "cannot transfer <path> (<type>): <why or a hint>"; encode_n
** catches it and frees the half-made message. */
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
  lua_error(L);
  abort(); /* not reached: lua_error does not return */
}

static inline void setpath(enc *e, int depth, char kind, const char *s, lua_Integer i) {
  seg *g = &e->seg[depth];
  g->kind = kind;
  g->s = s;
  g->i = i;
}

/* Encodes the value at idx one level down, under path segment (kind, s). */
static void encode_in(enc *e, int idx, char kind, const char *s) {
  /* the segment first: the error names it (seg has room for depth 201) */
  setpath(e, ++e->depth, kind, s, 0);
  if (e->depth > XFER_MAXDEPTH) enc_error(e, idx, "nesting is too deep (limit 200)");
  encode(e, idx);
  e->depth--;
}

/* ------------------------------------------------------------ seen map */

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

static void seen_free(seenmap *m) {
  if (m->keys == m->ikeys) return;
  free(m->keys);
  free(m->vals);
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
    seen_free(m);
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
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

/* ------------------------------------------------------------ functions */

static bool is_globals(enc *e, int idx) {
  return lua_rawequal(e->L, idx, e->gidx) || lua_rawequal(e->L, idx, e->envidx);
}

/* Pushes t[k] without metamethods (a strict _ENV's __index raises). */
static int rawgetfield(lua_State *L, int t, const char *k) {
  t = lua_absindex(L, t);
  lua_pushstring(L, k);
  return lua_rawget(L, t);
}

/* A C function the main state's globals hold under a name of its own (a
** host's lua_register): the receiver's globals (module "_G") lack it, so
** it travels by pointer. */
static bool user_global_cfn(lua_State *L, const char *mod, const char *field) {
  if (strcmp(mod, LUA_GNAME) != 0) return false;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, RK_BASE) != LUA_TTABLE) {
    lua_pop(L, 1);
    return false;
  }
  bool user = rawgetfield(L, -1, field) == LUA_TNIL;
  lua_pop(L, 2);
  return user;
}

static void enc_cfunction(enc *e, int idx) {
  lua_State *L = e->L;
  const char *mod, *field;
  if (xfer_cfname(L, idx, &mod, &field) && !user_global_cfn(L, mod, field) &&
      xfer_module_rebuildable(L, mod)) {
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
}

/* The upvalues of the Lua function at idx, numbered myref; returns whether
** one is the sender's globals (_ENV). */
static bool enc_upvalues(enc *e, int idx, int myref) {
  lua_State *L = e->L;
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
    encode_in(e, v, 'u', name && *name ? name : "?");
    lua_pop(L, 1);
  }
  return usesenv;
}

/* The globals fp's code names that the sender defined (T_GLOBALS), read
** raw from its environment; in the main state, names that existed before
** goro was required (RK_BASE: the standard library) stay behind. */
static void enc_globals(enc *e, const fnproto *fp) {
  lua_State *L = e->L;
  bool mainenv = lua_rawequal(L, e->envidx, e->gidx);
  int nglob = 0;
  size_t countpos = 0;
  for (int i = 0; i < fp->nglobals; i++) {
    const char *g = fp->globals[i];
    if (rawgetfield(L, e->envidx, g) == LUA_TNIL) {
      lua_pop(L, 1);
      continue;
    }
    bool user = true;
    if (mainenv) {
      if (lua_rawgetp(L, LUA_REGISTRYINDEX, RK_BASE) == LUA_TTABLE) {
        user = rawgetfield(L, -1, g) == LUA_TNIL;
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
      encode_in(e, lua_gettop(L), 'g', g);
      nglob++;
    }
    lua_pop(L, 1);
  }
  if (nglob) {
    uint32_t n = (uint32_t)nglob;
    memcpy(e->b->data + countpos, &n, 4);
  }
}

static void enc_function(enc *e, int idx) {
  lua_State *L = e->L;
  if (lua_iscfunction(L, idx)) {
    enc_cfunction(e, idx);
    return;
  }
  if (enc_seen(e, idx)) return;
  int myref = e->nseen;
  fnproto *fp = fnproto_get(L, idx);
  bref(L, e->b, (void *)((uintptr_t)fp | 1));
  fnproto_ref(fp); /* the message's, released with it */
  bbyte(L, e->b, T_LFUNC);
  bput(L, e->b, &fp, sizeof fp);
  if (enc_upvalues(e, idx, myref) && fp->nglobals > 0) enc_globals(e, fp);
}

/* ------------------------------------------------------------ values */

static void enc_table(enc *e, int idx) {
  lua_State *L = e->L;
  xbuf *b = e->b;
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
    const char *mod = xfer_modname(L, idx);
    if (mod && !xfer_module_rebuildable(L, mod)) {
      lua_pushfstring(L, "it is module '%s', which a goroutine's require cannot find by "
                         "that name (no file on package.path or cpath: it was set in "
                         "package.loaded by hand, or comes from package.preload): send a "
                         "plain copy of the fields it needs, or make it a module file", mod);
      enc_error(e, idx, lua_tostring(L, -1));
    }
    if (mod) {
      bbyte(L, b, T_MODULE);
      bstr(L, b, mod, strlen(mod));
    } else if (is_globals(e, idx)) {
      bbyte(L, b, T_UPENV);
    } else if (!enc_seen(e, idx)) {
      enc_table(e, idx);
    }
    break;
  }
  case LUA_TFUNCTION:
    enc_function(e, idx);
    break;
  case LUA_TUSERDATA: {
    gobj *o = gobj_test(L, idx);
    if (!o) enc_error(e, idx, NULL);
    bref(L, b, o);
    gobj_ref(o); /* the message's, released with it */
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

/* ------------------------------------------------------------ entry points */

/* lua_pcall'd: 1 = the enc, then the n values. */
static int encode_protected(lua_State *L) {
  enc *e = lua_touserdata(L, 1);
  e->L = L;
  e->idx = 2;
  lua_pushglobaltable(L);
  xhost->push_env(L);
  e->gidx = e->idx + e->n;
  e->envidx = e->gidx + 1;
  xbuf *b = e->b;
  bbyte(L, b, 0); /* becomes 1 if tables or functions are numbered */
  bsize(L, b, (size_t)e->n);
  for (int i = 0; i < e->n; i++) {
    e->what = i == 0 ? e->what0 : NULL;
    e->argn = i + 1;
    encode(e, e->idx + i);
  }
  b->data[0] = e->backrefs;
  return 0;
}

/* Encodes n values from idx0 into a new message. On failure frees what
** was made, then raises (raise) or returns NULL with the error pushed. */
static xbuf *encode_n(lua_State *L, int idx0, int n, const char *what0, bool raise) {
  const int idx = lua_absindex(L, idx0);
  luaL_checkstack(L, n + 2, "goro: too many values");
  enc e;
  e.b = xbuf_new(L);
  e.n = n;
  e.what0 = what0;
  e.seen.keys = e.seen.ikeys;
  e.seen.vals = e.seen.ivals;
  e.seen.cap = SEEN_INLINE;
  e.seen.n = 0;
  memset(e.seen.ikeys, 0, sizeof e.seen.ikeys);
  e.backrefs = false;
  e.nseen = 0;
  e.depth = 0;
  lua_pushcfunction(L, encode_protected);
  lua_pushlightuserdata(L, &e);
  for (int i = 0; i < n; i++) lua_pushvalue(L, idx + i);
  int st = lua_pcall(L, n + 1, 0, 0);
  seen_free(&e.seen);
  if (st == LUA_OK) return e.b;
  xbuf_free(e.b, true);
  if (lua_type(L, -1) == LUA_TSTRING) { /* where the user called send, go()... */
    luaL_where(L, 1);
    lua_insert(L, -2);
    lua_concat(L, 2);
  }
  if (raise) lua_error(L);
  return NULL;
}

xbuf *xfer_encode_n(lua_State *L, int idx0, int n, const char *what0) {
  return encode_n(L, idx0, n, what0, true);
}

/* Values that fit an xval are stored inline; the rest go to a message. */
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

void xfer_encode_val(lua_State *L, int idx, xval *v, const char *what) {
  encode_val(L, idx, v, what, true);
}

bool xfer_try_encode_val(lua_State *L, int idx, xval *v, const char *what) {
  return encode_val(L, idx, v, what, false);
}
