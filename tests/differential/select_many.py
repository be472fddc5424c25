# select() over many sockets at once: of 24 UDP sockets, exactly those sent to
# are readable, every one is writable; with TCP connections, the readable set
# follows which peers wrote.
import select
import socket
import time

from lib import *

for fam in (V4, V6):
    socks = [udp_bound(fam) for _ in range(24)]
    s = sock(fam, UDP)
    for i in range(0, 24, 3):
        s.sendto(b"x", socks[i].getsockname()[:2])
    time.sleep(0.1)
    r, w, x = select.select(socks, socks, socks, 0)
    out("%d UDP readable" % fam, sorted(socks.index(k) for k in r))
    out("%d UDP writable" % fam, len(w))
    out("%d UDP exceptional" % fam, len(x))
    for k in socks + [s]:
        k.close()
    l = listener(fam)
    pairs = []
    for _ in range(10):
        c = sock(fam, TCP)
        c.connect(l.getsockname()[:2])
        pairs.append((c, l.accept()[0]))
    for i in (1, 4, 9):
        pairs[i][0].send(b"y")
    time.sleep(0.1)
    servers = [p[1] for p in pairs]
    r, w, x = select.select(servers, [], servers, 0)
    out("%d TCP readable" % fam, sorted(servers.index(k) for k in r))
    out("%d TCP exceptional" % fam, len(x))
    r, w, x = select.select([l], [l], [], 0)
    out("%d listener" % fam, (len(r), len(w)))
    for c, a in pairs:
        c.close()
        a.close()
    l.close()
