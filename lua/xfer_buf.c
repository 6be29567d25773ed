/*
** xfer_buf.c — message buffers (xbuf): making, growing and freeing them,
** and the per-thread cache their headers are recycled through.
**
** A message is made on the sender's thread and freed on the receiver's:
** with glibc every such free takes the sender's arena lock, which the
** sender's mallocs contend for (W8's futex storm). Message headers are
** recycled instead: each thread keeps a small free list (its own, no
** lock), and moves them to and from a shared list in batches, one lock per
** XCACHE_BATCH. The data and refs arrays that outgrew the header's inline
** room are not cached.
*/
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "xfer_int.h"

#define XCACHE_BATCH 32
#define XCACHE_LOCAL 64     /* a thread keeps at most this many */
#define XCACHE_GLOBAL 2048  /* the shared list keeps at most this many */

/* The shared list: owned by xcache_lock. */
static pthread_mutex_t xcache_lock = PTHREAD_MUTEX_INITIALIZER;
static xbuf *xcache;        /* xcache_lock; linked through ->refs */
static _Atomic int nxcache; /* changed under xcache_lock; read as a hint */
static pthread_key_t xcache_key;
static pthread_once_t xcache_once = PTHREAD_ONCE_INIT;
static bool xcache_ready; /* the key exists (set once, by pthread_once) */

/* A thread's own list: only that thread touches it. */
typedef struct xlocal {
  xbuf *head;
  int n;
} xlocal;

#define XNEXT(b) (*(xbuf **)&(b)->refs)

/* ------------------------------------------------------------ growing */

void xbuf_grow(lua_State *L, xbuf *b, size_t n) {
  size_t cap = b->cap * 2;
  while (cap < b->len + n) cap *= 2;
  unsigned char *d = b->data == b->inl ? malloc(cap) : realloc(b->data, cap);
  if (!d) luaL_error(L, "goro: out of memory while copying a value");
  if (b->data == b->inl) memcpy(d, b->inl, b->len);
  b->data = d;
  b->cap = cap;
}

void xbuf_growrefs(lua_State *L, xbuf *b) {
  int cap = b->caprefs * 2;
  void **r = b->refs == b->inlrefs ? malloc(sizeof *r * (size_t)cap)
                                   : realloc(b->refs, sizeof *r * (size_t)cap);
  if (!r) luaL_error(L, "goro: out of memory while copying a value");
  if (b->refs == b->inlrefs) memcpy(r, b->inlrefs, sizeof b->inlrefs);
  b->refs = r;
  b->caprefs = cap;
}

/* ------------------------------------------------------------ the cache */

static void xlocal_flush(xlocal *l, int keep) {
  pthread_mutex_lock(&xcache_lock);
  while (l->n > keep) {
    xbuf *b = l->head;
    l->head = XNEXT(b);
    l->n--;
    /* relaxed, here and below: xcache_lock orders the writes */
    if (atomic_load_explicit(&nxcache, memory_order_relaxed) < XCACHE_GLOBAL) {
      XNEXT(b) = xcache;
      xcache = b;
      atomic_fetch_add_explicit(&nxcache, 1, memory_order_relaxed);
    } else {
      free(b);
    }
  }
  pthread_mutex_unlock(&xcache_lock);
}

static void xlocal_destroy(void *p) {
  xlocal *l = p;
  xlocal_flush(l, 0);
  free(l);
}

static void xcache_init(void) {
  xcache_ready = pthread_key_create(&xcache_key, xlocal_destroy) == 0;
}

static xlocal *xlocal_get(void) {
  pthread_once(&xcache_once, xcache_init);
  if (!xcache_ready) return NULL;
  xlocal *l = pthread_getspecific(xcache_key);
  if (!l && (l = calloc(1, sizeof *l)) != NULL) pthread_setspecific(xcache_key, l);
  return l;
}

static xbuf *xbuf_alloc(void) {
  xlocal *l = xlocal_get();
  /* relaxed: a hint; the list is read under the lock */
  if (l && !l->head && atomic_load_explicit(&nxcache, memory_order_relaxed) > 0) {
    pthread_mutex_lock(&xcache_lock);
    while (l->n < XCACHE_BATCH && xcache) {
      xbuf *b = xcache;
      xcache = XNEXT(b);
      atomic_fetch_sub_explicit(&nxcache, 1, memory_order_relaxed);
      XNEXT(b) = l->head;
      l->head = b;
      l->n++;
    }
    pthread_mutex_unlock(&xcache_lock);
  }
  if (l && l->head) {
    xbuf *b = l->head;
    l->head = XNEXT(b);
    l->n--;
    return b;
  }
  return malloc(sizeof(xbuf));
}

static void xbuf_recycle(xbuf *b) {
  xlocal *l = xlocal_get();
  if (!l) {
    free(b);
    return;
  }
  XNEXT(b) = l->head;
  l->head = b;
  if (++l->n > XCACHE_LOCAL) xlocal_flush(l, XCACHE_LOCAL - XCACHE_BATCH);
}

/* ------------------------------------------------------------ messages */

xbuf *xbuf_new(lua_State *L) {
  xbuf *b = xbuf_alloc();
  if (!b) luaL_error(L, "goro: out of memory while copying a value");
  b->data = b->inl;
  b->len = 0;
  b->cap = sizeof b->inl;
  b->refs = b->inlrefs;
  b->nrefs = 0;
  b->caprefs = 2;
  b->memlimit = 0;
  b->owner = NULL;
  return b;
}

void xbuf_free(xbuf *b, bool release) {
  if (!b) return;
  if (release) {
    for (int i = 0; i < b->nrefs; i++) {
      uintptr_t r = (uintptr_t)b->refs[i];
      if (r & 1) fnproto_unref((fnproto *)(r & ~(uintptr_t)1));
      else gobj_unref((gobj *)r);
    }
  }
  if (b->refs != b->inlrefs) free(b->refs);
  if (b->data != b->inl) free(b->data);
  xbuf_recycle(b);
}

/* Frees the shared cache (runtime shutdown; threads' lists went with them)
** and the prototypes nobody will release any more. */
void xfer_fini(void) {
  fnproto_fini();
  pthread_once(&xcache_once, xcache_init);
  xlocal *l = xcache_ready ? pthread_getspecific(xcache_key) : NULL;
  if (l) { /* the stopping thread may never exit (the main thread): its
           ** destructor would not run */
    xlocal_flush(l, 0);
    pthread_setspecific(xcache_key, NULL);
    free(l);
  }
  pthread_mutex_lock(&xcache_lock);
  while (xcache) {
    xbuf *b = xcache;
    xcache = XNEXT(b);
    free(b);
  }
  atomic_store_explicit(&nxcache, 0, memory_order_relaxed);
  pthread_mutex_unlock(&xcache_lock);
}
