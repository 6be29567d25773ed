/*
** gpaths.c — package.path and package.cpath of goroutine states: a
** goroutine's `require` searches where the main state's does.
**
** The main state's strings are copied here at each spawn from main when
** they changed (gpaths_refresh: compared by pointer with the strings last
** seen, held in main's registry, so an unchanged path costs two rawequal);
** a change bumps pathgen. A goroutine state opens `package` lazily with
** the current strings (gpaths_push_main), and a pooled state that opened it
** under an older generation takes the new strings when its next goroutine
** starts (gpaths_apply).
*/
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "gpaths.h"

/* package.path / cpath of the main state, inherited by goroutine states:
** written by the main state, read by any goroutine's M. */
static pthread_mutex_t pathlock = PTHREAD_MUTEX_INITIALIZER;
static char *main_path, *main_cpath; /* pathlock */
static _Atomic unsigned pathgen; /* bumped when main's paths change */

static void set_paths_locked(const char *path, const char *cpath) {
  free(main_path);
  free(main_cpath);
  main_path = path ? strdup(path) : NULL;
  main_cpath = cpath ? strdup(cpath) : NULL;
}

void gpaths_set(const char *path, const char *cpath) {
  pthread_mutex_lock(&pathlock);
  set_paths_locked(path, cpath);
  pthread_mutex_unlock(&pathlock);
}

/* Sets path and cpath of the package table on top of L's stack to the main
** state's (those it has). */
void gpaths_push_main(lua_State *L) {
  pthread_mutex_lock(&pathlock);
  if (main_path) lua_pushstring(L, main_path);
  else lua_pushnil(L);
  if (main_cpath) lua_pushstring(L, main_cpath);
  else lua_pushnil(L);
  pthread_mutex_unlock(&pathlock);
  if (!lua_isnil(L, -1)) lua_setfield(L, -3, "cpath");
  else lua_pop(L, 1);
  if (!lua_isnil(L, -1)) lua_setfield(L, -2, "path");
  else lua_pop(L, 1);
}

/* A pooled state that opened `package` under older paths takes the new. */
void gpaths_apply(gstate *s) {
  unsigned gen = atomic_load_explicit(&pathgen, memory_order_acquire);
  if (s->pathgen == gen) return;
  s->pathgen = gen;
  lua_State *L = s->L;
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getfield(L, -1, LUA_LOADLIBNAME) == LUA_TTABLE) {
    gpaths_push_main(L);
  }
  lua_pop(L, 2);
}

/* The main state's package.path/cpath, as goroutine states inherit them:
** re-read at each spawn from main and compared with the strings last seen
** (held in main's registry, so the comparison is by pointer when nothing
** changed). A change bumps pathgen; a pooled state applies it when its
** next goroutine starts. */
void gpaths_refresh(lua_State *L) {
  if (lua_getglobal(L, "package") != LUA_TTABLE) {
    lua_pop(L, 1);
    return;
  }
  lua_getfield(L, -1, "path");
  lua_getfield(L, -2, "cpath");
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, RK_PATHS) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_createtable(L, 2, 0);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, RK_PATHS);
  }
  lua_rawgeti(L, -1, 1); /* package path cpath seen seen[1] seen[2] */
  lua_rawgeti(L, -2, 2);
  bool same = lua_rawequal(L, -5, -2) && lua_rawequal(L, -4, -1);
  lua_pop(L, 2);
  if (!same) {
    pthread_mutex_lock(&pathlock);
    set_paths_locked(lua_tostring(L, -3), lua_tostring(L, -2));
    pthread_mutex_unlock(&pathlock);
    atomic_fetch_add_explicit(&pathgen, 1, memory_order_release);
    lua_pushvalue(L, -3);
    lua_rawseti(L, -2, 1);
    lua_pushvalue(L, -2);
    lua_rawseti(L, -2, 2);
  }
  lua_pop(L, 4);
}
