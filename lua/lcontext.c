/*
** lcontext.c — the shared half of goro.context (lua/goro/context.lua): the
** cancellation tree of Go's contexts, in C, so that cancel() has cancelled
** every descendant before it returns, from any goroutine or main, with no
** goroutine per context.
**
** A context's node (lctx) is a goro object (object.h) shared by reference:
** its done channel (a core channel, closed once), its error and cause, its
** children, its deadline timer and the functions of after_func waiting for
** it. The Lua handle (a table: kind, parent, key/value, n = the node) keeps
** what is copied (values, the chain for ctx:value).
**
** One mutex (ctxlock) guards every tree: err, cause, kids/next/prev/linked,
** afters. cancel_locked walks the subtree under it: sets err and cause,
** closes done, unlinks the children and collects their after-funcs; the
** goroutines for those are started after the lock is released.
** Lock order: the timer heap's lock (a deadline fires in a timer callback),
** then ctxlock, then channel locks (close). So under ctxlock: no timer call,
** no Lua, no reference dropped (a last unref frees, and lctx_free takes
** ctxlock); those wait until it is released.
** Lifetime: a child holds a reference on its parent, so a parent outlives
** its children and kids never dangles; a child unlinks itself in lctx_free.
** A node whose last reference went may still be walked by a cancel while
** its free waits for ctxlock: its memory is valid until then.
*/
#include <pthread.h>
#include <stdlib.h>

#include "api.h"
#include "sval.h"

#define MT_CTX "goro.context.node"

enum { CTX_LIVE, CTX_CANCELED, CTX_DEADLINE };
static const char *const errstr[] = {NULL, "context canceled", "context deadline exceeded"};

/* after_func's f, waiting for its node to be done. */
typedef struct cafter {
  struct cafter *next;
  uint64_t id; /* what stop() names it by */
  xbuf *msg;   /* the spawn message: f */
} cafter;

typedef struct lctx {
  gobj h;
  struct lctx *parent;       /* one reference held, or NULL (a root's child) */
  struct lctx *kids;         /* ctxlock: live children (no references) */
  struct lctx *next, *prev;  /* ctxlock: siblings in parent->kids */
  bool linked;               /* ctxlock: in parent->kids */
  _Atomic int err;           /* CTX_*; written under ctxlock, release */
  sval *cause;               /* ctxlock: shared with the subtree; NULL: err */
  cafter *afters;            /* ctxlock */
  goro_chan *dc;             /* done: closed on cancel (one reference) */
  gobj *dobj;                /* dc's goro object, so done() == done() (one ref) */
  goro_timer *timer;         /* the deadline, or NULL; set before the node is shared */
  sval *dlcause;             /* the deadline's cause (with_deadline_cause), or NULL;
                             ** set before the node is shared */
} lctx;

static pthread_mutex_t ctxlock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic uint64_t nextafter = 1; /* relaxed: only uniqueness matters */

static void open_ctx_mt(lua_State *L);

/* ctxlock held */
static void unlink_locked(lctx *n) {
  if (!n->linked) return;
  if (n->prev) n->prev->next = n->next;
  else n->parent->kids = n->next;
  if (n->next) n->next->prev = n->prev;
  n->next = n->prev = NULL;
  n->linked = false;
}

/* ctxlock held, n unlinked: cancels n and its subtree; their after-funcs
** go to *run. Iterative (a chain of derived contexts may be deep): the
** children lists, linked by next, become the work stack. */
static void cancel_locked(lctx *n, int err, sval *cause, cafter **run) {
  lctx *stack = n;
  while (stack) {
    lctx *x = stack;
    stack = x->next;
    x->next = x->prev = NULL;
    x->linked = false;
    if (atomic_load_explicit(&x->err, memory_order_relaxed) != CTX_LIVE) continue;
    x->cause = cause;
    if (cause) sval_ref(cause);
    /* release: pairs with the acquire in ctx_err (read without the lock) */
    atomic_store_explicit(&x->err, err, memory_order_release);
    goro_chan_close(x->dc);
    while (x->afters) {
      cafter *a = x->afters;
      x->afters = a->next;
      a->next = *run;
      *run = a;
    }
    if (x->kids) {
      lctx *last = x->kids;
      while (last->next) last = last->next;
      last->next = stack;
      stack = x->kids;
      x->kids = NULL;
    }
  }
}

/* Unlocked: starts the after-funcs' goroutines. */
static void run_afters(cafter *a) {
  while (a) {
    cafter *nx = a->next;
    if (gstate_spawn_msg(a->msg) != GORO_OK) xbuf_free(a->msg, true); /* the runtime stopped */
    free(a);
    a = nx;
  }
}

static void cancel(lctx *n, int err, sval *cause) {
  cafter *run = NULL;
  pthread_mutex_lock(&ctxlock);
  unlink_locked(n);
  cancel_locked(n, err, cause, &run);
  pthread_mutex_unlock(&ctxlock);
  run_afters(run);
}

/* The deadline's timer callback (timer heap locked: see the header). */
static void ctx_fire(void *arg, int64_t now) {
  lctx *n = arg;
  if (now > 0) cancel(n, CTX_DEADLINE, n->dlcause);
}

/* Frees n, and then each ancestor whose last reference n held: in a loop,
** not by recursion, as a chain of derived contexts may be deep. */
static void lctx_free(gobj *o) {
  lctx *n = (lctx *)o;
  while (n) {
    if (n->timer) goro_timer_free(n->timer); /* after it, ctx_fire is not running */
    pthread_mutex_lock(&ctxlock);
    unlink_locked(n);
    cafter *a = n->afters;
    n->afters = NULL;
    pthread_mutex_unlock(&ctxlock);
    while (a) { /* never done: f never runs, as in Go */
      cafter *nx = a->next;
      xbuf_free(a->msg, true);
      free(a);
      a = nx;
    }
    sval_unref(n->cause);
    sval_unref(n->dlcause);
    gobj_unref(n->dobj);
    goro_chan_unref(n->dc);
    lctx *p = n->parent;
    free(n);
    /* acq_rel, as gobj_unref: the last owner frees after the others' writes */
    n = p && atomic_fetch_sub_explicit(&p->h.refs, 1, memory_order_acq_rel) == 1 ? p : NULL;
  }
}

static lctx *check(lua_State *L, int idx) { return (lctx *)gobj_check(L, idx, GOBJ_CTX); }

/* go.__context.new(parent node or nil, [secs to the deadline [, its
** cause]]) -> node */
static int l_new(lua_State *L) {
  lctx *p = lua_isnoneornil(L, 1) ? NULL : check(L, 1);
  bool timed = !lua_isnoneornil(L, 2);
  int64_t ns = timed ? arg_duration(L, 2, "context.with_deadline", true) : 0;
  lua_settop(L, 3);
  lctx *n = calloc(1, sizeof *n);
  goro_chan *dc = n ? goro_chan_new(sizeof(xval), 0, xfer_drop_val) : NULL;
  if (!dc) {
    free(n);
    return luaL_error(L, "goro: out of memory creating a context");
  }
  gobj_init(&n->h, GOBJ_CTX, lctx_free, MT_CTX, open_ctx_mt);
  atomic_init(&n->err, CTX_LIVE);
  n->dc = dc;
  lchan_push(L, dc);
  n->dobj = gobj_test(L, -1);
  gobj_ref(n->dobj);
  lua_pop(L, 1);
  gobj_push(L, &n->h); /* from here a failure frees n through its __gc */
  if (timed && !lua_isnil(L, 3)) n->dlcause = sval_new(L, 3, "the cause");
  if (timed && ns > 0 &&
      !(n->timer = goro_timer_new(goro_now() + ns, 0, ctx_fire, n)))
    return luaL_error(L, "goro: out of memory creating a context's timer");
  if (p) {
    gobj_ref(&p->h);
    n->parent = p;
  }
  cafter *run = NULL; /* n is new: it has none */
  pthread_mutex_lock(&ctxlock);
  int perr = p ? atomic_load_explicit(&p->err, memory_order_relaxed) : CTX_LIVE;
  if (perr != CTX_LIVE) {
    cancel_locked(n, perr, p->cause, &run); /* a done parent: done at once */
  } else if (timed && ns <= 0) {
    cancel_locked(n, CTX_DEADLINE, n->dlcause, &run);
  } else if (p && atomic_load_explicit(&n->err, memory_order_relaxed) == CTX_LIVE) {
    n->next = p->kids; /* (n's timer may have fired already) */
    if (p->kids) p->kids->prev = n;
    p->kids = n;
    n->linked = true;
  }
  pthread_mutex_unlock(&ctxlock);
  return 1;
}

/* node:cancel([cause]): "context canceled" with cause (nil: the error).
** The node's own timer is stopped, unlocked, after. */
static int ctx_cancel(lua_State *L) {
  lctx *n = check(L, 1);
  sval *c = lua_isnoneornil(L, 2) ? NULL : sval_new(L, 2, "the cause");
  cancel(n, CTX_CANCELED, c);
  sval_unref(c); /* the tree holds its own */
  if (n->timer) goro_timer_stop(n->timer);
  return 0;
}

static int push_err(lua_State *L, int e) {
  if (e == CTX_LIVE) lua_pushnil(L);
  else lua_pushstring(L, errstr[e]);
  return 1;
}

static int ctx_err(lua_State *L) {
  /* acquire: pairs with the release in cancel_locked */
  return push_err(L, atomic_load_explicit(&check(L, 1)->err, memory_order_acquire));
}

/* node:cause() -> the cause given to cancel, else err() */
static int ctx_cause(lua_State *L) {
  lctx *n = check(L, 1);
  pthread_mutex_lock(&ctxlock);
  sval *c = n->cause;
  int e = atomic_load_explicit(&n->err, memory_order_relaxed);
  if (c) sval_ref(c);
  pthread_mutex_unlock(&ctxlock);
  if (!c) return push_err(L, e);
  sval_push(L, c);
  return 1;
}

static int ctx_done(lua_State *L) {
  lctx *n = check(L, 1);
  gobj_ref(n->dobj);
  gobj_push(L, n->dobj);
  return 1;
}

/* node:after_func(f) -> id: f runs in its own goroutine once the node is
** done (at once if it is); 0 when it was started at once. */
static int ctx_after_func(lua_State *L) {
  lctx *n = check(L, 1);
  if (lua_type(L, 2) != LUA_TFUNCTION) arg_error(L, 2, "context.after_func", "a function");
  lua_settop(L, 2);
  xbuf *msg = xfer_encode_n(L, 2, 1, "");
  cafter *a = malloc(sizeof *a);
  if (!a) {
    xbuf_free(msg, true);
    return luaL_error(L, "goro: out of memory in context.after_func");
  }
  a->msg = msg;
  a->id = atomic_fetch_add_explicit(&nextafter, 1, memory_order_relaxed);
  pthread_mutex_lock(&ctxlock);
  bool done = atomic_load_explicit(&n->err, memory_order_relaxed) != CTX_LIVE;
  if (!done) {
    a->next = n->afters;
    n->afters = a;
  }
  pthread_mutex_unlock(&ctxlock);
  if (done) {
    a->next = NULL;
    run_afters(a);
  }
  lua_pushinteger(L, done ? 0 : (lua_Integer)a->id);
  return 1;
}

/* node:stop_after(id) -> true if that kept f from being started */
static int ctx_stop_after(lua_State *L) {
  lctx *n = check(L, 1);
  lua_Integer id = arg_int(L, 2, "stop", 0);
  cafter *found = NULL;
  pthread_mutex_lock(&ctxlock);
  for (cafter **pp = &n->afters; *pp; pp = &(*pp)->next)
    if ((lua_Integer)(*pp)->id == id) {
      found = *pp;
      *pp = found->next;
      break;
    }
  pthread_mutex_unlock(&ctxlock);
  if (found) {
    xbuf_free(found->msg, true);
    free(found);
  }
  lua_pushboolean(L, found != NULL);
  return 1;
}

static void open_ctx_mt(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"cancel", ctx_cancel}, {"err", ctx_err}, {"cause", ctx_cause}, {"done", ctx_done},
    {"after_func", ctx_after_func}, {"stop_after", ctx_stop_after}, {NULL, NULL}};
  gobj_newmt_methods(L, MT_CTX, methods);
  lua_pop(L, 1);
}

void lcontext_open(lua_State *L) {
  static const luaL_Reg funcs[] = {{"new", l_new}, {NULL, NULL}};
  open_ctx_mt(L);
  luaL_newlib(L, funcs);
  lua_setfield(L, -2, "__context");
}
