# Control messages on UDP datagrams within the host: IP_RECVTTL (64 over
# loopback), IP_RECVTOS (the sender's IP_TOS), IPV6_RECVHOPLIMIT and
# IPV6_RECVTCLASS (the sender's IPV6_TCLASS); each option adds its message,
# in Linux's order, and without them none comes.
import socket
import struct

from lib import *

IP_RECVTTL, IP_RECVTOS = 12, 13
IPV6_RECVTCLASS = 66


def messages(r):
    wait_readable(r)
    d, anc, flags, frm = r.recvmsg(100, 256, socket.MSG_DONTWAIT)
    return [(lv, ty, data[0] if lv == socket.IPPROTO_IP and ty == 1 else struct.unpack("i", data[:4])[0])
            for lv, ty, data in anc]


for host in (LO4, OWN4):
    r = udp_bound(V4, "0.0.0.0")
    s = sock(V4, UDP)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0x28)
    s.sendto(b"a", (host, r.getsockname()[1]))
    out("v4 to %s without options" % host, messages(r))
    r.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
    s.sendto(b"b", (host, r.getsockname()[1]))
    out("v4 to %s IP_RECVTTL" % host, messages(r))
    r.setsockopt(socket.IPPROTO_IP, IP_RECVTOS, 1)
    s.sendto(b"c", (host, r.getsockname()[1]))
    out("v4 to %s IP_RECVTTL and IP_RECVTOS" % host, messages(r))
    r.close(); s.close()

for host in (LO6, OWN6):
    r = udp_bound(V6, "::")
    s = sock(V6, UDP)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, 0x28)
    r.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
    s.sendto(b"a", (host, r.getsockname()[1]))
    out("v6 to %s IPV6_RECVHOPLIMIT" % host, messages(r))
    attempt("v6 IPV6_RECVTCLASS", r.setsockopt, socket.IPPROTO_IPV6, IPV6_RECVTCLASS, 1)
    attempt("v6 IPV6_RECVTCLASS is", r.getsockopt, socket.IPPROTO_IPV6, IPV6_RECVTCLASS)
    s.sendto(b"b", (host, r.getsockname()[1]))
    out("v6 to %s IPV6_RECVHOPLIMIT and IPV6_RECVTCLASS" % host, messages(r))
    r.close(); s.close()
