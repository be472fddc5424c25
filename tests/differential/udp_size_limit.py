# The largest UDP datagram: 65507 bytes of payload over IPv4 and 65527 over
# IPv6 are sent and received whole; one byte more is EMSGSIZE.
import socket

from lib import *

for fam, limit in ((V4, 65507), (V6, 65527)):
    r = udp_bound(fam)
    s = sock(fam, UDP)
    for n in (limit, limit + 1, 65536, 1 << 20):
        attempt("%d send %d" % (fam, n), s.sendto, b"u" * n, r.getsockname()[:2])
    wait_readable(r)
    attempt("%d received" % fam, lambda: len(r.recv(1 << 17, socket.MSG_DONTWAIT)))
    attempt("%d nothing else" % fam, r.recv, 10, socket.MSG_DONTWAIT)
    r.close()
    s.close()
