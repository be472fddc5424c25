# A ping socket's disconnect (connect with AF_UNSPEC) gives up the identifier an
# implicit bind chose (`__udp_disconnect`, shared with UDP): getsockname says 0,
# and the next send binds a fresh one, which the reply carries. An identifier
# the program bound stays.
import socket
import struct

from lib import *

UNSPEC = struct.pack("=H14x", socket.AF_UNSPEC)


def ident(s):
    return s.getsockname()[1]


for fam in (V4, V6):
    note("family %d" % fam)
    p = ping_sock(fam)
    p.sendto(echo_request(fam, 0, 1, b"a"), (lo(fam), 0))
    first = ident(p)
    out("implicit identifier", first != 0)
    attempt("reply", recvfrom_wait, p, show=lambda r: echo_text(r[0], first))
    attempt("connect", p.connect, (lo(fam), 0), show=ok)
    attempt("disconnect", raw_connect, p, UNSPEC)
    out("identifier after the disconnect", ident(p))
    p.sendto(echo_request(fam, 0, 2, b"b"), (lo(fam), 0))
    again = ident(p)
    out("bound again by the send", again != 0)
    attempt("reply", recvfrom_wait, p, show=lambda r: echo_text(r[0], again))
    p.close()

    p = ping_sock(fam)
    p.bind((lo(fam), 4321))
    attempt("connect", p.connect, (lo(fam), 0), show=ok)
    attempt("disconnect", raw_connect, p, UNSPEC)
    out("bound identifier after the disconnect", local(p))
    p.sendto(echo_request(fam, 0, 3, b"c"), (lo(fam), 0))
    attempt("reply", recvfrom_wait, p, show=lambda r: echo_text(r[0], 4321))
    p.close()
