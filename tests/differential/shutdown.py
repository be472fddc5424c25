# shutdown() on connected TCP sockets as both ends see it: EOF after the peer's
# SHUT_WR, EPIPE after one's own, reads after SHUT_RD, the poll masks (with
# POLLRDHUP) on each side, the addresses that stay readable while a direction
# is open, and invalid `how` values.
import signal
import socket

from lib import *

signal.signal(signal.SIGPIPE, signal.SIG_IGN)

for fam in (V4, V6):
    note("family %d: SHUT_WR" % fam)
    c, a, l = tcp_pair(fam)
    out("poll before", poll_mask(a))
    attempt("client SHUT_WR", c.shutdown, socket.SHUT_WR, show=ok)
    wait_readable(a)
    out("server poll after client SHUT_WR", poll_mask(a))
    out("server recv", a.recv(10))
    out("server recv again", a.recv(10))
    out("client poll after own SHUT_WR", poll_mask(c))
    attempt("client send after own SHUT_WR", c.send, b"x", socket.MSG_NOSIGNAL)
    attempt("server send still works", a.send, b"reply")
    wait_readable(c)
    out("client recv still works", c.recv(10))
    out("client getpeername still works", peer(c, {l.getsockname()[1]: "listener"}))
    out("server getpeername still works", addr(a.getpeername()) != "")
    attempt("client SHUT_WR twice", c.shutdown, socket.SHUT_WR, show=ok)
    attempt("server SHUT_WR", a.shutdown, socket.SHUT_WR, show=ok)
    wait_readable(c)
    out("client poll after both SHUT_WR", poll_mask(c))
    out("server poll after both SHUT_WR", poll_mask(a))
    out("client recv", c.recv(10))
    for s in (c, a, l):
        s.close()

    note("family %d: SHUT_RD" % fam)
    c, a, l = tcp_pair(fam)
    attempt("client SHUT_RD", c.shutdown, socket.SHUT_RD, show=ok)
    out("client poll after own SHUT_RD", poll_mask(c))
    out("client recv after own SHUT_RD", c.recv(10))
    out("client recv MSG_DONTWAIT after own SHUT_RD", c.recv(10, socket.MSG_DONTWAIT))
    attempt("client send after own SHUT_RD", c.send, b"still")
    wait_readable(a)
    out("server recv", a.recv(10))
    out("server poll", poll_mask(a))
    for s in (c, a, l):
        s.close()

    note("family %d: SHUT_RDWR" % fam)
    c, a, l = tcp_pair(fam)
    c.sendall(b"before")
    attempt("client SHUT_RDWR", c.shutdown, socket.SHUT_RDWR, show=ok)
    wait_readable(a)
    out("server recv", a.recv(100))
    out("server recv EOF", a.recv(100))
    attempt("client send", c.send, b"x", socket.MSG_NOSIGNAL)
    out("client recv", c.recv(10))
    for s in (c, a, l):
        s.close()

    note("family %d: errors" % fam)
    c, a, l = tcp_pair(fam)
    for how in (-1, 3, 42):
        out("shutdown how=%d" % how, raw_shutdown(c, how))
    for s in (c, a, l):
        s.close()
