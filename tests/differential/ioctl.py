# ioctl on TCP sockets: FIONREAD (SIOCINQ) counts unread bytes on a connection,
# follows reads and peeks, and is EINVAL on a listener; FIONBIO switches
# O_NONBLOCK.
import fcntl
import socket
import struct
import time

from lib import *

FIONBIO = 0x5421

for fam in (V4, V6):
    note("family %d" % fam)
    c, a, l = tcp_pair(fam)
    out("FIONREAD on an idle connection", ioctl_int(a, FIONREAD))
    c.sendall(b"0123456789")
    wait_readable(a)
    out("FIONREAD after 10 bytes", ioctl_int(a, FIONREAD))
    a.recv(3, socket.MSG_PEEK)
    out("FIONREAD after a peek", ioctl_int(a, FIONREAD))
    a.recv(4)
    out("FIONREAD after reading 4", ioctl_int(a, FIONREAD))
    c.sendall(b"x" * 50000)
    total = 6 + 50000
    deadline = time.monotonic() + 10
    while ioctl_int(a, FIONREAD) < total and time.monotonic() < deadline:
        time.sleep(0.001)
    out("FIONREAD after 50000 more", ioctl_int(a, FIONREAD))
    drain_now = a.recv(total, socket.MSG_WAITALL)
    out("read them all", len(drain_now))
    out("FIONREAD drained", ioctl_int(a, FIONREAD))
    fcntl.ioctl(a.fileno(), FIONBIO, struct.pack("i", 1))
    out("after FIONBIO 1", flags_of(a))
    attempt("recv now", a.recv, 10)
    fcntl.ioctl(a.fileno(), FIONBIO, struct.pack("i", 0))
    out("after FIONBIO 0", flags_of(a))
    c.shutdown(socket.SHUT_WR)
    wait_readable(a)
    out("FIONREAD at EOF", ioctl_int(a, FIONREAD))
    out("FIONREAD on a listener", ioctl_int(l, FIONREAD))
    fresh = sock(fam, TCP)
    out("FIONREAD on a fresh socket", ioctl_int(fresh, FIONREAD))
    fresh.close()
    for s in (c, a, l):
        s.close()
