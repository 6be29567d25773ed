/*
** ffi_decl.c — the C declarations go.ffi understands (see ffi_decl.h): the
** scalar types, how libffi passes each, and the parser of prototypes such
** as "blocking int usleep(unsigned int usec)" and of lone type names.
*/
#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include "ffi_decl.h"
#include "lauxlib.h"

/* ------------------------------------------------------------ C types */

_Static_assert(sizeof(bool) == 1, "bool is passed as uint8");
_Static_assert(sizeof(void *) == sizeof(void (*)(void)), "dlsym's pointer is the code");

const ctkind ctype_kinds[] = {
  [CT_VOID] = {0, &ffi_type_void, 0, 0},
  [CT_BOOL] = {1, &ffi_type_uint8, 0, 1},
  [CT_CHAR] = {1, CHAR_MIN < 0 ? &ffi_type_sint8 : &ffi_type_uint8, -128, 255},
  [CT_I8] = {1, &ffi_type_sint8, INT8_MIN, INT8_MAX},
  [CT_U8] = {1, &ffi_type_uint8, 0, UINT8_MAX},
  [CT_I16] = {2, &ffi_type_sint16, INT16_MIN, INT16_MAX},
  [CT_U16] = {2, &ffi_type_uint16, 0, UINT16_MAX},
  [CT_I32] = {4, &ffi_type_sint32, INT32_MIN, INT32_MAX},
  [CT_U32] = {4, &ffi_type_uint32, 0, UINT32_MAX},
  [CT_I64] = {8, &ffi_type_sint64, LUA_MININTEGER, LUA_MAXINTEGER},
  [CT_U64] = {8, &ffi_type_uint64, LUA_MININTEGER, LUA_MAXINTEGER},
  [CT_FLOAT] = {sizeof(float), &ffi_type_float, 0, 0},
  [CT_DOUBLE] = {sizeof(double), &ffi_type_double, 0, 0},
  [CT_PTR] = {sizeof(void *), &ffi_type_pointer, 0, 0},
};

/* Type names that are one word (the others are built from signed, unsigned,
** char, short, int, long). */
static const struct {
  const char *name;  /* as written in a declaration */
  int kind;          /* CT_*, sized for this platform */
} named[] = {
  {"void", CT_VOID}, {"bool", CT_BOOL}, {"_Bool", CT_BOOL}, {"float", CT_FLOAT},
  {"double", CT_DOUBLE}, {"int8_t", CT_I8}, {"uint8_t", CT_U8}, {"int16_t", CT_I16},
  {"uint16_t", CT_U16}, {"int32_t", CT_I32}, {"uint32_t", CT_U32}, {"int64_t", CT_I64},
  {"uint64_t", CT_U64}, {"size_t", CT_OF(size_t)}, {"ssize_t", CT_OF(ssize_t)},
  {"intptr_t", CT_OF(intptr_t)}, {"uintptr_t", CT_OF(uintptr_t)},
  {"ptrdiff_t", CT_OF(ptrdiff_t)}, {"off_t", CT_OF(off_t)}, {"pid_t", CT_OF(pid_t)},
  {"uid_t", CT_OF(uid_t)}, {"gid_t", CT_OF(gid_t)}, {"time_t", CT_OF(time_t)},
  {"useconds_t", CT_OF(useconds_t)}, {"mode_t", CT_OF(mode_t)},
  {NULL, 0}};

/* The type as C writes it: "const char *". */
const char *ctype_str(const ctype *t, char *buf, size_t n) {
  snprintf(buf, n, "%s%s%.*s", t->spell, t->ptrs ? " " : "", (int)t->ptrs, "********");
  return buf;
}

/* A pointer parameter that accepts a Lua string: the data is const, or it
** is char * (many C APIs omit the const; C must not write there). */
bool ctype_takes_string(const ctype *t) {
  return t->ptrs == 1 && (t->cbase || t->base == CT_CHAR || t->base == CT_I8 ||
                          t->base == CT_U8);
}

/* ------------------------------------------------------------ parser */

/* Tokens: 'i' identifier, 'n' number, 'v' for "...", 0 at the end, or the
** punctuation character itself. */
typedef struct parser {
  const char *p;            /* next character */
  int tk;                   /* current token */
  char tok[FFI_MAXNAME];    /* its text */
  char desc[FFI_MAXNAME + 2]; /* tokdesc's answer */
  char err[160];            /* why parsing failed */
} parser;

static bool fail(parser *ps, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(ps->err, sizeof ps->err, fmt, ap);
  va_end(ap);
  return false;
}

static bool lex(parser *ps) {
  const char *p = ps->p;
  while (isspace((unsigned char)*p)) p++;
  const char *s = p;
  if (!*p) {
    ps->tk = 0;
  } else if (isalpha((unsigned char)*p) || *p == '_') {
    while (isalnum((unsigned char)*p) || *p == '_') p++;
    ps->tk = 'i';
  } else if (isdigit((unsigned char)*p)) {
    while (isalnum((unsigned char)*p)) p++;
    ps->tk = 'n';
  } else if (strncmp(p, "...", 3) == 0) {
    p += 3;
    ps->tk = 'v';
  } else {
    ps->tk = (unsigned char)*p++;
  }
  ps->p = p;
  if ((size_t)(p - s) >= sizeof ps->tok) {
    snprintf(ps->tok, sizeof ps->tok, "%.20s...", s);
    return fail(ps, "name too long: '%s'", ps->tok);
  }
  memcpy(ps->tok, s, (size_t)(p - s));
  ps->tok[p - s] = 0;
  if (!strchr("inv*(),;[]", ps->tk)) return fail(ps, "unexpected character '%s'", ps->tok);
  return true;
}

static bool is(const parser *ps, const char *word) {
  return ps->tk == 'i' && strcmp(ps->tok, word) == 0;
}

/* Qualifiers that change nothing for a call (const is tracked apart). */
static bool is_ignored(const parser *ps) {
  return is(ps, "volatile") || is(ps, "restrict") || is(ps, "__restrict") ||
         is(ps, "__restrict__");
}

/* The current token for messages: 'x', or "the end". */
static const char *tokdesc(parser *ps) {
  if (!ps->tk) return "the end";
  snprintf(ps->desc, sizeof ps->desc, "'%s'", ps->tok);
  return ps->desc;
}

static bool addspell(ctype *t, const char *w) {
  size_t n = strlen(t->spell);
  int r = snprintf(t->spell + n, sizeof t->spell - n, "%s%s", n ? " " : "", w);
  return r >= 0 && (size_t)r < sizeof t->spell - n;
}

/* type := { qualifier | signed | unsigned | short | long | int | char |
**           one-word type } { '*' { qualifier } }
** An identifier after the first type word ends the type: it is a name. */
static bool parse_type(parser *ps, ctype *t) {
  int sgn = 0, shorts = 0, longs = 0, ints = 0, chars = 0, one = -1, words = 0;
  bool cnst = false;
  memset(t, 0, sizeof *t);
  while (ps->tk == 'i') {
    const char *w = ps->tok;
    if (is_ignored(ps)) {
      if (!lex(ps)) return false;
      continue;
    }
    if (is(ps, "const")) cnst = true;
    else if (is(ps, "signed") || is(ps, "unsigned")) {
      int s = w[0] == 's' ? 1 : 2;
      if (sgn && sgn != s) return fail(ps, "both signed and unsigned");
      sgn = s;
    } else if (is(ps, "short")) shorts++;
    else if (is(ps, "long")) longs++;
    else if (is(ps, "int")) ints++;
    else if (is(ps, "char")) chars++;
    else if (is(ps, "struct") || is(ps, "union") || is(ps, "enum"))
      return fail(ps, "%s types are not supported: pass a pointer (void *) or an int", w);
    else {
      int k = -1;
      for (int i = 0; named[i].name; i++)
        if (strcmp(named[i].name, w) == 0) k = named[i].kind;
      if ((words > 0 || one >= 0) && k >= 0) {
        if (k == CT_DOUBLE && longs) return fail(ps, "long double is not supported");
        return fail(ps, "bad type '%s %s'", t->spell, w);
      }
      if (words > 0 || one >= 0) break; /* the declarator's name */
      if (k < 0)
        return fail(ps, "unknown type '%s' (use standard C types: int, unsigned long, "
                        "size_t, const char *, void *...)", w);
      one = k;
    }
    if (!is(ps, "const")) words++;
    if (!addspell(t, w)) return fail(ps, "type too long at '%s'", w);
    if (!lex(ps)) return false;
  }
  if (words == 0) return fail(ps, "expected a type, got %s", tokdesc(ps));
  int kind;
  if (one >= 0) {
    if (words > 1) return fail(ps, "bad type '%s'", t->spell);
    kind = one;
  } else if (chars) {
    if (chars > 1 || shorts || longs || ints) return fail(ps, "bad type '%s'", t->spell);
    kind = sgn == 0 ? CT_CHAR : sgn == 1 ? CT_I8 : CT_U8;
  } else if (shorts) {
    if (shorts > 1 || longs || ints > 1) return fail(ps, "bad type '%s'", t->spell);
    kind = CT_INTOF(sizeof(short), 1) + (sgn == 2);
  } else if (longs) {
    if (longs > 2 || ints > 1) return fail(ps, "bad type '%s'", t->spell);
    kind = longs == 1 ? CT_INTOF(sizeof(long), 1) : CT_INTOF(sizeof(long long), 1);
    kind += sgn == 2;
  } else {
    if (ints > 1) return fail(ps, "bad type '%s'", t->spell);
    kind = CT_INTOF(sizeof(int), 1) + (sgn == 2);
  }
  while (ps->tk == '*') {
    if (++t->ptrs > FFI_MAXPTRS) return fail(ps, "too many '*'");
    if (!lex(ps)) return false;
    while (is(ps, "const") || is_ignored(ps))
      if (!lex(ps)) return false;
  }
  t->kind = t->ptrs ? CT_PTR : (uint8_t)kind;
  t->base = (uint8_t)kind;
  t->cbase = cnst;
  return true;
}

/* decl := [blocking] [extern] type name '(' params ')' [';']
** params := [void] | param {',' param} [',' '...']
** param := type [name] ['[' [number] ']'] */
static bool parse_decl_(parser *ps, decl *d) {
  memset(d, 0, sizeof *d);
  if (!lex(ps)) return false;
  for (;;) {
    if (is(ps, "blocking")) d->blocking = true;
    else if (!is(ps, "extern")) break;
    if (!lex(ps)) return false;
  }
  if (!parse_type(ps, &d->ret)) return false;
  if (ps->tk != 'i') return fail(ps, "expected the function's name, got %s", tokdesc(ps));
  memcpy(d->name, ps->tok, sizeof d->name);
  if (!lex(ps)) return false;
  if (ps->tk != '(') return fail(ps, "expected '(' after the name, got %s", tokdesc(ps));
  if (!lex(ps)) return false;
  while (ps->tk != ')') {
    if (ps->tk == 'v') {
      if (d->nargs == 0) return fail(ps, "'...' needs a parameter before it");
      d->variadic = true;
      if (!lex(ps)) return false;
      if (ps->tk != ')') return fail(ps, "'...' must be last, got %s", tokdesc(ps));
      break;
    }
    if (d->nargs == GORO_FFI_MAXARGS)
      return fail(ps, "too many parameters (at most %d)", GORO_FFI_MAXARGS);
    ctype *t = &d->args[d->nargs];
    if (!parse_type(ps, t)) return false;
    bool hasname = ps->tk == 'i';
    if (hasname && !lex(ps)) return false; /* the parameter's name */
    if (ps->tk == '[') { /* T name[] is T *name */
      if (!lex(ps) || (ps->tk == 'n' && !lex(ps))) return false;
      if (ps->tk != ']') return fail(ps, "expected ']', got %s", tokdesc(ps));
      if (!lex(ps)) return false;
      t->ptrs++;
      t->kind = CT_PTR;
    }
    if (t->kind == CT_VOID) {
      if (d->nargs == 0 && ps->tk == ')' && !hasname) break; /* (void) */
      return fail(ps, "a parameter cannot be void (did you mean void *?)");
    }
    d->nargs++;
    if (ps->tk == ',') {
      if (!lex(ps)) return false;
      if (ps->tk == ')') return fail(ps, "expected a parameter after ','");
    } else if (ps->tk != ')') {
      return fail(ps, "expected ',' or ')', got %s", tokdesc(ps));
    }
  }
  if (!lex(ps)) return false;
  if (ps->tk == ';' && !lex(ps)) return false;
  if (ps->tk != 0) return fail(ps, "unexpected %s after the parameter list", tokdesc(ps));
  return true;
}

/* Parses a lone type (buffer:get/set, sizeof); raises on error. */
void ctype_check(lua_State *L, int idx, ctype *t) {
  const char *s = lua_tostring(L, idx);
  if (!s || lua_type(L, idx) != LUA_TSTRING)
    luaL_error(L, "goro: ffi: a C type name expected (\"int\", \"unsigned long\", "
                  "\"void *\"...), got %s", luaL_typename(L, idx));
  parser ps = {.p = s};
  if (lex(&ps) && parse_type(&ps, t)) {
    if (ps.tk != 0) fail(&ps, "unexpected %s after the type", tokdesc(&ps));
    else if (t->kind == CT_VOID) fail(&ps, "void has no size");
    else return;
  }
  luaL_error(L, "goro: ffi: cannot parse type '%s': %s", s, ps.err);
}

bool ctype_parse_decl(const char *src, decl *d, char *err, size_t errlen) {
  parser ps = {.p = src};
  if (parse_decl_(&ps, d)) return true;
  snprintf(err, errlen, "%s", ps.err);
  return false;
}
