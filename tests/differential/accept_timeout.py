# SO_RCVTIMEO applies to accept(): a blocking accept with nothing queued fails
# with EAGAIN after the timeout; a connection arriving in time is accepted.
import socket
import struct
import time

from lib import *

for fam in (V4, V6):
    l = listener(fam)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 200000))
    t0 = time.monotonic()
    attempt("%d accept with nothing queued" % fam, l.accept, show=ok)
    dt = time.monotonic() - t0
    out("%d waited at least 0.15s and under 5s" % fam, 0.15 <= dt < 5)
    c = sock(fam, TCP)
    t = in_thread(lambda: (time.sleep(0.05), c.connect(l.getsockname()[:2])))
    n = attempt("%d accept a connection arriving in time" % fam, lambda: l.accept()[0], show=ok)
    t.join()
    if n is not None:
        n.close()
    c.close()
    l.close()
