# Keepalive settings on a connection: the defaults on both ends, values set on a
# connected socket, and a listener's settings inherited by what it accepts.
import socket

from lib import *

SO = socket.SOL_SOCKET
T = socket.IPPROTO_TCP
OPTS = (("SO_KEEPALIVE", SO, socket.SO_KEEPALIVE), ("TCP_KEEPIDLE", T, socket.TCP_KEEPIDLE),
        ("TCP_KEEPINTVL", T, socket.TCP_KEEPINTVL), ("TCP_KEEPCNT", T, socket.TCP_KEEPCNT))


def show(what, s):
    out(what, " ".join("%s=%d" % (n, s.getsockopt(lv, o)) for n, lv, o in OPTS))


for fam in (V4, V6):
    c, a, l = tcp_pair(fam)
    show("%d client default" % fam, c)
    show("%d accepted default" % fam, a)
    c.setsockopt(SO, socket.SO_KEEPALIVE, 1)
    c.setsockopt(T, socket.TCP_KEEPIDLE, 30)
    c.setsockopt(T, socket.TCP_KEEPINTVL, 5)
    c.setsockopt(T, socket.TCP_KEEPCNT, 4)
    show("%d client set" % fam, c)
    show("%d its peer unchanged" % fam, a)
    l.setsockopt(SO, socket.SO_KEEPALIVE, 1)
    l.setsockopt(T, socket.TCP_KEEPIDLE, 11)
    l.setsockopt(T, socket.TCP_KEEPINTVL, 12)
    l.setsockopt(T, socket.TCP_KEEPCNT, 13)
    d = sock(fam, TCP)
    d.connect(l.getsockname()[:2])
    n, _ = l.accept()
    show("%d accepted after the listener's settings" % fam, n)
    show("%d its client" % fam, d)
    for x in (c, a, l, d, n):
        x.close()
