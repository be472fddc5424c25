# connect() with AF_UNSPEC on TCP: on a listener it stops listening, on a fresh
# socket it does nothing. (On a connected socket, carrier_unspec_connected.py.)
import socket
import struct

from lib import *

UNSPEC = struct.pack("=H", socket.AF_UNSPEC) + b"\0" * 14
for fam in (V4, V6):
    l = listener(fam)
    out("%d disconnect listener" % fam, raw_connect(l, UNSPEC))
    out("%d listener SO_ACCEPTCONN" % fam, l.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
    d = sock(fam, TCP)
    d.settimeout(2)
    attempt("%d connect to the former listener" % fam, d.connect, l.getsockname()[:2], show=ok)
    f = sock(fam, TCP)
    out("%d disconnect a fresh socket" % fam, raw_connect(f, UNSPEC))
    for x in (l, d, f):
        x.close()
