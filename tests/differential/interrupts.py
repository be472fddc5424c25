# Blocking socket calls and signals: a handler installed without SA_RESTART
# interrupts a blocking accept/recv/recvfrom (EINTR; the pending work stays
# pending), one with SA_RESTART lets the call continue until it completes; and
# SO_RCVTIMEO bounds a blocking accept. Margins are generous: the signal comes
# at 0.1 s, the event that completes the call at 0.6 s.
import signal
import socket
import struct
import threading
import time

from lib import *


class Interrupted(Exception):
    pass


def handler(*_):
    raise Interrupted()


signal.signal(signal.SIGALRM, handler)


def later(fn, delay=0.6):
    """Runs fn in a thread after `delay`; the thread blocks SIGALRM so that the
    signal always lands on the main thread's blocking call."""

    def body():
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(delay)
        fn()

    t = threading.Thread(target=body, daemon=True)
    t.start()
    return t


def run(label, call, restart):
    signal.siginterrupt(signal.SIGALRM, not restart)
    signal.setitimer(signal.ITIMER_REAL, 0.1)
    try:
        r = call()
        result = "returned"
    except Interrupted:
        result = "interrupted"
        r = None
    except OSError as e:
        result = ename(e.errno)
        r = None
    signal.setitimer(signal.ITIMER_REAL, 0)
    out("%s, SA_RESTART=%s" % (label, restart), result)
    return r


for fam in (V4, V6):
    note("family %d" % fam)
    for restart in (False, True):
        l = listener(fam)
        t = later(lambda: socket.socket(fam, TCP).connect(l.getsockname()[:2]))
        r = run("blocking accept", l.accept, restart)
        t.join()
        out("  connection still pending afterwards", poll_mask(l) == "POLLIN")
        l.close()

        c, a, l = tcp_pair(fam)
        t = later(lambda: c.sendall(b"late"))
        r = run("blocking recv", lambda: a.recv(10), restart)
        t.join()
        wait_readable(a, 100)
        out("  data still unread afterwards", ioctl_int(a, FIONREAD))
        for s in (c, a, l):
            s.close()

        u = udp_bound(fam)
        v = udp_bound(fam)
        t = later(lambda: v.sendto(b"late", u.getsockname()[:2]))
        r = run("blocking recvfrom", lambda: u.recvfrom(10), restart)
        t.join()
        wait_readable(u, 100)
        out("  datagram still unread afterwards", ioctl_int(u, FIONREAD))
        u.close()
        v.close()

    l = listener(fam)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 200000))
    t0 = time.monotonic()
    attempt("accept with SO_RCVTIMEO 0.2s", l.accept)
    out("  waited at least 0.15s and under 5s", 0.15 <= time.monotonic() - t0 < 5)
    l.close()
