# Multicast options of one host: IP_MULTICAST_TTL (0..255, -1 = default 1),
# IP_MULTICAST_LOOP, IPV6_MULTICAST_HOPS (-1..255), IPV6_MULTICAST_LOOP (0 or 1).
import socket

from lib import *

IP = socket.IPPROTO_IP
IP6 = socket.IPPROTO_IPV6
s = sock(V4, UDP)
for v in (10, 255, 256, -1, 0):
    r, err = quiet(s.setsockopt, IP, socket.IP_MULTICAST_TTL, v)
    out("IP_MULTICAST_TTL set %d, get" % v, "%s %s" % (err or "ok", s.getsockopt(IP, socket.IP_MULTICAST_TTL)))
for v in (0, 1, 7, -1):
    r, err = quiet(s.setsockopt, IP, socket.IP_MULTICAST_LOOP, v)
    out("IP_MULTICAST_LOOP set %d, get" % v, "%s %s" % (err or "ok", s.getsockopt(IP, socket.IP_MULTICAST_LOOP)))
s.close()
s = sock(V6, UDP)
out("IPV6_MULTICAST_HOPS default", s.getsockopt(IP6, socket.IPV6_MULTICAST_HOPS))
for v in (10, 255, 256, -1, -2, 0):
    r, err = quiet(s.setsockopt, IP6, socket.IPV6_MULTICAST_HOPS, v)
    out("IPV6_MULTICAST_HOPS set %d, get" % v, "%s %s" % (err or "ok", s.getsockopt(IP6, socket.IPV6_MULTICAST_HOPS)))
out("IPV6_MULTICAST_LOOP default", s.getsockopt(IP6, socket.IPV6_MULTICAST_LOOP))
for v in (0, 1, 2, -1):
    r, err = quiet(s.setsockopt, IP6, socket.IPV6_MULTICAST_LOOP, v)
    out("IPV6_MULTICAST_LOOP set %d, get" % v, "%s %s" % (err or "ok", s.getsockopt(IP6, socket.IPV6_MULTICAST_LOOP)))
s.close()
