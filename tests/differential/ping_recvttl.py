# Control messages on ping replies: IP_RECVTTL gives the reply's TTL (64 from
# this host) as an int IP_TTL message; IPV6_RECVHOPLIMIT the hop limit as an
# IPV6_HOPLIMIT message; without them no control message comes.
import socket
import struct

from lib import *

IP_RECVTTL = 12
for fam in (V4, V6):
    p = ping_sock(fam)
    p.sendto(echo_request(fam, 0, 1), (lo(fam), 0))
    wait_readable(p)
    attempt("%d without the option" % fam, lambda: p.recvmsg(100, 256, socket.MSG_DONTWAIT)[1])
    if fam == V4:
        p.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
    else:
        p.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
    for seq in (2, 3):
        p.sendto(echo_request(fam, 0, seq), (lo(fam), 0))
        wait_readable(p)
        attempt("%d seq %d control messages" % (fam, seq), lambda: [
            (lv, ty, struct.unpack("i", data)[0]) for lv, ty, data in p.recvmsg(100, 256, socket.MSG_DONTWAIT)[1]])
    p.close()
