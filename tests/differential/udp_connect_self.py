# A UDP socket connected to its own address receives its own datagrams, with
# its own address as the source.
import socket

from lib import *

for fam in (V4, V6):
    for host in (lo(fam), OWN6 if fam == V6 else OWN4):
        u = udp_bound(fam, host)
        me = u.getsockname()[:2]
        attempt("%d %s connect to self" % (fam, host), u.connect, me, show=ok)
        attempt("%d send" % fam, u.send, b"dgram")
        attempt("%d recvfrom own datagram" % fam, recvfrom_wait, u, 10, show=lambda r: (r[0], r[1][:2] == me))
        u.close()
