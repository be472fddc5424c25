# IPv4 options take a char as well as an int: setsockopt IP_TTL, IP_TOS,
# IP_MULTICAST_TTL and IP_MULTICAST_LOOP with one byte sets the value, and a
# getsockopt buffer smaller than an int gets the value as one byte.
import socket

from lib import *

IP = socket.IPPROTO_IP
for ty in (UDP, TCP):
    for name, opt, value in (
        ("IP_TTL", socket.IP_TTL, 9),
        ("IP_TOS", socket.IP_TOS, 0x20),
        ("IP_MULTICAST_TTL", socket.IP_MULTICAST_TTL, 5),
        ("IP_MULTICAST_LOOP", socket.IP_MULTICAST_LOOP, 0),
        ("IP_RECVTTL", 12, 1),
    ):
        s = sock(V4, ty)
        t = "type %d %s" % (ty, name)
        out("%s set with 1 byte" % t, raw_setsockopt(s, IP, opt, bytes([value])))
        out("%s then get" % t, s.getsockopt(IP, opt))
        out("%s set with 0 bytes" % t, raw_setsockopt(s, IP, opt, b""))
        out("%s set with 2 bytes" % t, raw_setsockopt(s, IP, opt, bytes([value + 1, 0])))
        out("%s then get" % t, s.getsockopt(IP, opt))
        for room in (0, 1, 2, 3, 4, 8):
            out("%s get with %d bytes" % (t, room), raw_getsockopt(s, IP, opt, room))
        s.close()
