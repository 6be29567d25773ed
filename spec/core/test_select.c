/*
** test_select.c — goro_select: uniform choice among ready cases, the default
** case (GORO_NOW), nil (NULL) channels, send and recv cases, a select parked on
** several channels leaves every other wait queue when one case fires,
** timeouts, closed channels, and select with no case as sleep.
*/
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "goro.h"
#include "gop.h"
#include "tap.h"

#define NUNIFORM 10000
#define NFAN 2000 /* values per sender in the multi-waiter test */

static void noop_timer(void *arg, int64_t now) {}
static goro_timer *guard_on(void) { return goro_timer_new(goro_now() + MS(3600000), 0, noop_timer, NULL); }

static goro_case rcase(goro_chan *c, void *elem) { return (goro_case){c, GORO_RECV, elem}; }
static goro_case scase(goro_chan *c, void *elem) { return (goro_case){c, GORO_SEND, elem}; }

static int in_40_60(int n, int total) { return n * 10 >= total * 4 && n * 10 <= total * 6; }

/* ------------------------------------------------ uniform choice */

typedef struct {
  goro_case cs[2];
  uint64_t e0, e1;
  int count[2], other;
} uni;

static goro_step uni_step(goro_g *g, void *ud) {
  uni *u = ud;
  for (int i = 0; i < NUNIFORM; i++) {
    int idx = -1;
    bool okv = true;
    int rc = goro_select(u->cs, 2, GORO_FOREVER, &idx, &okv);
    if (rc == GORO_OK && (idx == 0 || idx == 1) && !okv)
      u->count[idx]++;
    else
      u->other++;
  }
  return GORO_STEP_DONE;
}

static void uniform_tests(void) {
  goro_chan *c1 = goro_chan_new(sizeof(uint64_t), 0, NULL);
  goro_chan *c2 = goro_chan_new(sizeof(uint64_t), 0, NULL);
  goro_chan_close(c1);
  goro_chan_close(c2);
  uint64_t e0, e1;
  goro_case cs[2] = {rcase(c1, &e0), rcase(c2, &e1)};
  int count[2] = {0, 0}, other = 0;
  for (int i = 0; i < NUNIFORM; i++) {
    int idx = -1;
    bool okv = true;
    int rc = goro_select(cs, 2, GORO_FOREVER, &idx, &okv);
    if (rc == GORO_OK && (idx == 0 || idx == 1) && !okv)
      count[idx]++;
    else
      other++;
  }
  ok(other == 0 && in_40_60(count[0], NUNIFORM) && in_40_60(count[1], NUNIFORM),
     "outside: 2 always-ready recv cases are chosen uniformly (%d / %d, %d bad)", count[0],
     count[1], other);

  uni u;
  memset(&u, 0, sizeof u);
  u.cs[0] = rcase(c1, &u.e0);
  u.cs[1] = rcase(c2, &u.e1);
  spawn(uni_step, &u);
  int wrc = settle();
  ok(wrc == GORO_OK && u.other == 0 && in_40_60(u.count[0], NUNIFORM) && in_40_60(u.count[1], NUNIFORM),
     "in a G: 2 always-ready cases are chosen uniformly, without parking (%d / %d, %d bad)",
     u.count[0], u.count[1], u.other);

  /* two send cases with room */
  goro_chan *b1 = goro_chan_new(sizeof(uint64_t), 1, NULL);
  goro_chan *b2 = goro_chan_new(sizeof(uint64_t), 1, NULL);
  uint64_t s0 = 1, s1 = 2, got;
  bool okv;
  goro_case ss[2] = {scase(b1, &s0), scase(b2, &s1)};
  count[0] = count[1] = other = 0;
  for (int i = 0; i < NUNIFORM; i++) {
    int idx = -1;
    int rc = goro_select(ss, 2, GORO_NOW, &idx, &okv);
    if (rc == GORO_OK && (idx == 0 || idx == 1)) {
      count[idx]++;
      got = 0;
      if (goro_chan_recv(idx ? b2 : b1, &got, &okv, GORO_NOW) != GORO_OK || got != (uint64_t)idx + 1) other++;
    } else {
      other++;
    }
  }
  ok(other == 0 && in_40_60(count[0], NUNIFORM) && in_40_60(count[1], NUNIFORM),
     "2 ready send cases are chosen uniformly, and send the right value (%d / %d, %d bad)",
     count[0], count[1], other);

  /* a NULL channel never fires */
  goro_case nc[3] = {rcase(NULL, &e0), rcase(c1, &e1), scase(NULL, &s0)};
  int fired_null = 0, bad = 0;
  for (int i = 0; i < 1000; i++) {
    int idx = -1;
    int rc = goro_select(nc, 3, GORO_FOREVER, &idx, &okv);
    if (rc != GORO_OK) bad++;
    if (idx != 1) fired_null++;
  }
  ok(bad == 0 && fired_null == 0, "NULL-channel cases (recv and send) never fire (%d times, %d bad)",
     fired_null, bad);
  goro_case nn[2] = {rcase(NULL, &e0), scase(NULL, &s0)};
  int idx = -1;
  ok(goro_select(nn, 2, GORO_NOW, &idx, &okv) == GORO_EAGAIN, "select on NULL channels only, GORO_NOW: GORO_EAGAIN");
  goro_timer *guard = guard_on();
  int64_t dl = after_ms(20);
  int rc = goro_select(nn, 2, dl, &idx, &okv);
  ok(rc == GORO_ETIMEDOUT && goro_now() >= dl, "select on NULL channels only, with a deadline: GORO_ETIMEDOUT (%d)", rc);
  goro_timer_free(guard);

  goro_chan_unref(c1);
  goro_chan_unref(c2);
  goro_chan_unref(b1);
  goro_chan_unref(b2);
}

/* ------------------------------------------------ default, send & recv cases */

static void default_and_mixed_tests(int nprocs) {
  goro_chan *u = goro_chan_new(sizeof(uint64_t), 0, NULL);
  goro_chan *e = goro_chan_new(sizeof(uint64_t), 2, NULL);
  goro_chan *b = goro_chan_new(sizeof(uint64_t), 1, NULL);
  uint64_t r0 = 5, r1 = 5, s = 42;
  bool okv = true;
  int idx = -1;

  goro_case two[2] = {rcase(u, &r0), rcase(e, &r1)};
  int rc = goro_select(two, 2, GORO_NOW, &idx, &okv);
  ok(rc == GORO_EAGAIN, "P=%d: nothing ready + GORO_NOW (default case): GORO_EAGAIN (%d)", nprocs, rc);
  goro_case sendfull[2] = {scase(u, &s), rcase(e, &r1)};
  rc = goro_select(sendfull, 2, GORO_NOW, &idx, &okv);
  ok(rc == GORO_EAGAIN && goro_chan_len(e) == 0,
     "P=%d: a send case with no receiver + GORO_NOW: GORO_EAGAIN, nothing sent", nprocs);

  goro_case mixed[2] = {rcase(e, &r0), scase(b, &s)};
  idx = -1;
  rc = goro_select(mixed, 2, GORO_FOREVER, &idx, &okv);
  uint64_t got = 0;
  bool gok = false;
  goro_chan_recv(b, &got, &gok, GORO_NOW);
  ok(rc == GORO_OK && idx == 1 && gok && got == 42,
     "P=%d: select {recv empty, send with room} takes the send case (idx %d)", nprocs, idx);
  uint64_t v = 77;
  goro_chan_send(e, &v, GORO_NOW);
  goro_chan_send(b, &v, GORO_NOW); /* b now full */
  r0 = 0;
  idx = -1;
  okv = false;
  rc = goro_select(mixed, 2, GORO_FOREVER, &idx, &okv);
  ok(rc == GORO_OK && idx == 0 && okv && r0 == 77,
     "P=%d: select {recv ready, send full} takes the recv case (idx %d, val %llu)", nprocs, idx,
     (unsigned long long)r0);
  goro_chan_recv(b, &got, &gok, GORO_NOW);

  /* a G selecting {recv a, send u} */
  goro_chan *a = goro_chan_new(sizeof(uint64_t), 0, NULL);
  gop g1;
  uint64_t g1r = 0;
  gop_init(&g1, GOP_SELECT, NULL, 0, GORO_FOREVER);
  uint64_t g1s = 1001;
  goro_case g1c[2] = {rcase(a, &g1r), scase(u, &g1s)};
  g1.cases = g1c;
  g1.ncases = 2;
  spawn(gop_step, &g1);
  int wrc = settle();
  got = 0;
  rc = goro_chan_recv(u, &got, &gok, after_ms(10000));
  int wrc2 = settle();
  ok(wrc == GORO_EDEADLOCK && g1.parked && rc == GORO_OK && got == 1001 && wrc2 == GORO_OK &&
         g1.rc == GORO_OK && g1.idx == 1,
     "P=%d: a G parked in select {recv, send}: an outside recv fires its send case (idx %d)", nprocs,
     g1.idx);

  gop_init(&g1, GOP_SELECT, NULL, 0, GORO_FOREVER);
  g1.cases = g1c;
  g1.ncases = 2;
  g1r = 0;
  spawn(gop_step, &g1);
  wrc = settle();
  v = 2002;
  rc = goro_chan_send(a, &v, after_ms(10000));
  wrc2 = settle();
  ok(wrc == GORO_EDEADLOCK && rc == GORO_OK && wrc2 == GORO_OK && g1.rc == GORO_OK && g1.idx == 0 &&
         g1.okv && g1r == 2002,
     "P=%d: ... and an outside send fires its recv case (idx %d)", nprocs, g1.idx);
  v = 1;
  ok(goro_chan_send(a, &v, GORO_NOW) == GORO_EAGAIN && goro_chan_recv(u, &got, &gok, GORO_NOW) == GORO_EAGAIN,
     "P=%d: the finished select left no waiter on either channel", nprocs);

  /* an outside select takes from a parked G sender */
  gop ps;
  gop_init(&ps, GOP_SEND, u, 3003, GORO_FOREVER);
  spawn(gop_step, &ps);
  wrc = settle();
  r0 = r1 = 0;
  idx = -1;
  goro_case both[2] = {rcase(e, &r0), rcase(u, &r1)};
  rc = goro_select(both, 2, GORO_NOW, &idx, &okv);
  wrc2 = settle();
  ok(wrc == GORO_EDEADLOCK && rc == GORO_OK && idx == 1 && okv && r1 == 3003 && ps.rc == GORO_OK,
     "P=%d: select with GORO_NOW takes the value of a parked sender (rc %d idx %d)", nprocs, rc, idx);

  goro_chan_unref(a);
  goro_chan_unref(u);
  goro_chan_unref(e);
  goro_chan_unref(b);
}

/* ------------------------------------------------ parked on 3 channels */

static void three_channel_tests(int nprocs) {
  goro_chan *ch[3];
  for (int i = 0; i < 3; i++) ch[i] = goro_chan_new(sizeof(uint64_t), 0, NULL);
  uint64_t el[3] = {0, 0, 0};
  goro_case cs[3] = {rcase(ch[0], &el[0]), rcase(ch[1], &el[1]), rcase(ch[2], &el[2])};

  /* a G parked on a, b, c; a send on b wakes it */
  gop g;
  gop_init(&g, GOP_SELECT, NULL, 0, GORO_FOREVER);
  g.cases = cs;
  g.ncases = 3;
  spawn(gop_step, &g);
  int wrc = settle();
  uint64_t v = 111;
  int rc = goro_chan_send(ch[1], &v, after_ms(10000));
  int wrc2 = settle();
  ok(wrc == GORO_EDEADLOCK && g.parked && rc == GORO_OK && wrc2 == GORO_OK && g.rc == GORO_OK &&
         g.idx == 1 && g.okv && el[1] == 111,
     "P=%d: a G parked in select on 3 channels is woken by a send on the 2nd (idx %d)", nprocs, g.idx);
  v = 5;
  int stale = (goro_chan_send(ch[0], &v, GORO_NOW) != GORO_EAGAIN) + (goro_chan_send(ch[2], &v, GORO_NOW) != GORO_EAGAIN);
  ok(stale == 0, "P=%d: ... and it left the other two channels' wait queues", nprocs);

  /* later sends on the other channels reach the next receivers */
  gop r0, r2;
  gop_init(&r0, GOP_RECV, ch[0], 0, GORO_FOREVER);
  gop_init(&r2, GOP_RECV, ch[2], 0, GORO_FOREVER);
  spawn(gop_step, &r0);
  spawn(gop_step, &r2);
  wrc = settle();
  v = 200;
  rc = goro_chan_send(ch[0], &v, GORO_NOW);
  v = 202;
  int rc2 = goro_chan_send(ch[2], &v, GORO_NOW);
  wrc2 = settle();
  ok(wrc == GORO_EDEADLOCK && rc == GORO_OK && rc2 == GORO_OK && wrc2 == GORO_OK && r0.val == 200 &&
         r2.val == 202 && r0.okv && r2.okv,
     "P=%d: later sends on the other channels are received by the new receivers, not lost", nprocs);

  /* the outside thread parked on a, b, c; a G's send on c wakes it */
  gop s;
  gop_init(&s, GOP_SEND, ch[2], 333, GORO_FOREVER);
  s.delay_ns = MS(20);
  spawn(gop_step, &s);
  el[0] = el[1] = el[2] = 0;
  int idx = -1;
  bool okv = false;
  rc = goro_select(cs, 3, after_ms(10000), &idx, &okv);
  wrc = settle();
  ok(rc == GORO_OK && idx == 2 && okv && el[2] == 333 && wrc == GORO_OK && s.rc == GORO_OK,
     "P=%d: the outside thread parked in select on 3 channels is woken by a G's send (idx %d)", nprocs, idx);
  gop_init(&r0, GOP_SEND, ch[0], 400, GORO_FOREVER);
  gop_init(&r2, GOP_SEND, ch[1], 401, GORO_FOREVER);
  spawn(gop_step, &r0);
  spawn(gop_step, &r2);
  wrc = settle();
  uint64_t x = 0, y = 0;
  bool ok0 = false, ok1 = false;
  rc = goro_chan_recv(ch[0], &x, &ok0, GORO_NOW);
  rc2 = goro_chan_recv(ch[1], &y, &ok1, GORO_NOW);
  wrc2 = settle();
  ok(wrc == GORO_EDEADLOCK && rc == GORO_OK && rc2 == GORO_OK && x == 400 && y == 401 && wrc2 == GORO_OK,
     "P=%d: ... and G senders parked later on the other two are not paired with the stale select", nprocs);

  for (int i = 0; i < 3; i++) goro_chan_unref(ch[i]);
}

/* many senders, a select loop and a plain receiver competing */

typedef struct {
  goro_chan *c;
  uint64_t base, i, v;
  int phase;
} fan_sender;

static goro_step fan_send_step(goro_g *g, void *ud) {
  fan_sender *s = ud;
  int idx;
  bool okv;
  if (s->phase == 1) {
    s->phase = 0;
    goro_select_finish(&idx, &okv);
    s->i++;
  }
  while (s->i < NFAN) {
    s->v = s->base + s->i;
    int rc = goro_chan_send(s->c, &s->v, GORO_FOREVER);
    if (rc == GORO_EPARK) {
      s->phase = 1;
      return GORO_STEP_PARKED;
    }
    s->i++;
  }
  goro_chan_close(s->c);
  return GORO_STEP_DONE;
}

typedef struct {
  goro_case cs[3];
  uint64_t el[3];
  int n, phase, idx;
  bool okv;
  uint64_t sum, count;
} fan_selector;

static int fan_got(fan_selector *f, int rc, int idx, bool okv) {
  if (rc != GORO_OK || idx < 0 || idx >= f->n) return -1;
  if (!okv) {
    f->cs[idx].c = NULL; /* closed: disable the case, as with a nil channel */
    for (int i = 0; i < f->n; i++)
      if (f->cs[i].c) return 0;
    return 1;
  }
  f->sum += f->el[idx];
  f->count++;
  return 0;
}

static goro_step fan_select_step(goro_g *g, void *ud) {
  fan_selector *f = ud;
  int idx = -1;
  bool okv = false;
  if (f->phase == 1) {
    f->phase = 0;
    int rc = goro_select_finish(&idx, &okv);
    if (fan_got(f, rc, idx, okv)) return GORO_STEP_DONE;
  }
  for (;;) {
    int rc = goro_select(f->cs, f->n, GORO_FOREVER, &f->idx, &f->okv);
    if (rc == GORO_EPARK) {
      f->phase = 1;
      return GORO_STEP_PARKED;
    }
    if (fan_got(f, rc, f->idx, f->okv)) return GORO_STEP_DONE;
  }
}

static void fan_test(int nprocs) {
  goro_chan *ch[3];
  fan_sender snd[3];
  fan_selector sel, plain;
  memset(&sel, 0, sizeof sel);
  memset(&plain, 0, sizeof plain);
  for (int i = 0; i < 3; i++) {
    ch[i] = goro_chan_new(sizeof(uint64_t), 0, NULL);
    memset(&snd[i], 0, sizeof snd[i]);
    snd[i].c = ch[i];
    snd[i].base = (uint64_t)(i + 1) << 32;
    sel.cs[i] = rcase(ch[i], &sel.el[i]);
  }
  sel.n = 3;
  plain.cs[0] = rcase(ch[0], &plain.el[0]); /* a select of one case is a recv */
  plain.n = 1;
  spawn(fan_select_step, &sel);
  spawn(fan_select_step, &plain);
  for (int i = 0; i < 3; i++) spawn(fan_send_step, &snd[i]);
  int wrc = settle();
  uint64_t want = 0;
  for (int i = 0; i < 3; i++)
    for (uint64_t k = 0; k < NFAN; k++) want += snd[i].base + k;
  ok(wrc == GORO_OK && sel.count + plain.count == 3 * NFAN && sel.sum + plain.sum == want,
     "P=%d: 3 senders, a select loop on all 3 and a receiver on one: %d values, none lost or doubled "
     "(rc %d, got %llu+%llu)",
     nprocs, 3 * NFAN, wrc, (unsigned long long)sel.count, (unsigned long long)plain.count);
  for (int i = 0; i < 3; i++) goro_chan_unref(ch[i]);
}

/* ------------------------------------------------ timeouts, closed, sleep */

static void timeout_closed_tests(int nprocs) {
  goro_chan *a = goro_chan_new(sizeof(uint64_t), 0, NULL);
  goro_chan *b = goro_chan_new(sizeof(uint64_t), 4, NULL);
  uint64_t ea = 0, eb = 0, s = 9;
  bool okv = true;
  int idx = -1;
  goro_case cs[2] = {rcase(a, &ea), rcase(b, &eb)};

  goro_timer *guard = guard_on();
  int64_t dl = after_ms(30);
  int rc = goro_select(cs, 2, dl, &idx, &okv);
  ok(rc == GORO_ETIMEDOUT && goro_now() >= dl, "P=%d: outside select timeout: GORO_ETIMEDOUT (%d)", nprocs, rc);
  goro_timer_free(guard);

  gop g;
  gop_init(&g, GOP_SELECT, NULL, 0, MS(30));
  goro_case gcs[2] = {rcase(a, &ea), rcase(b, &eb)};
  g.cases = gcs;
  g.ncases = 2;
  spawn(gop_step, &g);
  int wrc = settle();
  ok(wrc == GORO_OK && g.parked && g.rc == GORO_ETIMEDOUT && g.t_end - g.t_start >= MS(30),
     "P=%d: a G's select times out: parks, finish gives GORO_ETIMEDOUT (%d)", nprocs, g.rc);
  ok(goro_chan_send(a, &s, GORO_NOW) == GORO_EAGAIN && goro_chan_recv(a, &ea, &okv, GORO_NOW) == GORO_EAGAIN,
     "P=%d: the timed-out select left no waiter behind", nprocs);

  /* a G parked in select is woken by a close */
  gop_init(&g, GOP_SELECT, NULL, 0, GORO_FOREVER);
  ea = eb = 7;
  g.cases = cs;
  g.ncases = 2;
  spawn(gop_step, &g);
  wrc = settle();
  goro_chan_close(b);
  int wrc2 = settle();
  ok(wrc == GORO_EDEADLOCK && wrc2 == GORO_OK && g.rc == GORO_OK && g.idx == 1 && !g.okv && eb == 0,
     "P=%d: close wakes a G parked in select: the recv case fires with ok=false, zeroed (idx %d)", nprocs,
     g.idx);

  /* closed recv case from outside */
  ea = eb = 7;
  idx = -1;
  okv = true;
  rc = goro_select(cs, 2, GORO_FOREVER, &idx, &okv);
  ok(rc == GORO_OK && idx == 1 && !okv && eb == 0,
     "P=%d: a recv case on a closed channel is ready: ok=false, zeroed elem", nprocs);

  /* send case on a closed channel */
  goro_case sc[2] = {rcase(a, &ea), scase(b, &s)};
  idx = -1;
  rc = goro_select(sc, 2, GORO_FOREVER, &idx, &okv);
  ok(rc == GORO_ECLOSED && idx == 1, "P=%d: a send case on a closed channel: GORO_ECLOSED, index 1 (%d, %d)",
     nprocs, rc, idx);

  /* a G parked with a send case; the channel is closed under it */
  goro_chan *c = goro_chan_new(sizeof(uint64_t), 0, NULL);
  goro_case gsc[2] = {rcase(a, &ea), scase(c, &s)};
  gop_init(&g, GOP_SELECT, NULL, 0, GORO_FOREVER);
  g.cases = gsc;
  g.ncases = 2;
  spawn(gop_step, &g);
  wrc = settle();
  goro_chan_close(c);
  wrc2 = settle();
  ok(wrc == GORO_EDEADLOCK && wrc2 == GORO_OK && g.rc == GORO_ECLOSED && g.idx == 1,
     "P=%d: closing the channel of a parked select's send case: GORO_ECLOSED, idx 1 (%d, %d)", nprocs,
     g.rc, g.idx);

  /* select with no case is sleep */
  gop_init(&g, GOP_SELECT, NULL, 0, MS(20));
  g.cases = NULL;
  g.ncases = 0;
  spawn(gop_step, &g);
  wrc = settle();
  ok(wrc == GORO_OK && g.rc == GORO_ETIMEDOUT && g.t_end - g.t_start >= MS(20),
     "P=%d: in a G, select with no case and a deadline sleeps: GORO_ETIMEDOUT (%d)", nprocs, g.rc);

  goro_chan_unref(c);
  goro_chan_unref(a);
  goro_chan_unref(b);
}

/* the same channel in a send and a recv case: a select never pairs with
** itself, and locks the channel once */
static void same_channel_test(void) {
  goro_start(2, NULL);
  goro_chan *a = goro_chan_new(sizeof(uint64_t), 0, NULL);
  uint64_t r = 0, s = 5;
  goro_case cs[2] = {rcase(a, &r), scase(a, &s)};
  int idx = -1;
  bool okv;
  int rc = goro_select(cs, 2, GORO_NOW, &idx, &okv);
  ok(rc == GORO_EAGAIN, "select {recv a, send a} on unbuffered a does not pair with itself (%d)", rc);
  gop g;
  gop_init(&g, GOP_SELECT, NULL, 0, GORO_FOREVER);
  g.cases = cs;
  g.ncases = 2;
  spawn(gop_step, &g);
  int wrc = settle();
  uint64_t v = 0;
  rc = goro_chan_recv(a, &v, &okv, after_ms(10000));
  int wrc2 = settle();
  ok(wrc == GORO_EDEADLOCK && rc == GORO_OK && v == 5 && wrc2 == GORO_OK && g.rc == GORO_OK && g.idx == 1,
     "a G parked in select {recv a, send a}: an outside recv fires the send case (%d, idx %d)", rc, g.idx);
  goro_chan_unref(a);
  goro_stop(MS(5000));
}

int main(void) {
  watchdog(120);
  goro_start(2, NULL);
  uniform_tests();
  goro_stop(MS(5000));
  int procs[2] = {1, 4};
  for (int i = 0; i < 2; i++) {
    goro_start(procs[i], NULL);
    default_and_mixed_tests(procs[i]);
    three_channel_tests(procs[i]);
    fan_test(procs[i]);
    timeout_closed_tests(procs[i]);
    goro_stop(MS(5000));
  }
  same_channel_test();
  return done_testing();
}
