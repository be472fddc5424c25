# IP_LOCAL_PORT_RANGE narrows the ports an implicit bind may pick, per socket:
# bind to port 0 and connect's implicit bind stay inside it, and when its one
# port is taken, bind(0) is EADDRINUSE. The option packs low | high << 16.
import socket
import struct

from lib import *

IP_LOCAL_PORT_RANGE = 51
IP = socket.IPPROTO_IP


def ranged(fam, ty, low, high):
    s = sock(fam, ty)
    s.setsockopt(IP, IP_LOCAL_PORT_RANGE, struct.pack("I", low | high << 16))
    return s


s = sock(V4, TCP)
attempt("default", s.getsockopt, IP, IP_LOCAL_PORT_RANGE)
attempt("set 40000-40010", s.setsockopt, IP, IP_LOCAL_PORT_RANGE, struct.pack("I", 40000 | 40010 << 16), show=ok)
attempt("get", lambda: hex(struct.unpack("I", s.getsockopt(IP, IP_LOCAL_PORT_RANGE, 4))[0]), show=str)
s.close()
for fam in (V4, V6):
    for ty in (TCP, UDP):
        t = "%d/%d" % (fam, ty)
        s = ranged(fam, ty, 41000, 41004)
        s.bind((lo(fam), 0))
        out("%s bind(0) inside 41000-41004" % t, 41000 <= s.getsockname()[1] <= 41004)
        s.close()
        a = ranged(fam, ty, 42000, 42000)
        a.bind((lo(fam), 0))
        out("%s one-port range" % t, a.getsockname()[1])
        b = ranged(fam, ty, 42000, 42000)
        attempt("%s second socket, same one-port range" % t, b.bind, (lo(fam), 0), show=ok)
        a.close()
        b.close()
    l = listener(fam)
    c = ranged(fam, TCP, 43000, 43000)
    c.connect(l.getsockname()[:2])
    out("%d connect's implicit bind" % fam, c.getsockname()[1])
    c.close()
    l.close()
    u = ranged(fam, UDP, 43100, 43100)
    u.sendto(b"x", (lo(fam), 9))
    out("%d sendto's implicit bind" % fam, u.getsockname()[1])
    u.close()
