#!/usr/bin/env python3
"""interrupt.py — drives an interpreter and presses Ctrl-C while its main
state waits, for interrupt_spec.lua.

  interrupt.py script LUA SCRIPT   runs LUA SCRIPT; once it printed "waiting"
                                   and its main thread sleeps, sends SIGINT;
                                   prints "rc=N secs=S" (seconds from SIGINT
                                   to exit), then its stderr
  interrupt.py repl LUA LINES      runs LUA -i on a pty and types LINES one by
                                   one, each after the prompt; a line "^C"
                                   waits for "waiting" and a sleeping main
                                   thread, then types Ctrl-C; prints
                                   "rc=N" and the whole transcript

"Sleeping" is the main thread's state in /proc (S): the wait went to sleep,
the case under test. Where /proc has no such file, it goes on after the
marker (Ctrl-C then lands just before the wait: the same answer).
"""
import os, pty, select, signal, subprocess, sys, time

LIMIT = float(os.environ.get("INTERRUPT_LIMIT", "20"))


def sleeping(pid, deadline):
    path = "/proc/%d/task/%d/stat" % (pid, pid)
    while time.time() < deadline:
        try:
            with open(path) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            return
        if state == "S":
            return
        time.sleep(0.002)


def script(lua, path):
    p = subprocess.Popen([lua, path], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + LIMIT
    out = b""
    while b"waiting" not in out and time.time() < deadline:
        chunk = p.stdout.read1(4096)
        if not chunk:
            break
        out += chunk
    sleeping(p.pid, deadline)
    t0 = time.time()
    p.send_signal(signal.SIGINT)
    try:
        p.wait(timeout=LIMIT)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    secs = time.time() - t0
    err = p.stderr.read().decode(errors="replace")
    print("rc=%d secs=%.3f" % (p.returncode, secs))
    sys.stdout.write(err)


def repl(lua, path):
    with open(path) as f:
        lines = f.read().splitlines()
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["TERM"] = "dumb"  # no bracketed-paste codes around the prompt
        os.execvp(lua, [lua, "-i"])
    deadline = time.time() + LIMIT
    buf = b""

    def read_until(marker, start):
        nonlocal buf
        while buf.find(marker, start) < 0 and time.time() < deadline:
            r, _, _ = select.select([fd], [], [], 0.1)
            if r:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    return False
                if not chunk:
                    return False
                buf += chunk
        return buf.find(marker, start) >= 0

    mark = 0
    read_until(b"> ", 0)
    mark = len(buf)
    for i, line in enumerate(lines):
        if line == "^C":
            read_until(b"waiting", mark)
            sleeping(pid, deadline)
            os.write(fd, b"\x03")
        else:
            os.write(fd, line.encode() + b"\n")
        if i + 1 < len(lines) and lines[i + 1] == "^C":
            continue  # it waits: no prompt until Ctrl-C
        read_until(b"\n> ", mark)
        mark = len(buf)
    os.write(fd, b"\x04")
    read_until(b"\0", mark)  # to EOF
    _, status = os.waitpid(pid, 0)
    rc = os.waitstatus_to_exitcode(status)
    print("rc=%d" % rc)
    sys.stdout.write(buf.decode(errors="replace").replace("\r\n", "\n"))


if __name__ == "__main__":
    {"script": script, "repl": repl}[sys.argv[1]](sys.argv[2], sys.argv[3])
