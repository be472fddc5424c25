# FIONREAD (SIOCINQ) on UDP is the size of the next datagram, not the total
# queued; on TCP it is the total. Each read moves to the next datagram.
import socket
import time

from lib import *

for fam in (V4, V6):
    r = udp_bound(fam)
    s = sock(fam, UDP)
    out("%d empty" % fam, ioctl_int(r, FIONREAD))
    for d in (b"abc", b"defgh", b"ij"):
        s.sendto(d, r.getsockname()[:2])
    time.sleep(0.1)
    for _ in range(3):
        out("%d FIONREAD" % fam, ioctl_int(r, FIONREAD))
        r.recv(1)
    out("%d drained" % fam, ioctl_int(r, FIONREAD))
    r.close()
    s.close()
    c, a, l = tcp_pair(fam)
    for d in (b"abc", b"defgh", b"ij"):
        c.send(d)
    time.sleep(0.1)
    out("%d TCP FIONREAD" % fam, ioctl_int(a, FIONREAD))
    a.recv(4)
    out("%d TCP after reading 4" % fam, ioctl_int(a, FIONREAD))
    out("%d TCP sender's FIONREAD" % fam, ioctl_int(c, FIONREAD))
    for x in (c, a, l):
        x.close()
