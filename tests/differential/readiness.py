# Readiness of TCP and UDP sockets through poll, select and epoll (level- and
# edge-triggered, EPOLLONESHOT): connected idle, data waiting, partly read, peer
# half-closed, listener with and without pending connections. poll asks for
# POLLIN|POLLPRI|POLLOUT|POLLRDHUP, as programs do (POLLERR and POLLHUP come
# anyway); readiness_bits.py checks the remaining bits.
import select
import socket

from lib import *


def sel(s):
    r, w, x = select.select([s], [s], [s], 0)
    return "r=%d w=%d x=%d" % (len(r), len(w), len(x))


for fam in (V4, V6):
    note("family %d: TCP, poll and select" % fam)
    c, a, l = tcp_pair(fam)
    out("idle poll", poll_mask(a))
    out("idle select", sel(a))
    c.sendall(b"abc")
    wait_readable(a)
    out("data poll", poll_mask(a))
    out("data select", sel(a))
    out("data poll, only POLLIN asked", poll_mask(a, select.POLLIN))
    out("data poll, only POLLOUT asked", poll_mask(a, select.POLLOUT))
    out("data poll, nothing asked", poll_mask(a, 0))
    a.recv(1)
    out("partly read poll", poll_mask(a))
    a.recv(10)
    out("drained poll", poll_mask(a))
    c.shutdown(socket.SHUT_WR)
    wait_readable(a)
    out("peer SHUT_WR poll", poll_mask(a))
    out("peer SHUT_WR select", sel(a))
    out("own side after SHUT_WR, poll", poll_mask(c))
    out("listener poll", poll_mask(l))
    out("listener select", sel(l))
    d = sock(fam, TCP)
    d.connect(l.getsockname()[:2])
    wait_readable(l)
    out("listener with a pending connection, poll", poll_mask(l))
    out("listener with a pending connection, select", sel(l))
    n, _ = l.accept()

    note("family %d: TCP, epoll level-triggered" % fam)
    ep = select.epoll()
    ep.register(n.fileno(), select.EPOLLIN | select.EPOLLOUT | select.EPOLLRDHUP)
    ep.register(l.fileno(), select.EPOLLIN)
    names = {n.fileno(): "conn", l.fileno(): "listener"}

    def ev(timeout=0):
        return epoll_text(sorted((names[fd], m) for fd, m in ep.poll(timeout)))

    out("epoll idle", ev())
    d.sendall(b"xy")
    wait_readable(n)
    out("epoll data", ev())
    out("epoll data again (level)", ev())
    n.recv(10)
    out("epoll drained", ev())
    e = sock(fam, TCP)
    e.connect(l.getsockname()[:2])
    wait_readable(l)
    out("epoll pending connection", ev())
    l.accept()[0].close()
    e.close()
    out("epoll after accept", ev())
    ep.close()

    note("family %d: TCP, epoll edge-triggered" % fam)
    ep = select.epoll()
    ep.register(n.fileno(), select.EPOLLIN | select.EPOLLET | select.EPOLLRDHUP)
    names = {n.fileno(): "conn"}
    out("epoll ET idle", ev())
    d.sendall(b"one")
    wait_readable(n)
    out("epoll ET first data", ev())
    out("epoll ET no new edge", ev())
    d.sendall(b"two")
    wait_readable(n)
    out("epoll ET more data", ev())
    out("epoll ET read", n.recv(100))
    out("epoll ET after read", ev())
    ep.modify(n.fileno(), select.EPOLLIN | select.EPOLLONESHOT)
    d.sendall(b"three")
    wait_readable(n)
    out("epoll ONESHOT first", ev())
    out("epoll ONESHOT disarmed", ev())
    ep.modify(n.fileno(), select.EPOLLIN | select.EPOLLONESHOT)
    out("epoll ONESHOT rearmed", ev())
    n.recv(100)
    ep.modify(n.fileno(), select.EPOLLIN | select.EPOLLET | select.EPOLLRDHUP)
    d.shutdown(socket.SHUT_WR)
    wait_readable(n)
    out("epoll ET peer SHUT_WR", ev())
    ep.close()
    for s in (c, a, l, d, n):
        s.close()

    note("family %d: UDP" % fam)
    u = udp_bound(fam)
    v = udp_bound(fam)
    out("UDP idle poll", poll_mask(u))
    out("UDP idle select", sel(u))
    v.sendto(b"d1", u.getsockname()[:2])
    v.sendto(b"d2", u.getsockname()[:2])
    wait_readable(u)
    out("UDP two datagrams poll", poll_mask(u))
    u.recv(10)
    out("UDP one left poll", poll_mask(u))
    u.recv(10)
    out("UDP drained poll", poll_mask(u))
    ep = select.epoll()
    ep.register(u.fileno(), select.EPOLLIN | select.EPOLLET)
    names = {u.fileno(): "udp"}
    v.sendto(b"d3", u.getsockname()[:2])
    wait_readable(u)
    out("UDP epoll ET", ev())
    out("UDP epoll ET again", ev())
    ep.close()
    fresh = sock(fam, UDP)
    out("fresh UDP socket poll", poll_mask(fresh))
    for s in (u, v, fresh):
        s.close()
