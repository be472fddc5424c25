# UDP to a port whose socket was closed just now behaves as to a port never bound:
# connect succeeds, sends succeed, and the refusal arrives afterwards (seen here
# by recvfrom; a plain recv() is carrier_udp_refused_recv.py).

from lib import *

for fam in (V4, V6):
    note("family %d" % fam)
    dead = udp_bound(fam)
    closed = dead.getsockname()[1]
    dead.close()
    c = sock(fam, UDP)
    attempt("connect to a port closed just now", c.connect, (lo(fam), closed), show=ok)
    attempt("send", c.send, b"x")
    attempt("recvfrom", recvfrom_wait, c, 100, 0, 200)
    c.close()
    u = sock(fam, UDP)
    attempt("unconnected sendto a port closed just now", u.sendto, b"x", (lo(fam), closed))
    attempt("unconnected recvfrom after it", recvfrom_wait, u, 100, 0, 200)
    u.close()
    again = sock(fam, UDP)
    attempt("bind the closed port again", again.bind, (lo(fam), closed), show=ok)
    again.close()
