# recvmmsg/sendmmsg counts: recvmmsg returns the number queued when asked for
# more (with MSG_DONTWAIT or MSG_WAITFORONE), EAGAIN when none; vlen 0 sends and
# receives nothing; each message's msg_len is its datagram's size.
import ctypes
import socket

from lib import *

libc = ctypes.CDLL(None, use_errno=True)
MSG_WAITFORONE = 0x10000


def vector(payloads):
    keep = []
    vec = (mmsghdr * max(len(payloads), 1))()
    for i, p in enumerate(payloads):
        buf = ctypes.create_string_buffer(p, len(p)) if isinstance(p, bytes) else ctypes.create_string_buffer(p)
        iovs = (iovec * 1)(iovec(ctypes.cast(buf, ctypes.c_void_p), len(buf)))
        keep += [buf, iovs]
        vec[i].hdr.iov = iovs
        vec[i].hdr.iovlen = 1
    return vec, keep


def rc(r):
    return ename(ctypes.get_errno()) if r < 0 else r


for fam in (V4, V6):
    r = udp_bound(fam)
    s = sock(fam, UDP)
    s.connect(r.getsockname()[:2])
    vec, keep = vector([b"a", b"bb", b"ccc"])
    out("%d sendmmsg 3" % fam, rc(libc.sendmmsg(s.fileno(), vec, 3, 0)))
    out("%d sendmmsg vlen 0" % fam, rc(libc.sendmmsg(s.fileno(), vec, 0, 0)))
    wait_readable(r)
    rvec, rkeep = vector([100] * 8)
    out("%d recvmmsg 8, DONTWAIT" % fam, rc(libc.recvmmsg(r.fileno(), rvec, 8, socket.MSG_DONTWAIT, None)))
    out("%d msg_len" % fam, [rvec[i].len for i in range(3)])
    out("%d recvmmsg when empty" % fam, rc(libc.recvmmsg(r.fileno(), rvec, 8, socket.MSG_DONTWAIT, None)))
    vec, keep = vector([b"d", b"ee"])
    libc.sendmmsg(s.fileno(), vec, 2, 0)
    wait_readable(r)
    out("%d recvmmsg 8, WAITFORONE" % fam, rc(libc.recvmmsg(r.fileno(), rvec, 8, MSG_WAITFORONE, None)))
    out("%d recvmmsg vlen 0" % fam, rc(libc.recvmmsg(r.fileno(), rvec, 0, socket.MSG_DONTWAIT, None)))
    vec, keep = vector([b"f"])
    libc.sendmmsg(s.fileno(), vec, 1, 0)
    wait_readable(r)
    out("%d recvmmsg 1 of 1" % fam, rc(libc.recvmmsg(r.fileno(), rvec, 1, 0, None)))
    r.close()
    s.close()
