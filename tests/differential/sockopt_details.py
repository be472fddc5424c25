# Socket option details where netvm has differed from Linux: getsockopt at a
# level an IPv4 socket lacks is EOPNOTSUPP (setsockopt says ENOPROTOOPT), the
# TCP_NOTSENT_LOWAT and TCP_MAXSEG defaults, TCP_USER_TIMEOUT range, the ECN bits
# of IP_TOS on TCP, IPV6_V6ONLY turned on by binding a specific IPv6 address, and
# SOL_SOCKET options an accepted socket inherits from its listener.
import socket

from lib import *

SO = socket.SOL_SOCKET
TCPL = socket.IPPROTO_TCP
IP6 = socket.IPPROTO_IPV6

for ty in (TCP, UDP):
    s = sock(V4, ty)
    attempt("v4 type %d getsockopt IPV6_V6ONLY" % ty, s.getsockopt, IP6, socket.IPV6_V6ONLY)
    attempt("v4 type %d getsockopt IPV6_TCLASS" % ty, s.getsockopt, IP6, socket.IPV6_TCLASS)
    attempt("v4 type %d getsockopt at an unknown level" % ty, s.getsockopt, 9999, 1)
    attempt("v4 type %d setsockopt at an unknown level" % ty, s.setsockopt, 9999, 1, 1, show=ok)
    s.close()
u = sock(V4, UDP)
attempt("v4 UDP getsockopt TCP_NODELAY", u.getsockopt, TCPL, socket.TCP_NODELAY)
u.close()

for fam in (V4, V6):
    s = sock(fam, TCP)
    attempt("%d TCP_NOTSENT_LOWAT default" % fam, s.getsockopt, TCPL, socket.TCP_NOTSENT_LOWAT)
    attempt("%d TCP_MAXSEG before connecting" % fam, s.getsockopt, TCPL, socket.TCP_MAXSEG)
    attempt("%d set TCP_USER_TIMEOUT=-1" % fam, s.setsockopt, TCPL, socket.TCP_USER_TIMEOUT, -1, show=ok)
    s.close()

for ty in (TCP, UDP):
    s = sock(V4, ty)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0x13)
    attempt("type %d IP_TOS 0x13 reads back" % ty, s.getsockopt, socket.IPPROTO_IP, socket.IP_TOS)
    s.close()

for host in ("::1", "fd00::2", "::ffff:127.0.0.1", "::"):
    s = sock(V6, TCP)
    s.bind((host, 0))
    attempt("IPV6_V6ONLY after binding %s" % host, s.getsockopt, IP6, socket.IPV6_V6ONLY)
    s.close()

l = sock(V4, TCP)
l.setsockopt(SO, socket.SO_KEEPALIVE, 1)
l.setsockopt(SO, socket.SO_OOBINLINE, 1)
l.setsockopt(SO, socket.SO_RCVLOWAT, 7)
l.bind((LO4, 0))
l.listen()
c = socket.create_connection(l.getsockname())
a, _ = l.accept()
out("accepted inherits SO_KEEPALIVE", a.getsockopt(SO, socket.SO_KEEPALIVE))
out("accepted inherits SO_OOBINLINE", a.getsockopt(SO, socket.SO_OOBINLINE))
out("accepted inherits SO_RCVLOWAT", a.getsockopt(SO, socket.SO_RCVLOWAT))
out("connected TCP_MAXSEG", a.getsockopt(TCPL, socket.TCP_MAXSEG))
for x in (l, c, a):
    x.close()
