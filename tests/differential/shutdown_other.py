# shutdown() beyond connected TCP: on a fresh TCP socket (ENOTCONN), on UDP
# sockets unconnected (ENOTCONN) and connected (allowed; reads then end), and on
# a listener, which SHUT_RD closes (accept then fails with EINVAL). (How the
# closed listener polls, and what its waiting client sees, is
# carrier_listener_closed.py.)
import socket

from lib import *

for fam in (V4, V6):
    note("family %d" % fam)
    s = sock(fam, TCP)
    for how in (socket.SHUT_RD, socket.SHUT_WR, socket.SHUT_RDWR):
        out("fresh TCP shutdown %d" % how, raw_shutdown(s, how))
    s.close()
    u = udp_bound(fam)
    out("unconnected UDP SHUT_RDWR", raw_shutdown(u, socket.SHUT_RDWR))
    v = udp_bound(fam)
    v.connect(u.getsockname()[:2])
    out("connected UDP SHUT_RD", raw_shutdown(v, socket.SHUT_RD))
    out("  poll", poll_mask(v))
    attempt("  recv", v.recv, 10, socket.MSG_DONTWAIT)
    out("connected UDP SHUT_WR", raw_shutdown(v, socket.SHUT_WR))
    attempt("  send", v.send, b"x")
    out("  poll", poll_mask(v))
    u.close()
    v.close()
    l = listener(fam)
    c = sock(fam, TCP)
    c.connect(l.getsockname()[:2])
    out("listener SHUT_RD", raw_shutdown(l, socket.SHUT_RD))
    out("  SO_ACCEPTCONN", l.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
    l.setblocking(False)
    attempt("  accept", l.accept, show=lambda r: "a connection")
    d = sock(fam, TCP)
    attempt("  a new client's connect", d.connect, l.getsockname()[:2], show=ok)
    d.close()
    c.close()
    l.close()
    l = listener(fam)
    out("listener SHUT_WR", raw_shutdown(l, socket.SHUT_WR))
    out("  SO_ACCEPTCONN", l.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
    l.close()
