/*
** fuzz_xfer.c — libFuzzer harness for transfer (lua/xfer_*.c): Lua values
** built from the fuzz input in one lua_State are copied into another with
** the binding's own functions (xfer_encode_n / xfer_decode_n, and
** xfer_encode_val / xfer_decode_val for single values) and compared.
**
** The input is a little program for a value builder working on the
** sender's stack: nil, booleans, integers, floats (any bits: NaN payloads,
** -0.0, inf), short and long strings, tables, t[k] = v with any key,
** appends, metatables, references to earlier values (shared sub-tables,
** cycles), closures from templates (upvalues taken from the stack, pairs of
** closures sharing an upvalue, self-recursive ones, ones that read globals,
** stripped bytecode), channels, C functions, module tables, the globals
** table, light userdata, globals of the sender that functions name, deep
** nests, and values that cannot cross (a coroutine, a FILE*, a C closure).
**
** Every object the builder makes is also put in a list that travels in the
** same message, so the receiver's copy of each is known; then, structurally:
**   - primitives equal, math.type kept, floats bit for bit;
**   - tables: same entries (reference keys through the object map), same
**     metatable; each object maps to a distinct copy (sharing and cycles
**     preserved, nothing merged);
**   - Lua functions: same bytecode (lua_dump), upvalues equal, _ENV bound
**     to the receiver's globals, shared upvalue cells still shared;
**   - C functions by pointer, channels by identity of the shared object,
**     modules to the receiver's module, globals to the receiver's globals;
**   - a refused value fails with a "goro:" error, the sender's stack is
**     left as it was; nothing is leaked (ASan/LSan).
** A difference calls abort().
**
** The runtime starts once per process (luaopen_goro in the sending state,
** which is created once); the receiving state is made afresh per input.
**
**   make fuzz            (runs it with spec/fuzz/corpus-xfer/)
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goro_lua.h"

#define MAXSTACK 48
#define MAXOBJS 4096 /* objects per input; the builder stops well before */

#define FAIL(...)                                                                   \
  do {                                                                              \
    fprintf(stderr, "fuzz_xfer: mismatch at %s:%d: ", __FILE__, __LINE__);          \
    fprintf(stderr, __VA_ARGS__);                                                   \
    fputc('\n', stderr);                                                            \
    abort();                                                                        \
  } while (0)

static lua_State *A; /* the sender: created once, the runtime's main state */

/* Function templates: makers called with values from the stack. Every
** object a closure reaches must be one the builder listed, so the makers
** create no tables of their own. */
static const char templates[] =
  "local T = {}\n"
  "T[1] = function(a) return function() return a end end\n"
  "T[2] = function(a, b) return function(x) return a, b, x end end\n"
  "T[3] = function(a) local function f() return f, a end return f end\n"
  "T[4] = function(a) return function() return string.format('%s', tostring(a)), fz_g1 end end\n"
  "T[5] = function(a) return function() return a, fz_g2 end end\n"
  "T[6] = function() return function() return 1 end end\n"
  "T[7] = function(a, b) return function() return fz_g3, b, a end end\n"
  "T[8] = load(string.dump(function(a) return function() return a end end, true))\n"
  "T[9] = load(string.dump(function(a, b) return function() return a, b, math.pi end end, true))\n"
  "local P = function(a) local x = a return function() return x end, function(v) x = v end end\n"
  "local S = load(string.dump(P, true))\n"
  "return T, P, S\n";

/* ------------------------------------------------------------ reading */

typedef struct in {
  const uint8_t *p, *end;
} in;

static int byte(in *r) { return r->p < r->end ? *r->p++ : 0; }

static uint64_t bytes8(in *r) {
  uint64_t x = 0;
  for (int i = 0; i < 8; i++) x = x << 8 | (uint64_t)byte(r);
  return x;
}

/* ------------------------------------------------------------ building */

typedef struct bld {
  lua_State *L;
  int base;      /* stack index below the builder's values */
  int objs;      /* stack index of the object list */
  int nobjs;
  bool bad;      /* an untransferable value is in play: an error is expected */
} bld;

static int top(bld *b) { return lua_gettop(b->L) - b->base; }

static void reg(bld *b, int idx) {
  if (b->nobjs >= MAXOBJS) FAIL("object list full");
  idx = lua_absindex(b->L, idx);
  lua_pushvalue(b->L, idx);
  lua_rawseti(b->L, b->objs, ++b->nobjs);
}

static bool room(bld *b, int n) { return top(b) + n <= MAXSTACK; }

/* The stack value k below the top (0 = top). */
static int pick(bld *b, in *r) {
  int n = top(b);
  if (n == 0) return 0;
  return lua_gettop(b->L) - byte(r) % n;
}

static bool isglobals(lua_State *L, int idx);
static const char *modname(lua_State *L, int idx);

/* A table the builder made (not a module, not the globals: the sender's
** state lives on across inputs). */
static bool mine(lua_State *L, int idx) {
  return idx && lua_type(L, idx) == LUA_TTABLE && !isglobals(L, idx) && !modname(L, idx);
}

static bool keyok(lua_State *L, int idx) {
  if (lua_isnil(L, idx)) return false;
  if (lua_type(L, idx) == LUA_TNUMBER && !lua_isinteger(L, idx)) {
    lua_Number n = lua_tonumber(L, idx);
    if (n != n) return false;
  }
  return true;
}

static int build(lua_State *L) {
  in *r = lua_touserdata(L, 1);
  bld *b = lua_touserdata(L, 2);
  lua_settop(L, 0);
  if (!lua_checkstack(L, MAXSTACK + 32)) FAIL("no stack");
  lua_newtable(L);
  b->objs = 1;
  b->base = 1;
  int steps = 0;
  while (r->p < r->end && steps++ < 400 && b->nobjs < MAXOBJS - 300) {
    int op = byte(r) % 26;
    if (!room(b, 3)) {
      lua_pop(L, 4);
      continue;
    }
    switch (op) {
    case 0: lua_pushnil(L); break;
    case 1: lua_pushboolean(L, byte(r) & 1); break;
    case 2: {
      static const lua_Integer special[] = {0, 1, -1, LUA_MININTEGER, LUA_MAXINTEGER, 1 << 30, 255};
      int k = byte(r);
      if (k < 7) lua_pushinteger(L, special[k]);
      else lua_pushinteger(L, (lua_Integer)bytes8(r));
      break;
    }
    case 3: {
      uint64_t bits = bytes8(r);
      double d;
      memcpy(&d, &bits, sizeof d);
      lua_pushnumber(L, d);
      break;
    }
    case 4: {
      int n = byte(r) % 40;
      char s[40];
      for (int i = 0; i < n; i++) s[i] = (char)byte(r);
      lua_pushlstring(L, s, (size_t)n);
      break;
    }
    case 5: {
      size_t n = (size_t)byte(r) << 6 | (size_t)byte(r);
      char *s = malloc(n + 1);
      if (!s) break;
      for (size_t i = 0; i < n; i++) s[i] = (char)('a' + i % 26);
      lua_pushlstring(L, s, n);
      free(s);
      break;
    }
    case 6: case 7:
      lua_createtable(L, byte(r) % 4, byte(r) % 4);
      reg(b, -1);
      break;
    case 8: { /* t[k] = v: t, k, v picked from the stack */
      int t = pick(b, r), k = pick(b, r), v = pick(b, r);
      if (!mine(L, t) || !keyok(L, k)) break;
      lua_pushvalue(L, k);
      lua_pushvalue(L, v);
      lua_rawset(L, t);
      break;
    }
    case 9: { /* append v to t */
      int t = pick(b, r), v = pick(b, r);
      if (!mine(L, t) || lua_isnil(L, v)) break;
      lua_pushvalue(L, v);
      lua_rawseti(L, t, (lua_Integer)lua_rawlen(L, t) + 1);
      break;
    }
    case 10: { /* setmetatable(t, m) */
      int t = pick(b, r), m = pick(b, r);
      if (!mine(L, t) || lua_type(L, m) != LUA_TTABLE) break;
      lua_pushvalue(L, m);
      lua_setmetatable(L, t);
      break;
    }
    case 11: { /* a reference to an earlier value */
      int v = pick(b, r);
      if (v) lua_pushvalue(L, v);
      break;
    }
    case 12: case 13: { /* a closure from a template, upvalues from the stack */
      static const int nargs[] = {0, 1, 2, 1, 1, 1, 0, 2, 1, 2};
      int which = 1 + byte(r) % 9;
      int n = nargs[which];
      if (top(b) < n) break;
      lua_getfield(L, LUA_REGISTRYINDEX, "fz.T");
      lua_rawgeti(L, -1, which);
      lua_remove(L, -2);
      for (int i = 0; i < n; i++) lua_pushvalue(L, -1 - n);
      lua_call(L, n, 1);
      reg(b, -1);
      break;
    }
    case 14: { /* two closures sharing an upvalue (plain or stripped maker) */
      int v = pick(b, r);
      if (!v) break;
      lua_getfield(L, LUA_REGISTRYINDEX, byte(r) & 1 ? "fz.P" : "fz.S");
      lua_pushvalue(L, v);
      lua_call(L, 1, 2);
      reg(b, -2);
      reg(b, -1);
      break;
    }
    case 15: { /* a channel */
      lua_getfield(L, LUA_REGISTRYINDEX, "fz.goro");
      lua_getfield(L, -1, "chan");
      lua_remove(L, -2);
      lua_pushinteger(L, byte(r) % 3);
      lua_call(L, 1, 1);
      reg(b, -1);
      break;
    }
    case 16: { /* a C function without upvalues */
      static const char *const names[][2] = {{"string", "format"}, {"math", "floor"},
        {"_G", "type"}, {"_G", "pcall"}, {"table", "concat"}, {"_G", "print"}};
      int k = byte(r) % 6;
      lua_getglobal(L, names[k][0]);
      lua_getfield(L, -1, names[k][1]);
      lua_remove(L, -2);
      break;
    }
    case 17: { /* a module table, or the globals */
      static const char *const mods[] = {"string", "math", "table", "utf8", "_G"};
      lua_getglobal(L, mods[byte(r) % 5]);
      break;
    }
    case 18: lua_pushlightuserdata(L, (void *)(uintptr_t)bytes8(r)); break;
    case 19: { /* a value that cannot cross */
      int k = byte(r) % 3;
      if (k == 0) lua_newthread(L);
      else if (k == 1) lua_getglobal(L, "io"), lua_getfield(L, -1, "stderr"), lua_remove(L, -2);
      else {
        lua_getglobal(L, "string");
        lua_getfield(L, -1, "gmatch");
        lua_remove(L, -2);
        lua_pushliteral(L, "a b");
        lua_pushliteral(L, "%a");
        lua_call(L, 2, 1);
      }
      b->bad = true; /* may or may not end up in the message */
      break;
    }
    case 20: { /* a global of the sender, named by templates 4, 5, 7 */
      static const char *const g[] = {"fz_g1", "fz_g2", "fz_g3"};
      int v = pick(b, r);
      if (!v) break;
      lua_pushvalue(L, v);
      lua_setglobal(L, g[byte(r) % 3]);
      break;
    }
    case 21: lua_pop(L, top(b) > 0 ? 1 : 0); break;
    case 22: /* t.self = t */
      lua_newtable(L);
      lua_pushvalue(L, -1);
      lua_setfield(L, -2, "self");
      reg(b, -1);
      break;
    case 23: { /* wrap the top in n tables (n may pass the depth limit) */
      int n = byte(r);
      if (top(b) == 0) break;
      for (int i = 0; i < n; i++) {
        lua_createtable(L, 1, 0);
        reg(b, -1);
        lua_insert(L, -2);
        lua_rawseti(L, -2, 1);
      }
      break;
    }
    case 24: { /* a table key that is a table */
      int t = pick(b, r);
      if (!mine(L, t)) break;
      lua_newtable(L);
      reg(b, -1);
      lua_pushvalue(L, -1);
      lua_pushinteger(L, byte(r));
      lua_rawset(L, t);
      break;
    }
    case 25: { /* a big array */
      int n = byte(r) * 8;
      lua_createtable(L, n, 0);
      for (int i = 1; i <= n; i++) {
        if (i % 3) lua_pushinteger(L, i);
        else lua_pushnumber(L, i + 0.5);
        lua_rawseti(L, -2, i);
      }
      reg(b, -1);
      break;
    }
    }
  }
  return lua_gettop(L); /* the object list and the values */
}

/* ------------------------------------------------------------ transfer */

typedef struct xfer {
  int idx, n;
  xbuf *buf;
  xval val;
  bool single;
} xfer;

/* Called with the values to send as its arguments. */
static int do_encode(lua_State *L) {
  xfer *x = lua_touserdata(L, lua_upvalueindex(1));
  int top = lua_gettop(L);
  if (x->single) xfer_encode_val(L, 1, &x->val, "value");
  else x->buf = xfer_encode_n(L, 1, x->n, "");
  if (lua_gettop(L) != top) FAIL("encode changed the sender's stack");
  return 0;
}

static int do_decode(lua_State *L) {
  xfer *x = lua_touserdata(L, 1);
  lua_pop(L, 1);
  if (!lua_checkstack(L, x->n + 8)) FAIL("no stack");
  if (x->single) xfer_decode_val(L, &x->val);
  else xfer_decode_n(L, x->buf, false);
  return x->single ? 1 : x->n;
}

/* ------------------------------------------------------------ comparing */

typedef struct cmp {
  lua_State *B;
  int amap, bmap; /* in A: object -> index in the list; in B: the same */
  int alist, blist;
} cmp;

static bool isglobals(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lua_pushglobaltable(L);
  bool r = lua_rawequal(L, idx, -1);
  lua_pop(L, 1);
  return r;
}

static const char *modname(lua_State *L, int idx) {
  static const char *const mods[] = {"string", "math", "table", "utf8", "io", "os",
                                     "coroutine", "debug", "package", NULL};
  idx = lua_absindex(L, idx);
  for (int i = 0; mods[i]; i++) {
    lua_getglobal(L, mods[i]);
    bool r = lua_rawequal(L, idx, -1);
    lua_pop(L, 1);
    if (r) return mods[i];
  }
  return NULL;
}

/* The object's position in its list (0: not a listed object). */
static lua_Integer posof(lua_State *L, int map, int idx) {
  lua_pushvalue(L, idx);
  lua_rawget(L, map);
  lua_Integer n = lua_tointeger(L, -1);
  lua_pop(L, 1);
  return n;
}

/* C functions cross by pointer, or by module and field name (then the
** receiver's function of that name): either way is right. */
static bool cfunc_same(lua_State *La, int a, lua_State *Lb, int b) {
  if (lua_tocfunction(La, a) == lua_tocfunction(Lb, b)) return true;
  a = lua_absindex(La, a);
  b = lua_absindex(Lb, b);
  bool found = false;
  int ta = lua_gettop(La), tb = lua_gettop(Lb);
  lua_getfield(La, LUA_REGISTRYINDEX, LUA_LOADED_TABLE); /* ta+1 */
  lua_getfield(Lb, LUA_REGISTRYINDEX, LUA_LOADED_TABLE); /* tb+1 */
  lua_pushnil(La);
  while (!found && lua_next(La, ta + 1)) { /* module name ta+2, table ta+3 */
    if (lua_type(La, ta + 2) == LUA_TSTRING && lua_type(La, ta + 3) == LUA_TTABLE &&
        lua_getfield(Lb, tb + 1, lua_tostring(La, ta + 2)) == LUA_TTABLE) { /* tb+2 */
      lua_pushnil(La);
      while (!found && lua_next(La, ta + 3)) { /* field ta+4, value ta+5 */
        if (lua_type(La, ta + 4) == LUA_TSTRING && lua_rawequal(La, ta + 5, a)) {
          lua_getfield(Lb, tb + 2, lua_tostring(La, ta + 4));
          found = lua_rawequal(Lb, -1, b);
          lua_pop(Lb, 1);
        }
        lua_pop(La, 1);
      }
    }
    lua_settop(Lb, tb + 1);
    lua_settop(La, ta + 2);
  }
  lua_settop(La, ta);
  lua_settop(Lb, tb);
  return found;
}

/* Values a (in A) and b (in B) are equal; reference values must be the
** copies of each other (same list position, or same module, or globals). */
static void valeq(cmp *c, int a, int b, const char *where) {
  lua_State *B = c->B;
  a = lua_absindex(A, a);
  b = lua_absindex(B, b);
  int ta = lua_type(A, a), tb = lua_type(B, b);
  if (ta != tb) FAIL("%s: type %s became %s", where, lua_typename(A, ta), lua_typename(B, tb));
  switch (ta) {
  case LUA_TNIL: return;
  case LUA_TBOOLEAN:
    if (lua_toboolean(A, a) != lua_toboolean(B, b)) FAIL("%s: boolean changed", where);
    return;
  case LUA_TNUMBER:
    if (lua_isinteger(A, a) != lua_isinteger(B, b)) FAIL("%s: math.type changed", where);
    if (lua_isinteger(A, a)) {
      if (lua_tointeger(A, a) != lua_tointeger(B, b)) FAIL("%s: integer changed", where);
    } else {
      lua_Number x = lua_tonumber(A, a), y = lua_tonumber(B, b);
      if (memcmp(&x, &y, sizeof x) != 0) FAIL("%s: float bits changed", where);
    }
    return;
  case LUA_TSTRING: {
    size_t la, lb;
    const char *sa = lua_tolstring(A, a, &la), *sb = lua_tolstring(B, b, &lb);
    if (la != lb || memcmp(sa, sb, la) != 0) FAIL("%s: string changed", where);
    return;
  }
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(A, a) != lua_touserdata(B, b)) FAIL("%s: light userdata changed", where);
    return;
  case LUA_TUSERDATA: {
    gobj *oa = gobj_test(A, a), *ob = gobj_test(B, b);
    if (!oa || oa != ob) FAIL("%s: a goro object is not shared", where);
    return;
  }
  case LUA_TFUNCTION:
    if (lua_iscfunction(A, a)) {
      if (!lua_iscfunction(B, b) || !cfunc_same(A, a, B, b)) FAIL("%s: C function changed", where);
      return;
    }
    break;
  case LUA_TTABLE:
    if (isglobals(A, a)) {
      if (!isglobals(B, b)) FAIL("%s: the globals did not map to the receiver's", where);
      return;
    }
    {
      const char *m = modname(A, a);
      if (m) {
        if (!modname(B, b) || strcmp(modname(B, b), m) != 0)
          FAIL("%s: module %s did not map to the receiver's", where, m);
        return;
      }
    }
    break;
  default:
    FAIL("%s: unexpected type %s", where, lua_typename(A, ta));
  }
  /* a listed object: same position on both sides */
  lua_Integer pa = posof(A, c->amap, a), pb = posof(B, c->bmap, b);
  if (pa == 0) FAIL("%s: unlisted %s", where, lua_typename(A, ta));
  if (pa != pb) FAIL("%s: object %lld became object %lld (sharing broken)", where,
                     (long long)pa, (long long)pb);
}

typedef struct mbuf {
  char *p;
  size_t n, cap;
} mbuf;

static int writer(lua_State *L, const void *p, size_t sz, void *ud) {
  (void)L;
  mbuf *m = ud;
  if (m->n + sz > m->cap) {
    size_t cap = (m->n + sz) * 2;
    char *q = realloc(m->p, cap);
    if (!q) abort();
    m->p = q;
    m->cap = cap;
  }
  memcpy(m->p + m->n, p, sz);
  m->n += sz;
  return 0;
}

/* Pushes the dump (with debug info) of the Lua function at idx. */
static void pushdump(lua_State *L, int idx) {
  mbuf m = {NULL, 0, 0};
  lua_pushvalue(L, idx);
  lua_dump(L, writer, &m, 0);
  lua_pop(L, 1);
  lua_pushlstring(L, m.p ? m.p : "", m.n);
  free(m.p);
}

/* Listed objects i (at a in A, b in B): contents equal. */
static void objeq(cmp *c, int a, int b, int i) {
  lua_State *B = c->B;
  char where[64];
  if (lua_type(A, a) == LUA_TFUNCTION) {
    pushdump(A, a);
    pushdump(B, b);
    snprintf(where, sizeof where, "function %d: bytecode", i);
    valeq(c, -1, -1, where);
    lua_pop(A, 1);
    lua_pop(B, 1);
    for (int u = 1;; u++) {
      const char *na = lua_getupvalue(A, a, u);
      const char *nb = lua_getupvalue(B, b, u);
      if (!na || !nb) {
        if (na || nb) FAIL("function %d: upvalue count changed", i);
        if (na) lua_pop(A, 1);
        if (nb) lua_pop(B, 1);
        break;
      }
      snprintf(where, sizeof where, "function %d upvalue %d", i, u);
      valeq(c, -1, -1, where);
      lua_pop(A, 1);
      lua_pop(B, 1);
    }
    return;
  }
  if (lua_type(A, a) != LUA_TTABLE || isglobals(A, a) || modname(A, a)) return;
  /* same number of entries; each entry of A found in B */
  int na = 0, nb = 0;
  lua_pushnil(B);
  while (lua_next(B, b)) { nb++; lua_pop(B, 1); }
  lua_pushnil(A);
  while (lua_next(A, a)) {
    na++;
    /* the key in B */
    int kt = lua_type(A, -2);
    snprintf(where, sizeof where, "table %d: key", i);
    switch (kt) {
    case LUA_TBOOLEAN: lua_pushboolean(B, lua_toboolean(A, -2)); break;
    case LUA_TNUMBER:
      if (lua_isinteger(A, -2)) lua_pushinteger(B, lua_tointeger(A, -2));
      else lua_pushnumber(B, lua_tonumber(A, -2));
      break;
    case LUA_TSTRING: {
      size_t l;
      const char *s = lua_tolstring(A, -2, &l);
      lua_pushlstring(B, s, l);
      break;
    }
    case LUA_TLIGHTUSERDATA: lua_pushlightuserdata(B, lua_touserdata(A, -2)); break;
    default: {
      /* a reference key: its copy, through the list (or module/globals) */
      if (isglobals(A, -2)) { lua_pushglobaltable(B); break; }
      const char *m = modname(A, -2);
      if (m) { lua_getglobal(B, m); break; }
      if (kt == LUA_TUSERDATA) {
        lua_Integer p = posof(A, c->amap, -2);
        if (!p) FAIL("table %d: unlisted userdata key", i);
        lua_rawgeti(B, c->blist, p);
        break;
      }
      if (kt == LUA_TFUNCTION && lua_iscfunction(A, -2)) {
        /* by pointer, else the receiver's function of the same name */
        lua_pushcfunction(B, lua_tocfunction(A, -2));
        if (lua_rawget(B, b) != LUA_TNIL) {
          lua_pop(B, 1);
          lua_pushcfunction(B, lua_tocfunction(A, -2));
          break;
        }
        lua_pop(B, 1);
        lua_pushnil(B);
        int kb = lua_gettop(B);
        lua_pushnil(B);
        while (lua_next(B, b)) {
          lua_pop(B, 1);
          if (lua_iscfunction(B, -1) && cfunc_same(A, -2, B, -1)) {
            lua_pushvalue(B, -1);
            lua_replace(B, kb);
          }
        }
        break;
      }
      lua_Integer p = posof(A, c->amap, -2);
      if (!p) FAIL("table %d: unlisted key of type %s", i, lua_typename(A, kt));
      lua_rawgeti(B, c->blist, p);
    }
    }
    if (lua_rawget(B, b) == LUA_TNIL) FAIL("table %d: an entry (key type %s) is missing", i, lua_typename(A, kt));
    snprintf(where, sizeof where, "table %d: value", i);
    valeq(c, -1, -1, where);
    lua_pop(B, 1);
    lua_pop(A, 1);
  }
  if (na != nb) FAIL("table %d: %d entries became %d", i, na, nb);
  bool ma = lua_getmetatable(A, a), mb = lua_getmetatable(B, b);
  if (ma != mb) FAIL("table %d: metatable lost or added", i);
  if (ma) {
    snprintf(where, sizeof where, "table %d: metatable", i);
    valeq(c, -1, -1, where);
    lua_pop(A, 1);
    lua_pop(B, 1);
  }
}

/* Shared upvalue cells stay shared, distinct ones stay distinct. */
static void upjoins(cmp *c, int n) {
  lua_State *B = c->B;
  for (int i = 1; i <= n; i++) {
    if (lua_rawgeti(A, c->alist, i) != LUA_TFUNCTION || lua_iscfunction(A, -1)) {
      lua_pop(A, 1);
      continue;
    }
    lua_rawgeti(B, c->blist, i);
    for (int j = i; j <= n; j++) {
      if (lua_rawgeti(A, c->alist, j) != LUA_TFUNCTION || lua_iscfunction(A, -1)) {
        lua_pop(A, 1);
        continue;
      }
      lua_rawgeti(B, c->blist, j);
      for (int u = 1; lua_getupvalue(A, -2, u); u++) {
        lua_pop(A, 1);
        for (int v = 1; lua_getupvalue(A, -1, v); v++) {
          lua_pop(A, 1);
          if (i == j && u == v) continue;
          bool sa = lua_upvalueid(A, -2, u) == lua_upvalueid(A, -1, v);
          /* an _ENV upvalue is rebound in the receiver: skip those */
          lua_getupvalue(A, -2, u);
          bool env = isglobals(A, -1);
          lua_pop(A, 1);
          if (env) continue;
          bool sb = lua_upvalueid(B, -2, u) == lua_upvalueid(B, -1, v);
          if (sa != sb)
            FAIL("functions %d/%d upvalues %d/%d: sharing %s", i, j, u, v, sa ? "lost" : "invented");
        }
      }
      lua_pop(A, 1);
      lua_pop(B, 1);
    }
    lua_pop(A, 1);
    lua_pop(B, 1);
  }
}

/* Builds the object maps; objects must be distinct on both sides. */
static int mkmap(lua_State *L, int list, int n, const char *side) {
  lua_newtable(L);
  int map = lua_gettop(L);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, list, i);
    int t = lua_type(L, -1);
    if (t == LUA_TNIL) FAIL("%s: object %d missing", side, i);
    lua_pushvalue(L, -1);
    if (lua_rawget(L, map) != LUA_TNIL && t != LUA_TUSERDATA) {
      /* the same object listed twice in A (a reference op) is fine; then B
      ** must list one object twice too: checked by position below */
    }
    lua_pop(L, 1);
    lua_pushinteger(L, i);
    lua_rawset(L, map);
  }
  return map;
}

/* ------------------------------------------------------------ entry */

static lua_State *newB(void) {
  lua_State *B = luaL_newstate();
  if (!B) abort();
  luaL_openlibs(B);
  return B;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  A = luaL_newstate();
  luaL_openlibs(A);
  luaL_requiref(A, "goro", luaopen_goro, 0);
  lua_setfield(A, LUA_REGISTRYINDEX, "fz.goro");
  if (luaL_loadstring(A, templates) != LUA_OK || lua_pcall(A, 0, 3, 0) != LUA_OK) {
    fprintf(stderr, "fuzz_xfer: templates: %s\n", lua_tostring(A, -1));
    abort();
  }
  lua_setfield(A, LUA_REGISTRYINDEX, "fz.S");
  lua_setfield(A, LUA_REGISTRYINDEX, "fz.P");
  lua_setfield(A, LUA_REGISTRYINDEX, "fz.T");
  return 0;
}

static void checkglobals(cmp *c) {
  static const char *const g[] = {"fz_g1", "fz_g2", "fz_g3"};
  for (int i = 0; i < 3; i++) {
    if (lua_getglobal(c->B, g[i]) != LUA_TNIL) {
      lua_getglobal(A, g[i]);
      char where[32];
      snprintf(where, sizeof where, "global %s", g[i]);
      valeq(c, -1, -1, where);
      lua_pop(A, 1);
    }
    lua_pop(c->B, 1);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  in r = {data + 1, data + size};
  int mode = data[0];
  bld b = {A, 0, 0, 0, false};
  lua_settop(A, 0);
  for (int i = 1; i <= 3; i++) { /* globals of the last input */
    char g[8];
    snprintf(g, sizeof g, "fz_g%d", i);
    lua_pushnil(A);
    lua_setglobal(A, g);
  }
  lua_pushcfunction(A, build);
  lua_pushlightuserdata(A, &r);
  lua_pushlightuserdata(A, &b);
  if (lua_pcall(A, 2, LUA_MULTRET, 0) != LUA_OK) {
    fprintf(stderr, "fuzz_xfer: builder error: %s\n", lua_tostring(A, -1));
    abort();
  }
  /* stack: the object list, then the values (room for as many again,
  ** and for the comparisons) */
  if (!lua_checkstack(A, lua_gettop(A) + 64)) FAIL("no stack");
  int nvals = lua_gettop(A) - 1;
  if (nvals <= 0) {
    lua_settop(A, 0);
    return 0;
  }
  xfer x = {0};
  int nsend = 0, first = 0;
  if (mode & 0x80) { /* the top value alone: the xval path (small values inline) */
    x.single = true;
    x.idx = lua_gettop(A);
  } else { /* the last nsend values, then the object list */
    nsend = 1 + mode % (nvals < 4 ? nvals : 4);
    lua_pushvalue(A, 1);
    first = lua_gettop(A) - nsend;
    x.idx = first;
    x.n = nsend + 1;
  }
  int before = lua_gettop(A), nargs = x.single ? 1 : x.n;
  lua_pushlightuserdata(A, &x);
  lua_pushcclosure(A, do_encode, 1);
  for (int i = 0; i < nargs; i++) lua_pushvalue(A, x.idx + i);
  int st = lua_pcall(A, nargs, 0, 0);
  if (lua_gettop(A) != before + (st != LUA_OK)) FAIL("the sender's stack changed");
  if (st != LUA_OK) {
    const char *m = lua_tostring(A, -1);
    if (!m || strncmp(m, "goro: ", 6) != 0) FAIL("encode error without goro: prefix: %s", m ? m : "?");
    if (!strstr(m, "cannot transfer") && !strstr(m, "too deep"))
      FAIL("unexpected encode error: %s", m);
    if (!b.bad && !strstr(m, "too deep")) FAIL("a transferable value was refused: %s", m);
    lua_settop(A, 0);
    return 0;
  }
  lua_State *B = newB();
  if (!lua_checkstack(B, 2 * MAXSTACK + 64)) FAIL("no stack");
  lua_pushcfunction(B, do_decode);
  lua_pushlightuserdata(B, &x);
  if (lua_pcall(B, 1, LUA_MULTRET, 0) != LUA_OK) FAIL("decode failed: %s", lua_tostring(B, -1));
  if (x.single) {
    cmp c = {B, 0, 0, 0, 0};
    if (lua_gettop(B) != 1) FAIL("single value: %d values", lua_gettop(B));
    /* references are compared on the list path; here the value itself */
    int t = lua_type(A, x.idx);
    if (t != LUA_TTABLE && t != LUA_TFUNCTION) valeq(&c, x.idx, 1, "single value");
    else if (lua_type(B, 1) != t) FAIL("single value: type changed");
  } else {
    if (lua_gettop(B) != x.n) FAIL("%d values sent, %d received", x.n, lua_gettop(B));
    cmp c = {B, 0, 0, 0, 0};
    c.alist = lua_gettop(A);
    c.blist = lua_gettop(B);
    lua_Integer n = (lua_Integer)lua_rawlen(A, c.alist);
    if ((lua_Integer)lua_rawlen(B, c.blist) != n) FAIL("object list: %lld became %lld", (long long)n, (long long)lua_rawlen(B, c.blist));
    c.amap = mkmap(A, c.alist, (int)n, "sender");
    c.bmap = mkmap(B, c.blist, (int)n, "receiver");
    /* the maps hold the last position of each object: a listed object maps
    ** to the same position on both sides iff sharing is preserved */
    for (int i = 1; i <= n; i++) {
      lua_rawgeti(A, c.alist, i);
      lua_rawgeti(B, c.blist, i);
      char where[32];
      snprintf(where, sizeof where, "object %d", i);
      valeq(&c, -1, -1, where);
      objeq(&c, lua_gettop(A), lua_gettop(B), i);
      lua_pop(A, 1);
      lua_pop(B, 1);
    }
    for (int i = 0; i < nsend; i++) {
      char where[32];
      snprintf(where, sizeof where, "value %d", i + 1);
      valeq(&c, first + i, 1 + i, where);
    }
    upjoins(&c, (int)n);
    checkglobals(&c);
  }
  if (!x.single) xbuf_free(x.buf, true);
  lua_close(B);
  lua_settop(A, 0);
  static unsigned runs;
  if (++runs % 64 == 0) lua_gc(A, LUA_GCCOLLECT, 0);
  return 0;
}
