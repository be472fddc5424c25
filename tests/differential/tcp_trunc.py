# recv with MSG_TRUNC on TCP discards the bytes instead of copying them, and
# returns how many were discarded; with MSG_PEEK it peeks without copying.
import socket
import time

from lib import *

for fam in (V4, V6):
    c, a, l = tcp_pair(fam)
    c.send(b"0123456789")
    time.sleep(0.1)
    buf = bytearray(b"." * 10)
    attempt("%d recv_into 4 MSG_TRUNC" % fam, a.recv_into, buf, 4, socket.MSG_TRUNC)
    out("%d buffer untouched" % fam, bytes(buf))
    out("%d FIONREAD" % fam, ioctl_int(a, FIONREAD))
    out("%d the rest" % fam, a.recv(100))
    for x in (c, a, l):
        x.close()
