/*
** skey.h — a simple Lua value (nil, boolean, number, string) as bytes that
** mean the same in every state: a tag byte, then the bytes. A float with an
** integer value is that integer, as in a Lua table (1 and 1.0 are one key).
** Keys of a syncmap (lsmap.c) and the values an atomic value compares
** (latomic.c) use it.
*/
#ifndef GORO_SKEY_H
#define GORO_SKEY_H

#include <string.h>

#include "goro_lua.h"

typedef struct skey {
  const char *p;    /* the bytes after the tag: small + 1, or a Lua string's own */
  size_t n;         /* their length */
  uint32_t hash;    /* FNV-1a over tag and bytes */
  char small[1 + sizeof(lua_Integer)]; /* the tag ('n' 's' 'i' 'f' 'T' 'F'), then a number */
} skey;

enum { SKEY_OK, SKEY_NAN, SKEY_BAD };

/* Reads the value at idx into k: SKEY_OK, SKEY_NAN (a NaN equals nothing),
** SKEY_BAD (not a simple value). A string's bytes stay the Lua string's:
** valid while it is on the stack. */
static inline int skey_get(lua_State *L, int idx, skey *k) {
  k->p = k->small + 1;
  k->n = 0;
  switch (lua_type(L, idx)) {
  case LUA_TNONE:
  case LUA_TNIL: k->small[0] = 'n'; break;
  case LUA_TBOOLEAN: k->small[0] = lua_toboolean(L, idx) ? 'T' : 'F'; break;
  case LUA_TSTRING:
    k->small[0] = 's';
    k->p = lua_tolstring(L, idx, &k->n);
    break;
  case LUA_TNUMBER: {
    lua_Integer i = lua_tointeger(L, idx); /* 0 unless it has an integer value */
    lua_Number f = lua_tonumber(L, idx);
    if (lua_isinteger(L, idx) || i != 0 || f == 0) {
      k->small[0] = 'i';
      memcpy(k->small + 1, &i, sizeof i);
    } else {
      if (f != f) return SKEY_NAN;
      k->small[0] = 'f';
      memcpy(k->small + 1, &f, sizeof f);
    }
    k->n = sizeof(lua_Integer);
    break;
  }
  default: return SKEY_BAD;
  }
  uint32_t h = (2166136261u ^ (unsigned char)k->small[0]) * 16777619u;
  for (size_t j = 0; j < k->n; j++) h = (h ^ (unsigned char)k->p[j]) * 16777619u;
  k->hash = h;
  return SKEY_OK;
}

/* Whether the stored form key[0..klen) (tag + bytes, as skey_copy makes it)
** is k. */
static inline bool skey_eq(const char *key, size_t klen, const skey *k) {
  return klen == k->n + 1 && key[0] == k->small[0] && memcmp(key + 1, k->p, k->n) == 0;
}

/* Writes k's stored form (k->n + 1 bytes) to dst. */
static inline void skey_copy(char *dst, const skey *k) {
  dst[0] = k->small[0];
  memcpy(dst + 1, k->p, k->n);
}

/* Pushes the value of a stored form. */
static inline void skey_push(lua_State *L, const char *key, size_t klen) {
  switch (key[0]) {
  case 's': lua_pushlstring(L, key + 1, klen - 1); break;
  case 'i': {
    lua_Integer i;
    memcpy(&i, key + 1, sizeof i);
    lua_pushinteger(L, i);
    break;
  }
  case 'f': {
    lua_Number n;
    memcpy(&n, key + 1, sizeof n);
    lua_pushnumber(L, n);
    break;
  }
  case 'n': lua_pushnil(L); break;
  default: lua_pushboolean(L, key[0] == 'T'); break;
  }
}

#endif
