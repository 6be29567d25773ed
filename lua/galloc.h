/*
** galloc.h — the allocator of goroutine states (galloc.c): a size-class
** arena with per-thread caches, malloc for big blocks and big states (and
** for everything under sanitizers and valgrind). Below gstate.c.
*/
#ifndef GORO_GALLOC_H
#define GORO_GALLOC_H

#include <stdbool.h>
#include <stddef.h>

/* Chooses the backend: once (pthread_once), before the first state. */
void galloc_init(void);
/* "arena" or "malloc". */
const char *galloc_name(void);
/* As realloc, p of osize bytes (lua_Alloc's contract: the caller knows the
** size of every block); big: the block's state is big, it comes from
** malloc. */
void *galloc_realloc(void *p, size_t osize, size_t n, bool big);
void galloc_free(void *p, size_t osize);
/* Gives memory freed on this thread back to the system; without force,
** at most every 0.2 s per thread. */
void galloc_release(bool force);

#endif
