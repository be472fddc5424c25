# The destination of a raw ICMPv6 socket's sendto (root): rawv6_sendmsg takes a
# sockaddr_in6 of at least 24 bytes whose family is AF_INET6 or left 0
# (AF_UNSPEC), and refuses other families; an IPv4 raw ICMP socket reads
# AF_UNSPEC as AF_INET.
import socket
import struct

from lib import *

UNSPEC = struct.pack("=H", socket.AF_UNSPEC)

s6 = socket.socket(V6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
v6 = sockaddr(V6, LO6, 0)
request6 = echo_request(V6, 7, 1, b"raw6")
out("AF_INET6", raw_sendto(s6, request6, v6))
out("AF_UNSPEC", raw_sendto(s6, request6, UNSPEC + v6[2:]))
out("AF_UNSPEC, 24 bytes", raw_sendto(s6, request6, UNSPEC + v6[2:24]))
out("AF_INET6, 23 bytes", raw_sendto(s6, request6, v6[:23]))
out("AF_INET", raw_sendto(s6, request6, sockaddr(V4, LO4, 0) + b"\0" * 12))
s6.close()

s4 = socket.socket(V4, socket.SOCK_RAW, socket.IPPROTO_ICMP)
v4 = sockaddr(V4, LO4, 0)
request4 = echo_request(V4, 7, 1, b"raw4")
out("v4 AF_INET", raw_sendto(s4, request4, v4))
out("v4 AF_UNSPEC", raw_sendto(s4, request4, UNSPEC + v4[2:]))
s4.close()
