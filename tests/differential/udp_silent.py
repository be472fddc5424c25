# UDP toward a port nobody bound and toward a receiver that does not read: a
# connected socket is bound by its connect and its first send succeeds (the ICMP
# refusal that Linux reports on the next call is udp_unreachable's); a sender is
# never held up by a full receiver; the largest datagram per family.
import socket

from lib import *

for fam in (V4, V6):
    note("family %d" % fam)
    s = sock(fam, UDP)
    attempt("connect to a port nobody bound", s.connect, (lo(fam), 9), show=ok)
    out("bound by the connect", addr(s.getsockname()))
    attempt("send there", s.send, b"lost")
    s.close()

    r = udp_bound(fam)
    w = sock(fam, UDP)
    w.settimeout(5)
    sent = [w.sendto(b"x" * 100, r.getsockname()[:2]) for _ in range(40)]
    out("40 datagrams to a receiver that does not read", sent == [100] * 40)
    r.close()
    w.close()

    big = 65507 if fam == V4 else 65527
    r = udp_bound(fam)
    w = sock(fam, UDP)
    attempt("sendto of the largest datagram", w.sendto, b"y" * big, r.getsockname()[:2])
    attempt("sendto one byte more", w.sendto, b"y" * (big + 1), r.getsockname()[:2])
    attempt("sendmsg one byte more", w.sendmsg, [b"y" * (big + 1)], [], 0, r.getsockname()[:2])
    r.close()
    w.close()
