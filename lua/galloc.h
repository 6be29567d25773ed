/*
** galloc.h — the allocator of goroutine states (galloc.c): mimalloc's
** per-thread heaps where built with it (malloc for big states), else
** malloc. Below gstate.c.
*/
#ifndef GORO_GALLOC_H
#define GORO_GALLOC_H

#include <stdbool.h>
#include <stddef.h>

/* Chooses the backend: once (pthread_once), before the first state. */
void galloc_init(void);
/* "mimalloc" or "malloc". */
const char *galloc_name(void);
/* As realloc (p of osize bytes); big: the block's state is big, it comes
** from malloc. */
void *galloc_realloc(void *p, size_t osize, size_t n, bool big);
void galloc_free(void *p);
/* Gives memory freed on this thread back to the system; without force,
** at most every 0.2 s per thread. */
void galloc_release(bool force);

#endif
