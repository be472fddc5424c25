# A connected UDP socket may still sendto() another address (Linux sends it
# there), send() goes to the peer, and connecting again retargets send().
import socket

from lib import *

for fam in (V4, V6):
    a = udp_bound(fam)
    b = udp_bound(fam)
    s = udp_bound(fam)
    s.connect(a.getsockname()[:2])
    attempt("%d sendto another address" % fam, s.sendto, b"to b", b.getsockname()[:2])
    attempt("%d send" % fam, s.send, b"to a")
    out("%d a got" % fam, recv_wait(a, 100))
    out("%d b got" % fam, recv_wait(b, 100))
    attempt("%d sendto the peer explicitly" % fam, s.sendto, b"a again", a.getsockname()[:2])
    out("%d a got" % fam, recv_wait(a, 100))
    s.connect(b.getsockname()[:2])
    s.send(b"retargeted")
    out("%d b got after reconnect" % fam, recv_wait(b, 100))
    attempt("%d a got nothing" % fam, a.recv, 100, socket.MSG_DONTWAIT)
    out("%d local port kept" % fam, s.getsockname() == s.getsockname())
    for x in (a, b, s):
        x.close()
