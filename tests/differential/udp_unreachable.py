# UDP to a port nobody has bound: a connected socket's send succeeds, and the
# ICMP port unreachable that comes back is reported as ECONNREFUSED once (poll
# shows POLLERR, the next recvfrom or SO_ERROR consumes it); an unconnected socket
# is not told. (What a plain recv() reports is carrier_udp_refused_recv.py.)
import select
import socket

from lib import *

for fam in (V4, V6):
    note("family %d" % fam)
    c = sock(fam, UDP)
    attempt("connect to a never bound port", c.connect, (lo(fam), 9), show=ok)
    out("peer", peer(c))
    attempt("send", c.send, b"x")
    # Waits for the error (POLLERR always wakes a poll): across a network it
    # comes a round trip later. carrier_udp_refused_recv.py polls at once.
    out("poll after the port-unreachable", poll_mask(c, select.POLLIN, timeout=200))
    attempt("recvfrom", recvfrom_wait, c, 100, 0, 200)
    attempt("recvfrom again", recvfrom_wait, c, 100, 0, 200)
    attempt("send again", c.send, b"x")
    out("SO_ERROR", ename(c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)))
    out("SO_ERROR again", ename(c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)))
    attempt("send a third time", c.send, b"x")
    c.close()
    u = sock(fam, UDP)
    attempt("unconnected sendto a never bound port", u.sendto, b"x", (lo(fam), 9))
    attempt("unconnected recvfrom after it", recvfrom_wait, u, 100, 0, 200)
    out("SO_ERROR", ename(u.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)))
    u.close()
