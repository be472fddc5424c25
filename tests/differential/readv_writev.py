# readv/writev on sockets: writev's buffers join on TCP and form one datagram
# on UDP; readv fills its buffers in order, and on UDP a datagram larger than
# all the buffers is cut (the rest discarded).
import os
import socket
import time

from lib import *

for fam in (V4, V6):
    c, a, l = tcp_pair(fam)
    out("%d TCP writev" % fam, os.writev(c.fileno(), [b"ab", b"", b"cde", b"f"]))
    time.sleep(0.1)
    bufs = [bytearray(2), bytearray(3), bytearray(4)]
    out("%d TCP readv" % fam, os.readv(a.fileno(), bufs))
    out("%d TCP buffers" % fam, [bytes(b) for b in bufs])
    for x in (c, a, l):
        x.close()
    r = udp_bound(fam)
    s = sock(fam, UDP)
    s.connect(r.getsockname()[:2])
    out("%d UDP writev" % fam, os.writev(s.fileno(), [b"one", b"two", b"three"]))
    out("%d UDP writev again" % fam, os.writev(s.fileno(), [b"0123456789"]))
    wait_readable(r)
    out("%d UDP one datagram" % fam, recv_wait(r, 100))
    bufs = [bytearray(3), bytearray(4)]
    wait_readable(r)
    out("%d UDP readv into 3+4 bytes" % fam, os.readv(r.fileno(), bufs))
    out("%d UDP buffers" % fam, [bytes(b) for b in bufs])
    attempt("%d UDP the rest is gone" % fam, r.recv, 100, socket.MSG_DONTWAIT)
    r.close()
    s.close()
