# MSG_WAITALL on TCP: a blocking recv waits for the whole count across several
# writes, returns short at EOF, and with MSG_DONTWAIT returns what is there.
import socket
import time

from lib import *

for fam in (V4, V6):
    c, a, l = tcp_pair(fam)

    def later():
        for part in (b"ab", b"cd", b"ef"):
            time.sleep(0.05)
            c.send(part)

    t = in_thread(later)
    out("%d MSG_WAITALL 6 over three writes" % fam, a.recv(6, socket.MSG_WAITALL))
    t.join()
    c.send(b"xyz")
    time.sleep(0.1)
    out("%d MSG_WAITALL|MSG_DONTWAIT 10 with 3 there" % fam, a.recv(10, socket.MSG_WAITALL | socket.MSG_DONTWAIT))
    c.send(b"123")
    t = in_thread(lambda: (time.sleep(0.1), c.shutdown(socket.SHUT_WR)))
    out("%d MSG_WAITALL 10 cut short by EOF" % fam, a.recv(10, socket.MSG_WAITALL))
    t.join()
    out("%d then EOF" % fam, a.recv(10, socket.MSG_WAITALL))
    for x in (c, a, l):
        x.close()
