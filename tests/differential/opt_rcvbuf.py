# SO_RCVBUF: Linux doubles the value set (room for its bookkeeping), clamps tiny
# values to a minimum, and reads back the doubled value, on TCP and UDP alike.
import socket

from lib import *

SO = socket.SOL_SOCKET
for fam in (V4, V6):
    for ty in (TCP, UDP):
        for v in (4096, 10000, 65536, 1, 0, -1):
            s = sock(fam, ty)
            r, err = quiet(s.setsockopt, SO, socket.SO_RCVBUF, v)
            out("%d/%d set SO_RCVBUF %d, get" % (fam, ty, v), err or s.getsockopt(SO, socket.SO_RCVBUF))
            s.close()
