# Zero-length UDP datagrams are datagrams: each is queued and received on its
# own (recv returns b''), poll reports POLLIN for one, FIONREAD says 0, and the
# sender's address comes with it.
import select
import socket

from lib import *

for fam in (V4, V6):
    r = udp_bound(fam)
    s = udp_bound(fam)
    names = {s.getsockname()[1]: "sender"}
    out("%d send empty" % fam, s.sendto(b"", r.getsockname()[:2]))
    wait_readable(r)
    out("%d poll" % fam, poll_mask(r, select.POLLIN))
    out("%d FIONREAD" % fam, ioctl_int(r, FIONREAD))
    d, frm = r.recvfrom(10)
    out("%d recvfrom" % fam, (d, addr(frm, names)))
    s.sendto(b"", r.getsockname()[:2])
    s.sendto(b"", r.getsockname()[:2])
    s.sendto(b"end", r.getsockname()[:2])
    got = []
    for _ in range(3):
        got.append(recv_wait(r, 10))
    out("%d three datagrams, two empty" % fam, got)
    attempt("%d then nothing" % fam, r.recv, 10, socket.MSG_DONTWAIT)
    s.connect(r.getsockname()[:2])
    out("%d send empty, connected" % fam, s.send(b""))
    out("%d arrives" % fam, recv_wait(r, 10))
    r.close()
    s.close()
