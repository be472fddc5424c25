# MSG_OOB on UDP sends: IPv4's udp_sendmsg refuses it (EOPNOTSUPP) while IPv6's
# ignores the flag and sends the datagram.
import socket

from lib import *

for fam in (V4, V6):
    r = udp_bound(fam)
    s = sock(fam, UDP)
    attempt("%d sendto MSG_OOB" % fam, s.sendto, b"x", socket.MSG_OOB, r.getsockname()[:2])
    wait_readable(r, 300)
    attempt("%d received" % fam, r.recv, 10, socket.MSG_DONTWAIT)
    r.close()
    s.close()
