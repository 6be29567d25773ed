/*
** trace.c — what the core tells about itself: channel labels and the
** waits of parked Gs (for goroutine dumps, lua/ldump.c), and the execution
** trace (trace.h).
**
** Dumps read a G's operation (g->op) from another thread. That is safe
** only while the G's step cannot run: the binding holds the G (its own
** per-goroutine lock, which the G's M holds around every step), and the
** fields read here (op.pending, op.n, sg[i].c, sg[i].dir) are written only
** by the G's own step (select.c), before it returns PARKED and after it is
** resumed. Wakers write other fields (done, fired, status, queued).
*/
#include "sched.h"
#include "chan.h"

void goro_chan_set_label(goro_chan *c, const char *label) { c->label = label; }
const char *goro_chan_label(goro_chan *c) { return c->label; }

const char *goro_g_state(goro_g *g) {
  /* relaxed: a snapshot for people; nothing is ordered by it */
  switch (atomic_load_explicit(&g->status, memory_order_relaxed)) {
  case G_IDLE: return "idle";
  case G_RUNNABLE: return "runnable";
  case G_RUNNING: return "running";
  case G_SYSCALL: return "syscall";
  case G_WAITING: return "waiting";
  default: return "dead";
  }
}

int goro_g_waitchans(goro_g *g, goro_chan **chans, int *dirs, int max) {
  if (!g->op.pending) return 0;
  int k = 0;
  for (int i = 0; i < g->op.n && k < max; i++) {
    goro_chan *c = g->op.sg[i].c;
    if (k > 0 && chans[k - 1] == c && dirs[k - 1] == g->op.sg[i].dir) continue;
    chans[k] = c;
    dirs[k] = g->op.sg[i].dir;
    k++;
  }
  return k;
}
