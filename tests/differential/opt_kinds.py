# SO_TYPE, SO_DOMAIN, SO_PROTOCOL and SO_ACCEPTCONN on every kind of socket:
# TCP and UDP created with protocol 0 or named, ping sockets, sockets created
# with SOCK_NONBLOCK|SOCK_CLOEXEC (not part of SO_TYPE), listeners and accepted
# sockets.
import socket

from lib import *

SO = socket.SOL_SOCKET


def show(what, s):
    out(what, "type=%d domain=%d protocol=%d acceptconn=%d" % (
        s.getsockopt(SO, socket.SO_TYPE), s.getsockopt(SO, socket.SO_DOMAIN),
        s.getsockopt(SO, socket.SO_PROTOCOL), s.getsockopt(SO, socket.SO_ACCEPTCONN)))


for fam in (V4, V6):
    for ty, proto, what in (
        (TCP, 0, "TCP proto 0"),
        (TCP, socket.IPPROTO_TCP, "TCP proto TCP"),
        (UDP, 0, "UDP proto 0"),
        (UDP, socket.IPPROTO_UDP, "UDP proto UDP"),
        (UDP, ICMP6 if fam == V6 else ICMP4, "ping"),
        (TCP | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, 0, "TCP nonblock cloexec"),
        (UDP | socket.SOCK_NONBLOCK, 0, "UDP nonblock"),
    ):
        s = socket.socket(fam, ty, proto)
        show("%d %s" % (fam, what), s)
        s.close()
    c, a, l = tcp_pair(fam)
    show("%d listener" % fam, l)
    show("%d accepted" % fam, a)
    show("%d connected client" % fam, c)
    for x in (c, a, l):
        x.close()
