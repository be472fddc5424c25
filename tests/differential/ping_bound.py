# A ping socket bound to an identifier (the port of bind) uses it: the reply's
# identifier is that number whatever the request said; a connected ping socket
# uses send/recv (getpeername still says ENOTCONN: the peer's port is 0); a UDP
# socket may hold the same number.
import socket

from lib import *

for fam in (V4, V6):
    p = ping_sock(fam)
    p.bind((lo(fam), 4321))
    out("%d bound" % fam, local(p))
    p.sendto(echo_request(fam, 999, 1, b"a"), (lo(fam), 0))
    attempt("%d reply" % fam, recvfrom_wait, p, show=lambda r: echo_text(r[0], 4321))
    attempt("%d connect" % fam, p.connect, (lo(fam), 0), show=ok)
    attempt("%d getpeername" % fam, p.getpeername, show=addr)
    attempt("%d send" % fam, p.send, echo_request(fam, 0, 2, b"b"))
    attempt("%d recv" % fam, recv_wait, p, show=lambda r: echo_text(r, 4321))
    p.close()
    u = udp_bound(fam, port=4321)
    out("%d a UDP socket may hold the same number" % fam, local(u))
    u.close()
