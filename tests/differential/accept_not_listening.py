# accept on a socket that is not listening: EINVAL for a fresh, a bound and a
# connected TCP socket (blocking or not), EOPNOTSUPP for UDP and ping sockets.
import socket

from lib import *

for fam in (V4, V6):
    s = sock(fam, TCP)
    attempt("%d fresh TCP" % fam, s.accept)
    s.setblocking(False)
    attempt("%d fresh TCP, non-blocking" % fam, s.accept)
    s.bind((lo(fam), 0))
    attempt("%d bound TCP" % fam, s.accept)
    s.close()
    c, a, l = tcp_pair(fam)
    attempt("%d connected client" % fam, c.accept)
    attempt("%d accepted socket" % fam, a.accept)
    for x in (c, a, l):
        x.close()
    u = udp_bound(fam)
    attempt("%d UDP" % fam, u.accept)
    attempt("%d UDP listen" % fam, u.listen, show=ok)
    u.close()
    p = ping_sock(fam)
    attempt("%d ping accept" % fam, p.accept)
    attempt("%d ping listen" % fam, p.listen, show=ok)
    p.close()
