# A connect() to a port whose listener has just closed, before anything else
# happened: refused as if nobody had listened, blocking (ECONNREFUSED) and
# non-blocking (EINPROGRESS, then the error); and with two listeners on the port
# (SO_REUSEPORT), the one left takes the connection when the other closed.
import socket

from lib import *

SO = socket.SOL_SOCKET


def just_closed_port(fam):
    """A port whose listener has just closed."""
    l = listener(fam)
    port = l.getsockname()[1]
    l.close()
    return port


for fam in (V4, V6):
    note("family %d" % fam)
    c = sock(fam, TCP)
    attempt("blocking connect", c.connect, (lo(fam), just_closed_port(fam)))
    c.close()
    c = sock(fam, TCP)
    c.setblocking(False)
    out("non-blocking connect", ename(c.connect_ex((lo(fam), just_closed_port(fam)))))
    out("poll", poll_mask(c, select.POLLOUT | select.POLLIN, 5000))
    out("SO_ERROR", ename(c.getsockopt(SO, socket.SO_ERROR)))
    c.close()
    first = sock(fam, TCP)
    first.setsockopt(SO, socket.SO_REUSEPORT, 1)
    first.bind((lo(fam), 0))
    first.listen(4)
    port = first.getsockname()[1]
    second = sock(fam, TCP)
    second.setsockopt(SO, socket.SO_REUSEPORT, 1)
    second.bind((lo(fam), port))
    second.listen(4)
    first.close()
    c = sock(fam, TCP)
    attempt("connect with one listener left", c.connect, (lo(fam), port))
    n, _ = second.accept()
    out("accepted by the one left", peer(n) == local(c))
    n.close()
    c.close()
    second.close()
