# Boolean options store a flag: any non-zero value reads back as 1, negative
# values too; the same on TCP and UDP, IPv4 and IPv6.
import socket

from lib import *

SO = socket.SOL_SOCKET
for fam in (V4, V6):
    for ty in (TCP, UDP):
        s = sock(fam, ty)
        for name, level, opt in (
            ("SO_REUSEADDR", SO, socket.SO_REUSEADDR),
            ("SO_REUSEPORT", SO, socket.SO_REUSEPORT),
            ("SO_KEEPALIVE", SO, socket.SO_KEEPALIVE),
            ("SO_BROADCAST", SO, socket.SO_BROADCAST),
            ("SO_OOBINLINE", SO, socket.SO_OOBINLINE),
        ) + ((("TCP_NODELAY", socket.IPPROTO_TCP, socket.TCP_NODELAY),) if ty == TCP else ()):
            for v in (5, -3, 256, 0):
                r, err = quiet(s.setsockopt, level, opt, v)
                out("%d/%d %s set %d, get" % (fam, ty, name, v), err or s.getsockopt(level, opt))
        s.close()
