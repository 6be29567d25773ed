/*
** errors.c — the queue of goroutine errors and line-atomic print.
**
** An error a goroutine does not catch is queued here (gstate.c's report)
** and raised in the main state at its next goro call (CHECK_MAIN), or at
** once if main is blocked in one: errq_post interrupts its wait
** (goro_interrupt), the wait answers GORO_EINTR and the waiting binding
** calls errq_interrupted.
**
** The error crosses as a value: a string whole (NULs too), with the
** goroutine's id and traceback around it; any other value (a table with
** its metatable: error objects) encoded with the transfer rules, raised in
** main as itself; the id, its tostring and the traceback are kept beside
** it for printing. An error is printed once, where it ends unhandled: in
** main by lua.c (uncaught there), here for those never raised in main (at
** the runtime's end, errq_drain) and for those a raise left behind: main
** raises the first and is told how many more failed; their text goes to
** stderr, never lost, never raised (one pcall sees the whole failure, as
** errgroup's first error).
*/
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lauxlib.h"
#include "errors.h"
#include "goro.h"
#include "luacompat.h"

typedef struct errnode {
  struct errnode *next;
  bool isval;      /* v holds the error value; else text is the message */
  xval v;          /* isval: the encoded error value */
  size_t len;      /* text: "goroutine N: <message or tostring>" */
  size_t tlen;     /* then trace: "stack traceback:..." (may be empty) */
  char text[];     /* text, NUL, trace, NUL */
} errnode;

/* The queue: filled by any thread, emptied by the main state. */
static pthread_mutex_t errlock = PTHREAD_MUTEX_INITIALIZER;
static errnode *errhead, **errtail = &errhead; /* errlock */
static _Atomic int nerrors;     /* queued; read without the lock as a hint */

static void post(const char *text, size_t len, const char *trace, size_t tlen,
                 xval *v) {
  errnode *e = malloc(sizeof *e + len + tlen + 2);
  if (!e) {
    fprintf(stderr, "goro: %.*s\n(out of memory queueing it for the main state)\n",
            (int)len, text);
    if (v) xfer_drop_val(v);
    return;
  }
  e->next = NULL;
  e->isval = v != NULL;
  if (v) e->v = *v;
  e->len = len;
  e->tlen = tlen;
  memcpy(e->text, text, len);
  e->text[len] = 0;
  if (tlen) memcpy(e->text + len + 1, trace, tlen);
  e->text[len + 1 + tlen] = 0;
  pthread_mutex_lock(&errlock);
  *errtail = e;
  errtail = &e->next;
  pthread_mutex_unlock(&errlock);
  /* release: pairs with the acquire in errq_raise. */
  atomic_fetch_add_explicit(&nerrors, 1, memory_order_release);
  goro_interrupt();
}

void errq_post(const char *msg, size_t len) { post(msg, len, NULL, 0, NULL); }

void errq_post_error(const char *text, size_t len, const char *trace, size_t tlen,
                     xval *v) {
  post(text, len, trace, tlen, v);
}

/* Prints e to stderr (line-atomic: one stdio call) with a note. */
static void print_node(const errnode *e, const char *note) {
  size_t n = e->len + e->tlen + strlen(note) + 16;
  char *buf = malloc(n);
  if (!buf) return;
  int k = snprintf(buf, n, "goro: ");
  memcpy(buf + k, e->text, e->len);
  k += (int)e->len;
  k += snprintf(buf + k, n - (size_t)k, "%s%s", note, e->tlen ? "\n" : "");
  memcpy(buf + k, e->text + e->len + 1, e->tlen);
  k += (int)e->tlen;
  buf[k++] = '\n';
  fwrite(buf, 1, (size_t)k, stderr);
  fflush(stderr);
  free(buf);
}

static void free_node(errnode *e) {
  if (e->isval) {
    /* after goro_stop the transfer's prototypes are gone (xfer_fini): only
    ** the buffer is ours to free then */
    if (goro_running()) xfer_drop_val(&e->v);
    else if (e->v.tag == XV_BUF) xbuf_free(e->v.u.buf, false);
  }
  free(e);
}

void errq_raise(lua_State *L) {
  /* acquire: pairs with the release in errq_post. */
  if (atomic_load_explicit(&nerrors, memory_order_acquire) == 0) return;
  pthread_mutex_lock(&errlock);
  errnode *e = errhead, *rest = NULL;
  if (e) {
    rest = e->next;
    errhead = NULL;
    errtail = &errhead;
    /* relaxed: the lock orders the queue; the count is a hint */
    atomic_store_explicit(&nerrors, 0, memory_order_relaxed);
  }
  goro_interrupt_clear();
  pthread_mutex_unlock(&errlock);
  if (!e) return;
  int more = 0;
  char note[64];
  while (rest) { /* ends here: printed, counted in the raised error */
    errnode *r = rest;
    rest = r->next;
    more++;
    print_node(r, " (failed too; main was given another goroutine's error)");
    free_node(r);
  }
  if (e->isval) {
    xval v = e->v;
    free(e); /* first: decoding may raise (then that error is main's) */
    xfer_decode_val(L, &v); /* releases it */
    lua_error(L);
    return;
  } else {
    luaL_Buffer B;
    luaL_buffinit(L, &B);
    luaL_addstring(&B, "goro: ");
    luaL_addlstring(&B, e->text, e->len);
    if (more) {
      snprintf(note, sizeof note, " (and %d more goroutine%s failed)", more,
               more > 1 ? "s" : "");
      luaL_addstring(&B, note);
    }
    if (e->tlen) {
      luaL_addchar(&B, '\n');
      luaL_addlstring(&B, e->text + e->len + 1, e->tlen);
    }
    luaL_pushresult(&B);
  }
  free_node(e);
  lua_error(L);
}

void errq_interrupted(lua_State *L) {
  errq_raise(L);
  pthread_mutex_lock(&errlock);
  if (!errhead) goro_interrupt_clear();
  pthread_mutex_unlock(&errlock);
}

int errq_drain(void) {
  int unhandled = 0;
  pthread_mutex_lock(&errlock);
  errnode *e = errhead;
  errhead = NULL;
  errtail = &errhead;
  atomic_store_explicit(&nerrors, 0, memory_order_relaxed); /* the lock orders it */
  pthread_mutex_unlock(&errlock);
  while (e) { /* never raised in main: printed now, where they end */
    errnode *next = e->next;
    print_node(e, "");
    free_node(e);
    unhandled++;
    e = next;
  }
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

/* ------------------------------------------------- a goroutine's report */

static const char errkey = 0; /* registry: the error object across the reset */

static int encode_err(lua_State *L) { /* protected: xval*, value */
  if (xfer_try_encode_val(L, 2, lua_touserdata(L, 1), "the error value")) return 0;
  return 1; /* the encoder's message */
}

static int tostring_err(lua_State *L) { /* protected: value */
  luaL_tolstring(L, 1, NULL);
  return 1;
}

bool errq_report(lua_State *L, uint64_t id, int st, bool cancelled) {
  char *trace = NULL;
  size_t tlen = 0;
  if (!cancelled && st != LUA_ERRMEM) { /* while the dead frames are there */
    luaL_traceback(L, L, NULL, 0);
    const char *t = lua_tolstring(L, -1, &tlen);
    if ((trace = malloc(tlen + 1)) != NULL) memcpy(trace, t, tlen + 1);
    else tlen = 0;
    lua_pop(L, 1);
  }
  lua_rawsetp(L, LUA_REGISTRYINDEX, &errkey);
  bool reusable = luacompat_reset(L, NULL); /* so that we may call into L */
  lua_settop(L, 0);
  /* W: where we may call. A thread that keeps its error status after the
  ** reset (Lua 5.4.3) takes no calls: its state's main thread does. */
  lua_State *W = L;
  if (!reusable) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    W = lua_tothread(L, -1);
    lua_settop(L, 0);
  }
  const int base = lua_gettop(W), ev = base + 1; /* ev: the error value */
  lua_rawgetp(W, LUA_REGISTRYINDEX, &errkey);
  lua_pushnil(W);
  lua_rawsetp(W, LUA_REGISTRYINDEX, &errkey);
  if (cancelled) { /* asked for from outside: its end, not a failure */
    lua_settop(W, base);
    return reusable;
  }
  luaL_Buffer B;
  luaL_buffinit(W, &B); /* above the error value */
  lua_pushfstring(W, "goroutine %I: ", (LUAI_UACINT)id);
  luaL_addvalue(&B);
  xval v = {.tag = XV_NIL};
  bool isval = lua_type(W, ev) != LUA_TSTRING;
  if (!isval) {
    lua_pushvalue(W, ev);
    luaL_addvalue(&B);
  } else {
    lua_pushcfunction(W, tostring_err);
    lua_pushvalue(W, ev);
    if (lua_pcall(W, 1, 1, 0) != LUA_OK || !lua_isstring(W, -1)) {
      lua_pop(W, 1);
      lua_pushfstring(W, "(error object is a %s value)", luaL_typename(W, ev));
    }
    luaL_addvalue(&B);
    lua_pushcfunction(W, encode_err);
    lua_pushlightuserdata(W, &v);
    lua_pushvalue(W, ev);
    if (lua_pcall(W, 2, 1, 0) != LUA_OK || !lua_isnil(W, -1)) {
      /* it cannot cross (a coroutine in it): main gets its tostring */
      const char *why = lua_isstring(W, -1) ? lua_tostring(W, -1) : "?";
      lua_pushfstring(W, " (the error value, a %s, could not cross to the main state: %s)",
                      luaL_typename(W, ev), why);
      lua_remove(W, -2);
      luaL_addvalue(&B);
      isval = false;
    } else {
      lua_pop(W, 1);
    }
  }
  luaL_pushresult(&B);
  size_t len;
  const char *text = lua_tolstring(W, -1, &len);
  errq_post_error(text, len, trace, tlen, isval ? &v : NULL);
  free(trace);
  lua_settop(W, base);
  return reusable;
}
