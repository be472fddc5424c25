# AF_UNSPEC disconnect of an explicitly bound UDP socket: the bound address
# stays; a port given to bind stays, while a port bind chose (port 0) is given
# up (getsockname shows port 0). Datagrams from anyone are accepted again.
import socket
import struct

from lib import *

UNSPEC = struct.pack("=H", socket.AF_UNSPEC) + b"\0" * 14
for fam in (V4, V6):
    for how in ("port 0", "fixed port"):
        if how == "port 0":
            u = udp_bound(fam)
        else:
            t = udp_bound(fam)
            port = t.getsockname()[1]
            t.close()
            u = udp_bound(fam, port=port)
        names = {u.getsockname()[1]: "bound port"}
        a = udp_bound(fam)
        b = udp_bound(fam)
        u.connect(a.getsockname()[:2])
        out("%d %s: connected" % (fam, how), local(u, names))
        out("%d %s: disconnect" % (fam, how), raw_connect(u, UNSPEC))
        out("%d %s: after" % (fam, how), local(u, names))
        attempt("%d %s: getpeername" % (fam, how), u.getpeername)
        if how == "fixed port":
            b.sendto(b"welcome", u.getsockname()[:2])
            out("%d %s: a stranger's datagram" % (fam, how), recv_wait(u, 100))
        for x in (u, a, b):
            x.close()
