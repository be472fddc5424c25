# Calls that never block are never interrupted: getsockname, getpeername,
# getsockopt, setsockopt and shutdown, under a storm of signals whose handler
# lacks SA_RESTART, still answer every time, and no EINTR shows. (netvm answers these from the
# supervisor; a signal that arrives while a call waits for it must not turn into
# an error the kernel never gives.)
import signal
import socket
import time

from lib import *

delivered = 0


def handler(*_):
    global delivered
    delivered += 1


signal.signal(signal.SIGALRM, handler)
signal.siginterrupt(signal.SIGALRM, True)

for fam in (V4, V6):
    note("family %d" % fam)
    c, a, l = tcp_pair(fam)
    calls = [
        ("getsockname", c.getsockname),
        ("getpeername", c.getpeername),
        ("getsockopt SO_ERROR", lambda: c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)),
        ("setsockopt TCP_NODELAY", lambda: c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)),
        ("shutdown SHUT_WR", lambda: a.shutdown(socket.SHUT_WR)),
    ]
    for label, call in calls:
        delivered = 0
        errors = {}
        answered = 0
        signal.setitimer(signal.ITIMER_REAL, 0.0002, 0.0002)
        deadline = time.monotonic() + 0.4
        while time.monotonic() < deadline or delivered < 50:
            try:
                call()
                answered += 1
            except OSError as e:
                errors[ename(e.errno)] = errors.get(ename(e.errno), 0) + 1
        signal.setitimer(signal.ITIMER_REAL, 0)
        out("%s: answered" % label, answered > 0)
        out("%s: errors" % label, errors)
        out("%s: signals came throughout" % label, delivered >= 50)
    for s in (c, a, l):
        s.close()
