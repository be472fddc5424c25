# SO_BINDTODEVICE: empty by default, "lo" reads back, an interface that does
# not exist is ENODEV, and an empty name unbinds.
import socket

from lib import *

SO = socket.SOL_SOCKET
for fam in (V4, V6):
    for ty in (TCP, UDP):
        s = sock(fam, ty)
        t = "%d/%d" % (fam, ty)
        attempt("%s default" % t, s.getsockopt, SO, socket.SO_BINDTODEVICE, 16)
        attempt("%s bind to lo" % t, s.setsockopt, SO, socket.SO_BINDTODEVICE, b"lo", show=ok)
        attempt("%s get" % t, s.getsockopt, SO, socket.SO_BINDTODEVICE, 16)
        attempt("%s bind to nosuchdev0" % t, s.setsockopt, SO, socket.SO_BINDTODEVICE, b"nosuchdev0", show=ok)
        attempt("%s unbind" % t, s.setsockopt, SO, socket.SO_BINDTODEVICE, b"", show=ok)
        attempt("%s get" % t, s.getsockopt, SO, socket.SO_BINDTODEVICE, 16)
        s.close()
