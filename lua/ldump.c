/*
** ldump.c — goroutine dumps, Go's way (runtime/traceback.go):
**
**   goroutine 7 [chan receive, 3 s]:
**           worker.lua:12: in function 'consume'
**           worker.lua:20: in function <worker.lua:18>
**           waiting on channel made at main.lua:4 (receive)
**
** for the deadlock error, go.dump() (a table, or go.dump"text") and SIGQUIT.
**
** Who may read what. A parked goroutine's lua_State is not running, but its
** G can be readied and resumed on another M at any moment, so a dump never
** touches a state it does not hold: every goroutine state has a gwatch
** (ldump.h) whose lock its M holds around each step (one CAS, one store);
** a dump takes the same lock (CAS 0 -> 2) before it walks the coroutine's
** stack with lua_getstack/lua_getinfo, which write nothing into the state.
** A state whose lock is taken is running: it is listed as such, with its
** id only. The waits are the core's (goro_g_waitchans: the G cannot run
** while we hold it), the channels named by the site that made them.
** Park time costs one coarse clock read (the "since"); tracebacks are made
** only when a dump is asked for. The main state is not a goroutine: it
** records its wait's kind and start (atomics: SIGQUIT's thread reads them);
** only the main thread itself (a deadlock, go.dump in main) reads its stack.
**
** Channel sites are interned "file:line" strings (never freed: bounded by
** the program's distinct call sites), so a label outlives its channel.
*/
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ldump.h"
#include "park.h"

/* ------------------------------------------------------------ registry */

static pthread_mutex_t reglock = PTHREAD_MUTEX_INITIALIZER;
static gwatch *reg; /* reglock: every goroutine state */

void gwatch_add(gwatch *w, lua_State *co) {
  w->co = co;
  pthread_mutex_lock(&reglock);
  w->prev = NULL;
  w->next = reg;
  if (reg) reg->prev = w;
  reg = w;
  pthread_mutex_unlock(&reglock);
}

void gwatch_remove(gwatch *w) {
  pthread_mutex_lock(&reglock);
  if (w->prev) w->prev->next = w->next;
  else reg = w->next;
  if (w->next) w->next->prev = w->prev;
  pthread_mutex_unlock(&reglock);
}

/* ------------------------------------------------------------ the main state */

static struct {
  _Atomic int kind;        /* PARK_* / LDUMP_WAITALL while waiting, 0 running (relaxed) */
  _Atomic int64_t since;   /* relaxed */
  const goro_case *cases;  /* main thread only */
  int n, lastkind;         /* main thread only */
} mainw;

static const char *kind_reason(int kind);
static int64_t mainw_t0; /* main thread: the wait's start, for the trace */

void ldump_main_wait(lua_State *L, int kind, const goro_case *cases, int n) {
  if (!L) {
    atomic_store_explicit(&mainw.kind, 0, memory_order_relaxed);
    if (mainw_t0) goro_trace_slice(kind_reason(mainw.lastkind), mainw_t0, goro_trace_now());
    mainw_t0 = 0;
    return;
  }
  if (goro_tracing()) mainw_t0 = goro_trace_now();
  mainw.cases = cases;
  mainw.n = n;
  mainw.lastkind = kind;
  atomic_store_explicit(&mainw.since, ldump_coarse_now(), memory_order_relaxed);
  atomic_store_explicit(&mainw.kind, kind, memory_order_relaxed);
}

/* ------------------------------------------------------------ interned sites */

static pthread_mutex_t internlock = PTHREAD_MUTEX_INITIALIZER;
static char **interned; /* internlock: open addressing */
static size_t ninterned, capinterned;

static size_t strhash(const char *s) {
  size_t h = 5381;
  while (*s) h = h * 33 + (unsigned char)*s++;
  return h;
}

static const char *intern(const char *s) {
  pthread_mutex_lock(&internlock);
  if (2 * (ninterned + 1) > capinterned) {
    size_t ncap = capinterned ? capinterned * 2 : 256;
    char **na = calloc(ncap, sizeof *na);
    if (!na) {
      pthread_mutex_unlock(&internlock);
      return NULL;
    }
    for (size_t i = 0; i < capinterned; i++) {
      if (!interned[i]) continue;
      size_t j = strhash(interned[i]) & (ncap - 1);
      while (na[j]) j = (j + 1) & (ncap - 1);
      na[j] = interned[i];
    }
    free(interned);
    interned = na;
    capinterned = ncap;
  }
  size_t j = strhash(s) & (capinterned - 1);
  while (interned[j] && strcmp(interned[j], s) != 0) j = (j + 1) & (capinterned - 1);
  if (!interned[j] && (interned[j] = strdup(s)) != NULL) ninterned++;
  const char *r = interned[j];
  pthread_mutex_unlock(&internlock);
  return r;
}

/* goro's own Lua library (lua/goro/): skipped when naming a site */
static bool libframe(const lua_Debug *ar) {
  return strstr(ar->source, "goro/") != NULL && strstr(ar->source, ".lua") != NULL &&
         (strstr(ar->source, "/share/lua/") || strstr(ar->source, "lua/goro/"));
}

const char *ldump_site(lua_State *L) {
  lua_Debug ar;
  for (int level = 1; level < 12 && lua_getstack(L, level, &ar); level++) {
    if (!lua_getinfo(L, "Sl", &ar) || ar.currentline <= 0 || libframe(&ar)) continue;
    char buf[LUA_IDSIZE + 24];
    snprintf(buf, sizeof buf, "%s:%d", ar.short_src, ar.currentline);
    return intern(buf);
  }
  return NULL;
}

/* ------------------------------------------------------------ text */

typedef struct sbuf {
  char *p;
  size_t n, cap;
} sbuf;

static void sb_add(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(sbuf *b, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    size_t room = b->cap - b->n;
    int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? room : 0, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    if (b->p && (size_t)k < room) {
      b->n += (size_t)k;
      return;
    }
    size_t ncap = (b->cap ? b->cap * 2 : 1024) + (size_t)k;
    char *np = realloc(b->p, ncap);
    if (!np) return;
    b->p = np;
    b->cap = ncap;
  }
}

/* One goroutine (or the main state) as found by a dump. */
typedef struct dentry {
  uint64_t id;          /* 0: the main state */
  const char *state;    /* "waiting", "running", "runnable"... */
  const char *reason;   /* Go's wait reason, or NULL */
  double since;         /* seconds waiting, -1 unknown */
  size_t tb, tblen;     /* traceback lines: a piece of the dump's text */
  size_t chans, chanslen; /* "waiting on ..." lines: another piece */
  char where[LUA_IDSIZE + 24]; /* its first user frame, "file:line" */
} dentry;

typedef struct dump {
  dentry *e;
  int n, cap;
  sbuf text;            /* the pieces the entries point into */
  int notstarted;       /* live Gs that have no state yet */
} dump;

static const char *kind_reason(int kind) {
  switch (kind) {
  case PARK_SEND: return "chan send";
  case PARK_RECV: case PARK_RANGE: return "chan receive";
  case PARK_SELECT: return "select";
  case PARK_WAIT: return "sync.WaitGroup.Wait";
  case PARK_SLEEP: return "sleep";
  case LDUMP_WAITALL: return "go.wait";
  default: return NULL;
  }
}

/* goro's library blocks on channels for its own objects: name the object */
static const char *lib_reason(const char *fn) {
  static const char *const map[][2] = {
    {"lock", "sync.Mutex.Lock"}, {"rlock", "sync.RWMutex.RLock"},
    {"wait", "sync.Cond.Wait"}, {"acquire", "semaphore.Acquire"},
    {"do", "singleflight.Do"}, {NULL, NULL}};
  for (int i = 0; map[i][0]; i++)
    if (strcmp(fn, map[i][0]) == 0) return map[i][1];
  return NULL;
}

static void funcname(sbuf *b, const lua_Debug *ar) {
  if (ar->namewhat && *ar->namewhat)
    sb_add(b, "%s '%s'", strcmp(ar->namewhat, "global") == 0 ? "function" : ar->namewhat,
           ar->name);
  else if (*ar->what == 'm') sb_add(b, "main chunk");
  else if (*ar->what != 'C') sb_add(b, "function <%s:%d>", ar->short_src, ar->linedefined);
  else sb_add(b, "?");
}

#define DUMP_FRAMES 12

/* Adds co's stack from level0 to the dump's text; sets e's where and, for
** a wait inside goro's library, a more precise reason. co is not running
** (held by us, or our own thread's). */
static void add_stack(dump *d, dentry *e, lua_State *co, int level0) {
  lua_Debug ar;
  sbuf *b = &d->text;
  e->tb = b->n;
  bool inlib = true;
  for (int level = level0; lua_getstack(co, level, &ar); level++) {
    if (level - level0 == DUMP_FRAMES) {
      sb_add(b, "\t...\n");
      break;
    }
    if (!lua_getinfo(co, "Sln", &ar)) break;
    if (*ar.what == 'C' && !*ar.namewhat) continue; /* a base: "[C]: in ?" says nothing */
    sb_add(b, "\t%s", ar.short_src);
    if (ar.currentline > 0) sb_add(b, ":%d", ar.currentline);
    sb_add(b, ": in ");
    funcname(b, &ar);
    sb_add(b, "\n");
    if (*ar.what == 'C' || !inlib) continue;
    if (libframe(&ar)) {
      const char *r = ar.name ? lib_reason(ar.name) : NULL;
      if (r && e->reason) e->reason = r;
      continue;
    }
    inlib = false;
    if (ar.currentline > 0)
      snprintf(e->where, sizeof e->where, "%s:%d", ar.short_src, ar.currentline);
  }
  e->tblen = b->n - e->tb;
}

static void add_chans(dump *d, dentry *e, goro_chan *const *chans, const int *dirs, int n) {
  sbuf *b = &d->text;
  e->chans = b->n;
  for (int i = 0; i < n; i++) {
    const char *site = goro_chan_label(chans[i]);
    if (site) sb_add(b, "\twaiting on channel made at %s", site);
    else sb_add(b, "\twaiting on a channel made by goro (%p)", (void *)chans[i]);
    sb_add(b, " (%s)\n", dirs[i] == GORO_SEND ? "send" : "receive");
  }
  e->chanslen = b->n - e->chans;
}

static dentry *newentry(dump *d) {
  if (d->n == d->cap) {
    int ncap = d->cap ? d->cap * 2 : 16;
    dentry *ne = realloc(d->e, sizeof *ne * (size_t)ncap);
    if (!ne) return NULL;
    d->e = ne;
    d->cap = ncap;
  }
  dentry *e = &d->e[d->n++];
  memset(e, 0, sizeof *e);
  e->since = -1;
  return e;
}

#define WAITCHANS 64

/* A goroutine state we hold: its entry. */
static void add_goroutine(dump *d, gwatch *w, int64_t now) {
  dentry *e = newentry(d);
  if (!e) return;
  e->id = goro_id(w->g);
  e->state = goro_g_state(w->g);
  if (w->kind && strcmp(e->state, "waiting") == 0) {
    e->reason = kind_reason(w->kind);
    e->since = (double)(now - w->since) / 1e9;
  }
  add_stack(d, e, w->co, 0);
  goro_chan *chans[WAITCHANS];
  int dirs[WAITCHANS];
  int n = goro_g_waitchans(w->g, chans, dirs, WAITCHANS);
  add_chans(d, e, chans, dirs, n);
}

/* The main state. L: its stack may be read (we are the main thread). */
static void add_main(dump *d, lua_State *L, bool self_running, int64_t now) {
  dentry *e = newentry(d);
  if (!e) return;
  /* relaxed: a snapshot (SIGQUIT's thread); the main thread wrote it */
  int kind = atomic_load_explicit(&mainw.kind, memory_order_relaxed);
  if (self_running) kind = 0;
  else if (L && !kind) kind = mainw.lastkind; /* the deadlock: its wait just ended */
  e->state = kind ? "waiting" : "running";
  if (kind) {
    e->reason = kind_reason(kind);
    e->since = (double)(now - atomic_load_explicit(&mainw.since, memory_order_relaxed)) / 1e9;
  }
  if (L) {
    add_stack(d, e, L, self_running ? 1 : 0);
    if (kind && mainw.cases) {
      goro_chan *chans[WAITCHANS];
      int dirs[WAITCHANS], k = 0;
      for (int i = 0; i < mainw.n && k < WAITCHANS; i++) {
        if (!mainw.cases[i].c) continue;
        chans[k] = mainw.cases[i].c;
        dirs[k++] = mainw.cases[i].dir;
      }
      add_chans(d, e, chans, dirs, k);
    }
  }
}

static int byid(const void *a, const void *b) {
  const dentry *x = a, *y = b;
  return x->id < y->id ? -1 : x->id > y->id;
}

/* Collects every goroutine. L: the caller's state (main or a goroutine:
** listed as running, with its stack), NULL from SIGQUIT's thread;
** caller_is_main: L is the main state's; main_running: it is not in a wait
** (go.dump, not the deadlock). */
static void collect(dump *d, lua_State *L, bool caller_is_main, bool main_running) {
  memset(d, 0, sizeof *d);
  int64_t now = ldump_coarse_now();
  add_main(d, caller_is_main ? L : NULL, caller_is_main && main_running, now);
  uint64_t selfid = goro_id(goro_self());
  int listed = 0;
  pthread_mutex_lock(&reglock);
  for (gwatch *w = reg; w; w = w->next) {
    int z = 0;
    /* acquire: pairs with gwatch_leave's release (the stack as left) */
    if (atomic_compare_exchange_strong_explicit(&w->own, &z, 2, memory_order_acquire,
                                                memory_order_relaxed)) {
      if (w->g) {
        add_goroutine(d, w, now);
        listed++;
      }
      /* release: the step that takes it next sees nothing of ours (we wrote nothing) */
      atomic_store_explicit(&w->own, 0, memory_order_release);
      continue;
    }
    uint64_t id = atomic_load_explicit(&w->gid, memory_order_relaxed);
    if (!id) continue;
    listed++;
    if (id == selfid && L) {
      /* our own state: we run it */
      dentry *e = newentry(d);
      if (!e) continue;
      e->id = id;
      e->state = "running";
      add_stack(d, e, L, 1);
      continue;
    }
    dentry *e = newentry(d);
    if (!e) continue;
    e->id = id;
    e->state = "running";
  }
  pthread_mutex_unlock(&reglock);
  int64_t live = goro_numgoroutine();
  d->notstarted = live > listed ? (int)(live - listed) : 0;
  if (d->n > 1) qsort(d->e + 1, (size_t)d->n - 1, sizeof *d->e, byid);
}

static void dump_free(dump *d) {
  free(d->e);
  free(d->text.p);
}

/* The dump as Go prints it. */
static void format(dump *d, sbuf *out) {
  for (int i = 0; i < d->n; i++) {
    dentry *e = &d->e[i];
    if (e->id) sb_add(out, "goroutine %llu [", (unsigned long long)e->id);
    else sb_add(out, "main state [");
    sb_add(out, "%s", e->reason ? e->reason : e->state);
    if (e->since >= 1) sb_add(out, ", %.0f s", e->since);
    else if (e->since >= 0.001) sb_add(out, ", %.0f ms", e->since * 1e3);
    sb_add(out, "]:\n");
    if (e->tblen) sb_add(out, "%.*s", (int)e->tblen, d->text.p + e->tb);
    else if (strcmp(e->state, "running") == 0)
      sb_add(out, "\t(running on another thread: its stack cannot be read safely)\n");
    if (e->chanslen) sb_add(out, "%.*s", (int)e->chanslen, d->text.p + e->chans);
    sb_add(out, "\n");
  }
  if (d->notstarted)
    sb_add(out, "(and %d goroutine%s spawned, not started yet)\n", d->notstarted,
           d->notstarted == 1 ? "" : "s");
}

/* ------------------------------------------------------------ Lua */

int ldump_deadlock(lua_State *L, const char *msg) {
  dump d;
  collect(&d, L, true, false);
  sbuf out = {0};
  sb_add(&out, "%s\n\n", msg);
  format(&d, &out);
  dump_free(&d);
  if (out.n && out.p[out.n - 1] == '\n') out.n--;
  luaL_where(L, 1); /* as luaL_error: the position first */
  lua_pushlstring(L, out.p ? out.p : msg, out.p ? out.n : strlen(msg));
  free(out.p);
  lua_concat(L, 2);
  return lua_error(L);
}

static void setstr(lua_State *L, const char *k, const char *s, size_t n) {
  lua_pushlstring(L, s, n);
  lua_setfield(L, -2, k);
}

/* go.dump() -> {{id =, state =, reason =, since =, where =, traceback =,
** waiting_on = }...}; go.dump"text" -> the text Go prints. */
static int l_dump(lua_State *L) {
  const char *how = luaL_optstring(L, 1, "table");
  bool text = strcmp(how, "text") == 0;
  if (!text && strcmp(how, "table") != 0)
    return luaL_error(L, "goro: go.dump(\"%s\"): use go.dump() for a table or "
                         "go.dump\"text\" for the text of a goroutine dump", how);
  bool main = goro_self() == NULL;
  dump d;
  collect(&d, L, main, true);
  if (text) {
    sbuf out = {0};
    format(&d, &out);
    lua_pushlstring(L, out.p ? out.p : "", out.n);
    free(out.p);
    dump_free(&d);
    return 1;
  }
  lua_createtable(L, d.n, 1);
  for (int i = 0; i < d.n; i++) {
    dentry *e = &d.e[i];
    lua_createtable(L, 0, 8);
    lua_pushinteger(L, (lua_Integer)e->id);
    lua_setfield(L, -2, "id");
    if (!e->id) {
      lua_pushboolean(L, 1);
      lua_setfield(L, -2, "main");
    }
    lua_pushstring(L, e->state);
    lua_setfield(L, -2, "state");
    if (e->reason) {
      lua_pushstring(L, e->reason);
      lua_setfield(L, -2, "reason");
    }
    if (e->since >= 0) {
      lua_pushnumber(L, e->since);
      lua_setfield(L, -2, "since");
    }
    if (e->where[0]) setstr(L, "where", e->where, strlen(e->where));
    setstr(L, "traceback", d.text.p ? d.text.p + e->tb : "", e->tblen);
    lua_createtable(L, 0, 0);
    size_t at = e->chans, end = e->chans + e->chanslen;
    int k = 0;
    while (at < end) {
      const char *line = d.text.p + at + 1; /* past the tab */
      const char *nl = memchr(line, '\n', end - at - 1);
      size_t len = nl ? (size_t)(nl - line) : end - at - 1;
      lua_pushlstring(L, line, len);
      lua_rawseti(L, -2, ++k);
      at += len + 2;
    }
    lua_setfield(L, -2, "waiting_on");
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushinteger(L, d.notstarted);
  lua_setfield(L, -2, "notstarted");
  dump_free(&d);
  return 1;
}

/* ------------------------------------------------------------ trace */

const char *ldump_fn_site(lua_State *L, int idx) {
  lua_Debug ar;
  lua_pushvalue(L, idx);
  if (!lua_getinfo(L, ">S", &ar)) return NULL;
  char buf[LUA_IDSIZE + 24];
  if (*ar.what == 'C') snprintf(buf, sizeof buf, "[C]");
  else snprintf(buf, sizeof buf, "%s:%d", ar.short_src, ar.linedefined);
  for (char *c = buf; *c; c++)
    if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20) *c = '?'; /* JSON-safe */
  return intern(buf);
}

static void trace_atexit(void) {
  if (goro_tracing()) goro_trace_stop();
}

static int start_trace(lua_State *L, const char *path) {
  int rc = goro_trace_start(path);
  if (rc != GORO_OK)
    return luaL_error(L, "goro: cannot trace to '%s': %s", path,
                      goro_tracing() ? "a trace is already being written (go.trace_stop() first)"
                                     : "the file cannot be opened for writing");
  static bool registered;
  if (!registered) registered = atexit(trace_atexit) == 0;
  return 0;
}

/* go.trace_start(path): the execution trace, Chrome trace-event JSON
** (Perfetto, chrome://tracing, tools/trace_html.lua). */
static int l_trace_start(lua_State *L) {
  start_trace(L, luaL_checkstring(L, 1));
  return 0;
}

static int l_trace_stop(lua_State *L) {
  if (goro_trace_stop() != GORO_OK)
    return luaL_error(L, "goro: go.trace_stop(): no trace is being written "
                         "(start one with go.trace_start(path) or GORO_TRACE=path)");
  return 0;
}

void ldump_trace_env(lua_State *L) {
  const char *path = getenv("GORO_TRACE");
  if (path && *path && !goro_tracing()) start_trace(L, path);
}

void ldump_open(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"dump", l_dump}, {"trace_start", l_trace_start}, {"trace_stop", l_trace_stop},
    {NULL, NULL}};
  luaL_setfuncs(L, funcs, 0);
}

/* ------------------------------------------------------------ SIGQUIT */

static int quitpipe[2] = {-1, -1};

static void on_quit(int sig) {
  (void)sig;
  char c = 1;
  ssize_t r = write(quitpipe[1], &c, 1); /* async-signal-safe */
  (void)r;
}

static void *quit_main(void *arg) {
  (void)arg;
  char c;
  while (read(quitpipe[0], &c, 1) != 1) {}
  dump d;
  collect(&d, NULL, false, false);
  sbuf out = {0};
  sb_add(&out, "SIGQUIT: quit\ngoro: a dump of every goroutine follows; exiting with status 2\n\n");
  format(&d, &out);
  for (size_t at = 0; out.p && at < out.n;) {
    ssize_t k = write(2, out.p + at, out.n - at);
    if (k <= 0) break;
    at += (size_t)k;
  }
  _exit(2);
  return NULL;
}

void ldump_init(void) {
  static bool done;
  if (done) return;
  done = true;
  struct sigaction old;
  /* as Go: ignored SIGQUIT (a background job's) is taken over too; a
  ** handler of the program's own is left alone */
  if (sigaction(SIGQUIT, NULL, &old) != 0 || (old.sa_flags & SA_SIGINFO) ||
      (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN))
    return;
  if (pipe(quitpipe) != 0) return;
  fcntl(quitpipe[1], F_SETFL, O_NONBLOCK);
  pthread_t t;
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
  /* the thread must not take signals meant for the program's threads */
  sigset_t all, prev;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &prev);
  int rc = pthread_create(&t, &at, quit_main, NULL);
  pthread_sigmask(SIG_SETMASK, &prev, NULL);
  pthread_attr_destroy(&at);
  if (rc != 0) return;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_quit;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGQUIT, &sa, NULL);
}
