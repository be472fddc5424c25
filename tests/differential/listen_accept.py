# listen() and accept()/accept4(): implicit binding, SO_ACCEPTCONN, errors on the
# wrong sockets, non-blocking accept, readiness of a listener, accept4 flags and
# the addresses an accepted socket reports.
import socket

from lib import *

SO = socket.SOL_SOCKET

for fam in (V4, V6):
    note("family %d" % fam)
    s = sock(fam, TCP)
    out("SO_ACCEPTCONN before listen", s.getsockopt(SO, socket.SO_ACCEPTCONN))
    attempt("accept before listen", s.accept)
    attempt("listen unbound", s.listen, 4, show=ok)
    out("getsockname after implicit bind", local(s))
    out("SO_ACCEPTCONN after listen", s.getsockopt(SO, socket.SO_ACCEPTCONN))
    attempt("getpeername of a listener", s.getpeername)
    attempt("listen again (new backlog)", s.listen, 8, show=ok)
    attempt("bind a listener", s.bind, (lo(fam), 0), show=ok)
    attempt("connect a listener", s.connect, (lo(fam), s.getsockname()[1]), show=ok)
    s.setblocking(False)
    attempt("non-blocking accept, nothing pending", s.accept)
    out("poll listener, nothing pending", poll_mask(s))
    c = sock(fam, TCP)
    c.connect((lo(fam), s.getsockname()[1]))
    wait_readable(s)
    out("poll listener, one pending", poll_mask(s))
    a, p = s.accept()
    cl = c.getsockname()
    out("accepted peer == client's name", p == cl)
    out("accepted getpeername == client's name", a.getpeername() == cl)
    out("accepted getsockname == client's peer", a.getsockname() == c.getpeername())
    out("accepted local", local(a, {s.getsockname()[1]: "listener"}))
    out("accepted peer", peer(a))
    out("accepted SO_ACCEPTCONN", a.getsockopt(SO, socket.SO_ACCEPTCONN))
    out("accepted SO_DOMAIN", a.getsockopt(SO, socket.SO_DOMAIN))
    out("accepted SO_TYPE", a.getsockopt(SO, socket.SO_TYPE))
    out("accepted flags (Python accept: accept4 SOCK_CLOEXEC)", flags_of(a))
    attempt("listen on a connected socket", a.listen, show=ok)
    attempt("listen on the connecting socket", c.listen, show=ok)
    out("poll listener after accept", poll_mask(s))
    a.close()
    c.close()

    note("accept4 flags")
    for flags, name in (
        (0, "0"),
        (socket.SOCK_NONBLOCK, "SOCK_NONBLOCK"),
        (socket.SOCK_CLOEXEC, "SOCK_CLOEXEC"),
        (socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, "both"),
        (0x40, "an unknown flag"),
    ):
        c = sock(fam, TCP)
        c.connect((lo(fam), s.getsockname()[1]))
        wait_readable(s)
        try:
            a, p = accept4(s, flags)
        except OSError as e:
            out("accept4 %s" % name, ename(e.errno))
            s.setblocking(True)
            a, p = s.accept()
            s.setblocking(False)
            a.close()
            c.close()
            continue
        out("accept4 %s flags" % name, flags_of(a))
        out("accept4 %s peer" % name, p == c.getsockname())
        a.close()
        c.close()

    note("connections to different local addresses of a wildcard listener")
    w = listener(fam, any_addr(fam))
    wport = w.getsockname()[1]
    dests = [lo(fam), OWN6 if fam == V6 else OWN4]
    if fam == V4:
        dests.append("127.0.0.9")
    else:
        dests.append("::ffff:127.0.0.1")
    for dest in dests:
        c = sock(fam, TCP)
        attempt("connect %s" % dest, c.connect, (dest, wport), show=ok)
        a, p = w.accept()
        out("  accepted local", local(a, {wport: "listener"}))
        out("  accepted peer", addr(p))
        out("  client local", local(c))
        out("  client peer", peer(c, {wport: "listener"}))
        a.close()
        c.close()
    w.close()

    note("a connection that closes before it is accepted")
    c = sock(fam, TCP)
    c.connect((lo(fam), s.getsockname()[1]))
    c.sendall(b"early")
    c.close()
    wait_readable(s)
    s.setblocking(True)
    a, _ = s.accept()
    out("recv on it", a.recv(100))
    out("recv again", a.recv(100))
    a.close()
    s.close()

note("UDP")
u = sock(V4, UDP)
u.bind((LO4, 0))
attempt("listen on UDP", u.listen, show=ok)
attempt("accept on UDP", u.accept)
out("UDP SO_ACCEPTCONN", u.getsockopt(SO, socket.SO_ACCEPTCONN))
u.close()

note("backlog")
l = listener(V4, backlog=2)
clients = []
for i in range(2):
    c = sock(V4, TCP)
    c.connect(l.getsockname())
    clients.append(c)
l.setblocking(False)
got = 0
while True:
    r, err = quiet(l.accept)
    if r is None:
        out("accept loop ended with", err)
        break
    got += 1
    r[0].close()
out("accepted within backlog", got)
for c in clients:
    c.close()
l.close()
