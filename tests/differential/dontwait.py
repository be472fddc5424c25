# MSG_DONTWAIT makes one call non-blocking without changing the socket: EAGAIN
# on an empty TCP, UDP and ping socket, and on a TCP socket whose send buffer is
# full; the socket stays blocking (fcntl).
import socket

from lib import *

for fam in (V4, V6):
    c, a, l = tcp_pair(fam)
    attempt("%d TCP recv" % fam, c.recv, 10, socket.MSG_DONTWAIT)
    out("%d still" % fam, flags_of(c))
    sent = 0
    err = None
    while err is None:
        n, err = quiet(c.send, b"x" * 65536, socket.MSG_DONTWAIT)
        sent += n or 0
    out("%d TCP send until full" % fam, err)
    out("%d some was sent" % fam, sent > 0)
    out("%d still" % fam, flags_of(c))
    for x in (c, a, l):
        x.close()
    u = udp_bound(fam)
    attempt("%d UDP recv" % fam, u.recv, 10, socket.MSG_DONTWAIT)
    attempt("%d UDP recvfrom" % fam, u.recvfrom, 10, socket.MSG_DONTWAIT)
    out("%d still" % fam, flags_of(u))
    u.close()
    p = ping_sock(fam)
    attempt("%d ping recv" % fam, p.recv, 10, socket.MSG_DONTWAIT)
    p.close()
