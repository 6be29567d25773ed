/*
** ffi_decl.h — go.ffi's view of C declarations, shared by the parser
** (ffi_decl.c) and the calls (ffi.c). A ctype/decl is plain data, parsed
** once when a function is declared and read-only after.
*/
#ifndef GORO_FFI_DECL_H
#define GORO_FFI_DECL_H

#include <ffi.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lua.h"

#if !defined(GORO_FFI_MAXARGS)
#define GORO_FFI_MAXARGS 32 /* parameters of a declaration, arguments of a call */
#endif
#define FFI_MAXPTRS 8        /* levels of '*' in a type */
#define FFI_MAXNAME 64       /* identifiers, type words */

/* Kinds of values. Signed/unsigned pairs are adjacent: CT_Ix + 1 == CT_Ux. */
enum {
  CT_VOID, CT_BOOL, CT_CHAR, CT_I8, CT_U8, CT_I16, CT_U16, CT_I32, CT_U32,
  CT_I64, CT_U64, CT_FLOAT, CT_DOUBLE, CT_PTR
};

/* The kind of an integer type of `size` bytes. */
#define CT_INTOF(size, issigned) \
  (((size) == 1 ? CT_I8 : (size) == 2 ? CT_I16 : (size) == 4 ? CT_I32 : CT_I64) + !(issigned))
#define CT_OF(T) CT_INTOF(sizeof(T), (T)-1 < (T)1)

/* What a kind is in memory, to libffi, and to Lua. */
typedef struct ctkind {
  size_t size;          /* bytes in memory (buffer:get/set, sizeof) */
  ffi_type *ffi;        /* how libffi passes it */
  lua_Integer min, max; /* accepted Lua integers (64-bit kinds: all) */
} ctkind;
extern const ctkind ctype_kinds[]; /* indexed by CT_* */

/* A parsed type. */
typedef struct ctype {
  uint8_t kind;      /* CT_*; CT_PTR for every pointer */
  uint8_t base;      /* what the innermost pointer points to (CT_VOID: void *) */
  uint8_t ptrs;      /* levels of '*'; 0 for a scalar */
  bool cbase;        /* the base type is const: `const char *` points to const */
  char spell[40];    /* the base type as written ("const unsigned char"), for messages */
} ctype;

/* A parsed declaration. */
typedef struct decl {
  ctype ret;                        /* result type */
  ctype args[GORO_FFI_MAXARGS];     /* parameter types */
  int nargs;                        /* parameters before any '...' */
  bool variadic;                    /* ends in '...' */
  bool blocking;                    /* the `blocking` keyword */
  char name[FFI_MAXNAME];           /* the function */
} decl;

/* The type as C writes it: "const char *". */
const char *ctype_str(const ctype *t, char *buf, size_t n);

/* A pointer parameter that accepts a Lua string: the data is const, or it
** is char * (many C APIs omit the const; C must not write there). */
bool ctype_takes_string(const ctype *t);

/* Parses a prototype into *d; false with the reason in err. */
bool ctype_parse_decl(const char *src, decl *d, char *err, size_t errlen);

/* Parses the type name at idx (buffer:get/set, sizeof); raises on error. */
void ctype_check(lua_State *L, int idx, ctype *t);

#endif
