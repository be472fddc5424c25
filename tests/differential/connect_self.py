# A TCP socket bound to a port and connected to that same port is connected to
# itself (a simultaneous open) and reads what it writes.
import socket

from lib import *

for fam in (V4, V6):
    s = sock(fam, TCP)
    s.bind((lo(fam), 0))
    me = s.getsockname()[:2]
    attempt("%d TCP connect to self" % fam, s.connect, me, show=ok)
    attempt("%d peer is self" % fam, lambda: s.getpeername()[:2] == me)
    attempt("%d send" % fam, s.send, b"echo", socket.MSG_NOSIGNAL)
    attempt("%d recv own data" % fam, recv_wait, s, 10, 0, 500)
    s.close()
