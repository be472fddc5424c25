# IPv4 and IPv6 meeting through v4-mapped addresses: an IPv6 client reaching an
# IPv4 listener (the listener sees a plain IPv4 peer), an IPv4 client reaching a
# dual-stack IPv6 listener (the listener sees ::ffff:a.b.c.d), and the refusals
# (IPV6_V6ONLY, ::1 to an IPv4-only listener).
import socket

from lib import *

l4 = listener(V4, any_addr(V4))
p4 = l4.getsockname()[1]
for dest in ("::ffff:127.0.0.1", "::ffff:10.0.0.2"):
    note("IPv6 client to %s, IPv4 listener" % dest)
    c = sock(V6, TCP)
    attempt("connect", c.connect, (dest, p4), show=ok)
    out("client local", local(c))
    out("client peer", peer(c, {p4: "listener"}))
    a, p = l4.accept()
    out("accept's peer address", addr(p))
    out("accepted getpeername", addr(a.getpeername()))
    out("accepted getsockname", local(a, {p4: "listener"}))
    out("peer matches the client's name", (p[0], p[1]) == (c.getsockname()[0].replace("::ffff:", ""), c.getsockname()[1]))
    c.sendall(b"mapped")
    out("data", recv_wait(a, 100))
    a.close()
    c.close()

l6 = listener(V6, "::")
p6 = l6.getsockname()[1]
for dest in ("127.0.0.1", "10.0.0.2"):
    note("IPv4 client to %s, dual-stack listener" % dest)
    c = sock(V4, TCP)
    attempt("connect", c.connect, (dest, p6), show=ok)
    out("client local", local(c))
    out("client peer", peer(c, {p6: "listener"}))
    a, p = l6.accept()
    out("accept's peer address", addr(p))
    out("accepted getsockname", local(a, {p6: "listener"}))
    out("accepted SO_DOMAIN", a.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN))
    a.close()
    c.close()

note("refusals")
c = sock(V6, TCP)
c.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
attempt("v6only client to ::ffff:127.0.0.1", c.connect, ("::ffff:127.0.0.1", p4), show=ok)
c.close()
c = sock(V6, TCP)
attempt("::1 to an IPv4-only listener", c.connect, ("::1", p4), show=ok)
c.close()
l6.close()
l6 = sock(V6, TCP)
l6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
l6.bind(("::", 0))
l6.listen()
c = sock(V4, TCP)
attempt("IPv4 client to a v6only listener's port", c.connect, (LO4, l6.getsockname()[1]), show=ok)
c.close()
l6.close()
l4.close()
