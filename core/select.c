/*
** select.c — Go's select (select.go); a send, a receive and a sleep are
** selects of one case or none.
**
** goro_select(cases, n, deadline):
**   1. The non-nil cases become sudogs, sorted by channel address: the lock
**      order (sellock takes each distinct channel's lock once, in that
**      order), so two selects over the same channels cannot deadlock.
**   2. Pass 1, every lock held: poll the cases in a random order (Go's
**      pollorder, a Fisher-Yates shuffle) and complete the first ready one,
**      so ready cases are chosen uniformly. Deadline GORO_NOW stops here.
**   3. Pass 2, locks still held: enqueue a sudog on every channel, then
**      unlock. From here the op's outcome belongs to whoever claims it
**      (chan.c): a peer, close(), the deadline timer, the waiting thread.
**   4. A G parks (GORO_EPARK; the step returns, and goro_select_finish
**      collects the outcome); a thread waits in park.c's ext_wait. Then
**      selfinish unlinks the sudogs still queued, one channel lock at a
**      time: the op is claimed, nobody can fire it any more.
** One non-nil case (every send and receive) skips the sort and the poll
** order: its one lock is taken, the case tried, and pass 2 entered under
** that lock if it must wait (Go has chansend/chanrecv for the same reason).
** The sudogs of a G's select live in the G (up to SEL_INLINE), so a park
** allocates nothing.
*/
#include <stdlib.h>
#include <string.h>

#include "chan.h"

static void sel_timeout(void *arg, int64_t now) {
  goro_g *g = arg;
  selop *op = &g->op;
  if (!op_claim(op)) return;
  op->fired = -1;
  op->status = GORO_ETIMEDOUT;
  goready(g);
}

/* Removes the op's remaining sudogs (Go's selectgo after wake-up). */
static int selfinish(selop *op, int *index, bool *recvok) {
  for (int k = 0; k < op->n; k++) {
    sudog *sg = &op->sg[k];
    goro_chan *c = sg->c;
    if (k == 0 || op->sg[k - 1].c != c) lock_acquire(&c->lock);
    if (sg->queued) waitq_remove(c, sg);
    if (k == op->n - 1 || op->sg[k + 1].c != c) lock_release(&c->lock);
  }
  if (op->timer) {
    goro_timer_free(op->timer);
    op->timer = NULL;
  }
  if (index) *index = op->fired;
  if (recvok) *recvok = op->recvok;
  if (op->status == GORO_OK) count_op();
  return op->status;
}

int goro_select_finish(int *index, bool *recvok) {
  goro_g *g = goro_self();
  if (!g || !g->op.pending) return GORO_EINVAL;
  selop *op = &g->op;
  int rc = selfinish(op, index, recvok);
  op->pending = false;
  if (g->sgheap) {
    free(g->sgheap);
    g->sgheap = NULL;
  }
  return rc;
}

int goro_op_outcome(goro_g *g, int *index) {
  if (index) *index = g->op.fired;
  return g->op.fired == -2 ? GORO_EAGAIN : g->op.status;
}

/* Called by goro_stop for a G parked forever: unlink its sudogs. */
void select_cancel_all(goro_g *g) {
  if (g->op.pending) {
    selfinish(&g->op, NULL, NULL);
    g->op.pending = false;
  }
}

static void sellock(sudog *sgs, int n) {
  for (int k = 0; k < n; k++)
    if (k == 0 || sgs[k - 1].c != sgs[k].c) lock_acquire(&sgs[k].c->lock);
}

static void selunlock(sudog *sgs, int n) {
  for (int k = 0; k < n; k++)
    if (k == n - 1 || sgs[k + 1].c != sgs[k].c) lock_release(&sgs[k].c->lock);
}

static _Thread_local uint64_t tls_rand;

static uint64_t selrand(void) {
  if (tls_rand == 0) tls_rand = (uint64_t)goro_now() * 0x9E3779B97F4A7C15ULL | 1;
  return fastrand(&tls_rand);
}

static void sg_init(sudog *sg, const goro_case *cs, int idx) {
  sg->c = cs->c;
  sg->elem = cs->elem;
  sg->idx = idx;
  sg->dir = cs->dir;
  sg->queued = false;
}

/* sg's channel locked: completes its case if it is ready (1), or fails a
** send on a closed channel (-1); 0: it would block. A peer it took from a
** wait queue is left in *peer, to be woken after the unlock. */
static int sg_try(sudog *sg, bool *recvok, selop **peer) {
  return sg->dir == GORO_SEND ? chan_trysend(sg->c, sg->elem, peer)
                              : chan_tryrecv(sg->c, sg->elem, recvok, peer);
}

static int cmp_sudog(const void *a, const void *b) {
  uintptr_t x = (uintptr_t)((const sudog *)a)->c, y = (uintptr_t)((const sudog *)b)->c;
  return x < y ? -1 : x > y;
}

#define SEL_STACK 8

static int selectgo(goro_case *cases, int n, int64_t deadline, int *index,
                    bool *recvok) {
  if (n < 0 || (n > 0 && !cases)) return GORO_EINVAL;
  goro_g *g = goro_self();
  if (g && g->op.pending) return GORO_EINVAL; /* finish the last one first */
  bool okbuf;
  if (!recvok) recvok = &okbuf;
  int idxbuf;
  if (!index) index = &idxbuf;
  *recvok = false;
  *index = -1;

  /* Sudogs in lock order (by channel address); pass 1 polls them in a
  ** random order, as Go's pollorder. */
  int nn = 0;
  for (int i = 0; i < n; i++) {
    if (!cases[i].c) continue;
    if (cases[i].dir != GORO_SEND && cases[i].dir != GORO_RECV) return GORO_EINVAL;
    nn++;
  }
  bool parkg = g && !g->nopark && deadline != GORO_NOW;
  sudog stackbuf[SEL_STACK];
  int pollstack[SEL_STACK];
  sudog *sgs = stackbuf;
  int *poll = pollstack;
  int rc = GORO_OK;
  selop *peer = NULL;
  selop local, *op;
  if (nn == 1) { /* one channel (a send, a receive): no sort, no poll order */
    int i = 0;
    while (!cases[i].c) i++;
    if (parkg) sgs = g->sgbuf;
    sudog *sg = &sgs[0];
    sg_init(sg, &cases[i], i);
    lock_acquire(&sg->c->lock);
    int r = sg_try(sg, recvok, &peer);
    if (r == 0 && deadline != GORO_NOW) goto pass2; /* the lock still held */
    lock_release(&sg->c->lock);
    if (r == 0) return GORO_EAGAIN;
    *index = i;
    if (r < 0) return GORO_ECLOSED;
    if (peer) op_wake(peer);
    count_op();
    return GORO_OK;
  }
  if (parkg) sgs = nn <= SEL_INLINE ? g->sgbuf : NULL;
  if (!sgs || nn > SEL_STACK) {
    sgs = malloc(sizeof *sgs * (size_t)(nn ? nn : 1));
    if (!sgs) return GORO_ENOMEM;
  }
  if (nn > SEL_STACK) {
    poll = malloc(sizeof *poll * (size_t)nn);
    if (!poll) {
      if (sgs != stackbuf && !(parkg && sgs == g->sgbuf)) free(sgs);
      return GORO_ENOMEM;
    }
  }
  int k = 0;
  for (int i = 0; i < n; i++)
    if (cases[i].c) sg_init(&sgs[k++], &cases[i], i);
  if (nn > 1) qsort(sgs, (size_t)nn, sizeof *sgs, cmp_sudog);
  poll[0] = 0;
  for (int i = 1; i < nn; i++) { /* Fisher-Yates (one case: no draw) */
    int j = (int)(selrand() % (uint64_t)(i + 1));
    poll[i] = poll[j];
    poll[j] = i;
  }

  sellock(sgs, nn);
  /* pass 1: a ready case, in random order */
  for (int pi = 0; pi < nn; pi++) {
    sudog *sg = &sgs[poll[pi]];
    int r = sg_try(sg, recvok, &peer);
    if (r < 0) {
      selunlock(sgs, nn);
      *index = sg->idx;
      rc = GORO_ECLOSED;
      goto out;
    }
    if (r > 0) {
      selunlock(sgs, nn);
      if (peer) op_wake(peer);
      *index = sg->idx;
      count_op();
      goto out;
    }
  }
  if (deadline == GORO_NOW) {
    selunlock(sgs, nn);
    rc = GORO_EAGAIN;
    goto out;
  }
  /* pass 2: enqueue on every channel, then wait */
pass2:
  op = parkg ? &g->op : &local;
  atomic_store_explicit(&op->done, 0, memory_order_relaxed);
  atomic_store_explicit(&op->word, 0, memory_order_relaxed);
  op->fired = -2;
  op->status = GORO_OK;
  op->recvok = false;
  op->g = parkg ? g : NULL;
  /* a G waiting forever on its thread can be part of a deadlock; one with
  ** a deadline comes back by itself (it stays live, like a timer) */
  op->counted = g != NULL && !parkg && deadline == GORO_FOREVER;
  op->sg = sgs;
  op->n = nn;
  op->timer = NULL;
  op->extnext = NULL;
  if (parkg) TRACE_BLOCK(g, nn, nn ? sgs[0].dir : 0); /* before a waker can dequeue */
  for (int i = 0; i < nn; i++) {
    sgs[i].op = op;
    waitq_enqueue(sgs[i].c, &sgs[i]);
  }
  selunlock(sgs, nn);
  if (poll != pollstack) free(poll);
  if (parkg) {
    if (sgs != g->sgbuf) g->sgheap = sgs;
    if (deadline > 0) op->timer = goro_timer_new(deadline, 0, sel_timeout, g);
    op->pending = true;
    return GORO_EPARK;
  }
  /* a thread waits: an outside thread, or a G that must not park. Such a G
  ** waits like a parked one for deadlock detection: it leaves the live
  ** count, and whoever claims its operation puts it back. */
  M *m = g && op->counted ? tls_m : NULL; /* blocked forever unless a peer comes */
  if (g) {
    goro_enter_blocking();
    if (op->counted) active_add(-1);
  }
  /* relaxed: a hint for sysmon's check_stuck, which waits a second on it */
  if (m) atomic_store_explicit(&m->chanwait, true, memory_order_relaxed);
  ext_wait(op, deadline, g == NULL);
  if (m) atomic_store_explicit(&m->chanwait, false, memory_order_relaxed);
  if (g) goro_exit_blocking();
  rc = selfinish(op, index, recvok);
  if (sgs != stackbuf) free(sgs);
  return rc;

out:
  if (poll != pollstack) free(poll);
  if (sgs != stackbuf && !(parkg && sgs == g->sgbuf)) free(sgs);
  return rc;
}

/* The main thread runs it with the P it keeps between operations (park.c),
** so the Gs it readies go to that P and run on its thread when it waits. */
int goro_select(goro_case *cases, int n, int64_t deadline, int *index,
                bool *recvok) {
  M *om = outside_enter();
  int rc = selectgo(cases, n, deadline, index, recvok);
  outside_leave(om);
  return rc;
}

int goro_sleep(int64_t deadline) {
  if (deadline == GORO_FOREVER) return GORO_EINVAL;
  int rc = goro_select(NULL, 0, deadline, NULL, NULL);
  return rc == GORO_ETIMEDOUT ? GORO_OK : rc; /* a parked G gets EPARK */
}
