# After the peer close()s: reads see EOF, poll shows POLLIN|POLLRDHUP (not
# POLLHUP: this side may still write), the first write still succeeds and draws
# a reset, and the next one fails with EPIPE (and SIGPIPE unless MSG_NOSIGNAL).
# The same poll mask after the peer's shutdown(SHUT_RDWR).
import socket
import time

from lib import *

count_sigpipes()


for fam in (V4, V6):
    for nosignal in (True, False):
        flags = socket.MSG_NOSIGNAL if nosignal else 0
        note("family %d, MSG_NOSIGNAL %s" % (fam, nosignal))
        c, a, l = tcp_pair(fam)
        a.close()
        wait_readable(c)
        out("poll after the peer closed", poll_mask(c))
        out("recv", c.recv(10))
        attempt("first send", c.send, b"x", flags)
        time.sleep(0.05)
        out("poll after the reset", poll_mask(c))
        attempt("second send", c.send, b"x", flags)
        out("SIGPIPEs", sigpipes())
        attempt("third send", c.send, b"x", flags)
        out("SIGPIPEs", sigpipes())
        attempt("recv", c.recv, 10)
        out("SO_ERROR", ename(c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)))
        c.close()
        l.close()

note("the peer's SHUT_RDWR")
for fam in (V4, V6):
    c, a, l = tcp_pair(fam)
    c.shutdown(socket.SHUT_RDWR)
    wait_readable(a)
    out("%d poll after the peer's SHUT_RDWR" % fam, poll_mask(a))
    attempt("%d send after the peer's SHUT_RDWR" % fam, a.send, b"x", socket.MSG_NOSIGNAL)
    for s in (c, a, l):
        s.close()
