# listen() backlogs: 0 and negative are accepted, listen() again on a listener
# changes nothing visible, and the queue holds connections until accepted
# (clients are connected before accept is called).
import socket

from lib import *

for fam in (V4, V6):
    for backlog in (0, -1, 1, 4096, 1 << 20):
        s = sock(fam, TCP)
        s.bind((lo(fam), 0))
        attempt("%d listen(%d)" % (fam, backlog), s.listen, backlog, show=ok)
        s.close()
    l = listener(fam, backlog=1)
    attempt("%d listen again with 8" % fam, l.listen, 8, show=ok)
    attempt("%d listen again with 0" % fam, l.listen, 0, show=ok)
    attempt("%d listen again with 8" % fam, l.listen, 8, show=ok)
    out("%d getsockname unchanged" % fam, local(l))
    clients = []
    for i in range(3):
        c = sock(fam, TCP)
        attempt("%d client %d connect" % (fam, i), c.connect, l.getsockname()[:2], show=ok)
        clients.append(c)
    for i, c in enumerate(clients):
        c.send(b"n%d" % i)
    for i in range(3):
        n, frm = l.accept()
        out("%d accepted in order" % fam, recv_wait(n, 10))
        n.close()
    for c in clients:
        c.close()
    l.close()
