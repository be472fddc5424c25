# IP_TOS sets SO_PRIORITY on an IPv4 socket (Linux maps the TOS to a priority
# band: 0x10, low delay, is 6; 0x08, throughput, is 2), and SO_PRIORITY set
# later wins; IPV6_TCLASS does not touch it.
import socket

from lib import *

SO = socket.SOL_SOCKET
SO_PRIORITY = 12
for ty in (UDP, TCP):
    s = sock(V4, ty)
    for tos in (0x10, 0x08, 0x02, 0):
        s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)
        out("type %d IP_TOS %#x: SO_PRIORITY" % (ty, tos), s.getsockopt(SO, SO_PRIORITY))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0x10)
    s.setsockopt(SO, SO_PRIORITY, 2)
    out("type %d SO_PRIORITY 2 after IP_TOS" % ty, s.getsockopt(SO, SO_PRIORITY))
    s.close()
    s = sock(V6, ty)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, 0x10)
    out("type %d IPv6 IPV6_TCLASS 0x10: SO_PRIORITY" % ty, s.getsockopt(SO, SO_PRIORITY))
    s.close()
