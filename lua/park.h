/*
** park.h — park or block: the one way a binding waits on channels or
** time (park.c), and the parked-operation state it keeps per goroutine.
** Below the API bindings and gstate.c; knows nothing of either.
*/
#ifndef GORO_PARK_H
#define GORO_PARK_H

#include "goro_lua.h"

/* The operations that may wait, each with its Lua results. */
enum {
  PARK_SEND = 1, /* ch:send: nothing; errors on a closed channel */
  PARK_RECV,     /* ch:recv: v, ok */
  PARK_RANGE,    /* ch:range's step: v, or nothing once closed and drained */
  PARK_SELECT,   /* go.select: i, v, ok (or i for a send, nil for default) */
  PARK_WAIT,     /* wg:wait: nothing; the case's channel reference is dropped */
  PARK_SLEEP     /* go.sleep: nothing (no cases) */
};

/* What a goroutine's operation keeps beyond its C frame while it is parked:
** the elements the core reads or writes, a select's cases. Owned by one
** goroutine state (gstate.park, made and freed with it); touched only by
** the thread running that goroutine, or by goro_stop's thread once every M
** stopped: no lock. */
typedef struct parked {
  int kind;          /* PARK_* until its continuation collects the outcome; 0 none */
  int parking;       /* the yield in flight is a park: gstate.c passes it up
                     ** through user coroutines to the step function */
  xval sendv;        /* a send's element */
  xval recvv;        /* a receive's (and a waitgroup wait's) element */
  goro_case *cases;  /* a select's cases ... */
  xval *selvals;     /* ... and their elements */
  int ncases, ncasescap;
  goro_chan *waitchan; /* a parked waitgroup wait's channel reference */
} parked;

parked *park_new(void);
/* Frees p with the elements it still owns. */
void park_free(parked *p);
/* The goroutine ended: drops what its last operations left. */
void park_end(parked *p);
/* The runtime stopped while g was parked in an operation (or woken from
** it, not yet resumed): the element a receiver took is no longer ours;
** the others stay, for park_free. */
void park_reap(parked *p, goro_g *g);
/* Room for a select of n cases in p->cases and p->selvals (p->ncases = n);
** false when out of memory. */
bool park_cases(parked *p, int n);

/* Runs an operation of the given kind over n cases until one completes or
** the deadline passes, and returns its Lua results. p: the goroutine's
** parked state, NULL in the main state. canpark: the goroutine may yield up
** to the scheduler (gstate_canpark). Then the operation parks: it yields,
** and its continuation collects the outcome (for a parking G, cases and
** vals must be p's: p->sendv, p->recvv, or p->cases/p->selvals). Else it
** blocks the thread: a goroutine's M with a P handoff (goro_nopark), the
** main thread until done, raising goroutine errors that interrupt it and
** "deadlock!" when nothing can ever wake it. */
int park_op(lua_State *L, parked *p, bool canpark, int kind, goro_case *cases, int n,
            int64_t deadline, xval *vals);

/* go.wait in the main state: goro_wait_all's result, after raising the
** goroutine errors that interrupt it, or PARK_SIGNALLED: a SIGINT armed the
** host's hook (park.c), the caller returns to Lua at once with no results. */
#define PARK_SIGNALLED 1
int park_wait_all(lua_State *L);

#endif
