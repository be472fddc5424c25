# IP_FREEBIND (IPV6_FREEBIND) lets a socket bind an address the host does not own (Linux checks
# nothing then); without it, EADDRNOTAVAIL.
import socket

from lib import *

IP_FREEBIND = 15
IPV6_FREEBIND = 78
for ty in (TCP, UDP):
    s = sock(V4, ty)
    attempt("type %d bind foreign" % ty, s.bind, (FOREIGN4, 0), show=ok)
    s.close()
    s = sock(V4, ty)
    s.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
    out("type %d IP_FREEBIND" % ty, s.getsockopt(socket.IPPROTO_IP, IP_FREEBIND))
    attempt("type %d bind foreign with IP_FREEBIND" % ty, s.bind, (FOREIGN4, 0), show=ok)
    out("type %d getsockname" % ty, local(s))
    s.close()
    s = sock(V6, ty)
    attempt("type %d IPV6_FREEBIND" % ty, s.setsockopt, socket.IPPROTO_IPV6, IPV6_FREEBIND, 1, show=ok)
    attempt("type %d IPv6 bind foreign with IPV6_FREEBIND" % ty, s.bind, (FOREIGN6, 0), show=ok)
    s.close()
