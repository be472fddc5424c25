# Edge-triggered epoll reports each arrival once: every new segment or
# datagram is an edge even if earlier data is still unread; no arrival, no event.
import select
import socket
import time

from lib import *

for fam in (V4, V6):
    for ty in (TCP, UDP):
        if ty == TCP:
            c, a, l = tcp_pair(fam)
            send = lambda d: c.send(d)
        else:
            a = udp_bound(fam)
            c = udp_bound(fam)
            l = None
            send = lambda d: c.sendto(d, a.getsockname()[:2])
        ep = select.epoll()
        ep.register(a.fileno(), select.EPOLLIN | select.EPOLLET)
        counts = []
        for i in range(3):
            send(b"data%d" % i)
            time.sleep(0.05)
            counts.append(len(ep.poll(0)))
            counts.append(len(ep.poll(0)))
        out("%d/%d events: arrival, nothing, ..." % (fam, ty), counts)
        a.recv(3)
        out("%d/%d after a partial read" % (fam, ty), len(ep.poll(0)))
        ep.close()
        for x in (c, a, l):
            if x is not None:
                x.close()
