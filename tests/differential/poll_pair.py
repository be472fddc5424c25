# Both ends of a fresh TCP connection through poll with every bit asked for
# (but POLLWRBAND: readiness_bits.py): writable only, then readable as well once
# the peer sent data.
import select
import socket
import time

from lib import *

for fam in (V4, V6):
    c, a, l = tcp_pair(fam)
    out("%d client idle" % fam, poll_mask(c, EVERY & ~select.POLLWRBAND))
    out("%d server idle" % fam, poll_mask(a, EVERY & ~select.POLLWRBAND))
    c.send(b"ping")
    a.send(b"pong")
    time.sleep(0.1)
    out("%d client with data" % fam, poll_mask(c, EVERY & ~select.POLLWRBAND))
    out("%d server with data" % fam, poll_mask(a, EVERY & ~select.POLLWRBAND))
    for x in (c, a, l):
        x.close()
