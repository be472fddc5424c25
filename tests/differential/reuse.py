# Sharing a port: SO_REUSEADDR and SO_REUSEPORT rules for TCP (bound, listening)
# and UDP, and IPv6 dual-stack binding against IPv4 with and without IPV6_V6ONLY.
import socket

from lib import *

SO = socket.SOL_SOCKET


def bound(fam, ty, host, port, reuseaddr=False, reuseport=False, v6only=None):
    s = sock(fam, ty)
    if reuseaddr:
        s.setsockopt(SO, socket.SO_REUSEADDR, 1)
    if reuseport:
        s.setsockopt(SO, socket.SO_REUSEPORT, 1)
    if v6only is not None:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
    _, err = quiet(s.bind, (host, port))
    return s, err or "ok"


def free_port(fam, ty):
    s = sock(fam, ty)
    s.bind((lo(fam), 0))
    port = s.getsockname()[1]
    s.close()
    return port


note("SO_REUSEADDR, TCP")
for fam in (V4, V6):
    host = lo(fam)
    for ra, rb in ((False, False), (True, False), (False, True), (True, True)):
        port = free_port(fam, TCP)
        a, ea = bound(fam, TCP, host, port, reuseaddr=ra)
        b, eb = bound(fam, TCP, host, port, reuseaddr=rb)
        out("%d reuseaddr a=%d b=%d: both bound, none listening" % (fam, ra, rb), "%s %s" % (ea, eb))
        if eb == "ok":
            out("  listen a", quiet(a.listen)[1] or "ok")
            out("  listen b", quiet(b.listen)[1] or "ok")
        a.close()
        b.close()
    for ra, rb in ((False, False), (True, True)):
        port = free_port(fam, TCP)
        a, _ = bound(fam, TCP, host, port, reuseaddr=ra)
        a.listen()
        b, eb = bound(fam, TCP, host, port, reuseaddr=rb)
        out("%d reuseaddr a=%d b=%d: a listening, bind b" % (fam, ra, rb), eb)
        a.close()
        b.close()
        c, ec = bound(fam, TCP, host, port, reuseaddr=rb)
        out("%d after the listener closed, bind again" % fam, ec)
        c.close()
    port = free_port(fam, TCP)
    a, _ = bound(fam, TCP, any_addr(fam), port, reuseaddr=True)
    b, eb = bound(fam, TCP, host, port, reuseaddr=True)
    out("%d reuseaddr wildcard + specific, none listening" % fam, eb)
    b.listen()
    out("%d   specific listens, wildcard listens" % fam, quiet(a.listen)[1] or "ok")
    a.close()
    b.close()

note("SO_REUSEPORT, TCP")
for fam in (V4, V6):
    host = lo(fam)
    for ra, rb in ((True, True), (True, False), (False, True)):
        port = free_port(fam, TCP)
        a, _ = bound(fam, TCP, host, port, reuseport=ra)
        a.listen()
        b, eb = bound(fam, TCP, host, port, reuseport=rb)
        out("%d reuseport a=%d b=%d: a listening, bind b" % (fam, ra, rb), eb)
        if eb == "ok":
            out("  listen b", quiet(b.listen)[1] or "ok")
        a.close()
        b.close()
    port = free_port(fam, TCP)
    a, _ = bound(fam, TCP, host, port, reuseport=True)
    b, eb = bound(fam, TCP, host, port, reuseport=True)
    out("%d reuseport both, none listening" % fam, eb)
    a.listen()
    b.listen()
    c = sock(fam, TCP)
    attempt("%d connect to a reuseport group" % fam, c.connect, (host, port), show=ok)
    got = 0
    for s in (a, b):
        s.setblocking(False)
        r, _ = quiet(s.accept)
        got += r is not None
    out("%d connections accepted in the group" % fam, got)
    for s in (a, b, c):
        s.close()

note("UDP")
for fam in (V4, V6):
    host = lo(fam)
    for ra, rb, pa, pb in (
        (False, False, False, False),
        (True, True, False, False),
        (True, False, False, False),
        (False, False, True, True),
        (False, False, True, False),
    ):
        port = free_port(fam, UDP)
        a, _ = bound(fam, UDP, host, port, reuseaddr=ra, reuseport=pa)
        b, eb = bound(fam, UDP, host, port, reuseaddr=rb, reuseport=pb)
        out("%d udp reuseaddr %d/%d reuseport %d/%d: bind b" % (fam, ra, rb, pa, pb), eb)
        a.close()
        b.close()

note("dual stack")
for ty in (TCP, UDP):
    for v6only in (0, 1):
        for order in ("v6 first", "v4 first"):
            port = free_port(V4, ty)
            if order == "v6 first":
                a, ea = bound(V6, ty, "::", port, v6only=v6only)
                b, eb = bound(V4, ty, "0.0.0.0", port)
            else:
                a, ea = bound(V4, ty, "0.0.0.0", port)
                b, eb = bound(V6, ty, "::", port, v6only=v6only)
            out("%d v6only=%d %s: second bind" % (ty, v6only, order), "%s %s" % (ea, eb))
            a.close()
            b.close()
        port = free_port(V4, ty)
        a, _ = bound(V6, ty, "::", port, v6only=v6only)
        b, eb = bound(V4, ty, LO4, port)
        out("%d v6only=%d [::] then 127.0.0.1" % (ty, v6only), eb)
        c, ec = bound(V6, ty, "::ffff:10.0.0.2", port)
        out("%d v6only=%d [::] then [::ffff:10.0.0.2]" % (ty, v6only), ec)
        d, ed = bound(V6, ty, LO6, port)
        out("%d v6only=%d [::] then [::1]" % (ty, v6only), ed)
        for s in (a, b, c, d):
            s.close()
    port = free_port(V4, ty)
    a, _ = bound(V6, ty, LO6, port)
    b, eb = bound(V4, ty, LO4, port)
    out("%d [::1] and 127.0.0.1 on one port" % ty, eb)
    a.close()
    b.close()
    s = sock(V6, ty)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    attempt("%d v6only bind ::ffff:127.0.0.1" % ty, s.bind, ("::ffff:127.0.0.1", 0), show=ok)
    s.close()
