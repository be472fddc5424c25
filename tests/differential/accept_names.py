# A listener bound to the wildcard: each accepted socket's local address is the
# address the client dialled (loopback, own address, IPv4 through a dual-stack
# listener as ::ffff:a.b.c.d), and its peer is the client's local address.
import socket

from lib import *

for fam, dials in ((V4, (LO4, OWN4)), (V6, (LO6, OWN6, LO4, OWN4))):
    l = listener(fam, any_addr(fam))
    port = l.getsockname()[1]
    for host in dials:
        cfam = V6 if ":" in host else V4
        c = sock(cfam, TCP)
        c.connect((host, port))
        a, frm = l.accept()
        names = {c.getsockname()[1]: "client", port: "listener"}
        out("%d dial %s: accepted local" % (fam, host), local(a, names))
        out("%d dial %s: accepted peer" % (fam, host), peer(a, names))
        out("%d dial %s: accept's address = getpeername" % (fam, host), frm == a.getpeername())
        out("%d dial %s: client local" % (fam, host), local(c, names))
        c.close()
        a.close()
    l.close()
