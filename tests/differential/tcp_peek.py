# MSG_PEEK on TCP: peeking repeatedly returns the same bytes, a peek may span
# several writes, a partial read moves the start, and FIONREAD is unchanged by
# peeking.
import socket
import time

from lib import *

for fam in (V4, V6):
    c, a, l = tcp_pair(fam)
    c.send(b"hello ")
    c.send(b"world")
    time.sleep(0.1)
    out("%d peek 3" % fam, a.recv(3, socket.MSG_PEEK))
    out("%d peek 3 again" % fam, a.recv(3, socket.MSG_PEEK))
    out("%d peek across writes" % fam, a.recv(100, socket.MSG_PEEK))
    out("%d FIONREAD after peeking" % fam, ioctl_int(a, FIONREAD))
    out("%d read 4" % fam, a.recv(4))
    out("%d peek after the read" % fam, a.recv(100, socket.MSG_PEEK))
    out("%d peek|dontwait" % fam, a.recv(2, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    out("%d read the rest" % fam, a.recv(100))
    attempt("%d peek when empty, non-blocking" % fam, a.recv, 10, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    c.shutdown(socket.SHUT_WR)
    wait_readable(a)
    attempt("%d peek at EOF" % fam, a.recv, 10, socket.MSG_PEEK)
    for x in (c, a, l):
        x.close()
