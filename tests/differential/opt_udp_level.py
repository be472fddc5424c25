# The UDP level (SOL_UDP): UDP_CORK and UDP_SEGMENT exist on UDP sockets, and
# the level is ENOPROTOOPT on a TCP socket; the TCP level on a UDP socket is
# ENOPROTOOPT for setsockopt.
import socket

from lib import *

SOL_UDP = 17
UDP_CORK = 1
UDP_SEGMENT = 103
for fam in (V4, V6):
    u = sock(fam, UDP)
    attempt("%d UDP get UDP_CORK" % fam, u.getsockopt, SOL_UDP, UDP_CORK)
    attempt("%d UDP set UDP_CORK 1" % fam, u.setsockopt, SOL_UDP, UDP_CORK, 1, show=ok)
    attempt("%d UDP get UDP_CORK" % fam, u.getsockopt, SOL_UDP, UDP_CORK)
    attempt("%d UDP set UDP_CORK 0" % fam, u.setsockopt, SOL_UDP, UDP_CORK, 0, show=ok)
    attempt("%d UDP get UDP_SEGMENT" % fam, u.getsockopt, SOL_UDP, UDP_SEGMENT)
    attempt("%d UDP unknown UDP option" % fam, u.getsockopt, SOL_UDP, 9999)
    attempt("%d UDP set TCP_NODELAY" % fam, u.setsockopt, socket.IPPROTO_TCP, socket.TCP_NODELAY, 1, show=ok)
    u.close()
    t = sock(fam, TCP)
    attempt("%d TCP set UDP_CORK" % fam, t.setsockopt, SOL_UDP, UDP_CORK, 1, show=ok)
    if fam == V6:
        attempt("%d TCP get UDP_CORK" % fam, t.getsockopt, SOL_UDP, UDP_CORK)
    t.close()
