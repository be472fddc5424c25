# Once a TCP connection is over (both sides sent FIN, or a reset came), Linux
# moves the socket to CLOSE: getpeername says ENOTCONN while getsockname still
# answers.
import socket
import time

from lib import *

for fam in (V4, V6):
    note("family %d" % fam)
    c, a, l = tcp_pair(fam)
    names = {l.getsockname()[1]: "listener"}
    attempt("getpeername while connected", peer, c, names, show=str)
    c.shutdown(socket.SHUT_WR)
    wait_readable(a)
    attempt("getpeername after own SHUT_WR", peer, c, names, show=str)
    a.shutdown(socket.SHUT_WR)
    wait_readable(c)
    time.sleep(0.05)
    attempt("getpeername after both SHUT_WR (first closer)", peer, c, names, show=str)
    attempt("getpeername after both SHUT_WR (second closer)", lambda: addr(a.getpeername()), show=str)
    attempt("getsockname after both SHUT_WR", local, c, show=str)
    for s in (c, a, l):
        s.close()
    c, a, l = tcp_pair(fam)
    names = {l.getsockname()[1]: "listener"}
    c.sendall(b"unread")
    wait_readable(a)
    a.close()
    wait_readable(c)
    time.sleep(0.05)
    attempt("getpeername after a reset", peer, c, names, show=str)
    attempt("getsockname after a reset", local, c, show=str)
    c.close()
    l.close()
