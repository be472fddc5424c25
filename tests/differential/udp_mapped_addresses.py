# Source addresses across families on UDP: a dual-stack IPv6 socket receiving
# from an IPv4 socket sees ::ffff:a.b.c.d (flow 0, scope 0), its reply to that
# address reaches the IPv4 socket, which sees a plain IPv4 source; IPv6 sockets
# see IPv6 sources with flowinfo and scope 0.
import socket

from lib import *

r6 = udp_bound(V6, "::")
port6 = r6.getsockname()[1]
for host in (LO4, OWN4):
    s4 = udp_bound(V4, host)
    names = {s4.getsockname()[1]: "v4 sender", port6: "v6 receiver"}
    s4.sendto(b"from v4", (host, port6))
    d, frm = recvfrom_wait(r6)
    out("v6 socket receives from %s" % host, (d, addr(frm, names)))
    r6.sendto(b"reply", frm)
    d, frm = recvfrom_wait(s4)
    out("v4 socket gets the reply from", (d, addr(frm, names)))
    s4.close()
for host in (LO6, OWN6):
    s6 = udp_bound(V6, host)
    names = {s6.getsockname()[1]: "v6 sender", port6: "v6 receiver"}
    s6.sendto(b"from v6", (host, port6))
    d, frm = recvfrom_wait(r6)
    out("v6 socket receives from %s" % host, (d, addr(frm, names)))
    s6.close()
m = sock(V6, UDP)
m.sendto(b"mapped dest", ("::ffff:127.0.0.1", port6))
d, frm = recvfrom_wait(r6)
out("to ::ffff:127.0.0.1 from an unbound v6 socket", (d, addr(frm)))
out("its implicit local address", local(m))
m.close()
r6.close()
