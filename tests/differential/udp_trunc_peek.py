# Sizing a UDP datagram before reading it: recv with MSG_PEEK|MSG_TRUNC and a
# tiny (or empty) buffer returns the datagram's full length and leaves it
# queued; recvmsg reports MSG_TRUNC in its flags when the buffer was short.
import socket

from lib import *

for fam in (V4, V6):
    r = udp_bound(fam)
    s = sock(fam, UDP)
    s.sendto(b"x" * 1000, r.getsockname()[:2])
    wait_readable(r)
    buf = bytearray(1)
    out("%d peek|trunc, 1-byte buffer" % fam, r.recv_into(buf, 1, socket.MSG_PEEK | socket.MSG_TRUNC))
    out("%d peek|trunc, empty buffer" % fam, r.recv_into(bytearray(1), 0, socket.MSG_PEEK | socket.MSG_TRUNC))
    d, anc, flags, frm = r.recvmsg(10, 0, socket.MSG_PEEK)
    out("%d recvmsg peek 10: flags MSG_TRUNC" % fam, (len(d), bool(flags & socket.MSG_TRUNC)))
    d, anc, flags, frm = r.recvmsg(2000)
    out("%d recvmsg 2000: flags MSG_TRUNC" % fam, (len(d), bool(flags & socket.MSG_TRUNC)))
    attempt("%d queue empty" % fam, r.recv, 10, socket.MSG_DONTWAIT)
    r.close()
    s.close()
