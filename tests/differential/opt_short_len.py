# Option lengths at each level: setsockopt with fewer bytes than an int is EINVAL
# for SOL_SOCKET, TCP and IPv6 options, while getsockopt with a short (or empty)
# buffer answers with as many bytes as fit.
import socket

from lib import *

OPTS = (
    ("SO_KEEPALIVE", socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
    ("SO_RCVLOWAT", socket.SOL_SOCKET, socket.SO_RCVLOWAT, 3),
    ("TCP_NODELAY", socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),
    ("TCP_KEEPIDLE", socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 300),
    ("IPV6_UNICAST_HOPS", socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 9),
    ("IPV6_V6ONLY", socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1),
)
for name, level, opt, value in OPTS:
    s = sock(V6, TCP)
    whole = value.to_bytes(4, "little")
    for n in (0, 1, 2, 3, 4, 8):
        out("%s set with %d bytes" % (name, n), raw_setsockopt(s, level, opt, (whole + b"\0" * 4)[:n]))
    for room in (0, 1, 2, 4, 8):
        out("%s get with %d bytes" % (name, room), raw_getsockopt(s, level, opt, room))
    s.close()
