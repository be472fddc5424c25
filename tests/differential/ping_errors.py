# What a ping socket refuses: anything but an echo request (EINVAL), a message
# shorter than the ICMP header (EINVAL), sendmsg without a destination
# (EDESTADDRREQ), and a destination of the other family. (send() without a
# destination is carrier_send_unaddressed.py.)
import socket

from lib import *

for fam in (V4, V6):
    p = ping_sock(fam)
    dest = (lo(fam), 0)
    attempt("%d echo reply type" % fam, p.sendto, echo_request(fam, ty=129 if fam == V6 else 0), dest)
    attempt("%d destination unreachable type" % fam, p.sendto, echo_request(fam, ty=1 if fam == V6 else 3), dest)
    attempt("%d the other family's echo request" % fam, p.sendto, echo_request(fam, ty=8 if fam == V6 else 128), dest)
    attempt("%d 7 bytes" % fam, p.sendto, echo_request(fam)[:7], dest)
    attempt("%d 8 bytes (no payload)" % fam, p.sendto, echo_request(fam, payload=b""), dest)
    attempt("%d sendmsg without a destination" % fam, p.sendmsg, [echo_request(fam)])
    other = sockaddr(V4, LO4, 0) if fam == V6 else sockaddr(V6, LO6, 0)
    out("%d the other family's address" % fam, raw_sendto(p, echo_request(fam), other))
    p.close()
