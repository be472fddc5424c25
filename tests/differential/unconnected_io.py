# Reading and writing a TCP socket that has no connection (fresh, listening, or
# after a refused connect): Linux says ENOTCONN for reads and EPIPE for writes
# (with SIGPIPE unless MSG_NOSIGNAL).
import socket

from lib import *

count_sigpipes()


for fam in (V4, V6):
    note("family %d" % fam)
    fresh = sock(fam, TCP)
    fresh.setblocking(False)
    attempt("recv on a fresh socket", fresh.recv, 10)
    attempt("send on a fresh socket", fresh.send, b"x", socket.MSG_NOSIGNAL)
    attempt("send on a fresh socket, signals allowed", fresh.send, b"x")
    out("SIGPIPEs", sigpipes())
    attempt("sendto on a fresh socket with an address", fresh.sendto, b"x", (lo(fam), 9))
    out("SIGPIPEs", sigpipes())
    out("poll a fresh socket", poll_mask(fresh))
    fresh.close()
    l = listener(fam)
    l.setblocking(False)
    attempt("recv on a listener", l.recv, 10)
    attempt("send on a listener", l.send, b"x", socket.MSG_NOSIGNAL)
    out("SIGPIPEs", sigpipes())
    l.close()
    dead = sock(fam, TCP)
    dead.bind((lo(fam), 0))
    r = sock(fam, TCP)
    quiet(r.connect, dead.getsockname()[:2])
    r.setblocking(False)
    attempt("recv after a refused connect", r.recv, 10)
    attempt("send after a refused connect", r.send, b"x", socket.MSG_NOSIGNAL)
    out("poll after a refused connect", poll_mask(r))
    r.close()
    dead.close()
