/*
** host.c — hosts (gstate.h, ghost): the states that required goro outside
** any goroutine, as their goroutines see them. A ghost lives while its
** host state or any goroutine spawned from it (directly or not) does; its
** `closed` flag, set once by goro.c when the host closes, tells those
** goroutines to end (gstate.c).
*/
#include <stdlib.h>

#include "gstate.h"

ghost *ghost_new(void) {
  ghost *h = calloc(1, sizeof *h);
  if (h) atomic_init(&h->refs, 1);
  return h;
}

void ghost_ref(ghost *h) {
  /* relaxed: the caller holds a reference already */
  if (h) atomic_fetch_add_explicit(&h->refs, 1, memory_order_relaxed);
}

void ghost_unref(ghost *h) {
  /* acq_rel: the last holder frees, after every other holder's last use */
  if (h && atomic_fetch_sub_explicit(&h->refs, 1, memory_order_acq_rel) == 1) free(h);
}

