/*
** galloc.c — the allocator of goroutine states (the lua_Alloc's backend).
**
** A goroutine's state is made on the M that first runs it, may migrate
** between Ms, and is freed (or pooled) on whichever M runs its last step:
** with glibc, memory allocated on one thread and freed on another spreads
** over per-thread arenas (100 000 blocked-then-released goroutines, in
** waves, doubled the peak RSS), and every block pays a 16-byte header.
**
** With mimalloc (Debian's libmimalloc-dev, built with -DGORO_MIMALLOC):
** mi_malloc allocates from the calling thread's own heap (size classes, no
** per-object header, no lock), and mi_free from another thread pushes the
** block onto its page's lock-free thread-free list, to be reused by the
** owner: nothing spreads. Only goro's states use it: the rest of the
** process keeps its malloc (the library exports malloc too, but a module
** dlopen'ed RTLD_LOCAL does not interpose it, and we never call it by that
** name).
**
** Plain malloc instead: in sanitizer builds (they must see every
** allocation), under valgrind (spec/valgrind.sh sets GORO_VALGRIND; also
** detected by its preload), and when GORO_ALLOC=malloc; GORO_ALLOC=mimalloc
** forces it (callgrind's instruction counts).
**
** A big state (gstate.c says which: past GSTATE_BIG bytes) allocates from
** malloc instead: mimalloc gives a page back only when the thread that
** made it collects, and the Ms that built a big heap may be idle by the
** time it is freed (8 goroutines that built 2 M tables each left 436 MB
** behind with mimalloc, 12 MB with malloc + malloc_trim). Frees find the
** owner of a block with mi_is_in_heap_region.
**
** galloc_release gives freed memory back to the system (mi_collect, or
** malloc_trim), at most every GALLOC_RELEASE_NS per thread: called by
** gstate.c after it closed a big state, never on the spawn path.
*/
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <malloc.h>

#include "galloc.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#undef GORO_MIMALLOC
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#undef GORO_MIMALLOC
#endif
#endif

#if defined(GORO_MIMALLOC)
#include <mimalloc.h>
#endif

#if !defined(GALLOC_RELEASE_NS)
#define GALLOC_RELEASE_NS 200000000LL /* 0.2 s between two releases per thread */
#endif

/* Written once by galloc_init (under gstate.c's pthread_once, before the
** first state is made); read-only after. */
static bool use_mi;

void galloc_init(void) {
#if defined(GORO_MIMALLOC)
  const char *a = getenv("GORO_ALLOC");
  const char *pre = getenv("LD_PRELOAD");
  if (a && strcmp(a, "mimalloc") == 0) use_mi = true; /* even under valgrind (callgrind) */
  else use_mi = !(a && strcmp(a, "malloc") == 0) && !getenv("GORO_VALGRIND") &&
                !(pre && strstr(pre, "vgpreload"));
#endif
}

const char *galloc_name(void) { return use_mi ? "mimalloc" : "malloc"; }

void *galloc_realloc(void *p, size_t osize, size_t n, bool big) {
#if defined(GORO_MIMALLOC)
  if (use_mi) {
    if (!big) return mi_realloc(p, n);
    if (p && mi_is_in_heap_region(p)) { /* moves to malloc */
      void *q = malloc(n);
      if (!q) return NULL;
      memcpy(q, p, osize < n ? osize : n);
      mi_free(p);
      return q;
    }
  }
#endif
  (void)osize;
  return realloc(p, n);
}

void galloc_free(void *p) {
#if defined(GORO_MIMALLOC)
  if (use_mi && mi_is_in_heap_region(p)) {
    mi_free(p);
    return;
  }
#endif
  free(p);
}

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void galloc_release(bool force) {
  static _Thread_local long long last; /* this thread's last release */
  long long t = now_ns();
  if (!force && t - last < GALLOC_RELEASE_NS) return;
  last = t;
#if defined(GORO_MIMALLOC)
  if (use_mi) mi_collect(true);
#endif
  malloc_trim(0);
}
