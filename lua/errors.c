/*
** errors.c — the queue of goroutine errors and line-atomic print.
**
** An error a goroutine does not catch is printed at once (with the
** goroutine's id and traceback, by gstate.c) and queued here; the main
** state raises it at its next goro call (CHECK_MAIN), or at once if it is
** blocked in one: errq_post interrupts its wait (goro_interrupt), the wait
** answers GORO_EINTR and the waiting binding calls errq_interrupted.
*/
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lauxlib.h"
#include "errors.h"
#include "goro.h"

typedef struct errnode {
  struct errnode *next;
  size_t len;
  char msg[];
} errnode;

/* The queue: filled by any thread, emptied by the main state. */
static pthread_mutex_t errlock = PTHREAD_MUTEX_INITIALIZER;
static errnode *errhead, **errtail = &errhead; /* errlock */
static _Atomic int nerrors;     /* queued; read without the lock as a hint */
static _Atomic int errors_ever; /* goroutine errors not yet raised in main */

void errq_post(const char *msg, size_t len) {
  errnode *e = malloc(sizeof *e + len + 1);
  fprintf(stderr, "goro: %.*s\n", (int)len, msg);
  fflush(stderr);
  if (!e) return;
  e->next = NULL;
  e->len = len;
  memcpy(e->msg, msg, len);
  e->msg[len] = 0;
  pthread_mutex_lock(&errlock);
  *errtail = e;
  errtail = &e->next;
  pthread_mutex_unlock(&errlock);
  /* release: pairs with the acquire in errq_raise. */
  atomic_fetch_add_explicit(&nerrors, 1, memory_order_release);
  /* relaxed: a count read at exit, after the threads stopped. */
  atomic_fetch_add_explicit(&errors_ever, 1, memory_order_relaxed);
  goro_interrupt();
}

void errq_raise(lua_State *L) {
  /* acquire: pairs with the release in errq_post. */
  if (atomic_load_explicit(&nerrors, memory_order_acquire) == 0) return;
  pthread_mutex_lock(&errlock);
  errnode *e = errhead;
  if (e) {
    errhead = e->next;
    if (!errhead) errtail = &errhead;
    /* relaxed: the lock orders the queue; the counts are hints */
    atomic_fetch_sub_explicit(&nerrors, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&errors_ever, 1, memory_order_relaxed);
  }
  if (!errhead) goro_interrupt_clear();
  pthread_mutex_unlock(&errlock);
  if (!e) return;
  lua_pushfstring(L, "goro: %s", e->msg);
  free(e);
  lua_error(L);
}

void errq_interrupted(lua_State *L) {
  errq_raise(L);
  pthread_mutex_lock(&errlock);
  if (!errhead) goro_interrupt_clear();
  pthread_mutex_unlock(&errlock);
}

int errq_drain(void) {
  int unhandled = atomic_load(&errors_ever);
  pthread_mutex_lock(&errlock);
  while (errhead) {
    errnode *e = errhead;
    errhead = e->next;
    free(e);
  }
  errtail = &errhead;
  atomic_store(&nerrors, 0);
  pthread_mutex_unlock(&errlock);
  return unhandled;
}

int print_line(lua_State *L) {
  int n = lua_gettop(L);
  luaL_Buffer B;
  luaL_buffinit(L, &B);
  for (int i = 1; i <= n; i++) {
    /* the tab first: luaL_addchar may grow the buffer, whose box must be
    ** on top (a 2048-byte first value crashed here) */
    if (i > 1) luaL_addchar(&B, '\t');
    luaL_tolstring(L, i, NULL);
    luaL_addvalue(&B);
  }
  luaL_addchar(&B, '\n');
  luaL_pushresult(&B);
  size_t len;
  const char *line = lua_tolstring(L, -1, &len);
  fwrite(line, 1, len, stdout); /* one stdio call: stdout's lock makes it atomic */
  fflush(stdout);
  return 0;
}
