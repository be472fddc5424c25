# SO_RCVLOWAT on TCP: poll does not report POLLIN until that many bytes wait,
# (nor select readability), a non-blocking recv returns what there is; 0 reads
# back as 1.
import select
import socket
import time

from lib import *

SO = socket.SOL_SOCKET
c, a, l = tcp_pair(V4)
a.setsockopt(SO, socket.SO_RCVLOWAT, 0)
out("set 0, get", a.getsockopt(SO, socket.SO_RCVLOWAT))
a.setsockopt(SO, socket.SO_RCVLOWAT, 5)
c.send(b"abc")
time.sleep(0.1)
out("3 of 5 bytes, poll", poll_mask(a, select.POLLIN))
out("FIONREAD", ioctl_int(a, FIONREAD))
c.send(b"de")
time.sleep(0.1)
out("5 of 5 bytes, poll", poll_mask(a, select.POLLIN))
out("recv", a.recv(100))
c.send(b"xy")
time.sleep(0.1)
out("2 of 5 bytes, recv MSG_DONTWAIT", a.recv(100, socket.MSG_DONTWAIT))
c.send(b"xyz")
time.sleep(0.1)
out("3 of 5 bytes, select", len(select.select([a], [], [], 0)[0]))
a.setsockopt(SO, socket.SO_RCVLOWAT, 1)
c.send(b"q")
time.sleep(0.1)
out("low-water 1, poll", poll_mask(a, select.POLLIN))
for x in (c, a, l):
    x.close()
