/*
** gstate.c — goroutine states: each goroutine runs as a coroutine in its
** own lua_State, so goroutines run in parallel on every M.
**
** A state is made on a goroutine's first step, on the M that runs it, and
** kept in the G's cache slot when the goroutine ends: the core recycles dead
** Gs per P, so the next goroutine started on that G finds a state ready (a
** per-P state pool for free). Between goroutines a state is scrubbed: the
** goroutine's globals live in a fresh environment table (falling back to
** the state's standard globals), dropped at the end.
**
** Standard libraries load lazily: a new state opens only the base library;
** `string`, `table`, `math`, `io`, `os`, `coroutine`, `utf8`, `debug`,
** `package`/`require` are opened on first use (an __index on the globals,
** and a string metatable that opens the string library on first method).
**
** Parking: a blocking operation that answers GORO_EPARK sets `parking` in
** the goroutine's parked state (park.c) and yields. If it ran inside a user
** coroutine, the coroutine.resume / wrap of goroutine states (replaced
** here) sees it and yields too, with a continuation that resumes the
** inner coroutine again: the park travels up to the step function, which
** returns GORO_STEP_PARKED. s->chain_ok tells an operation whether every
** resume between it and the step can yield (gstate_canpark); where one
** cannot (a C boundary), the operation blocks the M with a handoff.
*/
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cancel.h"
#include "errors.h"
#include "galloc.h"
#include "gpaths.h"
#include "gpool.h"
#include "gstate.h"
#include "park.h"

#define PREEMPT_SIGNAL SIGURG

/* ------------------------------------------------------------ preemption
** sysmon (core/sysmon.c) sends PREEMPT_SIGNAL to the thread of a
** goroutine that ran 10 ms without yielding. The handler runs on that
** thread: if a goroutine's Lua code runs there, it arms a one-shot count
** hook on the innermost running coroutine (lua.c does the same from its
** SIGINT handler; lua_sethook from another thread would race with the
** owner, so only the owner's thread arms it). The hook puts the user's own
** hook back and yields, if the coroutine chain can yield up to the
** scheduler; else the request is dropped and sysmon repeats it in 10 ms.
** A goroutine that still has not yielded 2 ms later is stuck where no
** hook runs (a C function): sysmon gives its P to another thread
** (retake_running in core/sched.c); when the call returns, the hook (armed
** by the signal) yields it to the global queue, re-arming every 1000
** instructions while it cannot yield.
** A hook still armed when the coroutine stops running (it parked, or
** finished) is disarmed right after its lua_resume returns. */

/* Per thread: each M's own; the signal handler reads them on its thread. */
static _Thread_local lua_State *volatile tls_running; /* innermost running */
static _Thread_local lua_State *volatile tls_armed;   /* hook armed on */
static _Thread_local lua_Hook tls_uhook;               /* the user's hook */
static _Thread_local int tls_umask, tls_ucount;

static void preempt_hook(lua_State *L, lua_Debug *ar);

/* Arms the hook to fire after count instructions. */
static void arm(lua_State *L, int count) {
  tls_uhook = lua_gethook(L);
  tls_umask = lua_gethookmask(L);
  tls_ucount = lua_gethookcount(L);
  tls_armed = L;
  lua_sethook(L, preempt_hook, LUA_MASKCOUNT, count);
}

static void disarm(void) {
  lua_State *L = tls_armed;
  if (!L) return;
  tls_armed = NULL;
  lua_sethook(L, tls_uhook, tls_umask, tls_ucount);
}

static void on_preempt_signal(int sig) {
  (void)sig;
  int saved = errno;
  goro_preempt_signal();
  lua_State *L = tls_running;
  if (L && !tls_armed) arm(L, 1);
  errno = saved;
}

static void preempt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  if (tls_armed == L) disarm();
  gstate *s = gstate_of(L);
  if (s && cancel_pending(goro_id(s->g))) {
    /* go.cancel: a hard stop. Armed again first, so that a pcall that
    ** catches the error meets it again at its next instruction */
    s->cancelled = 1;
    arm(L, 1);
    luaL_error(L, "goro: goroutine %I cancelled (go.cancel)", (LUAI_UACINT)goro_id(s->g));
  }
  int take = s ? goro_preempt_take(goro_self()) : 0;
  if (!take) return;
  if (gstate_canpark(L, s)) {
    s->preempted = 1;
    lua_yield(L, 0); /* from a hook it returns: the yield happens after */
    return;
  }
  /* sysmon retook our P (we were stuck in C): this thread runs Lua beyond
  ** GOMAXPROCS until the goroutine yields or parks, so ask again soon */
  if (take == 2 && L == tls_running) arm(L, 1000);
}

/* main thread only (runtime start and stop) */
static struct sigaction oldact; /* the handler before ours */
static bool installed;

/* Installs the handler (main state, at runtime start). */
void gstate_init_preemption(void) {
  if (installed) return;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_preempt_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(PREEMPT_SIGNAL, &sa, &oldact) == 0) {
    installed = true;
    goro_set_preempt_signal(PREEMPT_SIGNAL);
  }
}

/* Puts the previous handler back once the runtime stopped: a signal sent
** just before (ThreadSanitizer delivers them late) must not reach our
** handler after the module is unloaded. */
void gstate_fini_preemption(void) {
  if (!installed) return;
  goro_set_preempt_signal(0);
  sigaction(PREEMPT_SIGNAL, &oldact, NULL);
  installed = false;
}

/* package.preload of goroutine states: set before the runtime starts
** (goro_start publishes it to the Ms), read-only after. */
static const luaL_Reg *preload;

void gstate_set_preload(const luaL_Reg *mods) { preload = mods; }

gstate *gstate_of(lua_State *L) {
  (void)L;
  goro_g *g = goro_self();
  return g ? *(gstate **)goro_cache(g) : NULL;
}

bool gstate_canpark(lua_State *L, gstate *s) {
  return s && lua_isyieldable(L) && (L == s->co || s->chain_ok);
}

/* Frees a spawn message that no goroutine took, with its host reference. */
static void spawnmsg_free(xbuf *msg) {
  ghost_unref(msg->owner);
  msg->owner = NULL;
  xbuf_free(msg, true);
}

/* Whether the host of s closed: its goroutine must end now. */
static bool orphaned(gstate *s) {
  /* acquire: pairs with goro.c's release store when the host closes */
  return s->owner && atomic_load_explicit(&s->owner->closed, memory_order_acquire);
}

/* A goroutine's globals: a fresh table over the state's standard globals,
** made on first use (a goroutine that names no global never pays for it)
** and dropped by scrub(). */
static void push_env(lua_State *L) {
  if (!goro_self()) {
    lua_pushglobaltable(L);
    return;
  }
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, RK_ENV) == LUA_TTABLE) return;
  lua_pop(L, 1);
  lua_createtable(L, 0, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, RK_ENVMT);
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_setfield(L, -2, LUA_GNAME);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, RK_ENV);
}

/* ---------------------------------------------- coroutines that pass parks */

static int auxresume(lua_State *L, lua_State *co, int narg, gstate *s, bool wrap);

static int resume_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  lua_State *co = lua_tothread(L, 1);
  return auxresume(L, co, 0, gstate_of(L), ctx != 0);
}

/* Resumes co; a park or preemption yield inside it is passed up. Returns
** as luaB_coresume (resume) or luaB_auxwrap (wrap). */
static int auxresume(lua_State *L, lua_State *co, int narg, gstate *s, bool wrap) {
  int saved = s ? s->chain_ok : 0;
  if (s) s->chain_ok = lua_isyieldable(L) && (L == s->co || saved);
  int nres;
  lua_State *outer = tls_running;
  tls_running = co;
  int st = lua_resume(co, L, narg, &nres);
  tls_running = outer;
  if (tls_armed == co) { /* a request that co did not serve: L serves it */
    disarm();
    if (outer) arm(outer, 1);
  }
  if (s) s->chain_ok = saved;
  if (st == LUA_YIELD && s && (s->park->parking || s->preempted)) {
    lua_pop(co, nres);
    if (s->preempted == GSTATE_EXIT && luacompat_closethread(co, L) != LUA_OK) {
      s->preempted = 0; /* a failing __close: an error here instead */
      lua_xmove(co, L, 1);
      return lua_error(L);
    }
    return lua_yieldk(L, 0, wrap, resume_k); /* up to the scheduler */
  }
  if (st == LUA_OK || st == LUA_YIELD) {
    if (!lua_checkstack(L, nres + 1)) {
      lua_pop(co, nres);
      if (wrap) return luaL_error(L, "too many results to resume");
      lua_pushboolean(L, 0);
      lua_pushliteral(L, "too many results to resume");
      return 2;
    }
    int base = lua_gettop(L);
    if (!wrap) lua_pushboolean(L, 1);
    lua_xmove(co, L, nres);
    return lua_gettop(L) - base;
  }
  if (wrap && st != LUA_ERRMEM) lua_pushvalue(co, -1); /* the error stays for the close */
  lua_xmove(co, L, 1); /* error object */
  if (wrap) {
    if (st != LUA_ERRMEM) {
      if (luacompat_closethread(co, L) != LUA_OK && luacompat_close_replaces()) {
        lua_pop(L, 1); /* as luaB_auxwrap: the error after closing (a __close's) */
        lua_xmove(co, L, 1);
      }
      if (lua_type(L, -1) == LUA_TSTRING) {
        luaL_where(L, 1);
        lua_insert(L, -2);
        lua_concat(L, 2);
      }
    }
    return lua_error(L);
  }
  lua_pushboolean(L, 0);
  lua_insert(L, -2);
  return 2;
}

static lua_State *getco(lua_State *L, int idx) {
  lua_State *co = lua_tothread(L, idx);
  luaL_argexpected(L, co, idx, "coroutine");
  return co;
}

static int co_resume(lua_State *L) {
  lua_State *co = getco(L, 1);
  int narg = lua_gettop(L) - 1;
  int st = lua_status(co);
  if (co == L) {
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "cannot resume non-suspended coroutine");
    return 2;
  }
  if (st == LUA_OK && lua_gettop(co) == 0) {
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "cannot resume dead coroutine");
    return 2;
  }
  if (!lua_checkstack(co, narg)) {
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "too many arguments to resume");
    return 2;
  }
  lua_xmove(L, co, narg);
  lua_settop(L, 1);
  return auxresume(L, co, narg, gstate_of(L), false);
}

static int co_wrapped(lua_State *L) {
  lua_State *co = lua_tothread(L, lua_upvalueindex(1));
  int narg = lua_gettop(L);
  if (lua_status(co) == LUA_OK && lua_gettop(co) == 0)
    return luaL_error(L, "cannot resume dead coroutine");
  luaL_checkstack(co, narg, "too many arguments to resume");
  lua_xmove(L, co, narg);
  lua_pushthread(co); /* keep index 1 = the coroutine, as resume_k expects */
  lua_xmove(co, L, 1);
  return auxresume(L, co, narg, gstate_of(L), true);
}

static int co_wrap(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_State *co = lua_newthread(L);
  lua_pushvalue(L, 1);
  lua_xmove(L, co, 1);
  lua_pushcclosure(L, co_wrapped, 1);
  return 1;
}

static int open_coroutine(lua_State *L) {
  luaopen_coroutine(L);
  lua_pushcfunction(L, co_resume);
  lua_setfield(L, -2, "resume");
  lua_pushcfunction(L, co_wrap);
  lua_setfield(L, -2, "wrap");
  return 1;
}

static const struct lazylib {
  const char *name;
  lua_CFunction open;
} lazylibs[];

static int open_package(lua_State *L) {
  luaopen_package(L);
  gpaths_push_main(L);
  lua_getfield(L, -1, "preload");
  for (int i = 0; lazylibs[i].name; i++) { /* require "table" opens it lazily too */
    lua_pushcfunction(L, lazylibs[i].open);
    lua_setfield(L, -2, lazylibs[i].name);
  }
  for (const luaL_Reg *m = preload; m && m->name; m++) {
    lua_pushcfunction(L, m->func);
    lua_setfield(L, -2, m->name);
  }
  lua_pop(L, 1);
  return 1;
}

/* ---------------------------------------------------- lazy libraries */

static const struct lazylib lazylibs[] = {
  {LUA_STRLIBNAME, luaopen_string}, {LUA_TABLIBNAME, luaopen_table},
  {LUA_MATHLIBNAME, luaopen_math}, {LUA_COLIBNAME, open_coroutine},
  {LUA_IOLIBNAME, gsyscall_open_io}, {LUA_OSLIBNAME, gsyscall_open_os},
  {LUA_UTF8LIBNAME, luaopen_utf8}, {LUA_DBLIBNAME, luaopen_debug},
  {LUA_LOADLIBNAME, open_package}, {NULL, NULL}};

lua_CFunction gstate_opener(const char *name) {
  for (int i = 0; lazylibs[i].name; i++)
    if (strcmp(lazylibs[i].name, name) == 0) return lazylibs[i].open;
  for (const luaL_Reg *m = preload; m && m->name; m++)
    if (strcmp(m->name, name) == 0) return m->func;
  return NULL;
}

static xprotos *received_protos(lua_State *L) {
  gstate *s = gstate_of(L);
  return s ? &s->protos : NULL;
}

const xfer_host gstate_xfer_host = {push_env, gstate_opener, received_protos};

/* The base library's functions (print, pairs, type...), collected once
** from a scratch state: they are light C functions, valid in any state, so
** a goroutine state does not open the base library (1.8 KB) but binds each
** function on first use. */
#define NBASE 48
/* Written once (baseonce), read-only after. */
static struct {
  char name[24];
  lua_CFunction f;
} basefns[NBASE];
static int nbasefns;
static pthread_once_t baseonce = PTHREAD_ONCE_INIT;

static void collect_base(void) {
  lua_State *L = luaL_newstate();
  if (!L) return;
  luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
  lua_pushnil(L);
  while (lua_next(L, -2) && nbasefns < NBASE) {
    size_t len;
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &len) : NULL;
    if (k && len < sizeof basefns[0].name && lua_iscfunction(L, -1) &&
        !lua_getupvalue(L, -1, 1)) {
      memcpy(basefns[nbasefns].name, k, len + 1);
      basefns[nbasefns].f = strcmp(k, "print") == 0 ? print_line : lua_tocfunction(L, -1);
      nbasefns++;
    }
    lua_pop(L, 1);
  }
  lua_close(L);
}

/* __index of the standard globals: binds a base function or opens a
** library on first use. */
static int lazy_index(lua_State *L) {
  const char *k = lua_tostring(L, 2);
  if (!k || lua_type(L, 2) != LUA_TSTRING) return 0;
  for (int i = 0; i < nbasefns; i++) {
    if (strcmp(basefns[i].name, k) == 0) {
      lua_settop(L, 2);
      lua_pushcfunction(L, basefns[i].f);
      lua_pushvalue(L, 2);
      lua_pushvalue(L, 3);
      lua_rawset(L, 1); /* stays bound for the next goroutines here */
      return 1;
    }
  }
  if (strcmp(k, LUA_GNAME) == 0) {
    lua_pushvalue(L, 1);
    return 1;
  }
  if (strcmp(k, "_VERSION") == 0) {
    lua_pushliteral(L, LUA_VERSION);
    return 1;
  }
  bool req = strcmp(k, "require") == 0;
  lua_CFunction open = gstate_opener(req ? LUA_LOADLIBNAME : k);
  if (!open) return 0;
  luaL_requiref(L, req ? LUA_LOADLIBNAME : k, open, 1);
  if (req) lua_getfield(L, 1, "require");
  return 1;
}

/* __index of strings until the string library is open. */
static int lazy_string_index(lua_State *L) {
  luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
  lua_pushvalue(L, 2);
  lua_gettable(L, -2);
  return 1;
}

#if !defined(GSTATE_BIG)
#define GSTATE_BIG (1024 * 1024) /* past it a state allocates from malloc (galloc.c) */
#endif

/* Every block of a goroutine state comes from galloc.c (a size-class arena
** with per-M caches): the state may be freed on another M than the one
** that made it. */
static void *gstate_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  gstate *s = ud;
  if (nsize == 0) {
    if (ptr) s->mem -= osize;
    galloc_free(ptr, osize);
    return NULL;
  }
  size_t old = ptr ? osize : 0;
  if (s->memlimit && nsize > old && s->mem + (nsize - old) > s->memlimit) return NULL;
  void *p = galloc_realloc(ptr, old, nsize, s->mem > GSTATE_BIG);
  if (p) s->mem += nsize - old;
  return p;
}

static int panic(lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  fprintf(stderr, "goro: unprotected error in a goroutine state: %s\n",
          msg ? msg : "(not a string)");
  abort();
}

static pthread_once_t alloconce = PTHREAD_ONCE_INIT;

static void free_pooled(void *s);

static void alloc_init(void) {
  galloc_init();
  gpool_set_free(free_pooled);
}

static gstate *gstate_new(void) {
  pthread_once(&alloconce, alloc_init);
  gstate *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->park = park_new();
  lua_State *L = s->park ? lua_newstate(gstate_alloc, s) : NULL;
  if (!L) {
    park_free(s->park);
    free(s);
    return NULL;
  }
  s->L = L;
  lua_atpanic(L, panic);
  lua_pushboolean(L, 1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, RK_GSTATE);
  pthread_once(&baseonce, collect_base);
  lua_pushglobaltable(L);
  lua_createtable(L, 0, 1); /* lazy base functions and libraries */
  lua_pushcfunction(L, lazy_index);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
  lua_pop(L, 1);
  lua_pushliteral(L, "");
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, lazy_string_index);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
  lua_pop(L, 1);
  /* the environment metatable: globals fall back to the standard ones */
  lua_createtable(L, 0, 1);
  lua_pushglobaltable(L);
  lua_setfield(L, -2, "__index");
  lua_rawsetp(L, LUA_REGISTRYINDEX, RK_ENVMT);
  /* The goroutine runs on the state's main thread, resumed as a coroutine
  ** (lua_resume accepts any thread at base level): a separate coroutine
  ** would cost ~1 KB per goroutine. */
  s->co = L;
  gwatch_add(&s->watch, L);
  return s;
}

/* Frees a pooled state, or the state of a goroutine the runtime stopped
** with (after park_reap): with the elements it still owns. */
static void gstate_free(gstate *s) {
  if (!s) return;
  gwatch_remove(&s->watch);
  park_free(s->park);
  lua_close(s->L);
  xfer_free_protos(&s->protos);
  free(s);
}

void gstate_cache_free(void *p) { gstate_free(p); }

/* ---------------------------------------------------------- goroutines */

static int boot_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  return lua_gettop(L);
}

/* The coroutine's first function: decodes the spawn message (a protected
** context: a failing require is this goroutine's error) and calls fn. */
static int boot(lua_State *L) {
  xbuf *msg = lua_touserdata(L, 1);
  gstate *s = gstate_of(L);
  /* the limit counts the whole state (a pooled one already has some); set
  ** here, where running out of memory is a protected error */
  if (msg->memlimit) s->memlimit = s->mem + msg->memlimit;
  lua_settop(L, 0);
  int n = xfer_decode_n(L, msg, true); /* an error: gstep frees msg */
  gstate_of(L)->bootmsg = NULL;
  xbuf_free(msg, true);
  lua_callk(L, n - 1, LUA_MULTRET, 0, boot_k);
  return boot_k(L, LUA_OK, 0);
}

/* What a finished goroutine leaves goes: its stack (arguments, results),
** its globals, its entry closure's upvalues, the closures it sent. */
static void scrub(gstate *s) {
  lua_State *L = s->L;
  s->memlimit = 0;
  lua_settop(s->co, 0);
  lua_pushnil(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, RK_ENV);
  xfer_scrub_state(L);
  s->g = NULL;
  s->preempted = s->chain_ok = s->cancelled = 0;
  park_end(s->park);
  ghost_unref(s->owner);
  s->owner = NULL;
}

/* g's goroutine ended in error st: the error goes to main (errors.c),
** unless go.cancel asked for the end. Returns whether s can be reused. */
static bool report(gstate *s, goro_g *g, int st, bool cancelled) {
  return errq_report(s->co, goro_id(g), st, cancelled);
}

/* ------------------------------------------------------------ the pool
** Idle states wait in their M's pool (gpool.c). A G is bound to its state
** through the G's cache slot while it lives. */

#if !defined(GSTATE_KEEP_MAX)
#define GSTATE_KEEP_MAX (256 * 1024) /* a bigger state is closed, not pooled */
#endif
#if !defined(GSTATE_GC_MIN)
#define GSTATE_GC_MIN (16 * 1024) /* a goroutine that grew its state more is collected */
#endif
#if !defined(GSTATE_RELEASE_BIG)
#define GSTATE_RELEASE_BIG (4 * 1024 * 1024) /* closing a bigger one releases at once */
#endif

static void free_pooled(void *s) { gstate_free(s); }

static gstate *pool_get(void) {
  gstate *s = gpool_get();
  return s ? s : gstate_new();
}

/* Closes a state that will not be pooled; the memory of a big one goes
** back to the system now, of the others at most every 0.2 s per thread. */
static void discard(gstate *s) {
  size_t mem = s->mem;
  gstate_free(s);
  if (mem > GSTATE_KEEP_MAX) galloc_release(mem > GSTATE_RELEASE_BIG);
}

/* A state goes back to the pool small and clean: past GSTATE_KEEP_MAX it
** is closed (a new one costs ~5 us, less than collecting a big heap), and
** one its goroutine grew by more than GSTATE_GC_MIN is collected first, so
** the next goroutine does not start with its predecessor's garbage. */
static void pool_put(gstate *s) {
  if (s->mem > s->mem0 + GSTATE_GC_MIN && s->mem <= GSTATE_KEEP_MAX) lua_gc(s->L, LUA_GCCOLLECT);
  if (s->mem > GSTATE_KEEP_MAX || !gpool_put(s)) discard(s);
}

/* The goroutine of s is over: its state goes back to the pool (or is
** closed, if it cannot run again). */
static goro_step finish(gstate *s, goro_g *g, bool reusable) {
  if (s->bootmsg) { /* decoding the spawn message failed */
    xbuf_free(s->bootmsg, true);
    s->bootmsg = NULL;
  }
  scrub(s);
  *(gstate **)goro_cache(g) = NULL;
  if (reusable) pool_put(s);
  else discard(s);
  return GORO_STEP_DONE;
}

static goro_step gstep(goro_g *g, void *ud) {
  gstate *s = *(gstate **)goro_cache(g);
  if (!s || s->g != g) { /* first step of this goroutine */
    xbuf *msg = ud;
    /* acquire: as in orphaned() */
    if (msg->owner && atomic_load_explicit(&((ghost *)msg->owner)->closed, memory_order_acquire)) {
      spawnmsg_free(msg);
      return GORO_STEP_DONE;
    }
    if (!s) {
      s = pool_get();
      if (!s) {
        static const char oom[] = "goroutine: out of memory creating its Lua state";
        cancel_take(goro_id(g));
        errq_post(oom, sizeof oom - 1);
        spawnmsg_free(ud);
        return GORO_STEP_DONE;
      }
      *(gstate **)goro_cache(g) = s;
    }
    s->g = g;
    s->mem0 = s->mem;
    s->owner = msg->owner; /* the message's reference, now the goroutine's */
    msg->owner = NULL;
    gpaths_apply(s);
    s->bootmsg = ud;
    lua_pushcfunction(s->co, boot);
    lua_pushlightuserdata(s->co, ud);
    s->nargs = 1;
  } else if (orphaned(s)) { /* it yielded or parked, and its host closed */
    return finish(s, g, luacompat_reset(s->co, NULL));
  }
  int nres;
  uint64_t id = goro_id(g);
  tls_running = s->co;
  if (cancel_running(id)) arm(s->co, 1); /* go.cancel: raise at once */
  gwatch_enter(&s->watch, g, id);
  int st = lua_resume(s->co, NULL, s->nargs, &nres);
  gwatch_leave(&s->watch, st != LUA_YIELD ? -1 : s->park->parking ? s->park->kind : 0);
  cancel_stopped();
  tls_running = NULL;
  disarm();
  s->nargs = 0;
  if (st == LUA_YIELD) {
    lua_pop(s->co, nres);
    if (s->park->parking) {
      s->park->parking = 0;
      return GORO_STEP_PARKED;
    }
    if (s->preempted != GSTATE_EXIT) {
      s->preempted = 0;
      return GORO_STEP_YIELDED;
    }
    st = luacompat_closethread(s->co, NULL); /* go.exit(): its __closes, then done */
  }
  s->memlimit = 0; /* done: what follows must not fail for the limit */
  bool reusable = lua_status(s->co) == LUA_OK; /* (after go.exit too) */
  bool cancelled = cancel_take(id) || s->cancelled;
  if (st != LUA_OK) reusable = report(s, g, st, cancelled); /* else closed below */
  /* an error raised by a hook that no pcall caught leaves the state's
  ** hooks off for good (Lua restores allowhook only in a pcall): closed */
  if (s->cancelled) reusable = false;
  return finish(s, g, reusable);
}

void gstate_reap(goro_g *g, void *ud) {
  gstate *s = *(gstate **)goro_cache(g);
  if (!s || s->g != g) {
    spawnmsg_free(ud); /* never started */
  } else {
    park_reap(s->park, g);
    s->g = NULL;
    ghost_unref(s->owner);
    s->owner = NULL;
  }
}

uint64_t gstate_spawn(lua_State *L, int idx, int n, size_t memlimit) {
  luaL_checktype(L, idx, LUA_TFUNCTION);
  if (!goro_self()) gpaths_refresh(L);
  ghost *owner;
  gstate *self = gstate_of(L);
  if (self) {
    owner = self->owner;
  } else {
    ghost **hp = lua_rawgetp(L, LUA_REGISTRYINDEX, RK_RUNTIME) == LUA_TUSERDATA
                     ? lua_touserdata(L, -1) : NULL;
    owner = hp ? *hp : NULL;
    lua_pop(L, 1);
  }
  xbuf *b = xfer_encode_n(L, idx, n, "");
  b->memlimit = memlimit;
  ghost_ref(owner);
  b->owner = owner;
  if (goro_tracing()) goro_trace_name(ldump_fn_site(L, idx));
  int rc = goro_spawn(gstep, b, NULL);
  if (rc != GORO_OK) {
    spawnmsg_free(b);
    luaL_error(L, "goro: cannot start a goroutine: %s", goro_strerror(rc));
  }
  return goro_spawned_id();
}

int gstate_spawn_msg(xbuf *b) { return goro_spawn(gstep, b, NULL); }

void gstate_cancel(uint64_t id) { cancel_request(id, installed ? PREEMPT_SIGNAL : 0); }

