/*
** test_chan.c — Go's channel rules: unbuffered rendezvous (G/G, G/outside),
** buffered FIFO, len/cap, tries with GORO_NOW, close (wakes receivers and
** senders, send on closed, double close, drain then zero value), deadlines
** from outside and from a G, large elements, refcounts and the drop callback.
*/
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "goro.h"
#include "gop.h"
#include "tap.h"

#define NSTREAM 2000 /* values per producer/consumer stream */
#define NWAITERS 8

static void noop_timer(void *arg, int64_t now) {}

/* While a guard timer is pending, no outside wait may be declared a deadlock:
** the timeout tests then test timeouts only. */
static goro_timer *guard_on(void) { return goro_timer_new(goro_now() + MS(3600000), 0, noop_timer, NULL); }

/* ------------------------------------------------ a stream between two Gs */

typedef struct {
  goro_chan *c;
  uint64_t v;
  bool okv;
  uint64_t next;    /* producer: next value to send; consumer: next expected */
  int phase;
  int errors;       /* wrong value, wrong order or wrong status */
  atomic_int count; /* values received */
} stream;

static goro_step producer_step(goro_g *g, void *ud) {
  stream *s = ud;
  int idx;
  bool okv;
  if (s->phase == 1) {
    s->phase = 0;
    if (goro_select_finish(&idx, &okv) != GORO_OK) s->errors++;
    s->next++;
  }
  while (s->next <= NSTREAM) {
    s->v = s->next;
    int rc = goro_chan_send(s->c, &s->v, GORO_FOREVER);
    if (rc == GORO_EPARK) {
      s->phase = 1;
      return GORO_STEP_PARKED;
    }
    if (rc != GORO_OK) s->errors++;
    s->next++;
  }
  goro_chan_close(s->c);
  return GORO_STEP_DONE;
}

static void consumer_got(stream *s, int rc, bool okv) {
  if (rc != GORO_OK) s->errors++;
  if (!okv) return;
  if (s->v != s->next) s->errors++;
  s->next++;
  atomic_fetch_add(&s->count, 1);
}

static goro_step consumer_step(goro_g *g, void *ud) {
  stream *s = ud;
  int idx;
  bool okv;
  if (s->phase == 1) {
    s->phase = 0;
    int rc = goro_select_finish(&idx, &okv);
    consumer_got(s, rc, okv);
    if (!okv) return GORO_STEP_DONE;
  }
  for (;;) {
    s->v = 0;
    int rc = goro_chan_recv(s->c, &s->v, &s->okv, GORO_FOREVER);
    if (rc == GORO_EPARK) {
      s->phase = 1;
      return GORO_STEP_PARKED;
    }
    consumer_got(s, rc, s->okv);
    if (!s->okv) return GORO_STEP_DONE;
  }
}

static void stream_test(int nprocs, size_t cap) {
  goro_start(nprocs, NULL);
  stream p, q;
  memset(&p, 0, sizeof p);
  memset(&q, 0, sizeof q);
  p.c = q.c = goro_chan_new(sizeof(uint64_t), cap, NULL);
  p.next = q.next = 1;
  atomic_init(&p.count, 0);
  atomic_init(&q.count, 0);
  spawn(consumer_step, &q);
  spawn(producer_step, &p);
  int rc = settle();
  ok(rc == GORO_OK && p.errors == 0 && q.errors == 0 && atomic_load(&q.count) == NSTREAM,
     "P=%d cap=%zu: %d values from G to G arrive once each, in order (rc %d, errors %d/%d, got %d)",
     nprocs, cap, NSTREAM, rc, p.errors, q.errors, atomic_load(&q.count));
  goro_chan_unref(p.c);
  goro_stop(MS(5000));
}

/* ------------------------------------------------ basics from outside */

static void basic_tests(void) {
  goro_chan *u = goro_chan_new(sizeof(int), 0, NULL);
  goro_chan *b = goro_chan_new(sizeof(int), 16, NULL);
  ok(u && goro_chan_cap(u) == 0 && goro_chan_len(u) == 0 && !goro_chan_closed(u),
     "unbuffered channel: cap 0, len 0, open");
  ok(b && goro_chan_cap(b) == 16 && goro_chan_len(b) == 0, "buffered channel: cap 16, len 0");

  int v = 7, r = -1;
  bool okv = true;
  ok(goro_chan_send(u, &v, GORO_NOW) == GORO_EAGAIN, "try send on unbuffered with no receiver: GORO_EAGAIN");
  ok(goro_chan_recv(u, &r, &okv, GORO_NOW) == GORO_EAGAIN, "try recv on unbuffered with no sender: GORO_EAGAIN");
  ok(goro_chan_recv(b, &r, &okv, GORO_NOW) == GORO_EAGAIN, "try recv on empty buffered: GORO_EAGAIN");

  int sent = 0;
  for (int i = 0; i < 16; i++) sent += goro_chan_send(b, &i, GORO_NOW) == GORO_OK;
  ok(sent == 16 && goro_chan_len(b) == 16, "16 sends fill a cap-16 buffer without blocking (len %zu)",
     goro_chan_len(b));
  v = 99;
  ok(goro_chan_send(b, &v, GORO_NOW) == GORO_EAGAIN && goro_chan_len(b) == 16,
     "try send on a full buffer: GORO_EAGAIN, len unchanged");
  int inorder = 1;
  for (int i = 0; i < 8; i++) {
    r = -1;
    okv = false;
    inorder &= goro_chan_recv(b, &r, &okv, GORO_FOREVER) == GORO_OK && okv && r == i;
  }
  ok(goro_chan_len(b) == 8, "len counts buffered values (%zu)", goro_chan_len(b));
  for (int i = 16; i < 24; i++) goro_chan_send(b, &i, GORO_NOW); /* wraps the ring */
  for (int i = 8; i < 24; i++) {
    r = -1;
    okv = false;
    inorder &= goro_chan_recv(b, &r, &okv, GORO_FOREVER) == GORO_OK && okv && r == i;
  }
  ok(inorder, "a buffered channel is FIFO, also across the ring's wrap");
  ok(goro_chan_recv(b, &r, &okv, GORO_NOW) == GORO_EAGAIN && goro_chan_len(b) == 0,
     "drained buffer: try recv is GORO_EAGAIN again");

  /* closed channels */
  goro_chan *c = goro_chan_new(sizeof(uint64_t), 4, NULL);
  uint64_t x;
  for (x = 11; x <= 33; x += 11) goro_chan_send(c, &x, GORO_NOW);
  ok(goro_chan_close(c) == GORO_OK && goro_chan_closed(c), "close of an open channel: GORO_OK");
  ok(goro_chan_close(c) == GORO_ECLOSED, "close of a closed channel: GORO_ECLOSED");
  x = 44;
  ok(goro_chan_send(c, &x, GORO_NOW) == GORO_ECLOSED, "try send on closed: GORO_ECLOSED");
  ok(goro_chan_send(c, &x, GORO_FOREVER) == GORO_ECLOSED, "send on closed (forever): GORO_ECLOSED, no block");
  ok(goro_chan_len(c) == 3, "closing keeps the buffered values (len %zu)", goro_chan_len(c));
  int drained = 1;
  for (uint64_t want = 11; want <= 33; want += 11) {
    x = 0;
    okv = false;
    drained &= goro_chan_recv(c, &x, &okv, GORO_FOREVER) == GORO_OK && okv && x == want;
  }
  ok(drained, "recv from a closed buffered channel drains the remaining values in order first");
  x = UINT64_MAX;
  okv = true;
  int rc = goro_chan_recv(c, &x, &okv, GORO_FOREVER);
  ok(rc == GORO_OK && !okv && x == 0, "then recv gives GORO_OK, ok=false and a zeroed elem (rc %d)", rc);
  x = UINT64_MAX;
  okv = true;
  rc = goro_chan_recv(c, &x, &okv, GORO_NOW);
  ok(rc == GORO_OK && !okv && x == 0, "try recv on closed+drained: GORO_OK, ok=false (not EAGAIN)");
  int ux = 5;
  goro_chan_close(u);
  ok(goro_chan_send(u, &ux, GORO_NOW) == GORO_ECLOSED, "send on a closed unbuffered channel: GORO_ECLOSED");
  ux = -1;
  okv = true;
  ok(goro_chan_recv(u, &ux, &okv, GORO_FOREVER) == GORO_OK && !okv && ux == 0,
     "recv on a closed unbuffered channel: ok=false, zeroed");
  goro_chan_unref(c);
  goro_chan_unref(u);
  goro_chan_unref(b);
}

/* ------------------------------------------------ rendezvous with Gs */

static void rendezvous_tests(int nprocs) {
  goro_start(nprocs, NULL);
  goro_chan *u = goro_chan_new(sizeof(uint64_t), 0, NULL);

  /* outside sends, a G receives 50 ms later */
  gop r;
  gop_init(&r, GOP_RECV, u, 0, GORO_FOREVER);
  r.delay_ns = MS(50);
  int64_t t0 = goro_now();
  spawn(gop_step, &r);
  uint64_t v = 0x1234;
  int rc = goro_chan_send(u, &v, GORO_FOREVER);
  int64_t t1 = goro_now();
  int wrc = settle();
  ok(rc == GORO_OK && wrc == GORO_OK && r.rc == GORO_OK && r.okv && r.val == 0x1234,
     "P=%d: outside send -> G recv on unbuffered delivers the value (send %d, recv %d)", nprocs, rc, r.rc);
  ok(t1 >= r.t_start && t1 - t0 >= MS(50),
     "P=%d: the outside send returned only after the G started receiving (%.1f ms)", nprocs,
     (double)(t1 - t0) / 1e6);

  /* a G sends, the outside receives */
  gop s;
  gop_init(&s, GOP_SEND, u, 0xabcd, GORO_FOREVER);
  s.delay_ns = MS(20);
  spawn(gop_step, &s);
  v = 0;
  bool okv = false;
  rc = goro_chan_recv(u, &v, &okv, after_ms(10000));
  wrc = settle();
  ok(rc == GORO_OK && okv && v == 0xabcd && wrc == GORO_OK && s.rc == GORO_OK,
     "P=%d: G send -> outside recv on unbuffered (recv %d, send %d)", nprocs, rc, s.rc);

  /* G to G: the send completes only after the receiver started */
  gop a, b;
  gop_init(&a, GOP_SEND, u, 77, GORO_FOREVER);
  gop_init(&b, GOP_RECV, u, 0, GORO_FOREVER);
  b.delay_ns = MS(100);
  spawn(gop_step, &a);
  spawn(gop_step, &b);
  wrc = settle();
  ok(wrc == GORO_OK && a.rc == GORO_OK && b.rc == GORO_OK && b.okv && b.val == 77,
     "P=%d: G send -> G recv on unbuffered delivers the value", nprocs);
  ok(a.parked && a.t_end >= b.t_start,
     "P=%d: the G sender parked until the receiver arrived (parked %d)", nprocs, a.parked);

  /* a G's try ops never park */
  gop t1g, t2g;
  gop_init(&t1g, GOP_RECV, u, 5, GORO_NOW);
  gop_init(&t2g, GOP_SEND, u, 5, GORO_NOW);
  spawn(gop_step, &t1g);
  spawn(gop_step, &t2g);
  wrc = settle();
  ok(wrc == GORO_OK && !t1g.parked && !t2g.parked && t1g.rc == GORO_EAGAIN && t2g.rc == GORO_EAGAIN,
     "P=%d: in a G, GORO_NOW ops with nobody waiting answer GORO_EAGAIN without parking (%d, %d)",
     nprocs, t1g.rc, t2g.rc);

  /* a try send meets a parked receiver */
  gop pr;
  gop_init(&pr, GOP_RECV, u, 0, GORO_FOREVER);
  spawn(gop_step, &pr);
  wrc = settle(); /* returns when the receiver parked */
  v = 4242;
  rc = goro_chan_send(u, &v, GORO_NOW);
  int wrc2 = settle();
  ok(wrc == GORO_EDEADLOCK && rc == GORO_OK && wrc2 == GORO_OK && pr.okv && pr.val == 4242,
     "P=%d: a try send (GORO_NOW) hands over to a parked receiver (%d %d %d)", nprocs, wrc, rc, wrc2);

  /* a try recv meets a parked sender */
  gop ps;
  gop_init(&ps, GOP_SEND, u, 4343, GORO_FOREVER);
  spawn(gop_step, &ps);
  wrc = settle();
  v = 0;
  okv = false;
  rc = goro_chan_recv(u, &v, &okv, GORO_NOW);
  wrc2 = settle();
  ok(wrc == GORO_EDEADLOCK && rc == GORO_OK && okv && v == 4343 && wrc2 == GORO_OK && ps.rc == GORO_OK,
     "P=%d: a try recv (GORO_NOW) takes from a parked sender (%d %d %d)", nprocs, wrc, rc, wrc2);

  goro_chan_unref(u);
  goro_stop(MS(5000));
}

/* ------------------------------------------------ close wakes everybody */

static void close_tests(int nprocs) {
  goro_start(nprocs, NULL);
  gop w[NWAITERS];

  goro_chan *c = goro_chan_new(sizeof(uint64_t), 0, NULL);
  for (int i = 0; i < NWAITERS; i++) {
    gop_init(&w[i], GOP_RECV, c, 0xdeadbeef, GORO_FOREVER);
    spawn(gop_step, &w[i]);
  }
  int wrc = settle();
  ok(wrc == GORO_EDEADLOCK, "P=%d: %d receivers park on an unbuffered channel (%d)", nprocs, NWAITERS, wrc);
  goro_chan_close(c);
  wrc = settle();
  int good = 0;
  for (int i = 0; i < NWAITERS; i++) good += w[i].rc == GORO_OK && !w[i].okv && w[i].val == 0 && w[i].parked;
  ok(wrc == GORO_OK && good == NWAITERS,
     "P=%d: close wakes every parked receiver with ok=false and a zeroed elem (%d/%d)", nprocs, good, NWAITERS);
  goro_chan_unref(c);

  c = goro_chan_new(sizeof(uint64_t), 0, NULL);
  for (int i = 0; i < NWAITERS; i++) {
    gop_init(&w[i], GOP_SEND, c, (uint64_t)i, GORO_FOREVER);
    spawn(gop_step, &w[i]);
  }
  wrc = settle();
  goro_chan_close(c);
  int wrc2 = settle();
  good = 0;
  for (int i = 0; i < NWAITERS; i++) good += w[i].rc == GORO_ECLOSED && w[i].parked;
  ok(wrc == GORO_EDEADLOCK && wrc2 == GORO_OK && good == NWAITERS,
     "P=%d: close makes every parked sender fail with GORO_ECLOSED (%d/%d)", nprocs, good, NWAITERS);
  goro_chan_unref(c);

  /* a full buffered channel: the senders fail, the buffered value stays */
  c = goro_chan_new(sizeof(uint64_t), 1, NULL);
  uint64_t v = 500;
  goro_chan_send(c, &v, GORO_NOW);
  for (int i = 0; i < 3; i++) {
    gop_init(&w[i], GOP_SEND, c, (uint64_t)i, GORO_FOREVER);
    spawn(gop_step, &w[i]);
  }
  wrc = settle();
  goro_chan_close(c);
  wrc2 = settle();
  good = 0;
  for (int i = 0; i < 3; i++) good += w[i].rc == GORO_ECLOSED;
  bool okv = false;
  v = 0;
  int rc = goro_chan_recv(c, &v, &okv, GORO_NOW);
  bool ok2 = true;
  uint64_t v2 = 1;
  int rc2 = goro_chan_recv(c, &v2, &ok2, GORO_NOW);
  ok(wrc == GORO_EDEADLOCK && wrc2 == GORO_OK && good == 3 && rc == GORO_OK && okv && v == 500 &&
         rc2 == GORO_OK && !ok2 && v2 == 0,
     "P=%d: closing a full buffer fails its blocked senders; the buffered value is still received",
     nprocs);
  goro_chan_unref(c);

  /* a G sends on a closed channel; a G receives from one without parking */
  c = goro_chan_new(sizeof(uint64_t), 2, NULL);
  goro_chan_close(c);
  gop_init(&w[0], GOP_SEND, c, 1, GORO_FOREVER);
  gop_init(&w[1], GOP_RECV, c, 9, GORO_FOREVER);
  spawn(gop_step, &w[0]);
  spawn(gop_step, &w[1]);
  wrc = settle();
  ok(wrc == GORO_OK && w[0].rc == GORO_ECLOSED && !w[0].parked && w[1].rc == GORO_OK && !w[1].okv &&
         w[1].val == 0 && !w[1].parked,
     "P=%d: in a G, send on closed is GORO_ECLOSED and recv on closed is ok=false, without parking",
     nprocs);
  goro_chan_unref(c);
  goro_stop(MS(5000));
}

/* ------------------------------------------------ deadlines */

static void deadline_tests(void) {
  goro_start(2, NULL);
  goro_timer *guard = guard_on();
  goro_chan *u = goro_chan_new(sizeof(uint64_t), 0, NULL);
  goro_chan *b = goro_chan_new(sizeof(uint64_t), 2, NULL);
  uint64_t v = 0;
  bool okv = true;

  int64_t dl = after_ms(50);
  int rc = goro_chan_recv(u, &v, &okv, dl);
  int64_t t = goro_now();
  ok(rc == GORO_ETIMEDOUT && t >= dl, "outside recv with a deadline: GORO_ETIMEDOUT, not before it (%d, %+.1f ms)",
     rc, (double)(t - dl) / 1e6);
  dl = after_ms(30);
  v = 1;
  rc = goro_chan_send(u, &v, dl);
  t = goro_now();
  ok(rc == GORO_ETIMEDOUT && t >= dl, "outside send on unbuffered with a deadline: GORO_ETIMEDOUT (%d)", rc);
  goro_chan_send(b, &v, GORO_NOW);
  goro_chan_send(b, &v, GORO_NOW);
  dl = after_ms(30);
  rc = goro_chan_send(b, &v, dl);
  t = goro_now();
  ok(rc == GORO_ETIMEDOUT && t >= dl && goro_chan_len(b) == 2,
     "outside send on a full buffer with a deadline: GORO_ETIMEDOUT, len unchanged (%d)", rc);
  goro_timer_free(guard);

  gop r, s;
  gop_init(&r, GOP_RECV, u, 3, MS(40));
  gop_init(&s, GOP_SEND, b, 4, MS(40));
  spawn(gop_step, &r);
  spawn(gop_step, &s);
  int wrc = settle();
  ok(wrc == GORO_OK, "a G waiting with a deadline is not a deadlock: wait_all is GORO_OK (%d)", wrc);
  ok(r.parked && r.rc == GORO_ETIMEDOUT && r.t_end - r.t_start >= MS(40),
     "G recv with a deadline parks, finish gives GORO_ETIMEDOUT (%d) after %.1f ms", r.rc,
     (double)(r.t_end - r.t_start) / 1e6);
  ok(s.parked && s.rc == GORO_ETIMEDOUT && s.t_end - s.t_start >= MS(40),
     "G send on a full buffer with a deadline: GORO_ETIMEDOUT (%d)", s.rc);
  v = 8;
  rc = goro_chan_send(u, &v, GORO_NOW);
  ok(rc == GORO_EAGAIN, "a timed-out receiver left the wait queue: a try send finds nobody (%d)", rc);
  ok(goro_chan_len(b) == 2, "a timed-out sender added nothing to the buffer");
  goro_chan_unref(u);
  goro_chan_unref(b);
  goro_stop(MS(5000));
}

/* ------------------------------------------------ large elements */

typedef struct {
  unsigned char bytes[256];
} big;

static void fill(big *e, unsigned seed) {
  for (int i = 0; i < 256; i++) e->bytes[i] = (unsigned char)(seed * 31u + (unsigned)i * 7u);
}

typedef struct {
  goro_chan *c;
  big e;
  int phase;
  int rc;
} bigsender;

static goro_step bigsend_step(goro_g *g, void *ud) {
  bigsender *s = ud;
  int idx;
  bool okv;
  if (s->phase == 1) {
    s->phase = 0;
    s->rc = goro_select_finish(&idx, &okv);
    return GORO_STEP_DONE;
  }
  fill(&s->e, 3);
  s->rc = goro_chan_send(s->c, &s->e, GORO_FOREVER);
  if (s->rc == GORO_EPARK) {
    s->phase = 1;
    return GORO_STEP_PARKED;
  }
  return GORO_STEP_DONE;
}

static void big_tests(void) {
  goro_start(2, NULL);
  goro_chan *c = goro_chan_new(sizeof(big), 3, NULL);
  big in, out, want;
  int same = 1;
  for (unsigned k = 0; k < 3; k++) {
    fill(&in, k);
    goro_chan_send(c, &in, GORO_NOW);
  }
  for (unsigned k = 0; k < 3; k++) {
    bool okv;
    fill(&want, k);
    memset(&out, 0, sizeof out);
    same &= goro_chan_recv(c, &out, &okv, GORO_NOW) == GORO_OK && memcmp(&out, &want, sizeof out) == 0;
  }
  ok(same, "256-byte elements pass through a buffered channel intact");
  goro_chan_unref(c);

  c = goro_chan_new(sizeof(big), 0, NULL);
  bigsender s;
  memset(&s, 0, sizeof s);
  s.c = c;
  spawn(bigsend_step, &s);
  int wrc = settle(); /* the sender has parked */
  bool okv = false;
  memset(&out, 0, sizeof out);
  int rc = goro_chan_recv(c, &out, &okv, GORO_FOREVER);
  int wrc2 = settle();
  fill(&want, 3);
  ok(wrc == GORO_EDEADLOCK && rc == GORO_OK && okv && wrc2 == GORO_OK && s.rc == GORO_OK &&
         memcmp(&out, &want, sizeof out) == 0,
     "a 256-byte element is copied from a parked G sender to an outside receiver");
  goro_chan_unref(c);
  goro_stop(MS(5000));
}

/* ------------------------------------------------ refcounts and drop */

static atomic_int drops;
static atomic_ullong dropsum;

static void drop_cb(void *elem) {
  uint64_t v;
  memcpy(&v, elem, sizeof v);
  atomic_fetch_add(&drops, 1);
  atomic_fetch_add(&dropsum, v);
}

static void ref_tests(void) {
  goro_start(2, NULL);
  atomic_store(&drops, 0);
  atomic_store(&dropsum, 0);
  goro_chan *c = goro_chan_new(sizeof(uint64_t), 8, drop_cb);
  for (uint64_t v = 1; v <= 5; v++) goro_chan_send(c, &v, GORO_NOW);
  uint64_t v;
  bool okv;
  goro_chan_recv(c, &v, &okv, GORO_NOW);
  goro_chan_recv(c, &v, &okv, GORO_NOW);
  goro_chan_ref(c);
  goro_chan_unref(c);
  ok(atomic_load(&drops) == 0, "unref with a reference left frees nothing, drops nothing");
  goro_chan_unref(c);
  ok(atomic_load(&drops) == 3 && atomic_load(&dropsum) == 3 + 4 + 5,
     "the last unref drops exactly the 3 values left in the buffer (%d drops, sum %llu)",
     atomic_load(&drops), (unsigned long long)atomic_load(&dropsum));

  atomic_store(&drops, 0);
  atomic_store(&dropsum, 0);
  c = goro_chan_new(sizeof(uint64_t), 4, drop_cb);
  v = 10;
  goro_chan_send(c, &v, GORO_NOW);
  v = 20;
  goro_chan_send(c, &v, GORO_NOW);
  goro_chan_close(c);
  goro_chan_unref(c);
  ok(atomic_load(&drops) == 2 && atomic_load(&dropsum) == 30,
     "a closed channel freed with values in its buffer drops them (%d)", atomic_load(&drops));

  /* a G holds the last reference: it receives one value, then unrefs */
  atomic_store(&drops, 0);
  atomic_store(&dropsum, 0);
  c = goro_chan_new(sizeof(uint64_t), 4, drop_cb);
  v = 100;
  goro_chan_send(c, &v, GORO_NOW);
  v = 200;
  goro_chan_send(c, &v, GORO_NOW);
  goro_chan_ref(c);
  gop r;
  gop_init(&r, GOP_RECV, c, 0, GORO_FOREVER);
  r.delay_ns = MS(20);
  r.unref_after = 1;
  spawn(gop_step, &r);
  goro_chan_unref(c); /* the G's reference keeps it alive */
  int wrc = settle();
  ok(wrc == GORO_OK && r.rc == GORO_OK && r.val == 100 && atomic_load(&drops) == 1 &&
         atomic_load(&dropsum) == 200,
     "a reference held by a G keeps the channel alive; its unref drops what is left (%d drops)",
     atomic_load(&drops));

  atomic_store(&drops, 0);
  c = goro_chan_new(sizeof(uint64_t), 0, drop_cb);
  goro_chan_unref(c);
  ok(atomic_load(&drops) == 0, "an unbuffered channel has nothing to drop");
  goro_stop(MS(5000));
}

int main(void) {
  watchdog(120);
  goro_start(2, NULL);
  basic_tests();
  goro_stop(MS(5000));
  stream_test(1, 0);
  stream_test(1, 1);
  stream_test(1, 16);
  stream_test(4, 0);
  stream_test(4, 3);
  stream_test(4, 64);
  rendezvous_tests(1);
  rendezvous_tests(4);
  close_tests(1);
  close_tests(4);
  deadline_tests();
  big_tests();
  ref_tests();
  return done_testing();
}
