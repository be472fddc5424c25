# UDP_CORK: datagrams written while corked are joined into one, sent when the
# cork is removed.
import socket

from lib import *

SOL_UDP = 17
UDP_CORK = 1
for fam in (V4, V6):
    r = udp_bound(fam)
    s = udp_bound(fam)
    s.connect(r.getsockname()[:2])
    s.setsockopt(SOL_UDP, UDP_CORK, 1)
    s.send(b"one")
    s.send(b"two")
    attempt("%d nothing arrives while corked" % fam, r.recv, 100, socket.MSG_DONTWAIT)
    s.setsockopt(SOL_UDP, UDP_CORK, 0)
    attempt("%d uncorked: one datagram" % fam, recv_wait, r, 100)
    attempt("%d and no other" % fam, r.recv, 100, socket.MSG_DONTWAIT)
    r.close()
    s.close()
