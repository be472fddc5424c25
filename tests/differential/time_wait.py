# A port whose connection the server closed first stays in TIME_WAIT: binding it
# again fails with EADDRINUSE unless both the old listener and the new socket
# set SO_REUSEADDR; a port whose client closed first is free at once.
import socket

from lib import *

for fam in (V4, V6):
    note("family %d" % fam)
    for who in ("server", "client"):
        for reuse in (False, True):
            l = listener(fam, reuse=reuse)
            port = l.getsockname()[1]
            c = sock(fam, TCP)
            c.connect((lo(fam), port))
            a, _ = l.accept()
            first, second = (a, c) if who == "server" else (c, a)
            first.close()
            recv_wait(second, 10)
            second.close()
            l.close()
            s = sock(fam, TCP)
            if reuse:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            label = "%s closed first, SO_REUSEADDR=%d: bind the port again" % (who, reuse)
            attempt(label, s.bind, (lo(fam), port), show=ok)
            s.close()
