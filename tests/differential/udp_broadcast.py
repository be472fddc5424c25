# Broadcast on a host whose only interface is loopback: 127.255.255.255 is the
# loopback network's broadcast address, so sendto there is EACCES without
# SO_BROADCAST and sent with it; 255.255.255.255 has no route (ENETUNREACH);
# TCP cannot connect to a broadcast address (ENETUNREACH).
import socket

from lib import *

s = sock(V4, UDP)
attempt("sendto 255.255.255.255 without SO_BROADCAST", s.sendto, b"x", ("255.255.255.255", 9))
attempt("sendto 127.255.255.255 without SO_BROADCAST", s.sendto, b"x", ("127.255.255.255", 9))
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
attempt("sendto 127.255.255.255 with SO_BROADCAST", s.sendto, b"x", ("127.255.255.255", 9))
s.close()
t = sock(V4, TCP)
attempt("TCP connect to 127.255.255.255", t.connect, ("127.255.255.255", 9), show=ok)
t.close()
