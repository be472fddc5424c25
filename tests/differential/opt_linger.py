# SO_LINGER's struct linger: round trips, turning it off keeps the old timeout,
# a short option length is EINVAL, and a short getsockopt buffer gets the start
# of the structure.
import socket
import struct

from lib import *

SO = socket.SOL_SOCKET


def get(s):
    return struct.unpack("ii", s.getsockopt(SO, socket.SO_LINGER, 8))


for fam in (V4, V6):
    for ty in (TCP, UDP):
        s = sock(fam, ty)
        t = "%d/%d" % (fam, ty)
        out("%s default" % t, get(s))
        for onoff, secs in ((1, 5), (0, 7), (1, 0), (5, 3), (0, 0), (1, 100000)):
            r = raw_setsockopt(s, SO, socket.SO_LINGER, struct.pack("ii", onoff, secs))
            out("%s set {%d, %d}" % (t, onoff, secs), "%s %s" % (r, get(s)))
        out("%s set with 4 bytes" % t, raw_setsockopt(s, SO, socket.SO_LINGER, struct.pack("i", 1)))
        out("%s set with 12 bytes" % t, raw_setsockopt(s, SO, socket.SO_LINGER, struct.pack("iii", 1, 9, 0)))
        out("%s after" % t, get(s))
        for room in (0, 4, 8, 12):
            out("%s get with %d bytes" % (t, room), raw_getsockopt(s, SO, socket.SO_LINGER, room))
        s.close()
