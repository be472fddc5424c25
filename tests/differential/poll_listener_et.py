# Edge-triggered epoll on a listener: one event per arriving connection, none
# while the queue just sits there, even with connections still unaccepted.
import select
import socket
import time

from lib import *

for fam in (V4, V6):
    l = listener(fam)
    ep = select.epoll()
    ep.register(l.fileno(), select.EPOLLIN | select.EPOLLET)
    clients = []
    for i in range(3):
        c = sock(fam, TCP)
        c.connect(l.getsockname()[:2])
        clients.append(c)
        time.sleep(0.05)
        out("%d connection %d arrives: events" % (fam, i), len(ep.poll(0)))
        out("%d and then" % fam, len(ep.poll(0)))
    l.accept()[0].close()
    out("%d after one accept" % fam, len(ep.poll(0)))
    ep.close()
    for c in clients:
        c.close()
    l.close()
