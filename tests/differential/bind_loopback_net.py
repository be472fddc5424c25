# All of 127.0.0.0/8 is the host's own: TCP and UDP bind to 127.0.0.5 and
# 127.1.2.3, a listener there accepts connections from 127.0.0.1 (the source
# chosen for them), while ::2 and 127.x on an IPv6 socket are not local.
import socket

from lib import *

for ty in (TCP, UDP):
    for host in ("127.0.0.5", "127.1.2.3", "127.255.255.254"):
        s = sock(V4, ty)
        attempt("type %d bind %s" % (ty, host), s.bind, (host, 0), show=ok)
        out("type %d getsockname" % ty, local(s))
        s.close()
    s = sock(V6, ty)
    attempt("type %d bind ::2" % ty, s.bind, ("::2", 0), show=ok)
    s.close()
l = listener(V4, "127.0.0.5")
c = sock(V4, TCP)
attempt("connect to 127.0.0.5", c.connect, l.getsockname(), show=ok)
a, frm = l.accept()
out("client local", local(c))
out("client peer", peer(c))
out("accepted local", local(a))
out("accepted peer", peer(a))
for x in (c, a, l):
    x.close()
r = udp_bound(V4, "127.0.0.5")
s = sock(V4, UDP)
s.sendto(b"hello", r.getsockname())
data, frm = recvfrom_wait(r)
out("UDP to 127.0.0.5", (data, addr(frm)))
r.close()
s.close()
