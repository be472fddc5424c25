# accept4 flags, seen through fcntl: SOCK_NONBLOCK and SOCK_CLOEXEC alone and
# together, plain accept inheriting neither from a non-blocking listener, and an
# unknown flag being EINVAL (the connection stays queued).
import socket

from lib import *

for fam in (V4, V6):
    l = listener(fam)
    for what, flags in (("none", 0), ("SOCK_NONBLOCK", socket.SOCK_NONBLOCK),
                        ("SOCK_CLOEXEC", socket.SOCK_CLOEXEC),
                        ("both", socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)):
        c = sock(fam, TCP)
        c.connect(l.getsockname()[:2])
        n, _ = accept4(l, flags)
        out("%d accept4 %s" % (fam, what), flags_of(n))
        n.close()
        c.close()
    c = sock(fam, TCP)
    c.connect(l.getsockname()[:2])
    attempt("%d accept4 with flag 1" % fam, accept4, l, 1, show=lambda r: flags_of(r[0]))
    attempt("%d accept4 with O_APPEND" % fam, accept4, l, os.O_APPEND, show=lambda r: flags_of(r[0]))
    l.setblocking(False)
    out("%d listener" % fam, flags_of(l))
    n, _ = accept4(l, 0)
    out("%d plain accept from a non-blocking listener" % fam, flags_of(n))
    n.close()
    c.close()
    l.close()
