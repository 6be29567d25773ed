/*
** gpaths.h — the main state's package.path/cpath, inherited by goroutine
** states (gpaths.c).
*/
#ifndef GORO_GPATHS_H
#define GORO_GPATHS_H

#include "gstate.h"

/* The paths goroutine states take (NULL: Lua's defaults); goro.c sets
** them when the runtime starts and clears them when it stops. */
void gpaths_set(const char *path, const char *cpath);
/* Sets path and cpath of the package table on top of L's stack to the main
** state's (those it has). */
void gpaths_push_main(lua_State *L);
/* A pooled state that opened `package` under older paths takes the new
** ones (at its next goroutine's start). */
void gpaths_apply(gstate *s);
/* The main state L spawns: its package.path/cpath, if they changed since
** the last spawn, become the ones goroutine states take. */
void gpaths_refresh(lua_State *L);

#endif
