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

# By index (SO_BINDTOIFINDEX): any index that is not negative is taken; the
# name of one that does not exist is ENODEV; a short buffer for the name EINVAL.
SO_BINDTOIFINDEX = 62
s = sock(V4, UDP)
attempt("index default", s.getsockopt, SO, SO_BINDTOIFINDEX)
attempt("index 1", s.setsockopt, SO, SO_BINDTOIFINDEX, 1, show=ok)
attempt("name of 1", s.getsockopt, SO, socket.SO_BINDTODEVICE, 16)
attempt("name of 1, short buffer", s.getsockopt, SO, socket.SO_BINDTODEVICE, 8)
attempt("index 9", s.setsockopt, SO, SO_BINDTOIFINDEX, 9, show=ok)
attempt("name of 9", s.getsockopt, SO, socket.SO_BINDTODEVICE, 16)
attempt("index -1", s.setsockopt, SO, SO_BINDTOIFINDEX, -1, show=ok)
attempt("long name", s.setsockopt, SO, socket.SO_BINDTODEVICE, b"lo" + b"\0" * 30, show=ok)
attempt("index after long name", s.getsockopt, SO, SO_BINDTOIFINDEX)
s.close()
