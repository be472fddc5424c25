# The address-returning calls with caller-sized buffers: getsockname,
# getpeername, accept and recvfrom truncate the address to the room given,
# report the full length, and leave the rest of the buffer alone; a length of
# zero writes nothing; sendto checks the length of the destination (its family:
# udp_sendto_family.py).
import socket

from lib import *

for fam in (V4, V6):
    note("family %d" % fam)
    full = 16 if fam == V4 else 28
    c, a, l = tcp_pair(fam)
    for call, s in (("getsockname", c), ("getpeername", c), ("getsockname", a), ("getpeername", a)):
        for room in (0, 1, 2, 8, full, 128):
            r, ln, raw = raw_name(call, s, room)
            out("%s room %d" % (call, room), "%s len=%s family=%s" % (r, ln, family_of(raw[:room]) if raw and room >= 2 else "-"))
    out("getsockname with a NULL length", raw_name("getsockname", c, 16, null_len=True)[0])
    fresh = sock(fam, TCP)
    out("getpeername unconnected, room 128", raw_name("getpeername", fresh, 128)[:2])
    fresh.close()
    for room in (0, 4, full, 128):
        d = sock(fam, TCP)
        d.connect(l.getsockname()[:2])
        wait_readable(l)
        n, ln, raw = raw_accept(l, room)
        if isinstance(n, str):
            out("accept room %d" % room, n)
        else:
            out("accept room %d" % room, "len=%s family=%s rest untouched=%s" % (
                ln, family_of(raw) if room >= 2 else "-", raw[room:] == b"\xee" * (len(raw) - room)))
            n.close()
        d.close()
    for s in (c, a, l):
        s.close()

    note("family %d: UDP recvfrom and sendto" % fam)
    r = udp_bound(fam)
    s = udp_bound(fam)
    for room in (0, 2, 8, full, 128):
        s.sendto(b"dgram", r.getsockname()[:2])
        wait_readable(r)
        data, ln, raw = raw_recvfrom(r, 100, room)
        out("recvfrom room %d" % room, "%r len=%s family=%s" % (data, ln, family_of(raw) if room >= 2 else "-"))
    good = sockaddr(fam, lo(fam), r.getsockname()[1])
    out("raw sendto", raw_sendto(s, b"ok", good))
    out("raw sendto len 0", raw_sendto(s, b"x", good, 0))
    out("raw sendto len 2", raw_sendto(s, b"x", good, 2))
    out("raw sendto one short", raw_sendto(s, b"x", good, len(good) - 1))
    out("raw sendto long length", raw_sendto(s, b"long", good + b"\0" * 64))
    got = []
    while True:
        try:
            got.append(r.recv(100, socket.MSG_DONTWAIT))
        except BlockingIOError:
            break
    out("datagrams that arrived", got)
    r.close()
    s.close()
