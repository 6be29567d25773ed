/*
** errors.h — what goroutines tell the main state and the terminal: the
** queue of uncaught goroutine errors (raised in main) and line-atomic print
** (errors.c). Depends on the core only.
*/
#ifndef GORO_ERRORS_H
#define GORO_ERRORS_H

#include <stddef.h>

#include "lua.h"

/* Any thread: records an uncaught goroutine error (message with
** traceback) for the main state, prints it, and interrupts the main
** thread's wait (goro_interrupt). */
void errq_post(const char *msg, size_t len);
/* Main state: raises the first pending goroutine error, if any. */
void errq_raise(lua_State *L);
/* Main state, after a wait answered GORO_EINTR: raises the goroutine error
** that interrupted it; if there is none (an interrupt that raced with an
** error already raised), clears the interrupt, so the caller waits again. */
void errq_interrupted(lua_State *L);
/* Main state, at the runtime's end: how many errors were never raised in
** main; frees the queue. */
int errq_drain(void);

/* In the main state (s == NULL: not a goroutine), raise goroutine errors
** at each goro call. */
#define CHECK_MAIN(L, s) do { if (!(s)) errq_raise(L); } while (0)

/* print, line-atomic: each call writes its line with one stdio call. */
int print_line(lua_State *L);

#endif
