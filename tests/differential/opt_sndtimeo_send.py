# SO_SNDTIMEO bounds a blocking send on a full TCP connection: once the buffers
# are full, a blocking send waits that long and fails with EAGAIN.
import socket
import struct
import time

from lib import *

for fam in (V4, V6):
    c, a, l = tcp_pair(fam)
    while quiet(c.send, b"f" * 65536, socket.MSG_DONTWAIT)[1] is None:
        pass
    c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", 0, 200000))
    t0 = time.monotonic()
    attempt("%d blocking send when full" % fam, c.send, b"g" * 65536)
    dt = time.monotonic() - t0
    out("%d waited at least 0.15s and under 5s" % fam, 0.15 <= dt < 5)
    for x in (c, a, l):
        x.close()
