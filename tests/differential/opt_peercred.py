# SO_PEERCRED means nothing for TCP and UDP: Linux answers pid 0 and uid/gid -1
# (overflow ids) on connected, listening and fresh sockets.
import socket
import struct

from lib import *

for fam in (V4, V6):
    c, a, l = tcp_pair(fam)
    u = udp_bound(fam)
    for what, s in (("client", c), ("accepted", a), ("listener", l), ("UDP", u)):
        attempt("%d %s SO_PEERCRED" % (fam, what),
                lambda: struct.unpack("iII", s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)), show=str)
    for x in (c, a, l, u):
        x.close()
