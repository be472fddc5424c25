# A connected UDP socket accepts datagrams only from its peer: a stranger's
# sendto to it still succeeds (Linux drops the datagram at the receiver).

from lib import *

for fam in (V4, V6):
    note("family %d" % fam)
    a = udp_bound(fam)
    b = udp_bound(fam)
    stranger = udp_bound(fam)
    a.connect(b.getsockname()[:2])
    attempt("stranger sendto a connected socket", stranger.sendto, b"intruder", a.getsockname()[:2])
    attempt("peer sendto the connected socket", b.sendto, b"peer", a.getsockname()[:2])
    attempt("connected socket receives", recv_wait, a, 100)
    attempt("and nothing else", recv_wait, a, 100, 0, 200)
    attempt("connected socket reads its peer's address", lambda: a.getpeername() == b.getsockname(), show=str)
    for s in (a, b, stranger):
        s.close()
