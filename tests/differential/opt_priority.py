# SO_PRIORITY: 0 by default, and values set read back, on TCP, UDP and ping
# sockets. (IP_TOS sets it too: opt_priority_tos.py.)
import socket

from lib import *

SO = socket.SOL_SOCKET
SO_PRIORITY = 12
for fam in (V4, V6):
    for ty, what in ((TCP, "TCP"), (UDP, "UDP"), (None, "ping")):
        s = ping_sock(fam) if ty is None else sock(fam, ty)
        out("%d %s default" % (fam, what), s.getsockopt(SO, SO_PRIORITY))
        for v in (3, 6, 0):
            s.setsockopt(SO, SO_PRIORITY, v)
            out("%d %s set %d, get" % (fam, what, v), s.getsockopt(SO, SO_PRIORITY))
        s.close()
