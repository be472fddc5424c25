# An IPv6 socket bound to a v4-mapped address is an IPv4 socket in disguise:
# it holds the IPv4 port, accepts IPv4 clients (seen as ::ffff:a.b.c.d), and
# IPV6_V6ONLY forbids such a bind; an unowned mapped address is EADDRNOTAVAIL.
import socket

from lib import *

IP6 = socket.IPPROTO_IPV6
for ty in (TCP, UDP):
    for host in ("::ffff:127.0.0.1", "::ffff:10.0.0.2", "::ffff:192.0.2.1", "::ffff:127.0.0.9"):
        s = sock(V6, ty)
        attempt("type %d bind %s" % (ty, host), s.bind, (host, 0), show=ok)
        s.close()
    s = sock(V6, ty)
    s.setsockopt(IP6, socket.IPV6_V6ONLY, 1)
    attempt("type %d V6ONLY bind ::ffff:127.0.0.1" % ty, s.bind, ("::ffff:127.0.0.1", 0), show=ok)
    s.close()
    s = sock(V6, ty)
    s.bind(("::ffff:127.0.0.1", 0))
    port = s.getsockname()[1]
    out("type %d getsockname" % ty, local(s))
    t = sock(V4, ty)
    attempt("type %d IPv4 bind of the same port" % ty, t.bind, (LO4, port), show=ok)
    t.close()
    t = sock(V6, ty)
    attempt("type %d IPv6 [::1] bind of the same port" % ty, t.bind, (LO6, port), show=ok)
    t.close()
    if ty == TCP:
        s.listen()
        c = sock(V4, TCP)
        c.connect((LO4, port))
        a, frm = s.accept()
        out("accepted peer", addr(frm))
        out("accepted local", local(a))
        c.close()
        a.close()
    else:
        c = sock(V4, UDP)
        c.sendto(b"x", (LO4, port))
        out("UDP from an IPv4 socket", addr(recvfrom_wait(s)[1]))
        c.close()
    s.close()
