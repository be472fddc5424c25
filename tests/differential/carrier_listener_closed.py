# A listener closed by shutdown(SHUT_RD): Linux polls it as a closed TCP socket
# (POLLOUT|POLLHUP) and resets the connection waiting in its queue (ECONNRESET).
# netvm's carrier is still a listening AF_UNIX socket, which polls nothing, and
# the waiting connection can only be ended, not reset (its recv sees the end).
import socket

from lib import *

for fam in (V4, V6):
    l = listener(fam)
    c = sock(fam, TCP)
    c.connect(l.getsockname()[:2])
    out("%d listener SHUT_RD" % fam, raw_shutdown(l, socket.SHUT_RD))
    out("%d poll" % fam, poll_mask(l))
    attempt("%d the pending client's recv" % fam, recv_wait, c, 10, 0, 200)
    c.close()
    l.close()
