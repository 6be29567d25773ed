/*
** port.h — what the core takes from the system beyond C11 atomics and
** POSIX threads, each piece named and guarded: a system without one builds
** with a note (#pragma message, not an error, not a warning) and a
** documented fallback. Sleeping threads is wait.h's (one backend a system).
**
**   monotonic clock    clock_gettime(CLOCK_MONOTONIC)   else C11 timespec_get:
**                                                        the wall clock, so
**                                                        timers follow its jumps
**   online CPUs        sysconf(_SC_NPROCESSORS_ONLN)    else 1 (env GOMAXPROCS
**                                                        still sets it)
**   preemption signal  pthread_kill to an M's thread    else flag only: a G is
**                                                        asked to yield at its
**                                                        next core call
**   SIGINT masked      pthread_sigmask around the core's else nothing
**                      pthread_create
**   cpu_relax          pause / yield instructions       else nothing (lock.h)
** The core names no threads (pthread_setname_np differs on every system) and
** installs no signal handler (the binding does: goro_set_preempt_signal).
*/
#ifndef GORO_PORT_H
#define GORO_PORT_H

#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

static inline int64_t port_clock_ns(void) {
  struct timespec ts;
#if defined(CLOCK_MONOTONIC)
  clock_gettime(CLOCK_MONOTONIC, &ts);
#else
#pragma message("goro: no CLOCK_MONOTONIC: goro_now() uses the wall clock (timespec_get); deadlines follow its jumps")
  timespec_get(&ts, TIME_UTC);
#endif
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int port_online_cpus(void) {
#if defined(_SC_NPROCESSORS_ONLN)
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)(n > 1000000 ? 1000000 : n) : 1;
#else
#pragma message("goro: no sysconf(_SC_NPROCESSORS_ONLN): GOMAXPROCS defaults to 1; set env GOMAXPROCS")
  return 1;
#endif
}

#if defined(_POSIX_VERSION) && !defined(GORO_NO_SIGNALS)
#include <pthread.h>
static inline void port_signal_thread(pthread_t t, int signo) { pthread_kill(t, signo); }
/* Threads the core starts leave SIGINT (Ctrl-C) to the host's threads:
** the Lua interpreter's handler must run on the main thread, whose wait
** it interrupts (park.c). Wraps pthread_create: the new thread inherits
** the mask. */
typedef sigset_t port_sigmask;
static inline void port_nosigint_begin(port_sigmask *old) {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGINT);
  pthread_sigmask(SIG_BLOCK, &s, old);
}
static inline void port_nosigint_end(const port_sigmask *old) {
  pthread_sigmask(SIG_SETMASK, old, NULL);
}
#else
#pragma message("goro: no POSIX signals: preemption sets the G's flag only (it yields at its next core call)")
static inline void port_signal_thread(pthread_t t, int signo) { (void)t; (void)signo; }
typedef int port_sigmask;
static inline void port_nosigint_begin(port_sigmask *old) { (void)old; }
static inline void port_nosigint_end(const port_sigmask *old) { (void)old; }
#endif

/* The calling thread's kernel id (Linux), 0 where unknown. */
#if defined(__linux__)
#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
static inline int port_thread_id(void) { return (int)syscall(SYS_gettid); }
/* Whether thread tid of this process waits in a system call that a
** signal handler cuts short with EINTR even under SA_RESTART (signal(7):
** poll, select, epoll_wait, nanosleep, ... ; read, write, wait, futex are
** restarted), from /proc/self/task/tid/syscall ("running" outside a call).
** sysmon.c preemptone leaves such a thread alone. */
static inline bool port_thread_in_unrestarted_call(int tid) {
  static const long nr[] = {
#ifdef SYS_poll
    SYS_poll,
#endif
#ifdef SYS_select
    SYS_select,
#endif
#ifdef SYS_epoll_wait
    SYS_epoll_wait,
#endif
#ifdef SYS_nanosleep
    SYS_nanosleep,
#endif
#ifdef SYS_pause
    SYS_pause,
#endif
#ifdef SYS_epoll_pwait2
    SYS_epoll_pwait2,
#endif
    SYS_ppoll, SYS_pselect6, SYS_epoll_pwait, SYS_clock_nanosleep,
    SYS_rt_sigtimedwait, SYS_rt_sigsuspend, SYS_io_getevents,
    SYS_semtimedop, SYS_msgrcv, SYS_msgsnd};
  char path[64], buf[32];
  snprintf(path, sizeof path, "/proc/self/task/%d/syscall", tid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = 0;
  if (buf[0] < '0' || buf[0] > '9') return false; /* "running", or -1 (none) */
  long call = strtol(buf, NULL, 10);
  for (size_t i = 0; i < sizeof nr / sizeof nr[0]; i++)
    if (nr[i] == call) return true;
  return false;
}
#else
static inline int port_thread_id(void) { return 0; }
static inline bool port_thread_in_unrestarted_call(int tid) { (void)tid; return false; }
#endif

/* Sleeps about us microseconds (goro_stop's polling). */
static inline void port_sleep_us(long us) {
  struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
  nanosleep(&ts, NULL);
}

#endif
