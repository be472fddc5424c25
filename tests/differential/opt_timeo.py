# SO_RCVTIMEO and SO_SNDTIMEO take a struct timeval: round trips, zero (wait
# forever), a negative tv_sec (taken as zero), tv_usec out of range (EDOM), a
# short option length (EINVAL), and a short getsockopt buffer.
import socket
import struct

from lib import *

SO = socket.SOL_SOCKET


def tv(s, opt):
    return struct.unpack("ll", s.getsockopt(SO, opt, 16))


for ty in (TCP, UDP):
    for name, opt in (("SO_RCVTIMEO", socket.SO_RCVTIMEO), ("SO_SNDTIMEO", socket.SO_SNDTIMEO)):
        s = sock(V4, ty)
        t = "type %d %s" % (ty, name)
        out("%s default" % t, tv(s, opt))
        for sec, usec in ((3, 0), (0, 500000), (2, 250000), (0, 0), (100000, 0), (-1, 0), (1, 1000000), (1, -1)):
            r = raw_setsockopt(s, SO, opt, struct.pack("ll", sec, usec))
            out("%s set %d.%06d" % (t, sec, usec), "%s %s" % (r, tv(s, opt)))
        s.setsockopt(SO, opt, struct.pack("ll", 4, 0))
        out("%s set with 8 bytes" % t, raw_setsockopt(s, SO, opt, struct.pack("ll", 7, 0)[:8]))
        out("%s set with 0 bytes" % t, raw_setsockopt(s, SO, opt, b""))
        out("%s set with 20 bytes" % t, raw_setsockopt(s, SO, opt, struct.pack("ll", 5, 0) + b"\0" * 4))
        out("%s after" % t, tv(s, opt))
        for room in (8, 16, 32):
            out("%s get with %d bytes" % (t, room), raw_getsockopt(s, SO, opt, room))
        s.close()
