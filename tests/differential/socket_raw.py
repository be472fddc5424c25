# Raw and ICMP sockets for root: Linux gives root (CAP_NET_RAW) raw sockets, and
# ping sockets only to the groups in net.ipv4.ping_group_range ("1 0", nobody,
# in a fresh namespace).
import socket

from lib import *

for fam in (V4, V6):
    for ty, proto, what in (
        (socket.SOCK_RAW, socket.IPPROTO_ICMP if fam == V4 else socket.IPPROTO_ICMPV6, "SOCK_RAW ICMP"),
        (socket.SOCK_RAW, socket.IPPROTO_UDP, "SOCK_RAW UDP"),
        (socket.SOCK_RAW, socket.IPPROTO_RAW, "SOCK_RAW IPPROTO_RAW"),
        (socket.SOCK_DGRAM, socket.IPPROTO_ICMP if fam == V4 else socket.IPPROTO_ICMPV6, "SOCK_DGRAM ICMP (ping)"),
    ):
        fd, err = raw_socket(fam, ty, proto)
        if fd is not None:
            socket.socket(fileno=fd).close()
        out("root socket(%d, %s)" % (fam, what), err)
