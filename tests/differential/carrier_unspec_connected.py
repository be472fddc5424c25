# connect() with AF_UNSPEC on a connected TCP socket aborts the connection: the
# peer sees a reset, and the socket is fresh again and can connect anew. netvm
# cannot take a connected AF_UNIX carrier apart, or swap the program's fd for a
# new one: the connection stays.
import socket
import struct

from lib import *

UNSPEC = struct.pack("=H", socket.AF_UNSPEC) + b"\0" * 14
for fam in (V4, V6):
    c, a, l = tcp_pair(fam)
    out("%d disconnect connected" % fam, raw_connect(c, UNSPEC))
    attempt("%d getpeername after" % fam, c.getpeername)
    attempt("%d peer recv" % fam, recv_wait, a, 10, 0, 1000)
    c.settimeout(2)
    l.settimeout(2)
    attempt("%d connect again" % fam, c.connect, l.getsockname()[:2], show=ok)
    n = attempt("%d accept" % fam, lambda: l.accept()[0], show=ok)
    attempt("%d send" % fam, c.send, b"again", socket.MSG_NOSIGNAL)
    if n is not None:
        out("%d new connection carries data" % fam, recv_wait(n, 10, 0, 1000))
    for x in (c, a, l, n):
        if x is not None:
            x.close()
