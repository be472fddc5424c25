# A full accept queue: with backlog 0 Linux takes one connection; a second
# client's SYN is dropped, so its non-blocking connect stays in progress until
# the queue has room again.
import select
import socket
import time

from lib import *

for fam in (V4, V6):
    l = listener(fam, backlog=0)
    c1 = sock(fam, TCP)
    c1.setblocking(False)
    out("%d first connect" % fam, ename(c1.connect_ex(l.getsockname()[:2])))
    time.sleep(0.2)
    c2 = sock(fam, TCP)
    c2.setblocking(False)
    out("%d second connect" % fam, ename(c2.connect_ex(l.getsockname()[:2])))
    time.sleep(0.3)
    out("%d first client poll" % fam, poll_mask(c1, select.POLLOUT))
    out("%d second client poll" % fam, poll_mask(c2, select.POLLOUT))
    for c in (c1, c2):
        c.close()
    l.close()
