# poll masks (POLLIN|POLLPRI|POLLOUT|POLLRDHUP asked) after shutdown(SHUT_WR) on
# each side in turn: the side that shut down keeps POLLOUT only, its peer sees
# POLLIN|POLLRDHUP; once both sides shut down writing, both add POLLHUP.
import select
import socket
import time

from lib import *

ASK = COMMON
for fam in (V4, V6):
    for first in ("client", "server"):
        c, a, l = tcp_pair(fam)
        one, other = (c, a) if first == "client" else (a, c)
        one.shutdown(socket.SHUT_WR)
        time.sleep(0.1)
        out("%d %s shut down writing: its mask" % (fam, first), poll_mask(one, ASK))
        out("%d %s shut down writing: peer mask" % (fam, first), poll_mask(other, ASK))
        other.shutdown(socket.SHUT_WR)
        time.sleep(0.1)
        out("%d both shut down writing: %s" % (fam, first), poll_mask(one, ASK))
        out("%d both shut down writing: peer" % fam, poll_mask(other, ASK))
        for x in (c, a, l):
            x.close()
