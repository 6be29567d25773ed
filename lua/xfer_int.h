/*
** xfer_int.h — what the transfer files share (xfer.h lists them): the wire
** format, the prototype record, the byte writer and reader, and the calls
** one file makes into another. Layers, bottom up: xfer_proto.c and
** xfer_names.c know nothing of messages; xfer_buf.c holds messages (and
** their references on prototypes); the encoder and the decoder use all.
**
** Wire format. A message never leaves the process: numbers and pointers
** are in native byte order and width. var is an unsigned LEB128 size (7
** bits a byte, low group first, high bit set on all but the last); u32 a
** native uint32_t; str is var length + bytes.
**
**   message  +------+---------+---------+-----+---------+
**            | refs | n (var) | value 1 | ... | value n |
**            +------+---------+---------+-----+---------+
**   refs (1 byte): 1 if a T_REF or T_UPJOIN follows, so the receiver keeps
**   a table of its numbered objects; 0 if it need not.
**
**   value, by its tag (1 byte):
**   T_NIL T_FALSE T_TRUE   the tag alone
**   T_INT     +-----+---------------+      T_FLT  +-----+-------------+
**             | tag | lua_Integer 8 |             | tag | lua_Number 8 |
**             +-----+---------------+             +-----+-------------+
**   T_STR     | tag | str |
**   T_TABLE   | tag | narr u32 | nhash u32 | key value ... | T_END | meta |
**             meta: T_META value, or T_NOMETA. narr/nhash: sizes for
**             lua_createtable. Numbered (see below).
**   T_REF     | tag | n var |  the object numbered n, seen before
**   T_LFUNC   | tag | fnproto* | nups var | upvalue ... | [globals] |
**             numbered; the message holds a reference on the fnproto.
**             upvalue: T_UPENV (the receiver's globals)
**                    | T_UPJOIN fn var, i var (share upvalue i of the
**                      function numbered fn)
**                    | T_UPVAL value
**             globals: T_GLOBALS count u32, then count x (name str, value):
**             the sender's globals the code names, set in the receiver.
**   T_CFUNC   | tag | lua_CFunction |  a C function without upvalues
**   T_CNAMED  | tag | module str | field str |  module[field], re-required
**   T_MODULE  | tag | name str |  a package.loaded table, re-required
**   T_UPENV   | tag |  the sender's globals: the receiver's globals
**   T_OBJ     | tag | gobj* |  a goro object; the message holds a reference
**   T_LUD     | tag | void* |  a light userdata
**
**   Numbering: tables (T_TABLE) and Lua functions (T_LFUNC) get 1, 2, ...
**   in the order their tags are written, on both sides. A module table or
**   the globals is named, never numbered.
*/
#ifndef XFER_INT_H
#define XFER_INT_H

#include <string.h>

#include "goro_lua.h"
#include "object.h"

/* The services of the layer above (xfer_set_host; xfer_names.c holds it):
** never NULL, the main state's defaults until set. */
extern const xfer_host *xhost;

#define XFER_MAXDEPTH 200 /* nesting limit: no C stack overflow */

/* Message tags (the wire format above). */
enum {
  T_NIL, T_FALSE, T_TRUE, T_INT, T_FLT, T_STR, T_TABLE, T_REF, T_LFUNC,
  T_CFUNC, T_CNAMED, T_MODULE, T_OBJ, T_LUD, T_END, T_META, T_NOMETA,
  T_UPENV, T_UPVAL, T_UPJOIN, T_GLOBALS
};

/* A function prototype shared by every state that received it. Immutable
** once made, but for refs (atomic) and the live-list links (fnlock). */
typedef struct fnproto {
  _Atomic int refs;     /* sender caches, receiving states, messages */
  uint64_t id;          /* unique: the receivers' cache key */
  size_t len;
  char *code;           /* lua_dump output */
  int nglobals;         /* candidate global names (string constants) */
  char **globals;
  uint64_t hash;         /* of code[0..len): the registry's key */
  struct fnproto *hnext; /* the registry's bucket chain: fnlock */
} fnproto;

/* ------------------------------------------------------ xfer_proto.c */

/* The fnproto of the Lua function at idx, made when first sent from this
** state (no reference taken for the caller). Raises on failure, leaving
** nothing made. */
fnproto *fnproto_get(lua_State *L, int idx);
/* Pushes a closure of fp's prototype, its upvalues not set yet. entry: a
** goroutine's entry function, whose closure the state keeps and reuses. */
void fnproto_push(lua_State *L, fnproto *fp, bool entry);
static inline void fnproto_ref(fnproto *p) {
  /* relaxed: made from an existing reference. */
  atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
}
void fnproto_unref(fnproto *p);
/* Frees every prototype still alive (runtime shutdown). */
void fnproto_fini(void);

/* ------------------------------------------------------ xfer_names.c */

/* Name of the loaded module whose table is at idx, or NULL. */
const char *xfer_modname(lua_State *L, int idx);
/* The module and field naming the C function at idx, if it is a field of
** a loaded module. The strings stay alive in the state's map. */
bool xfer_cfname(lua_State *L, int idx, const char **mod, const char **field);
/* Pushes module `name` of this state, loading it if needed. */
void xfer_push_module(lua_State *L, const char *name);
/* Whether a receiver can rebuild module `name` by name: a standard library,
** goro's own, or one package.path / cpath finds (not one put in
** package.loaded by hand, nor a package.preload entry: goroutine states
** have their own). */
bool xfer_module_rebuildable(lua_State *L, const char *name);

/* ------------------------------------------------------ xfer_buf.c */

/* A fresh, empty message. Raises when out of memory. */
xbuf *xbuf_new(lua_State *L);
void xbuf_grow(lua_State *L, xbuf *b, size_t n);
void xbuf_growrefs(lua_State *L, xbuf *b);

static inline void bput(lua_State *L, xbuf *b, const void *p, size_t n) {
  if (b->len + n > b->cap) xbuf_grow(L, b, n);
  memcpy(b->data + b->len, p, n);
  b->len += n;
}

static inline void bbyte(lua_State *L, xbuf *b, int c) {
  unsigned char x = (unsigned char)c;
  bput(L, b, &x, 1);
}

static inline void bsize(lua_State *L, xbuf *b, size_t n) {
  unsigned char tmp[10];
  int k = 0;
  do {
    tmp[k++] = (unsigned char)((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
    n >>= 7;
  } while (n);
  bput(L, b, tmp, (size_t)k);
}

static inline void bstr(lua_State *L, xbuf *b, const char *s, size_t n) {
  bsize(L, b, n);
  bput(L, b, s, n);
}

/* Records that b holds a reference on p (a gobj*, or a fnproto* with the
** low bit set). Raises before recording when out of memory; once it has
** returned nothing may fail before the caller takes the reference. */
static inline void bref(lua_State *L, xbuf *b, void *p) {
  if (b->nrefs == b->caprefs) xbuf_growrefs(L, b);
  b->refs[b->nrefs++] = p;
}

#endif
