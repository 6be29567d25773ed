/*
** trace.h — the execution trace (trace.c): Chrome trace-event JSON, one
** track per P, one per M without a P, one for the main state. Off by
** default: every hook is one predictable branch on trace_on.
*/
#ifndef GORO_TRACE_H
#define GORO_TRACE_H

#include <stdatomic.h>
#include <stdint.h>

#include "goro.h"

typedef struct P P;
typedef struct M M;

/* 1 while a trace is being written (relaxed reads: a hook that sees it a
** little late or early only loses or adds one event). */
extern _Atomic int trace_on;

#define TRACING() __builtin_expect(atomic_load_explicit(&trace_on, memory_order_relaxed), 0)

/* goro_get_stats' counters (sched.h's STAT_ADD) as trace events. */
enum { STAT_spawned, STAT_steals, STAT_globalgets, STAT_mstarts, STAT_mparks,
       STAT_handoffs, STAT_chanops, STAT_preempt, STAT_retake };

/* Per-P figures for go.stats (always on; relaxed adds on the P's own slots). */
void trace_pstat(int kind);
void trace_stat(int kind);
static inline void stat_hook(int kind) {
  if (kind == STAT_steals || kind == STAT_handoffs) trace_pstat(kind);
  if (TRACING()) trace_stat(kind);
}

/* The hooks (call them as TRACE_X(...): nothing happens when off). */
void trace_run_begin(M *m, P *p, goro_g *g);
void trace_run_end(M *m, P *p, goro_g *g, int result);
void trace_block(goro_g *g, int n, int dir);
void trace_unblock(goro_g *g);
void trace_spawn(goro_g *g);
const char *trace_take_name(void); /* goro_trace_name's, once */
#define TRACE_RUN_BEGIN(m, p, g) do { if (TRACING()) trace_run_begin(m, p, g); } while (0)
#define TRACE_RUN_END(m, p, g, r) do { if (TRACING()) trace_run_end(m, p, g, (int)(r)); } while (0)
#define TRACE_BLOCK(g, n, dir) do { if (TRACING()) trace_block(g, n, dir); } while (0)
#define TRACE_UNBLOCK(g) do { if (TRACING()) trace_unblock(g); } while (0)
#define TRACE_SPAWN(g) do { if (TRACING()) trace_spawn(g); } while (0)

#endif
