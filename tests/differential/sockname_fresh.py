# The names of sockets nobody bound or connected: getsockname is the wildcard
# with port 0 for TCP, UDP and ping sockets, getpeername is ENOTCONN.
import socket

from lib import *

for fam in (V4, V6):
    for what, make in (("TCP", lambda: sock(fam, TCP)), ("UDP", lambda: sock(fam, UDP)), ("ping", lambda: ping_sock(fam))):
        s = make()
        attempt("%d %s getsockname" % (fam, what), s.getsockname, show=addr)
        attempt("%d %s getpeername" % (fam, what), s.getpeername, show=addr)
        s.close()
