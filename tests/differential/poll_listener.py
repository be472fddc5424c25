# A listener's readiness through poll and epoll: nothing before a client
# connects, POLLIN while connections are queued (level-triggered epoll keeps
# reporting until the queue is empty), and nothing once every one is accepted.
import select
import socket

from lib import *

for fam in (V4, V6):
    l = listener(fam)
    ep = select.epoll()
    ep.register(l.fileno(), select.EPOLLIN | select.EPOLLOUT)
    out("%d idle poll" % fam, poll_mask(l, EVERY))
    out("%d idle epoll" % fam, epoll_text([("l", m) for _, m in ep.poll(0)]))
    clients = []
    for i in range(2):
        c = sock(fam, TCP)
        c.connect(l.getsockname()[:2])
        clients.append(c)
    wait_readable(l)
    out("%d two pending, poll" % fam, poll_mask(l, EVERY))
    out("%d two pending, epoll" % fam, epoll_text([("l", m) for _, m in ep.poll(0)]))
    l.accept()[0].close()
    out("%d one pending, epoll" % fam, epoll_text([("l", m) for _, m in ep.poll(0)]))
    l.accept()[0].close()
    out("%d none pending, poll" % fam, poll_mask(l, EVERY))
    out("%d none pending, epoll" % fam, epoll_text([("l", m) for _, m in ep.poll(0)]))
    ep.close()
    for c in clients:
        c.close()
    l.close()
