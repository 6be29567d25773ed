/*
** goro.c — the module: `local go = require "goro"`. Opens the binding
** groups (channels, select, time, waitgroups, runtime functions: api.h)
** into one table, whose __index loads the pure-Lua pattern library on
** first use (go.mutex -> goro.sync).
**
** Hosts: a state that requires goro outside any goroutine is a host (the
** script's state under lua5.4; any state a C program opens). The first
** host's require starts the runtime; each host holds it (`nhosts`), and it
** stops when the last host closes, or at process exit. A host that closes
** while others live ends its own goroutines only (gstate.h, ghost): every
** goroutine belongs to the host it was spawned from, directly or through
** other goroutines.
**
** Layers, each file calling only those below it:
**   goro.c (module)
**   lchan.c lselect.c ltime.c lwg.c lruntime.c latomic.c lsmap.c lcontext.c
**   (the API)   ffi.c (go.ffi)
**   gstate.c (goroutine states; host.c their hosts, gsyscall.c their io/os,
**   gpaths.c their package paths)
**   park.c (park or block)
**   xfer_*.c (transfer)
**   object.c (goro objects)   errors.c (error queue, print)   core/
** What transfer needs of goroutine states (their globals, their library
** openers, the prototypes they received) gstate.c hands down as a table of
** functions (xfer_host, set below at start-up), so no file calls up.
*/
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "api.h"
#include "gpaths.h"
#include "gpool.h"

const char registry_keys[16];

/* ------------------------------------------------------------ tracer */

/* GORO_SCHEDTRACE=ms: a line per interval on stderr, as GODEBUG=schedtrace.
** The tracer thread is started and joined by the main state's thread. */
static pthread_t tracer;
static _Atomic int tracing; /* 1 while it should run; cleared to stop it */

static void *trace_main(void *arg) {
  int ms = (int)(intptr_t)arg;
  int64_t start = goro_now();
  while (atomic_load_explicit(&tracing, memory_order_acquire)) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    if (!atomic_load_explicit(&tracing, memory_order_acquire)) break;
    goro_stats st;
    goro_get_stats(&st);
    int lens[GORO_MAXPROCS];
    int np = goro_runq_lens(lens, GORO_MAXPROCS);
    char buf[2048];
    int off = snprintf(buf, sizeof buf,
                       "SCHED %lldms: gomaxprocs=%d idleprocs=%d threads=%d "
                       "spinningthreads=%d idlethreads=%d runqueue=%lld gs=%lld [",
                       (long long)((goro_now() - start) / 1000000), st.gomaxprocs,
                       st.idleprocs, st.threads, st.spinning, st.idlethreads,
                       (long long)st.runnable, (long long)st.goroutines);
    for (int i = 0; i < np && off < (int)sizeof buf - 16; i++)
      off += snprintf(buf + off, sizeof buf - (size_t)off, i ? " %d" : "%d", lens[i]);
    fprintf(stderr, "%s]\n", buf);
  }
  return NULL;
}

/* ------------------------------------------------------------ module */

/* The thread cap stops goroutines from running. Slow calls (a thread in a
** system call comes back) only wait: startm has warned once. Every thread
** waiting on a channel that only a goroutine without a thread could wake
** never ends: an error for main. */
static void on_stuck(int threads, int cap, bool forever) {
  if (!forever) return;
  char msg[320];
  int n = snprintf(msg, sizeof msg,
                   "cannot start another OS thread (%d running, cap %d) while goroutines wait "
                   "to run and every thread waits on a channel that only they could wake: "
                   "raise the cap with GORO_MAXTHREADS or go.maxthreads(n)", threads, cap);
  errq_post(msg, (size_t)n);
}

/* Stops the runtime: at the main state's close, or at process exit (a
** script's os.exit does not close the state). */
static bool shutting_down; /* main thread: while goro_stop closes states, never restart */

static void shutdown_runtime_now(void);
static void shutdown_runtime(void) {
  shutting_down = true;
  shutdown_runtime_now();
  shutting_down = false;
}

static void shutdown_runtime_now(void) {
  if (atomic_exchange(&tracing, 0)) pthread_join(tracer, NULL);
  if (!goro_running()) return;
  int rc = goro_stop(200000000); /* running steps get 200 ms to return */
  if (rc == GORO_OK) {
    gstate_fini_preemption();
    gpool_drain(); /* the states this thread pooled while it ran goroutines */
    xfer_fini();
    ltime_fini();
  }
}

/* Host states alive that required goro; the runtime runs while > 0.
** Hosts may live on different threads: hostlock orders their opens and
** closes. */
static pthread_mutex_t hostlock = PTHREAD_MUTEX_INITIALIZER;
static int nhosts; /* hostlock */

/* __gc of a host's RK_RUNTIME userdata (its ghost*): the host closes. */
static int runtime_gc(lua_State *L) {
  ghost **hp = lua_touserdata(L, 1);
  ghost *h = *hp;
  *hp = NULL;
  if (!h) return 0;
  /* release: a goroutine's step that sees it closed ends (gstate.c) */
  atomic_store_explicit(&h->closed, 1, memory_order_release);
  ghost_unref(h);
  pthread_mutex_lock(&hostlock);
  bool last = --nhosts == 0;
  if (last) shutdown_runtime(); /* locked: no new host starts it meanwhile */
  pthread_mutex_unlock(&hostlock);
  if (!last) {
    goro_preempt_all(); /* its running goroutines come back and end */
    return 0;
  }
  int unhandled = errq_drain();
  gpaths_set(NULL, NULL);
  if (unhandled > 0) {
    fflush(stdout);
    fprintf(stderr, "goro: exiting with status 1: %d goroutine error%s never handled\n",
            unhandled, unhandled > 1 ? "s were" : " was");
    exit(1);
  }
  return 0;
}

/* Keeps goro.so mapped until the process ends (lua_close dlcloses C
** modules): threads of a runtime that could not stop (a goroutine stuck in
** C), an exit handler, a late signal, must never run unmapped code. */
static void pin_module(void) {
  Dl_info info;
  if (dladdr((void *)pin_module, &info) && info.dli_fname)
    dlopen(info.dli_fname, RTLD_NOW | RTLD_NODELETE | RTLD_NOLOAD);
}

/* __index of the module: the pure-Lua pattern library loads on first use
** (go.mutex -> require "goro.sync", ...). */
static int lazy_pattern(lua_State *L) {
  if (lua_type(L, 2) != LUA_TSTRING) return 0;
  lua_getfield(L, lua_upvalueindex(1), lua_tostring(L, 2));
  if (lua_isnil(L, -1)) return 1;
  const char *mod = lua_tostring(L, -1);
  lua_getglobal(L, "require");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    luaL_requiref(L, LUA_LOADLIBNAME, gstate_opener(LUA_LOADLIBNAME), 1);
    lua_pop(L, 1);
    lua_getglobal(L, "require");
  }
  lua_pushstring(L, mod);
  lua_call(L, 1, 1);
  /* go.mutex is goro.sync's field `mutex`; go.context, go.ffi (no such
  ** field) are the modules themselves */
  if (lua_type(L, -1) == LUA_TTABLE && lua_getfield(L, -1, lua_tostring(L, 2)) == LUA_TNIL)
    lua_pop(L, 1);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, -2);
  lua_rawset(L, 1); /* cache it in the module table */
  return 1;
}

static const char *patterns[][2] = {
  {"mutex", "goro.sync"}, {"rwmutex", "goro.sync"}, {"once", "goro.sync"},
  {"cond", "goro.sync"}, {"semaphore", "goro.sync"}, {"singleflight", "goro.sync"},
  {"context", "goro.context"}, {"errgroup", "goro.errgroup"}, {"pool", "goro.pool"},
  {"map", "goro.pool"}, {"pipeline", "goro.pool"}, {"merge", "goro.pool"},
  {"generate", "goro.pool"}, {"limiter", "goro.pool"}, {"ffi", "goro.ffi"},
  {"shard", "goro.shard"},
  {"after_func", "goro.sync"},
  {NULL, NULL}};

/* go(fn, ...) through the module's __call */
static int module_call(lua_State *L) {
  lua_remove(L, 1);
  return lruntime_spawn(L);
}

/* The modules a goroutine state's require finds without a search. */
static const luaL_Reg preload[] = {
  {"goro", luaopen_goro}, {"goro.ffi", luaopen_goro_ffi}, {NULL, NULL}};

int luaopen_goro(lua_State *L) {
  /* the main state: not a goroutine's state (those may also be touched by
  ** the main thread, when goro_stop closes them) */
  bool main = goro_self() == NULL &&
              lua_rawgetp(L, LUA_REGISTRYINDEX, RK_GSTATE) != LUA_TBOOLEAN;
  lua_pop(L, 1);
  if (main && !goro_running() && shutting_down)
    return luaL_error(L, "goro: the runtime has stopped (the program is exiting)");
  bool newhost = false;
  if (main) {
    newhost = lua_rawgetp(L, LUA_REGISTRYINDEX, RK_RUNTIME) == LUA_TNIL;
    lua_pop(L, 1);
  }
  if (newhost) pthread_mutex_lock(&hostlock);
  if (main && !goro_running()) {
    ltime_start();
    gstate_set_preload(preload);
    xfer_set_host(&gstate_xfer_host);
    int rc = goro_start(0, gstate_reap);
    if (rc != GORO_OK) {
      if (newhost) pthread_mutex_unlock(&hostlock);
      return luaL_error(L, "goro: cannot start the runtime: %s", goro_strerror(rc));
    }
    goro_set_cache_free(gstate_cache_free);
    goro_set_stuck_hook(on_stuck);
    pin_module();
    gstate_init_preemption();
    ldump_init();
    ldump_trace_env(L);
    static bool atexit_done;
    if (!atexit_done) atexit_done = atexit(shutdown_runtime) == 0;
    xfer_selfcheck(L);
    const char *tr = getenv("GORO_SCHEDTRACE");
    int ms = tr ? atoi(tr) : 0;
    if (ms > 0) {
      atomic_store(&tracing, 1);
      /* SIGINT blocked in it, as in goro's own threads: Ctrl-C must reach
      ** the main thread, whose handler raises in Lua (core/park.c). Linux
      ** offers a process's signal to its main thread first; POSIX lets any
      ** thread that does not block it take it. */
      sigset_t no, old;
      sigemptyset(&no);
      sigaddset(&no, SIGINT);
      pthread_sigmask(SIG_BLOCK, &no, &old);
      if (pthread_create(&tracer, NULL, trace_main, (void *)(intptr_t)ms) != 0)
        atomic_store(&tracing, 0);
      pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
  }
  if (main) {
    /* inherit package paths; the runtime stops when this state closes */
    lua_getglobal(L, "package");
    if (lua_istable(L, -1)) {
      lua_getfield(L, -1, "preload");
      if (lua_istable(L, -1)) {
        lua_pushcfunction(L, luaopen_goro_ffi);
        lua_setfield(L, -2, "goro.ffi");
      }
      lua_pop(L, 1);
      lua_getfield(L, -1, "path");
      lua_getfield(L, -2, "cpath");
      gpaths_set(lua_tostring(L, -2), lua_tostring(L, -1));
      lua_pop(L, 2);
    }
    lua_pop(L, 1);
    if (newhost) {
      ghost *h = ghost_new();
      ghost **hp = h ? lua_newuserdatauv(L, sizeof h, 0) : NULL;
      if (!hp) {
        ghost_unref(h);
        bool stop = nhosts == 0;
        pthread_mutex_unlock(&hostlock);
        if (stop) shutdown_runtime();
        return luaL_error(L, "goro: out of memory registering this state as a host");
      }
      *hp = h;
      nhosts++;
      pthread_mutex_unlock(&hostlock);
      lua_createtable(L, 0, 1);
      lua_pushcfunction(L, runtime_gc);
      lua_setfield(L, -2, "__gc");
      lua_setmetatable(L, -2);
      lua_rawsetp(L, LUA_REGISTRYINDEX, RK_RUNTIME);
      /* the standard globals' names (a fresh state's): any other global
      ** the user's functions name is the user's and travels with them */
      lua_newtable(L);
      lua_State *fresh = luaL_newstate();
      if (fresh) {
        luaL_openlibs(fresh);
        lua_pushglobaltable(fresh);
        lua_pushnil(fresh);
        while (lua_next(fresh, -2)) {
          lua_pop(fresh, 1);
          if (lua_type(fresh, -1) == LUA_TSTRING) {
            lua_pushstring(L, lua_tostring(fresh, -1));
            lua_pushboolean(L, 1);
            lua_rawset(L, -3);
          }
        }
        lua_close(fresh);
      }
      lua_rawsetp(L, LUA_REGISTRYINDEX, RK_BASE);
      xfer_init_state(L);
      lua_pushcfunction(L, print_line);
      lua_setglobal(L, "print");
    }
  }
  luaL_checkversion(L);
  lua_createtable(L, 0, 24);
  lchan_open(L);
  lselect_open(L);
  ltime_open(L);
  lwg_open(L);
  lruntime_open(L);
  latomic_open(L);
  lsmap_open(L);
  lcontext_open(L);
  ldump_open(L);
  lua_pushliteral(L, "0.1.0"), lua_setfield(L, -2, "_VERSION"); /* = rockspecs/, CHANGELOG.md */
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, module_call);
  lua_setfield(L, -2, "__call");
  lua_createtable(L, 0, 16);
  for (int i = 0; patterns[i][0]; i++) {
    lua_pushstring(L, patterns[i][1]);
    lua_setfield(L, -2, patterns[i][0]);
  }
  lua_pushcclosure(L, lazy_pattern, 1);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
  return 1;
}
