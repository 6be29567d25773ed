/*
** chan.c — Go's channels (chan.go); select, through which every blocking
** operation goes, is in select.c.
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
** Lock order: channel locks by address (select.c's sellock), then the
** scheduler's locks. Timer callbacks take channel locks under the timer
** lock, so no timer function is ever called with a channel lock held.
*/
#include <stdlib.h>
#include <string.h>

#include "chan.h"

/* ------------------------------------------------------------ helpers */

/* Takes the first sudog whose operation we can claim; drops stale ones. */
static sudog *dequeue(goro_chan *c, waitq *q) {
  sudog *sg;
  while ((sg = q->first) != NULL) {
    waitq_remove(c, sg);
    if (op_claim(sg->op)) return sg;
  }
  return NULL;
}

void op_wake(selop *op) {
  goro_g *g = op->g;
  if (g) {
    goready(g);
    return;
  }
  /* a G blocking its thread left the live count: it is back from now on
  ** (before the waiter runs, so the count never reads 0 falsely) */
  if (op->counted) active_add(1);
  /* release: the outcome written before is visible to the waiter. A
  ** syscall only if the waiter sleeps; after the OR we touch only the
  ** address (the waiter may have returned already). */
  if (atomic_fetch_or_explicit(&op->word, OP_READY, memory_order_release) & OP_SLEEPING)
    wait_wake(&op->word, false);
}

static inline void *slot(goro_chan *c, uint32_t i) {
  return c->buf + (size_t)i * c->elemsize;
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
  /* acquire: pairs with the release store in goro_chan_close. */
  return atomic_load_explicit(&c->closed, memory_order_acquire);
}

int goro_chan_close(goro_chan *c) {
  lock_acquire(&c->lock);
  if (atomic_load_explicit(&c->closed, memory_order_relaxed)) {
    lock_release(&c->lock);
    return GORO_ECLOSED;
  }
  /* release: a lock-free reader (goro_chan_closed) that sees it closed
  ** sees what the closer wrote before. */
  atomic_store_explicit(&c->closed, true, memory_order_release);
  sudog *wake = NULL, *sg;
  while ((sg = dequeue(c, &c->recvq)) != NULL) {
    if (sg->elem) memset(sg->elem, 0, c->elemsize);
    sg->op->fired = sg->idx;
    sg->op->status = GORO_OK;
    sg->op->recvok = false;
    sg->next = wake;
    wake = sg;
  }
  while ((sg = dequeue(c, &c->sendq)) != NULL) {
    sg->op->fired = sg->idx;
    sg->op->status = GORO_ECLOSED;
    sg->next = wake;
    wake = sg;
  }
  lock_release(&c->lock);
  while (wake) { /* Go's closechan: ready them after unlocking */
    sg = wake;
    wake = sg->next;
    op_wake(sg->op);
  }
  return GORO_OK;
}

int chan_trysend(goro_chan *c, const void *elem, selop **peer) {
  if (atomic_load_explicit(&c->closed, memory_order_relaxed)) return -1;
  sudog *sg = dequeue(c, &c->recvq);
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

int chan_tryrecv(goro_chan *c, void *elem, bool *ok, selop **peer) {
  sudog *sg = dequeue(c, &c->sendq);
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

/* A send or a receive is a select of one case. */

int goro_chan_send(goro_chan *c, const void *elem, int64_t deadline) {
  if (!c) return GORO_EINVAL;
  goro_case cs = {c, GORO_SEND, (void *)elem};
  return goro_select(&cs, 1, deadline, NULL, NULL);
}

int goro_chan_recv(goro_chan *c, void *elem, bool *ok, int64_t deadline) {
  if (!c) return GORO_EINVAL;
  goro_case cs = {c, GORO_RECV, elem};
  return goro_select(&cs, 1, deadline, NULL, ok);
}
