# IP_RECVORIGDSTADDR and IPV6_RECVORIGDSTADDR on UDP sockets bound to the
# wildcard: each datagram comes with the address and port it was sent to
# (what a transparent proxy answers from), after IP_PKTINFO's message.
import socket
import struct

from lib import *

IP_PKTINFO, IP_RECVORIGDSTADDR, IPV6_RECVORIGDSTADDR = 8, 20, 74


def messages(r):
    wait_readable(r)
    d, anc, flags, frm = r.recvmsg(100, 256, socket.MSG_DONTWAIT)
    shown = []
    for lv, ty, data in anc:
        if (lv, ty) == (socket.IPPROTO_IP, IP_RECVORIGDSTADDR):
            port, ip = struct.unpack("!H4s", data[2:8])
            shown.append((lv, ty, socket.inet_ntoa(ip), port == r.getsockname()[1], len(data)))
        elif (lv, ty) == (socket.IPPROTO_IPV6, IPV6_RECVORIGDSTADDR):
            port = struct.unpack("!H", data[2:4])[0]
            shown.append((lv, ty, socket.inet_ntop(V6, data[8:24]), port == r.getsockname()[1], len(data)))
        else:
            shown.append((lv, ty))
    return shown


for host in (LO4, OWN4):
    r = udp_bound(V4, "0.0.0.0")
    attempt("v4 IP_RECVORIGDSTADDR", r.setsockopt, socket.IPPROTO_IP, IP_RECVORIGDSTADDR, 1)
    attempt("v4 IP_RECVORIGDSTADDR is", r.getsockopt, socket.IPPROTO_IP, IP_RECVORIGDSTADDR)
    s = sock(V4, UDP)
    s.sendto(b"a", (host, r.getsockname()[1]))
    out("v4 to %s" % host, messages(r))
    r.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    s.sendto(b"b", (host, r.getsockname()[1]))
    out("v4 to %s with IP_PKTINFO" % host, messages(r))
    r.close(); s.close()

for host in (LO6, OWN6):
    r = udp_bound(V6, "::")
    attempt("v6 IPV6_RECVORIGDSTADDR", r.setsockopt, socket.IPPROTO_IPV6, IPV6_RECVORIGDSTADDR, 1)
    s = sock(V6, UDP)
    s.sendto(b"a", (host, r.getsockname()[1]))
    out("v6 to %s" % host, messages(r))
    r.close(); s.close()
