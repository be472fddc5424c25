# SO_SNDBUF: Linux doubles the value set, clamps tiny values to a minimum, and
# reads back the doubled value; a second set replaces the first.
import socket

from lib import *

SO = socket.SOL_SOCKET
for fam in (V4, V6):
    for ty in (TCP, UDP):
        for v in (4096, 10000, 65536, 1, 0, -1):
            s = sock(fam, ty)
            r, err = quiet(s.setsockopt, SO, socket.SO_SNDBUF, v)
            out("%d/%d set SO_SNDBUF %d, get" % (fam, ty, v), err or s.getsockopt(SO, socket.SO_SNDBUF))
            s.close()
        s = sock(fam, ty)
        s.setsockopt(SO, socket.SO_SNDBUF, 100000)
        s.setsockopt(SO, socket.SO_SNDBUF, 8192)
        out("%d/%d set 100000 then 8192, get" % (fam, ty), s.getsockopt(SO, socket.SO_SNDBUF))
        s.close()
