# Implicit binds at their edges: a UDP socket whose disconnect gave up its port
# can bind again; UDP connect to a broadcast address needs SO_BROADCAST; and when
# IP_LOCAL_PORT_RANGE leaves no free port, each call says so its own way
# (sendto EAGAIN, TCP connect EADDRNOTAVAIL, bind EADDRINUSE).
import socket
import struct

from lib import *

IP_LOCAL_PORT_RANGE = 51
UNSPEC = struct.pack("=H", socket.AF_UNSPEC) + b"\0" * 14
for fam in (V4, V6):
    u = sock(fam, UDP)
    u.connect((lo(fam), 9))
    raw_connect(u, UNSPEC)
    attempt("%d bind after the disconnect" % fam, u.bind, (lo(fam), 0), show=ok)
    out("%d bound" % fam, local(u))
    u.close()
b = sock(V4, UDP)
attempt("UDP connect to 127.255.255.255", b.connect, ("127.255.255.255", 9), show=ok)
b.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
attempt("  with SO_BROADCAST", b.connect, ("127.255.255.255", 9), show=ok)
b.close()
one_port = struct.pack("I", 45000 | 45000 << 16)
for fam in (V4, V6):
    l = listener(fam)
    held = []
    for what, ty, call in (
        ("sendto", UDP, lambda s: s.sendto(b"x", (lo(fam), 9))),
        ("connect", TCP, lambda s: s.connect(l.getsockname()[:2])),
        ("bind(0)", TCP, lambda s: s.bind((lo(fam), 0))),
    ):
        for n in (1, 2):
            s = sock(fam, ty)
            s.setsockopt(socket.IPPROTO_IP, IP_LOCAL_PORT_RANGE, one_port)
            attempt("%d %s %d in a one-port range" % (fam, what, n), call, s, show=ok)
            held.append(s)
    for s in held + [l]:
        s.close()
