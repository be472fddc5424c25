# Ports chosen for port 0 come from the ephemeral range (32768-60999), are all
# different while held, and are the same for TCP bind(0) with the wildcard and
# a specific address; a TCP and a UDP socket may hold the same number.
import socket

from lib import *

for fam in (V4, V6):
    for ty in (TCP, UDP):
        held = [sock(fam, ty) for _ in range(50)]
        for s in held:
            s.bind((lo(fam), 0))
        ports = [s.getsockname()[1] for s in held]
        out("%d/%d 50 binds: all in range" % (fam, ty), all(p in EPHEMERAL for p in ports))
        out("%d/%d 50 binds: all different" % (fam, ty), len(set(ports)) == 50)
        for s in held:
            s.close()
    t = sock(fam, TCP)
    t.bind((lo(fam), 0))
    u = sock(fam, UDP)
    attempt("%d UDP bind to the TCP socket's port" % fam, u.bind, t.getsockname()[:2], show=ok)
    t.close()
    u.close()
    for what, s in (("listen", sock(fam, TCP)), ("sendto", sock(fam, UDP)), ("connect", sock(fam, UDP))):
        if what == "listen":
            s.listen()
        elif what == "sendto":
            s.sendto(b"x", (lo(fam), 9))
        else:
            s.connect((lo(fam), 9))
        out("%d implicit bind by %s" % (fam, what), local(s))
        s.close()
