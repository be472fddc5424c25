# An IPv6 wildcard bind holds the IPv4 port too unless IPV6_V6ONLY is set, in
# either order of binding; a specific IPv6 address never holds the IPv4 port.
import socket

from lib import *

IP6 = socket.IPPROTO_IPV6
for ty in (TCP, UDP):
    for v6only in (0, 1):
        s6 = sock(V6, ty)
        s6.setsockopt(IP6, socket.IPV6_V6ONLY, v6only)
        s6.bind(("::", 0))
        port = s6.getsockname()[1]
        for host in ("0.0.0.0", LO4, OWN4):
            s4 = sock(V4, ty)
            attempt("type %d v6only=%d [::] first, then %s" % (ty, v6only, host), s4.bind, (host, port), show=ok)
            s4.close()
        s6.close()
        s4 = sock(V4, ty)
        s4.bind((LO4, 0))
        port = s4.getsockname()[1]
        s6 = sock(V6, ty)
        s6.setsockopt(IP6, socket.IPV6_V6ONLY, v6only)
        attempt("type %d %s first, then [::] v6only=%d" % (ty, LO4, v6only), s6.bind, ("::", port), show=ok)
        s6.close()
        s4.close()
    s6 = sock(V6, ty)
    s6.bind((LO6, 0))
    s4 = sock(V4, ty)
    attempt("type %d [::1] first, then 0.0.0.0" % ty, s4.bind, ("0.0.0.0", s6.getsockname()[1]), show=ok)
    s4.close()
    s6.close()
