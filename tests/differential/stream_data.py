# Bytes on a TCP connection: a large transfer followed by close() delivers every
# byte before EOF, in both directions and from a thread; readv/writev-style calls
# (sendmsg/recvmsg without addresses, recv_into) and MSG_PEEK, MSG_DONTWAIT,
# MSG_WAITALL on streams.
import hashlib
import socket
import time

from lib import *


def pattern(n):
    block = bytes(range(256)) * 256
    return (block * (n // len(block) + 1))[:n]


for fam in (V4, V6):
    note("family %d: close with pending data" % fam)
    big = pattern(4 * 1024 * 1024 + 17)
    c, a, l = tcp_pair(fam)

    def writer(s, data):
        s.sendall(data)
        s.close()

    t = in_thread(writer, c, big)
    got = drain(a)
    t.join()
    out("bytes received before EOF", len(got))
    out("digest matches", hashlib.sha256(got).hexdigest() == hashlib.sha256(big).hexdigest())
    out("recv after EOF", a.recv(10))
    a.close()
    l.close()

    note("family %d: server writes and closes, client reads later" % fam)
    c, a, l = tcp_pair(fam)
    payload = pattern(100000)
    a.sendall(payload[:50000])
    a.sendall(payload[50000:])
    a.close()
    got = drain(c)
    out("client got everything", got == payload)
    c.close()
    l.close()

    note("family %d: message flags" % fam)
    c, a, l = tcp_pair(fam)
    a.setblocking(True)
    attempt("recv MSG_DONTWAIT on empty", a.recv, 10, socket.MSG_DONTWAIT)
    c.sendall(b"hello world")
    wait_readable(a)
    attempt("recv MSG_PEEK", a.recv, 5, socket.MSG_PEEK)
    attempt("recv MSG_PEEK again", a.recv, 5, socket.MSG_PEEK)
    attempt("recv", a.recv, 6)
    attempt("recv rest", a.recv, 100)
    attempt("recv MSG_DONTWAIT drained", a.recv, 10, socket.MSG_DONTWAIT)

    def slow_writer(s):
        for piece in (b"ab", b"cd", b"ef", b"gh"):
            s.sendall(piece)
            time.sleep(0.02)

    t = in_thread(slow_writer, c)
    attempt("recv MSG_WAITALL 8", a.recv, 8, socket.MSG_WAITALL)
    t.join()
    c.sendall(b"xyz")
    c.shutdown(socket.SHUT_WR)
    attempt("recv MSG_WAITALL cut short by EOF", a.recv, 10, socket.MSG_WAITALL)

    note("family %d: scatter/gather without addresses" % fam)
    attempt("sendmsg three buffers", a.sendmsg, [b"one", b"two", b"three"])
    wait_readable(c)
    got = c.recvmsg(100)
    out("recvmsg data", got[0])
    out("recvmsg ancillary", got[1])
    out("recvmsg flags", got[2])
    out("recvmsg address", got[3])
    a.sendall(b"0123456789")
    wait_readable(c)
    bufs = [bytearray(3), bytearray(4)]
    n = c.recvmsg_into(bufs)
    out("recvmsg_into count", n[0])
    out("recvmsg_into buffers", [bytes(b) for b in bufs])
    buf = bytearray(10)
    out("recv_into", c.recv_into(buf, 10))
    out("recv_into data", bytes(buf[:3]))
    attempt("recvfrom on a stream, empty", c.recvfrom, 100, socket.MSG_DONTWAIT)
    a.sendall(b"from")
    wait_readable(c)
    out("recvfrom on a stream", c.recvfrom(100))
    attempt("sendto on a connected stream ignores the address", a.sendto, b"to", (lo(fam), 9))
    wait_readable(c)
    out("data of sendto", c.recv(100))
    for s in (c, a, l):
        s.close()
