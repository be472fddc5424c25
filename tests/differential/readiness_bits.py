# Every poll bit, POLLRDNORM/POLLWRNORM/POLLRDBAND/POLLWRBAND included, on TCP and
# UDP sockets in their usual states: fresh, listening, connected, with data, and
# after the peer's SHUT_WR.
import socket

from lib import *

for fam in (V4, V6):
    note("family %d" % fam)
    fresh = sock(fam, TCP)
    out("fresh TCP", poll_mask(fresh, EVERY))
    fresh.close()
    c, a, l = tcp_pair(fam)
    out("listener", poll_mask(l, EVERY))
    out("connected idle", poll_mask(a, EVERY))
    c.sendall(b"data")
    wait_readable(a)
    out("connected with data", poll_mask(a, EVERY))
    a.recv(10)
    c.shutdown(socket.SHUT_WR)
    wait_readable(a)
    out("after the peer's SHUT_WR", poll_mask(a, EVERY))
    out("after own SHUT_WR", poll_mask(c, EVERY))
    for s in (c, a, l):
        s.close()
    u = sock(fam, UDP)
    out("fresh UDP", poll_mask(u, EVERY))
    u.bind((lo(fam), 0))
    out("bound UDP", poll_mask(u, EVERY))
    u.sendto(b"self", u.getsockname()[:2])
    wait_readable(u)
    out("UDP with a datagram", poll_mask(u, EVERY))
    u.close()
