/*
** chan.h — a channel's insides, shared by chan.c (the channel) and
** select.c (select, which every blocking operation is). See chan.c for the
** invariants and the claim protocol.
*/
#ifndef GORO_CHAN_H
#define GORO_CHAN_H

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
  const char *label;      /* where it was made (goro_chan_set_label); set before it is shared */
  unsigned char buf[];    /* cap * elemsize */
};

/* c->lock held: sg joins the back of its direction's queue. */
static inline void waitq_enqueue(goro_chan *c, sudog *sg) {
  waitq *q = sg->dir == GORO_SEND ? &c->sendq : &c->recvq;
  sg->next = NULL;
  sg->prev = q->last;
  if (q->last) q->last->next = sg;
  else q->first = sg;
  q->last = sg;
  sg->queued = true;
}

/* c->lock held: sg (queued) leaves its queue. */
static inline void waitq_remove(goro_chan *c, sudog *sg) {
  waitq *q = sg->dir == GORO_SEND ? &c->sendq : &c->recvq;
  if (sg->prev) sg->prev->next = sg->next;
  else q->first = sg->next;
  if (sg->next) sg->next->prev = sg->prev;
  else q->last = sg->prev;
  sg->next = sg->prev = NULL;
  sg->queued = false;
}

/* The first caller wins op's outcome (see chan.c). */
static inline bool op_claim(selop *op) {
  uint32_t z = 0;
  /* acq_rel: the winner sees the owner's setup of op (the owner's release
  ** is the channel unlock after enqueueing); losers learn nothing. */
  return atomic_compare_exchange_strong_explicit(&op->done, &z, 1,
                                                 memory_order_acq_rel,
                                                 memory_order_relaxed);
}

/* Wakes the owner of an op we claimed. Nothing touches op afterwards. */
void op_wake(selop *op);

/* c->lock held. 1: sent; 0: would block; -1: closed. *peer: a claimed
** receiver to wake after unlocking. */
int chan_trysend(goro_chan *c, const void *elem, selop **peer);
/* c->lock held. 1: received (*ok says a value or closed); 0: would block. */
int chan_tryrecv(goro_chan *c, void *elem, bool *ok, selop **peer);

/* A channel operation completed (stats). */
static inline void count_op(void) {
  M *m = tls_m;
  if (m && m->p) atomic_fetch_add_explicit(&m->p->chanops, 1, memory_order_relaxed);
  else STAT_ADD(chanops, 1);
}

#endif
