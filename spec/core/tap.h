/*
** tap.h — a tiny header-only TAP producer for the core's C tests.
**
**   ok(cond, "name %d", x)   prints "ok N - name" or "not ok N - name" and,
**                            on failure, "#   at file:line" (a TAP comment)
**   diag("fmt", ...)         prints a "# ..." comment line
**   done_testing()           prints the plan "1..N"; returns the exit status
**                            (0 if every test passed), for `return` in main
**
** One test program is one thread of TAP output: call ok() from the main
** thread only (record results from other threads, then assert them).
*/
#ifndef GORO_TAP_H
#define GORO_TAP_H

#include <stdarg.h>
#include <stdio.h>

static int tap_n_ = 0, tap_failed_ = 0;

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static inline int tap_ok_(int cond, const char *file, int line, const char *fmt, ...) {
  va_list ap;
  tap_n_++;
  if (!cond) tap_failed_++;
  printf("%sok %d - ", cond ? "" : "not ", tap_n_);
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
  if (!cond) printf("#   Failed test %d at %s:%d\n", tap_n_, file, line);
  fflush(stdout);
  return cond;
}

#define ok(cond, ...) tap_ok_(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static inline void diag(const char *fmt, ...) {
  va_list ap;
  printf("# ");
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
  fflush(stdout);
}

static inline int done_testing(void) {
  printf("1..%d\n", tap_n_);
  if (tap_failed_) printf("# failed %d of %d tests\n", tap_failed_, tap_n_);
  fflush(stdout);
  return tap_failed_ ? 1 : 0;
}

#endif
