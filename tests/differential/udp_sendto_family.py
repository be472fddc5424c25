# The family of a UDP sendto destination, as Linux judges it: an IPv4 socket
# takes AF_UNSPEC as AF_INET; an IPv6 socket sends an AF_INET address through
# IPv4 routing, calls AF_UNIX invalid and AF_UNSPEC a missing destination.

from lib import *

for fam in (V4, V6):
    note("family %d" % fam)
    r = udp_bound(fam)
    s = udp_bound(fam)
    good = sockaddr(fam, lo(fam), r.getsockname()[1])
    other = V6 if fam == V4 else V4
    out("raw sendto other family", raw_sendto(s, b"x", sockaddr(other, lo(other), 9) + b"\0" * 16, len(good)))
    out("raw sendto AF_UNIX", raw_sendto(s, b"x", b"\x01\x00" + good[2:]))
    out("raw sendto AF_UNSPEC", raw_sendto(s, b"unspec", b"\0\0" + good[2:]))
    attempt("received", recv_wait, r, 100, 0, 200)
    r.close()
    s.close()
