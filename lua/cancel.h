/*
** cancel.h — cancelling a goroutine from outside (cancel.c): the set of
** cancelled goroutine ids and which thread runs which goroutine, so that
** go.cancel reaches a goroutine in a busy loop. Depends on the core only;
** gstate.c raises the error (its preemption hook), lruntime.c's go.cancel
** asks through gstate_cancel.
*/
#ifndef GORO_CANCEL_H
#define GORO_CANCEL_H

#include <stdbool.h>
#include <stdint.h>

/* The thread running a goroutine's step: it runs goroutine id (> 0) now.
** Returns whether id is cancelled (then the step must raise). */
bool cancel_running(uint64_t id);
/* The step of cancel_running's goroutine ended on this thread. */
void cancel_stopped(void);
/* Whether goroutine id is cancelled (cheap while none is). */
bool cancel_pending(uint64_t id);
/* Goroutine id ended: forgets it; returns whether it was cancelled. */
bool cancel_take(uint64_t id);
/* Marks goroutine id cancelled and sends signo (> 0) to the thread that
** runs it now, if one does, whose handler arms the hook that raises. */
void cancel_request(uint64_t id, int signo);
/* No goroutine is alive (go.wait returned): ids still marked are of
** goroutines that ended before they looked; forgotten. */
void cancel_clear(void);

#endif
