/*
** chan.c — Go's channels and select (chan.go, select.go).
**
** A channel is a lock, a ring buffer of cap elements, and two wait queues of
** sudogs (recvq, sendq). Invariants, under c->lock (as in chan.go):
**   - at least one of sendq and recvq is empty, except for sudogs of
**     operations already claimed elsewhere (a select that fired on another
**     channel): those are skipped and dropped by dequeue;
**   - cap > 0 and count < cap  => sendq has no live sudog;
**   - cap > 0 and count > 0    => recvq has no live sudog;
**   - closed => both queues are empty of live sudogs.
**
** Every blocking operation is a select (a send or a recv is a select of one
** case). Its outcome belongs to whoever first CASes op->done from 0 to 1: a
** peer that dequeues one of its sudogs (under that channel's lock), close(),
** the deadline timer, or the waiting thread itself (timeout, deadlock,
** interrupt). The winner writes fired/status/recvok, then wakes the owner
** after dropping the channel lock (Go's goready after unlock). The owner,
** once woken, removes its other sudogs from their queues (selfinish), one
** channel lock at a time: nobody else can fire the operation any more.
**
** Lock order: channel locks by address (sellock), then the scheduler's
** locks. Timer callbacks take channel locks under the timer lock, so no
** timer function is ever called with a channel lock held.
*/
#include <stdlib.h>
#include <string.h>

#include "sched.h"

typedef struct waitq {
  sudog *first, *last;
} waitq;

struct goro_chan {
  lock_t lock;
  _Atomic int refs;       /* owners: the creator and every ref */
  uint32_t elemsize;
  uint32_t cap;
  uint32_t count;         /* lock: elements in buf */
  uint32_t sendx, recvx;  /* lock: ring indices */
  _Atomic bool closed;    /* written under lock; read anywhere as a hint */
  waitq recvq, sendq;     /* lock */
  void (*drop)(void *elem);
  unsigned char buf[];    /* cap * elemsize */
};

/* ------------------------------------------------------------ helpers */

static void enqueue(waitq *q, sudog *sg) {
  sg->next = NULL;
  sg->prev = q->last;
  if (q->last) q->last->next = sg;
  else q->first = sg;
  q->last = sg;
  sg->queued = true;
}

static void unlink_sg(waitq *q, sudog *sg) {
  if (sg->prev) sg->prev->next = sg->next;
  else q->first = sg->next;
  if (sg->next) sg->next->prev = sg->prev;
  else q->last = sg->prev;
  sg->next = sg->prev = NULL;
  sg->queued = false;
}

static bool claim(selop *op) {
  uint32_t z = 0;
  /* acq_rel: the winner sees the owner's setup of op; losers learn nothing. */
  return atomic_compare_exchange_strong_explicit(&op->done, &z, 1,
                                                 memory_order_acq_rel,
                                                 memory_order_relaxed);
}

/* Takes the first sudog whose operation we can claim; drops stale ones. */
static sudog *dequeue(waitq *q) {
  sudog *sg;
  while ((sg = q->first) != NULL) {
    unlink_sg(q, sg);
    if (claim(sg->op)) return sg;
  }
  return NULL;
}

/* Wakes the owner of a claimed op. Nothing touches op afterwards. */
static void opwake(selop *op) {
  goro_g *g = op->g;
  if (g) {
    goro_ready(g);
    return;
  }
  /* a G blocking its thread left the live count: it is back from now on
  ** (before the waiter runs, so the count never reads 0 falsely) */
  if (op->counted) active_add(1);
  /* release: the outcome written before is visible to the waiter. A
  ** syscall only if the waiter sleeps; after the OR we touch only the
  ** address (the waiter may have returned already). */
  if (atomic_fetch_or_explicit(&op->word, OP_READY, memory_order_release) & OP_SLEEPING)
    futex_wake(&op->word, 1);
}

static inline void *slot(goro_chan *c, uint32_t i) {
  return c->buf + (size_t)i * c->elemsize;
}

static inline void count_op(void) {
  M *m = tls_m;
  if (m && m->p) atomic_fetch_add_explicit(&m->p->chanops, 1, memory_order_relaxed);
  else STAT_ADD(c_chanops, 1);
}

/* ------------------------------------------------------------ channel */

goro_chan *goro_chan_new(size_t elemsize, size_t cap, void (*drop)(void *)) {
  if (elemsize == 0 || elemsize > 256 || cap > (1u << 30)) return NULL;
  goro_chan *c = calloc(1, sizeof *c + elemsize * cap);
  if (!c) return NULL;
  lock_init(&c->lock);
  atomic_init(&c->refs, 1);
  c->elemsize = (uint32_t)elemsize;
  c->cap = (uint32_t)cap;
  c->drop = drop;
  return c;
}

void goro_chan_ref(goro_chan *c) {
  /* relaxed: a new reference is made from an existing one. */
  atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

void goro_chan_unref(goro_chan *c) {
  /* acq_rel: the last owner sees every other owner's writes. */
  if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1) return;
  if (c->drop) {
    for (uint32_t i = 0; i < c->count; i++)
      c->drop(slot(c, (c->recvx + i) % c->cap));
  }
  free(c);
}

size_t goro_chan_cap(goro_chan *c) { return c->cap; }

size_t goro_chan_len(goro_chan *c) {
  lock_acquire(&c->lock);
  size_t n = c->count;
  lock_release(&c->lock);
  return n;
}

bool goro_chan_closed(goro_chan *c) {
  return atomic_load_explicit(&c->closed, memory_order_acquire);
}

int goro_chan_close(goro_chan *c) {
  lock_acquire(&c->lock);
  if (atomic_load_explicit(&c->closed, memory_order_relaxed)) {
    lock_release(&c->lock);
    return GORO_ECLOSED;
  }
  atomic_store_explicit(&c->closed, true, memory_order_release);
  sudog *wake = NULL, *sg;
  while ((sg = dequeue(&c->recvq)) != NULL) {
    if (sg->elem) memset(sg->elem, 0, c->elemsize);
    sg->op->fired = sg->idx;
    sg->op->status = GORO_OK;
    sg->op->recvok = false;
    sg->next = wake;
    wake = sg;
  }
  while ((sg = dequeue(&c->sendq)) != NULL) {
    sg->op->fired = sg->idx;
    sg->op->status = GORO_ECLOSED;
    sg->next = wake;
    wake = sg;
  }
  lock_release(&c->lock);
  while (wake) { /* Go's closechan: ready them after unlocking */
    sg = wake;
    wake = sg->next;
    opwake(sg->op);
  }
  return GORO_OK;
}

/* c->lock held. 1: sent; 0: would block; -1: closed. *peer: a claimed
** receiver to wake after unlocking. */
static int trysend(goro_chan *c, const void *elem, selop **peer) {
  if (atomic_load_explicit(&c->closed, memory_order_relaxed)) return -1;
  sudog *sg = dequeue(&c->recvq);
  if (sg) {
    if (sg->elem) memcpy(sg->elem, elem, c->elemsize);
    sg->op->fired = sg->idx;
    sg->op->status = GORO_OK;
    sg->op->recvok = true;
    *peer = sg->op;
    return 1;
  }
  if (c->count < c->cap) {
    memcpy(slot(c, c->sendx), elem, c->elemsize);
    if (++c->sendx == c->cap) c->sendx = 0;
    c->count++;
    return 1;
  }
  return 0;
}

/* c->lock held. 1: received (*ok says a value or closed); 0: would block. */
static int tryrecv(goro_chan *c, void *elem, bool *ok, selop **peer) {
  sudog *sg = dequeue(&c->sendq);
  if (sg) {
    if (c->cap == 0) {
      if (elem) memcpy(elem, sg->elem, c->elemsize);
    } else {
      /* buffer is full: take its head, put the sender's value at the tail */
      if (elem) memcpy(elem, slot(c, c->recvx), c->elemsize);
      memcpy(slot(c, c->recvx), sg->elem, c->elemsize);
      if (++c->recvx == c->cap) c->recvx = 0;
      c->sendx = c->recvx;
    }
    sg->op->fired = sg->idx;
    sg->op->status = GORO_OK;
    *peer = sg->op;
    *ok = true;
    return 1;
  }
  if (c->count > 0) {
    if (elem) memcpy(elem, slot(c, c->recvx), c->elemsize);
    memset(slot(c, c->recvx), 0, c->elemsize);
    if (++c->recvx == c->cap) c->recvx = 0;
    c->count--;
    *ok = true;
    return 1;
  }
  if (atomic_load_explicit(&c->closed, memory_order_relaxed)) {
    if (elem) memset(elem, 0, c->elemsize);
    *ok = false;
    return 1;
  }
  return 0;
}

/* ------------------------------------------------------------ select */

static void sel_timeout(void *arg, int64_t now) {
  goro_g *g = arg;
  selop *op = &g->op;
  if (!claim(op)) return;
  op->fired = -1;
  op->status = GORO_ETIMEDOUT;
  goro_ready(g);
}

/* Removes the op's remaining sudogs (Go's selectgo after wake-up). */
static int selfinish(selop *op, int *index, bool *recvok) {
  for (int k = 0; k < op->n; k++) {
    sudog *sg = &op->sg[k];
    goro_chan *c = sg->c;
    if (k == 0 || op->sg[k - 1].c != c) lock_acquire(&c->lock);
    if (sg->queued) unlink_sg(sg->dir == GORO_SEND ? &c->sendq : &c->recvq, sg);
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
    int idx;
    bool ok;
    selfinish(&g->op, &idx, &ok);
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

static int cmp_sudog(const void *a, const void *b) {
  uintptr_t x = (uintptr_t)((const sudog *)a)->c, y = (uintptr_t)((const sudog *)b)->c;
  return x < y ? -1 : x > y;
}

#define SEL_STACK 8

int goro_select(goro_case *cases, int n, int64_t deadline, int *index,
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
  for (int i = 0; i < n; i++) {
    if (!cases[i].c) continue;
    sgs[k].c = cases[i].c;
    sgs[k].elem = cases[i].elem;
    sgs[k].idx = i;
    sgs[k].dir = cases[i].dir;
    sgs[k].queued = false;
    k++;
  }
  if (nn > 1) qsort(sgs, (size_t)nn, sizeof *sgs, cmp_sudog);
  for (int i = 0; i < nn; i++) { /* Fisher-Yates */
    int j = (int)(selrand() % (uint64_t)(i + 1));
    poll[i] = poll[j];
    poll[j] = i;
  }

  int rc = GORO_OK;
  selop *peer = NULL;
  selop local, *op;
  sellock(sgs, nn);
  /* pass 1: a ready case, in random order */
  for (int pi = 0; pi < nn; pi++) {
    sudog *sg = &sgs[poll[pi]];
    int r;
    if (sg->dir == GORO_SEND) {
      r = trysend(sg->c, sg->elem, &peer);
      if (r < 0) {
        selunlock(sgs, nn);
        *index = sg->idx;
        rc = GORO_ECLOSED;
        goto out;
      }
    } else {
      r = tryrecv(sg->c, sg->elem, recvok, &peer);
    }
    if (r > 0) {
      selunlock(sgs, nn);
      if (peer) opwake(peer);
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
  for (int i = 0; i < nn; i++) {
    sgs[i].op = op;
    enqueue(sgs[i].dir == GORO_SEND ? &sgs[i].c->sendq : &sgs[i].c->recvq, &sgs[i]);
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
  if (g) {
    goro_enter_blocking();
    if (op->counted) active_add(-1);
  }
  ext_wait(op, deadline, g == NULL);
  if (g) goro_exit_blocking();
  rc = selfinish(op, index, recvok);
  if (sgs != stackbuf) free(sgs);
  return rc;

out:
  if (poll != pollstack) free(poll);
  if (sgs != stackbuf && !(parkg && sgs == g->sgbuf)) free(sgs);
  return rc;
}

int goro_chan_send(goro_chan *c, const void *elem, int64_t deadline) {
  if (!c) return GORO_EINVAL;
  goro_case cs = {c, GORO_SEND, (void *)elem};
  int idx;
  int rc = goro_select(&cs, 1, deadline, &idx, NULL);
  return rc;
}

int goro_chan_recv(goro_chan *c, void *elem, bool *ok, int64_t deadline) {
  if (!c) return GORO_EINVAL;
  goro_case cs = {c, GORO_RECV, elem};
  int idx;
  return goro_select(&cs, 1, deadline, &idx, ok);
}

int goro_sleep(int64_t deadline) {
  if (deadline == GORO_FOREVER) return GORO_EINVAL;
  int idx;
  int rc = goro_select(NULL, 0, deadline, &idx, NULL);
  return rc == GORO_ETIMEDOUT ? GORO_OK : rc; /* a parked G gets EPARK */
}
