# IPV6_TCLASS: -1 restores the default, 0..255 are kept (TCP keeps its own ECN
# bits), anything else is EINVAL; IPv4's IP_TOS on the same socket is separate.
import socket

from lib import *

IP6 = socket.IPPROTO_IPV6
for ty in (UDP, TCP):
    s = sock(V6, ty)
    out("type %d default" % ty, s.getsockopt(IP6, socket.IPV6_TCLASS))
    for v in (0x28, 0x13, 255, -1, 256, -2, 0x10):
        r, err = quiet(s.setsockopt, IP6, socket.IPV6_TCLASS, v)
        out("type %d set %d, get" % (ty, v), "%s %s" % (err or "ok", s.getsockopt(IP6, socket.IPV6_TCLASS)))
    out("type %d IP_TOS on the IPv6 socket" % ty, s.getsockopt(socket.IPPROTO_IP, socket.IP_TOS))
    s.close()
