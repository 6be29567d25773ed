/*
** errors.h — what goroutines tell the main state and the terminal: the
** queue of uncaught goroutine errors (raised in main) and line-atomic print
** (errors.c). Depends on the core and the transfer (xfer.h).
*/
#ifndef GORO_ERRORS_H
#define GORO_ERRORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lua.h"
#include "xfer.h"

/* Any thread: records an error for the main state (a runtime's, not a
** goroutine's: msg without the "goro: " prefix) and interrupts the main
** thread's wait (goro_interrupt). */
void errq_post(const char *msg, size_t len);
/* A goroutine's uncaught error: text "goroutine N: <message>" (for a value,
** its tostring: what is printed), trace its traceback (tlen 0: none); v
** NULL: main raises "goro: " text trace as a string; else main raises the
** value v (the queue owns it from now on). */
void errq_post_error(const char *text, size_t len, const char *trace, size_t tlen,
                     xval *v);
/* A goroutine's state L after its coroutine ended in error st (its
** lua_resume's status, the error on top): queues the error for main
** (unless cancelled: asked for from outside, not a failure), with the
** goroutine's id and traceback, and resets L. Returns whether L can run
** again (else it must be closed). */
bool errq_report(lua_State *L, uint64_t id, int st, bool cancelled);
/* Main state: raises the first pending goroutine error, if any; the
** others pending are printed and counted in it ("(and 2 more goroutines
** failed)" for a string). */
void errq_raise(lua_State *L);
/* Main state, after a wait answered GORO_EINTR: raises the goroutine error
** that interrupted it; if there is none (an interrupt that raced with an
** error already raised), clears the interrupt, so the caller waits again. */
void errq_interrupted(lua_State *L);
/* Main state, at the runtime's end: prints the errors never raised in main,
** frees the queue, returns how many there were. */
int errq_drain(void);

/* In the main state (s == NULL: not a goroutine), raise goroutine errors
** at each goro call. */
#define CHECK_MAIN(L, s) do { if (!(s)) errq_raise(L); } while (0)

/* print, line-atomic: each call writes its line with one stdio call. */
int print_line(lua_State *L);

#endif
