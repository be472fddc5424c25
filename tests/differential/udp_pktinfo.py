# IP_PKTINFO and IPV6_RECVPKTINFO on a UDP socket bound to the wildcard: each
# datagram comes with the address it was sent to (loopback or the host's own),
# which is how a server answers from the right address.
import socket
import struct

from lib import *

IP_PKTINFO = 8
r = udp_bound(V4, "0.0.0.0")
r.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
for host in (LO4, OWN4):
    s = sock(V4, UDP)
    s.sendto(b"v4", (host, r.getsockname()[1]))
    wait_readable(r)
    d, anc, flags, frm = r.recvmsg(100, 256)
    for lv, ty, data in anc:
        ifindex, spec, dst = struct.unpack("i4s4s", data[:12])
        out("to %s: cmsg" % host, (lv, ty, socket.inet_ntoa(dst)))
    s.close()
r.close()
r = udp_bound(V6, "::")
r.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
for host, fam in ((LO6, V6), (OWN6, V6), (LO4, V4)):
    s = sock(fam, UDP)
    s.sendto(b"v6", (host, r.getsockname()[1]))
    wait_readable(r)
    d, anc, flags, frm = r.recvmsg(100, 256)
    for lv, ty, data in anc:
        out("to %s: cmsg" % host, (lv, ty, socket.inet_ntop(V6, data[:16])))
    s.close()
r.close()
