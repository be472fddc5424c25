# A non-blocking connect() to a port nobody listens on: Linux answers EINPROGRESS
# (the refusal arrives as a reset afterwards), then poll shows the error and
# SO_ERROR reports ECONNREFUSED once.
import socket

from lib import *

SO = socket.SOL_SOCKET

for fam in (V4, V6):
    note("family %d" % fam)
    dead = sock(fam, TCP)
    dead.bind((lo(fam), 0))
    dport = dead.getsockname()[1]
    c = sock(fam, TCP)
    c.setblocking(False)
    out("non-blocking connect to a closed port", ename(c.connect_ex((lo(fam), dport))))
    out("poll", poll_mask(c, select.POLLOUT | select.POLLIN, 5000))
    out("SO_ERROR", ename(c.getsockopt(SO, socket.SO_ERROR)))
    out("SO_ERROR again", ename(c.getsockopt(SO, socket.SO_ERROR)))
    out("poll after SO_ERROR", poll_mask(c))
    attempt("getpeername", c.getpeername)
    out("connect again", ename(c.connect_ex((lo(fam), dport))))
    c.close()
    dead.close()
