# sendmmsg/recvmmsg with addresses on UDP (IPv4 and IPv6), through libc: a batch
# to two receivers, a batch received with each sender's address, a datagram to a
# port nobody bound inside a batch, and a batch with no address on an unconnected
# socket (EDESTADDRREQ).
import ctypes
import errno
import socket

from lib import *

libc = ctypes.CDLL(None, use_errno=True)


def batch(items, room=64):
    """An mmsghdr array: (data or buffer size, destination sockaddr bytes or None)."""
    keep = []
    vec = (mmsghdr * len(items))()
    for i, (data, dest) in enumerate(items):
        buf = ctypes.create_string_buffer(data if isinstance(data, bytes) else data)
        iov = iovec(ctypes.cast(buf, ctypes.c_void_p), len(buf) - (1 if isinstance(data, bytes) else 0))
        iovs = (iovec * 1)(iov)
        name = ctypes.create_string_buffer(dest if dest is not None else room)
        keep += [buf, iovs, name]
        vec[i].hdr.iov = iovs
        vec[i].hdr.iovlen = 1
        if dest is not None or isinstance(data, int):
            vec[i].hdr.name = ctypes.cast(name, ctypes.c_void_p)
            vec[i].hdr.namelen = len(dest) if dest is not None else room
    return vec, keep


def call(fn, s, vec, n):
    # recvmmsg without MSG_DONTWAIT would wait until all n arrive.
    r = fn(s.fileno(), vec, n, socket.MSG_DONTWAIT, None) if fn is libc.recvmmsg else fn(s.fileno(), vec, n, 0)
    return ename(ctypes.get_errno()) if r < 0 else r


def sa(family, address):
    return sockaddr(family, address[0], address[1])


for fam in (V4, V6):
    note("family %d" % fam)
    r1, r2 = udp_bound(fam), udp_bound(fam)
    s = udp_bound(fam)
    names = {r1.getsockname()[1]: "r1", r2.getsockname()[1]: "r2", s.getsockname()[1]: "sender"}
    vec, keep = batch([(b"one", sa(fam, r1.getsockname())), (b"two", sa(fam, r2.getsockname())),
                       (b"three", sa(fam, r1.getsockname()))])
    out("sendmmsg to two receivers", call(libc.sendmmsg, s, vec, 3))
    wait_readable(r1)
    wait_readable(r2)
    rvec, rkeep = batch([(64, None), (64, None), (64, None)])
    out("recvmmsg count", call(libc.recvmmsg, r1, rvec, 3))
    for i in range(2):
        h = rvec[i].hdr
        data = ctypes.string_at(h.iov[0].base, rvec[i].len)
        raw = ctypes.string_at(h.name, h.namelen)
        family = int.from_bytes(raw[:2], "little")
        port = int.from_bytes(raw[2:4], "big")
        out("recvmmsg message %d" % i, (data, family == fam, h.namelen, port_kind(port) if port not in names else names[port]))
    out("r2 got", recv_wait(r2, 100))

    # A datagram to a port nobody bound, first in a batch and in the middle.
    nobody = sa(fam, (lo(fam), 9))
    vec, keep = batch([(b"lost", nobody), (b"kept", sa(fam, r1.getsockname()))])
    sent = call(libc.sendmmsg, s, vec, 2)
    out("sendmmsg starting with a port nobody bound sends", sent if isinstance(sent, str) else sent >= 1)
    u = udp_bound(fam)
    vec, keep = batch([(b"x", None)])
    out("sendmmsg without an address, unconnected", call(libc.sendmmsg, u, vec, 1))
    for x in (r1, r2, s, u):
        x.close()
