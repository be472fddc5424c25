# bind() on a socket that already has a local address is EINVAL: bound twice to
# the same or another address, bound implicitly by connect (UDP and TCP) or by
# listen; a failed bind (EADDRINUSE) leaves the socket free to bind elsewhere.
import socket

from lib import *

for fam in (V4, V6):
    for ty in (TCP, UDP):
        t = "%d/%d" % (fam, ty)
        s = sock(fam, ty)
        s.bind((lo(fam), 0))
        attempt("%s bind again, same address and port" % t, s.bind, s.getsockname()[:2], show=ok)
        attempt("%s bind again, port 0" % t, s.bind, (lo(fam), 0), show=ok)
        attempt("%s bind again, wildcard" % t, s.bind, (any_addr(fam), 0), show=ok)
        holder = s
        s = sock(fam, ty)
        attempt("%s bind to a port in use" % t, s.bind, holder.getsockname()[:2], show=ok)
        attempt("%s then to port 0" % t, s.bind, (lo(fam), 0), show=ok)
        out("%s getsockname" % t, local(s))
        s.close()
        holder.close()
    u = sock(fam, UDP)
    u.connect((lo(fam), 9))
    attempt("%d UDP bind after connect" % fam, u.bind, (lo(fam), 0), show=ok)
    u.close()
    c, a, l = tcp_pair(fam)
    attempt("%d TCP bind after connect" % fam, c.bind, (lo(fam), 0), show=ok)
    attempt("%d TCP bind accepted socket" % fam, a.bind, (lo(fam), 0), show=ok)
    for x in (c, a, l):
        x.close()
    s = sock(fam, TCP)
    s.listen()
    attempt("%d TCP bind after an implicit listen" % fam, s.bind, (lo(fam), 0), show=ok)
    s.close()
