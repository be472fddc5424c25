# SOL_SOCKET settings an accepted socket inherits from its listener: timeouts,
# linger, buffer sizes and priority (sockopt_details.py checks the flags).
import socket
import struct

from lib import *

SO = socket.SOL_SOCKET
SO_PRIORITY = 12
for fam in (V4, V6):
    l = sock(fam, TCP)
    l.setsockopt(SO, socket.SO_RCVTIMEO, struct.pack("ll", 3, 0))
    l.setsockopt(SO, socket.SO_SNDTIMEO, struct.pack("ll", 4, 500000))
    l.setsockopt(SO, socket.SO_LINGER, struct.pack("ii", 1, 9))
    l.setsockopt(SO, socket.SO_RCVBUF, 20000)
    l.setsockopt(SO, socket.SO_SNDBUF, 30000)
    l.setsockopt(SO, SO_PRIORITY, 5)
    l.bind((lo(fam), 0))
    l.listen()
    c = sock(fam, TCP)
    c.connect(l.getsockname()[:2])
    a, _ = l.accept()
    out("%d SO_RCVTIMEO" % fam, struct.unpack("ll", a.getsockopt(SO, socket.SO_RCVTIMEO, 16)))
    out("%d SO_SNDTIMEO" % fam, struct.unpack("ll", a.getsockopt(SO, socket.SO_SNDTIMEO, 16)))
    out("%d SO_LINGER" % fam, struct.unpack("ii", a.getsockopt(SO, socket.SO_LINGER, 8)))
    out("%d SO_RCVBUF" % fam, a.getsockopt(SO, socket.SO_RCVBUF))
    out("%d SO_SNDBUF" % fam, a.getsockopt(SO, socket.SO_SNDBUF))
    out("%d SO_PRIORITY" % fam, a.getsockopt(SO, SO_PRIORITY))
    for x in (c, a, l):
        x.close()
