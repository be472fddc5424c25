# SIOCOUTQ on TCP counts bytes the peer has not acknowledged yet: on loopback
# the peer's kernel acknowledges at once, read by the peer program or not.
import socket
import time

from lib import *

SIOCOUTQNSD = 0x894B

for fam in (V4, V6):
    note("family %d" % fam)
    c, a, l = tcp_pair(fam)
    out("SIOCOUTQ idle", ioctl_int(c, SIOCOUTQ))
    c.sendall(b"y" * 1000)
    wait_readable(a)
    time.sleep(0.05)
    out("SIOCOUTQ with 1000 bytes unread by the peer", ioctl_int(c, SIOCOUTQ))
    out("SIOCOUTQNSD", ioctl_int(c, SIOCOUTQNSD))
    a.recv(1000, socket.MSG_WAITALL)
    out("SIOCOUTQ once read", ioctl_int(c, SIOCOUTQ))
    out("SIOCOUTQ on a listener", ioctl_int(l, SIOCOUTQ))
    for s in (c, a, l):
        s.close()
