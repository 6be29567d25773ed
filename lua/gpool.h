/*
** gpool.h — the per-M pools of idle goroutine states (gpool.c): a stack per
** thread, bounded per thread and in total, trimmed when idle. Holds the
** states as opaque pointers; gstate.c decides what may be pooled. Below
** gstate.c.
*/
#ifndef GORO_GPOOL_H
#define GORO_GPOOL_H

#include <stdbool.h>

/* How a pooled item is closed (trims, thread exit): set once, before the
** first put (gstate.c, under its pthread_once). */
void gpool_set_free(void (*free_item)(void *));
/* An idle item of this thread's pool, or NULL. */
void *gpool_get(void);
/* Keeps item in this thread's pool; false if the pool (or all of them) is
** full: the caller closes it. Trims the pool's long-idle items now and
** then (they are closed, then freed memory goes back to the system). */
bool gpool_put(void *item);
/* Closes the states pooled by the calling thread. A thread that ends has
** its pool closed by itself; the main thread, which runs goroutines while
** it waits and so pools states too, calls this once the runtime stopped. */
void gpool_drain(void);

#endif
