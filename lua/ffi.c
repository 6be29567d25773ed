/*
** ffi.c — go.ffi: declare and call native functions through libffi from
** any goroutine; a function declared blocking runs with a P handoff.
**
**   local z = go.ffi.open("libz.so.1")
**   local compress2 = z:func("int compress2(void *dst, unsigned long *dstlen,"
**                            .. " const char *src, unsigned long srclen, int level)")
**   local usleep = go.ffi.C:func("blocking int usleep(unsigned int usec)")
**
** The actors:
**   fflib   a dlopen handle (go.ffi.open; go.ffi.C is the process itself,
**           RTLD_DEFAULT). A goro object (GOBJ_FFI): shared by reference
**           between states like a channel; dlclosed with its last reference.
**   fffunc  a declared function (lib:func): the symbol, its parsed signature
**           and a prepared ffi_cif. A goro object too, holding a reference
**           on its library so the code stays mapped while it can be called.
**           It is written once before gobj_push publishes it and only read
**           after, so any number of goroutines on any threads call it at
**           once without a lock (ffi_call only reads the cif).
**   buffer  go.ffi.buffer(n): mutable bytes owned by one lua_State (a plain
**           userdata, not transferable): what C writes into, and out
**           parameters (buf:get/buf:set read and write C types in it). It
**           keeps a zero byte after its end, so one made from a string is a
**           C string.
**
** A call converts every argument first: a Lua error (wrong arity, wrong
** type, out of range) can only happen there, before anything is held. Then
** the goroutine leaves Lua as Go's cgo calls do: goro_enter_syscall() keeps
** the P but marks it in a syscall (sysmon retakes it if the call lasts over
** ~1 ms, and never sends the preemption signal into C code, whose sleeps
** and polls would see EINTR), or, for a function declared blocking,
** goro_enter_blocking() hands the P to another M at once (entersyscallblock).
** ffi_call runs, goro_exit_blocking() takes a P back; no Lua API is touched
** in between. Argument values live in this C frame; a string argument
** points into the Lua string, which the stack keeps alive for the call only:
** C must not keep it nor write into it.
**
** Declarations are C prototypes parsed by ffi_decl.c: scalar types and
** pointers; no structs or unions by value, callbacks, long double. The extra
** arguments of a variadic function get their C type from the Lua value:
** integer -> long long, float -> double, boolean -> int, string, buffer,
** light userdata, nil -> pointer.
*/
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ffi_decl.h"
#include "goro_lua.h"

/* Metatable names; also compared by address to tell our objects apart. */
static const char MT_LIB[] = "goro.ffi.lib";
static const char MT_FUNC[] = "goro.ffi.func";
static const char MT_BUF[] = "goro.ffi.buffer";

/* ------------------------------------------------------------ objects */

typedef struct fflib {
  gobj h;
  void *handle;    /* dlopen's; NULL (RTLD_DEFAULT) for the process */
  char name[];     /* as opened, for messages ("" for the process) */
} fflib;

typedef struct fffunc {
  gobj h;
  fflib *lib;                          /* a reference: the code stays mapped */
  void (*fn)(void);                    /* the symbol */
  ffi_cif cif;                         /* prepared for the fixed parameters */
  ffi_type *atypes[GORO_FFI_MAXARGS];  /* the cif's argument types */
  ctype ret;                           /* result type */
  ctype args[GORO_FFI_MAXARGS];        /* parameter types (nargs of them) */
  int nargs;                           /* fixed parameters */
  bool variadic;                       /* '...': a cif is prepared per call */
  bool blocking;                       /* calls hand the P off */
  char *decl;                          /* points into name: the declaration */
  char name[];                         /* "name\0declaration\0" */
} fffunc;

/* A buffer's userdata; data is 8-aligned as Lua aligns userdata. */
typedef struct ffbuf {
  size_t len;             /* bytes usable; data[len] is always 0 */
  unsigned char data[];
} ffbuf;

static void open_mts(lua_State *L);

static void ffobj_init(gobj *h, const char *mt, void (*free)(gobj *)) {
  atomic_init(&h->refs, 1);
  h->type = GOBJ_FFI;
  h->free = free;
  h->mtname = mt;
  h->openmt = open_mts;
}

static void fflib_free(gobj *o) {
  fflib *lib = (fflib *)o;
  if (lib->handle) dlclose(lib->handle);
  free(lib);
}

static void fffunc_free(gobj *o) {
  fffunc *f = (fffunc *)o;
  gobj_unref(&f->lib->h);
  free(f);
}

static void *checkobj(lua_State *L, int idx, const char *mt, const char *what) {
  gobj *o = gobj_test(L, idx);
  if (!o || o->type != GOBJ_FFI || o->mtname != mt)
    luaL_error(L, "goro: ffi: %s expected, got %s", what,
               !o ? luaL_typename(L, idx) : o->mtname == MT_LIB ? "ffi library"
               : gobj_typename(o->type));
  return o;
}

static const char *libname(const fflib *lib) {
  return lib->name[0] ? lib->name : "the process";
}

/* Pushes a library object; name NULL: the process. */
static void push_lib(lua_State *L, const char *name) {
  void *h = NULL;
  size_t len = name ? strlen(name) : 0;
  if (name) {
    h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      const char *e = dlerror();
      luaL_error(L, "goro: cannot open library '%s': %s: install it or pass a full path",
                 name, e ? e : "unknown error");
    }
  }
  fflib *lib = malloc(sizeof *lib + len + 1);
  if (!lib) {
    if (h) dlclose(h);
    luaL_error(L, "goro: ffi: out of memory");
  }
  ffobj_init(&lib->h, MT_LIB, fflib_free);
  lib->handle = h;
  memcpy(lib->name, name ? name : "", len + 1);
  gobj_push(L, &lib->h);
}

/* go.ffi.open([name]) */
static int l_open(lua_State *L) {
  if (!lua_isnoneornil(L, 1) && lua_type(L, 1) != LUA_TSTRING)
    return luaL_error(L, "goro: ffi.open: a library name expected (\"libz.so.1\" or a path; "
                         "nil for the process), got %s", luaL_typename(L, 1));
  push_lib(L, lua_tostring(L, 1));
  return 1;
}

/* lib:func(declaration [, {blocking = true}]) */
static int lib_func(lua_State *L) {
  fflib *lib = checkobj(L, 1, MT_LIB, "library (go.ffi.open)");
  if (lua_type(L, 2) != LUA_TSTRING)
    return luaL_error(L, "goro: ffi: lib:func needs a C declaration such as "
                         "\"int abs(int)\", got %s", luaL_typename(L, 2));
  size_t len;
  const char *src = lua_tolstring(L, 2, &len);
  bool blocking = false;
  if (lua_type(L, 3) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, 3)) {
      lua_pop(L, 1);
      if (lua_type(L, -1) != LUA_TSTRING || strcmp(lua_tostring(L, -1), "blocking") != 0)
        return luaL_error(L, "goro: ffi: unknown option %s (options: blocking)",
                          luaL_tolstring(L, -1, NULL));
    }
    lua_getfield(L, 3, "blocking");
    blocking = lua_toboolean(L, -1);
    lua_pop(L, 1);
  } else if (!lua_isnoneornil(L, 3)) {
    return luaL_error(L, "goro: ffi: options must be a table ({blocking = true}), got %s",
                      luaL_typename(L, 3));
  }
  decl d;
  char err[160];
  if (!ctype_parse_decl(src, &d, err, sizeof err))
    return luaL_error(L, "goro: ffi: cannot parse '%s': %s", src, err);
  dlerror();
  void *sym = dlsym(lib->handle ? lib->handle : RTLD_DEFAULT, d.name);
  const char *e = dlerror();
  if (!sym || e)
    return luaL_error(L, "goro: ffi: no function '%s' in %s%s%s", d.name, libname(lib),
                      e ? ": " : "", e ? e : "");
  size_t nlen = strlen(d.name);
  fffunc *f = malloc(sizeof *f + nlen + 1 + len + 1);
  if (!f) return luaL_error(L, "goro: ffi: out of memory");
  memcpy(&f->fn, &sym, sizeof sym);
  f->ret = d.ret;
  f->nargs = d.nargs;
  f->variadic = d.variadic;
  f->blocking = blocking || d.blocking;
  for (int i = 0; i < d.nargs; i++) {
    f->args[i] = d.args[i];
    f->atypes[i] = ctype_kinds[d.args[i].kind].ffi;
  }
  memcpy(f->name, d.name, nlen + 1);
  f->decl = f->name + nlen + 1;
  memcpy(f->decl, src, len + 1);
  ffi_status st = d.variadic
    ? ffi_prep_cif_var(&f->cif, FFI_DEFAULT_ABI, (unsigned)d.nargs, (unsigned)d.nargs,
                       ctype_kinds[d.ret.kind].ffi, f->atypes)
    : ffi_prep_cif(&f->cif, FFI_DEFAULT_ABI, (unsigned)d.nargs, ctype_kinds[d.ret.kind].ffi,
                   f->atypes);
  if (st != FFI_OK) {
    free(f);
    return luaL_error(L, "goro: ffi: libffi cannot prepare '%s' (status %d)", src, (int)st);
  }
  gobj_ref(&lib->h);
  f->lib = lib;
  ffobj_init(&f->h, MT_FUNC, fffunc_free);
  gobj_push(L, &f->h);
  return 1;
}

static int lib_tostring(lua_State *L) {
  fflib *lib = checkobj(L, 1, MT_LIB, "library");
  lua_pushfstring(L, "goro.ffi.lib(%s): %p", libname(lib), (void *)lib);
  return 1;
}

static int func_tostring(lua_State *L) {
  fffunc *f = checkobj(L, 1, MT_FUNC, "ffi function");
  lua_pushfstring(L, "goro.ffi.func(%s): %p", f->decl, (void *)f);
  return 1;
}

/* ------------------------------------------------------------ values */

/* One C value of any supported kind. */
typedef union cval {
  bool b; char c; float f; double d; void *p;
  int8_t i8; uint8_t u8; int16_t i16; uint16_t u16;
  int32_t i32; uint32_t u32; int64_t i64; uint64_t u64;
} cval;

/* Raises "goro: ffi <who>: argument <n> must be <expected> (<type>), got
** <value><extra>", or with expected NULL "... out of range for <type>: <n>". */
static int bad_value(lua_State *L, int idx, const ctype *t, const char *who, int argno,
                     const char *expected, const char *extra) {
  char ts[64], what[32];
  snprintf(what, sizeof what, argno > 0 ? "argument %d" : "the value", argno);
  if (lua_isinteger(L, idx)) lua_pushfstring(L, "%I", lua_tointeger(L, idx));
  else if (lua_type(L, idx) == LUA_TNUMBER) lua_pushfstring(L, "%f", lua_tonumber(L, idx));
  else lua_pushstring(L, luaL_typename(L, idx));
  const char *ty = t ? ctype_str(t, ts, sizeof ts) : "variadic", *got = lua_tostring(L, -1);
  if (!expected) return luaL_error(L, "goro: ffi %s: %s out of range for %s: %s", who, what, ty, got);
  return luaL_error(L, "goro: ffi %s: %s must be %s (%s), got %s%s", who, what, expected, ty,
                    got, extra);
}

/* The address a pointer argument stands for: nil, light userdata, buffer,
** and (only if `str`) a string. Raises otherwise. */
static void *topointer(lua_State *L, int idx, const ctype *t, const char *who, int argno,
                       bool str) {
  switch (lua_type(L, idx)) {
  case LUA_TNIL:
  case LUA_TNONE:
    return NULL;
  case LUA_TLIGHTUSERDATA:
    return lua_touserdata(L, idx);
  case LUA_TUSERDATA: {
    ffbuf *b = luaL_testudata(L, idx, MT_BUF);
    if (b) return b->data;
    break;
  }
  case LUA_TSTRING:
    if (str) return (void *)lua_tostring(L, idx);
    if (argno > 0)
      bad_value(L, idx, t, who, argno, "a buffer or pointer", ": C may write there, "
                "pass go.ffi.buffer(s) (a copy) instead of a read-only Lua string");
    bad_value(L, idx, t, who, argno, "a buffer or pointer",
              ": a Lua string cannot be stored, it may move or be collected");
    break;
  default:
    break;
  }
  if (!t) bad_value(L, idx, t, who, argno, "a number, boolean, string, buffer, pointer or nil", "");
  bad_value(L, idx, t, who, argno, str ? "a string or buffer" : "a buffer or pointer", "");
  return NULL;
}

/* Converts the Lua value at idx to C type t. argno > 0: a call's argument
** (strings allowed where takes_string), 0: a value stored in a buffer. */
static void tocval(lua_State *L, int idx, const ctype *t, cval *v, const char *who,
                   int argno) {
  int k = t->kind;
  switch (k) {
  case CT_PTR:
    v->p = topointer(L, idx, t, who, argno, argno > 0 && ctype_takes_string(t));
    return;
  case CT_BOOL:
    if (!lua_isboolean(L, idx)) bad_value(L, idx, t, who, argno, "a boolean", "");
    v->b = lua_toboolean(L, idx);
    return;
  case CT_FLOAT:
  case CT_DOUBLE:
    if (lua_type(L, idx) != LUA_TNUMBER) bad_value(L, idx, t, who, argno, "a number", "");
    if (k == CT_FLOAT) v->f = (float)lua_tonumber(L, idx);
    else v->d = (double)lua_tonumber(L, idx);
    return;
  default:
    break;
  }
  lua_Integer n = 0;
  int isint = 0;
  if (lua_type(L, idx) == LUA_TNUMBER) {
    n = lua_tointegerx(L, idx, &isint);
  } else if (k == CT_CHAR && lua_type(L, idx) == LUA_TSTRING && lua_rawlen(L, idx) == 1) {
    n = (unsigned char)lua_tostring(L, idx)[0];
    isint = 1;
  }
  if (!isint)
    bad_value(L, idx, t, who, argno, k == CT_CHAR ? "an integer or a one-byte string"
              : "an integer", "");
  if (n < ctype_kinds[k].min || n > ctype_kinds[k].max) bad_value(L, idx, t, who, argno, NULL, "");
  switch (k) {
  case CT_CHAR: v->c = (char)n; break;
  case CT_I8: v->i8 = (int8_t)n; break;
  case CT_U8: v->u8 = (uint8_t)n; break;
  case CT_I16: v->i16 = (int16_t)n; break;
  case CT_U16: v->u16 = (uint16_t)n; break;
  case CT_I32: v->i32 = (int32_t)n; break;
  case CT_U32: v->u32 = (uint32_t)n; break;
  case CT_I64: v->i64 = (int64_t)n; break;
  default: v->u64 = (uint64_t)n; break; /* wraps, as string.pack's "J" */
  }
}

/* Pushes a C value. `str`: a char * becomes a Lua string (results). A
** uint64 above 2^63 - 1 wraps to a negative integer (use math.ult). */
static int pushcval(lua_State *L, const ctype *t, const cval *v, bool str) {
  switch (t->kind) {
  case CT_VOID: return 0;
  case CT_BOOL: lua_pushboolean(L, v->b); break;
  case CT_CHAR: lua_pushinteger(L, v->c); break;
  case CT_I8: lua_pushinteger(L, v->i8); break;
  case CT_U8: lua_pushinteger(L, v->u8); break;
  case CT_I16: lua_pushinteger(L, v->i16); break;
  case CT_U16: lua_pushinteger(L, v->u16); break;
  case CT_I32: lua_pushinteger(L, v->i32); break;
  case CT_U32: lua_pushinteger(L, v->u32); break;
  case CT_I64: lua_pushinteger(L, v->i64); break;
  case CT_U64: lua_pushinteger(L, (lua_Integer)v->u64); break;
  case CT_FLOAT: lua_pushnumber(L, v->f); break;
  case CT_DOUBLE: lua_pushnumber(L, v->d); break;
  default:
    if (!v->p) lua_pushnil(L);
    else if (str && t->ptrs == 1 && t->base == CT_CHAR) lua_pushstring(L, v->p);
    else lua_pushlightuserdata(L, v->p);
    break;
  }
  return 1;
}

/* ------------------------------------------------------------ calls */

/* fn(...): converts, calls (with a handoff if blocking), converts back. */
static int func_call(lua_State *L) {
  fffunc *f = checkobj(L, 1, MT_FUNC, "ffi function");
  int n = lua_gettop(L) - 1;
  if (n != f->nargs && !(f->variadic && n > f->nargs))
    return luaL_error(L, "goro: ffi %s: expected %s%d argument%s, got %d", f->name,
                      f->variadic ? "at least " : "", f->nargs, f->nargs == 1 ? "" : "s", n);
  if (n > GORO_FFI_MAXARGS)
    return luaL_error(L, "goro: ffi %s: too many arguments (at most %d)", f->name,
                      GORO_FFI_MAXARGS);
  cval vals[GORO_FFI_MAXARGS];
  void *avals[GORO_FFI_MAXARGS];
  for (int i = 0; i < f->nargs; i++) {
    tocval(L, i + 2, &f->args[i], &vals[i], f->name, i + 1);
    avals[i] = &vals[i];
  }
  ffi_cif vcif, *cif = &f->cif;
  ffi_type *vtypes[GORO_FFI_MAXARGS];
  if (f->variadic) { /* the extra arguments' types come from their values */
    for (int i = 0; i < n; i++) {
      int idx = i + 2;
      avals[i] = &vals[i];
      if (i < f->nargs) {
        vtypes[i] = f->atypes[i];
        continue;
      }
      switch (lua_type(L, idx)) {
      case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
          vals[i].i64 = (int64_t)lua_tointeger(L, idx);
          vtypes[i] = &ffi_type_sint64;
        } else {
          vals[i].d = (double)lua_tonumber(L, idx);
          vtypes[i] = &ffi_type_double;
        }
        break;
      case LUA_TBOOLEAN:
        vals[i].i32 = lua_toboolean(L, idx);
        vtypes[i] = &ffi_type_sint32;
        break;
      case LUA_TSTRING:
      case LUA_TNIL:
      case LUA_TLIGHTUSERDATA:
      case LUA_TUSERDATA:
        vals[i].p = topointer(L, idx, NULL, f->name, i + 1, true);
        vtypes[i] = &ffi_type_pointer;
        break;
      default:
        bad_value(L, idx, NULL, f->name, i + 1,
                  "a number, boolean, string, buffer, pointer or nil", "");
      }
    }
    if (ffi_prep_cif_var(&vcif, FFI_DEFAULT_ABI, (unsigned)f->nargs, (unsigned)n,
                         ctype_kinds[f->ret.kind].ffi, vtypes) != FFI_OK)
      return luaL_error(L, "goro: ffi %s: libffi cannot prepare this call", f->name);
    cif = &vcif;
  }
  /* ffi_call widens integer results narrower than a register to ffi_arg */
  union {
    ffi_arg u;
    ffi_sarg s;
    cval v;
  } rv;
  memset(&rv, 0, sizeof rv);
  if (f->blocking) goro_enter_blocking(); /* hand the P off now */
  else goro_enter_syscall();              /* keep it; sysmon retakes it if we last */
  ffi_call(cif, f->fn, &rv, avals);
  goro_exit_blocking();
  cval out = rv.v;
  switch (f->ret.kind) {
  case CT_BOOL: out.b = rv.u != 0; break;
  case CT_CHAR: out.c = (char)rv.s; break;
  case CT_I8: out.i8 = (int8_t)rv.s; break;
  case CT_U8: out.u8 = (uint8_t)rv.u; break;
  case CT_I16: out.i16 = (int16_t)rv.s; break;
  case CT_U16: out.u16 = (uint16_t)rv.u; break;
  case CT_I32: out.i32 = (int32_t)rv.s; break;
  case CT_U32: out.u32 = (uint32_t)rv.u; break;
  default: break; /* 64-bit, floating and pointer results are stored whole */
  }
  return pushcval(L, &f->ret, &out, true);
}

/* ------------------------------------------------------------ buffers */

#define FFI_MAXBUF ((lua_Integer)1 << 40)

static ffbuf *checkbuf(lua_State *L, int idx) {
  ffbuf *b = luaL_testudata(L, idx, MT_BUF);
  if (!b) luaL_error(L, "goro: ffi: buffer expected, got %s", luaL_typename(L, idx));
  return b;
}

/* go.ffi.buffer(n [, init]) or go.ffi.buffer(s): n zeroed bytes (the start
** copied from init), or a copy of s. */
static int l_buffer(lua_State *L) {
  size_t slen = 0;
  const char *s = NULL;
  lua_Integer n;
  if (lua_type(L, 1) == LUA_TSTRING) {
    s = lua_tolstring(L, 1, &slen);
    n = (lua_Integer)slen;
  } else {
    int isint;
    n = lua_tointegerx(L, 1, &isint);
    if (lua_type(L, 1) != LUA_TNUMBER || !isint || n < 0 || n > FFI_MAXBUF)
      return luaL_error(L, "goro: ffi.buffer: a size (integer >= 0) or a string expected, "
                           "got %s", luaL_typename(L, 1));
    if (!lua_isnoneornil(L, 2)) {
      if (lua_type(L, 2) != LUA_TSTRING)
        return luaL_error(L, "goro: ffi.buffer: initial contents must be a string, got %s",
                          luaL_typename(L, 2));
      s = lua_tolstring(L, 2, &slen);
      if ((lua_Integer)slen > n)
        return luaL_error(L, "goro: ffi.buffer: %d bytes of initial contents do not fit "
                             "in %d", (int)slen, (int)n);
    }
  }
  ffbuf *b = lua_newuserdatauv(L, sizeof *b + (size_t)n + 1, 0);
  b->len = (size_t)n;
  memset(b->data, 0, (size_t)n + 1);
  if (s) memcpy(b->data, s, slen);
  luaL_setmetatable(L, MT_BUF);
  return 1;
}

static int buf_len(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)checkbuf(L, 1)->len);
  return 1;
}

/* An offset in [0, len - size] (0-based, as in C), argument idx. */
static size_t checkoff(lua_State *L, ffbuf *b, int idx, size_t size, const char *who) {
  int isint = 1;
  lua_Integer off = lua_isnoneornil(L, idx) ? 0 : lua_tointegerx(L, idx, &isint);
  if (!isint || off < 0 || (size_t)off > b->len || size > b->len - (size_t)off)
    luaL_error(L, "goro: ffi buffer:%s: offset %s out of range for %d bytes in a buffer "
                  "of %d (offsets start at 0)", who, luaL_tolstring(L, idx, NULL),
               (int)size, (int)b->len);
  return (size_t)off;
}

/* buf:tostring([len]): the first len bytes (default: all) */
static int buf_tostring(lua_State *L) {
  ffbuf *b = checkbuf(L, 1);
  int isint = 1;
  lua_Integer n = lua_isnoneornil(L, 2) ? (lua_Integer)b->len : lua_tointegerx(L, 2, &isint);
  if (!isint || n < 0 || (size_t)n > b->len)
    return luaL_error(L, "goro: ffi buffer:tostring: length %s out of range (buffer of %d)",
                      luaL_tolstring(L, 2, NULL), (int)b->len);
  lua_pushlstring(L, (const char *)b->data, (size_t)n);
  return 1;
}

/* buf:ptr([offset]): the address of a byte, as a light userdata */
static int buf_ptr(lua_State *L) {
  ffbuf *b = checkbuf(L, 1);
  lua_pushlightuserdata(L, b->data + checkoff(L, b, 2, 0, "ptr"));
  return 1;
}

/* The buffer at 1 and the C type at 2 of buf:get/buf:set: the address of
** the value at the offset argument offarg (checked to fit in the buffer). */
static unsigned char *buf_slot(lua_State *L, ctype *t, int offarg, const char *what) {
  ffbuf *b = checkbuf(L, 1);
  ctype_check(L, 2, t);
  return b->data + checkoff(L, b, offarg, ctype_kinds[t->kind].size, what);
}

/* buf:get(ctype [, offset]): reads a C value (a pointer as light userdata) */
static int buf_get(lua_State *L) {
  ctype t;
  unsigned char *at = buf_slot(L, &t, 3, "get");
  cval v;
  memcpy(&v, at, ctype_kinds[t.kind].size); /* unaligned offsets are fine */
  return pushcval(L, &t, &v, false);
}

/* buf:set(ctype, value [, offset]): writes a C value */
static int buf_set(lua_State *L) {
  ctype t;
  unsigned char *at = buf_slot(L, &t, 4, "set");
  cval v;
  tocval(L, 3, &t, &v, "buffer:set", 0);
  memcpy(at, &v, ctype_kinds[t.kind].size);
  return 0;
}

static int buf_tostr(lua_State *L) {
  ffbuf *b = checkbuf(L, 1);
  lua_pushfstring(L, "goro.ffi.buffer(%d): %p", (int)b->len, (void *)b->data);
  return 1;
}

/* ------------------------------------------------------------ helpers */

/* go.ffi.sizeof(ctype) */
static int l_sizeof(lua_State *L) {
  ctype t;
  ctype_check(L, 1, &t);
  lua_pushinteger(L, (lua_Integer)ctype_kinds[t.kind].size);
  return 1;
}

static void *checkaddr(lua_State *L, int idx, const char *who) {
  switch (lua_type(L, idx)) {
  case LUA_TNIL: return NULL;
  case LUA_TLIGHTUSERDATA: return lua_touserdata(L, idx);
  default: {
    ffbuf *b = luaL_testudata(L, idx, MT_BUF);
    if (!b)
      luaL_error(L, "goro: ffi.%s: a pointer (light userdata), buffer or nil expected, "
                    "got %s", who, luaL_typename(L, idx));
    return b->data;
  }
  }
}

/* go.ffi.string(p [, len]): the C string at p (or len bytes); nil for NULL */
static int l_string(lua_State *L) {
  const char *p = checkaddr(L, 1, "string");
  if (!p) return lua_pushnil(L), 1;
  if (lua_isnoneornil(L, 2)) {
    lua_pushstring(L, p);
    return 1;
  }
  int isint;
  lua_Integer n = lua_tointegerx(L, 2, &isint);
  if (!isint || n < 0)
    return luaL_error(L, "goro: ffi.string: bad length %s", luaL_tolstring(L, 2, NULL));
  ffbuf *b = luaL_testudata(L, 1, MT_BUF);
  if (b && (size_t)n > b->len)
    return luaL_error(L, "goro: ffi.string: length %d past the end of a buffer of %d",
                      (int)n, (int)b->len);
  lua_pushlstring(L, p, (size_t)n);
  return 1;
}

/* go.ffi.addr(p): a pointer's address as an integer (for arithmetic) */
static int l_addr(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)(uintptr_t)checkaddr(L, 1, "addr"));
  return 1;
}

/* ------------------------------------------------------------ module */

static const luaL_Reg lib_methods[] = {{"func", lib_func}, {NULL, NULL}};

static const luaL_Reg buf_methods[] = {
  {"len", buf_len}, {"tostring", buf_tostring}, {"ptr", buf_ptr}, {"get", buf_get},
  {"set", buf_set}, {NULL, NULL}};

/* Registers the goro-object metatable name (methods as __index, then the
** metamethods meta) unless the state has it. */
static void open_objmt(lua_State *L, const char *name, const luaL_Reg *methods,
                       const luaL_Reg *meta) {
  if (luaL_getmetatable(L, name) == LUA_TNIL) {
    gobj_newmt(L, name);
    if (methods) {
      lua_newtable(L);
      luaL_setfuncs(L, methods, 0);
      lua_setfield(L, -2, "__index");
    }
    luaL_setfuncs(L, meta, 0);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* Registers the metatables in a state lacking them (gobj openmt). */
static void open_mts(lua_State *L) {
  static const luaL_Reg lib_meta[] = {{"__tostring", lib_tostring}, {NULL, NULL}};
  static const luaL_Reg func_meta[] = {
    {"__call", func_call}, {"__tostring", func_tostring}, {NULL, NULL}};
  open_objmt(L, MT_LIB, lib_methods, lib_meta);
  open_objmt(L, MT_FUNC, NULL, func_meta);
  if (luaL_newmetatable(L, MT_BUF)) {
    luaL_newlib(L, buf_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, buf_len);
    lua_setfield(L, -2, "__len");
    lua_pushcfunction(L, buf_tostr);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
}

/* No field may be named "ffi": go.ffi is this table (see lazy_pattern). */
static const luaL_Reg ffi_funcs[] = {
  {"open", l_open}, {"buffer", l_buffer}, {"sizeof", l_sizeof}, {"string", l_string},
  {"addr", l_addr}, {NULL, NULL}};

int luaopen_goro_ffi(lua_State *L) {
  open_mts(L);
  luaL_newlib(L, ffi_funcs);
  push_lib(L, NULL);
  lua_setfield(L, -2, "C");
  return 1;
}
