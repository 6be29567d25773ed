/*
** xfer_decode.c — the decoder: a message (wire format in xfer_int.h) made
** into values of the receiving state, and the guard that frees a message
** if decoding it raises (a module that fails to load in the receiver, a
** limited goroutine out of memory).
**
** Numbered objects (tables, Lua functions) go to a table on the stack only
** when the message says it has back-references; the receiver's globals
** are pushed when first needed (a goroutine's environment is made lazily).
** The decoder takes its own reference on every goro object it pushes; the
** message keeps its references until it is freed.
*/
#include <stdlib.h>
#include <string.h>

#include "xfer_int.h"

/* A reader over a message's bytes. */
typedef struct rd {
  const unsigned char *p, *end;
} rd;

/* One decoding, on the decoder's C stack. */
typedef struct dec {
  lua_State *L;
  rd r;
  int objs;      /* stack index of the objects table (0: not made yet) */
  int nobjs;
  int env;       /* stack index of the receiver's globals */
  bool entry;    /* the next function is a goroutine's entry */
} dec;

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

static lua_Integer rinteger(rd *r) { lua_Integer i; rget(r, &i, sizeof i); return i; }
static lua_Number rnumber(rd *r) { lua_Number n; rget(r, &n, sizeof n); return n; }
static void *rptr(rd *r) { void *p; rget(r, &p, sizeof p); return p; }
static lua_CFunction rcfunc(rd *r) { lua_CFunction f; rget(r, &f, sizeof f); return f; }

static void decode(dec *d);

/* The receiver's globals (a goroutine's environment is made on demand). */
static int dec_env(dec *d) {
  if (lua_isnil(d->L, d->env)) {
    xhost->push_env(d->L);
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

static void dec_function(dec *d) {
  lua_State *L = d->L;
  fnproto *fp = rptr(&d->r);
  bool entry = d->entry;
  d->entry = false;
  fnproto_push(L, fp, entry);
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

static void dec_table(dec *d) {
  lua_State *L = d->L;
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
}

static int push_module_p(lua_State *L) {
  xfer_push_module(L, lua_tostring(L, 1));
  return 1;
}

/* Pushes module `name` (a value received refers to it); a failing
** require says so with its first line, not its 30 lines of search. */
static void dec_module(lua_State *L, const char *name) {
  lua_pushcfunction(L, push_module_p);
  lua_pushstring(L, name);
  int st = lua_pcall(L, 1, 1, 0);
  if (st == LUA_OK) return;
  if (st == LUA_ERRMEM) lua_error(L);
  const char *msg = lua_tostring(L, -1);
  if (!msg) msg = "(error object is not a string)";
  const char *nl = strchr(msg, '\n');
  int len = nl ? (int)(nl - msg) : (int)strlen(msg);
  while (len > 0 && (msg[len - 1] == ':' || msg[len - 1] == ' ')) len--;
  lua_pushlstring(L, msg, (size_t)len);
  luaL_error(L, "goro: the value refers to module '%s', which cannot be loaded here "
                "(%s): make it loadable by require in goroutines (package.path)",
             name, lua_tostring(L, -1));
}

static void decode(dec *d) {
  lua_State *L = d->L;
  luaL_checkstack(L, 6, "goro: value too deep");
  int t = rbyte(&d->r);
  switch (t) {
  case T_NIL: lua_pushnil(L); break;
  case T_FALSE: lua_pushboolean(L, 0); break;
  case T_TRUE: lua_pushboolean(L, 1); break;
  case T_INT: lua_pushinteger(L, rinteger(&d->r)); break;
  case T_FLT: lua_pushnumber(L, rnumber(&d->r)); break;
  case T_STR: rstr(d); break;
  case T_TABLE: dec_table(d); break;
  case T_REF: {
    lua_Integer n = (lua_Integer)rsize(&d->r);
    lua_rawgeti(L, d->objs, n);
    break;
  }
  case T_LFUNC: dec_function(d); break;
  case T_CFUNC: lua_pushcfunction(L, rcfunc(&d->r)); break;
  case T_CNAMED: {
    rstr(d);
    rstr(d);
    dec_module(L, lua_tostring(L, -2));
    lua_pushvalue(L, -2);
    lua_gettable(L, -2);
    lua_replace(L, -4);
    lua_pop(L, 2);
    break;
  }
  case T_MODULE: {
    rstr(d);
    dec_module(L, lua_tostring(L, -1));
    lua_remove(L, -2);
    break;
  }
  case T_UPENV: lua_pushvalue(L, dec_env(d)); break;
  case T_OBJ: {
    gobj *o = rptr(&d->r);
    gobj_ref(o); /* the receiver's own; the message keeps its one */
    gobj_push(L, o);
    break;
  }
  case T_LUD: lua_pushlightuserdata(L, rptr(&d->r)); break;
  default:
    luaL_error(L, "goro: corrupt message (tag %d): this is a bug in goro", t);
  }
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

/* ------------------------------------------------------------ guards */

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

/* ------------------------------------------------------------ channel elements */

static int decode_p(lua_State *L) {
  xbuf *b = lua_touserdata(L, 1);
  lua_settop(L, 0);
  xfer_decode_n(L, b, false);
  return 1;
}

/* Raises the error of a received value that could not be rebuilt (st, the
** error object on top): it was taken from the channel, and is gone. */
static _Noreturn void lost_value(lua_State *L, int st) {
  const char *why = st == LUA_ERRMEM ? "not enough memory" : lua_tostring(L, -1);
  if (!why) why = "(error object is not a string)";
  if (strncmp(why, "goro: ", 6) == 0) why += 6;
  const char *fix = st == LUA_ERRMEM
    ? ": raise this goroutine's memory limit (go.spawn{limit = bytes}) or send smaller values"
    : "";
  if (st == LUA_ERRMEM) lua_gc(L, LUA_GCCOLLECT); /* room for the message */
  luaL_error(L, "goro: a value received was taken from the channel but could not be "
                "rebuilt here, and is lost: %s%s", why, fix);
  abort(); /* not reached */
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
    /* decoded under a pcall: a failure (a missing module, this goroutine's
    ** memory limit) frees b and says plainly that the value is lost */
    lua_pushcfunction(L, decode_p);
    lua_pushlightuserdata(L, b);
    int st = lua_pcall(L, 1, 1, 0);
    xbuf_free(b, true);
    if (st != LUA_OK) lost_value(L, st);
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
