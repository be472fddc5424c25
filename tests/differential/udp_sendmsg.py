# sendmsg/recvmsg with addresses on UDP (IPv4 and IPv6): the destination in
# msg_name, the source reported back in msg_name, scatter/gather buffers,
# MSG_TRUNC in the returned flags, and errors for bad destinations.
import socket

from lib import *

for fam in (V4, V6):
    note("family %d" % fam)
    r = udp_bound(fam)
    s = udp_bound(fam)
    names = {r.getsockname()[1]: "receiver", s.getsockname()[1]: "sender"}
    attempt("sendmsg with an address", s.sendmsg, [b"gather", b"ed"], [], 0, r.getsockname()[:2])
    wait_readable(r)
    d, anc, flags, frm = r.recvmsg(100)
    out("recvmsg data", d)
    out("recvmsg flags", flags)
    out("recvmsg source", addr(frm, names))
    attempt("sendmsg again", s.sendmsg, [b"0123456789"], [], 0, r.getsockname()[:2])
    wait_readable(r)
    bufs = [bytearray(4), bytearray(3)]
    n, anc, flags, frm = r.recvmsg_into(bufs)
    out("recvmsg_into count", n)
    out("recvmsg_into buffers", [bytes(b) for b in bufs])
    out("recvmsg_into MSG_TRUNC", bool(flags & socket.MSG_TRUNC))
    out("recvmsg_into source", addr(frm, names))
    attempt("sendmsg to port 0", s.sendmsg, [b"x"], [], 0, (lo(fam), 0))
    attempt("sendmsg to an address nobody routes", s.sendmsg, [b"x"], [], 0, (FOREIGN6 if fam == V6 else FOREIGN4, 9))
    attempt("sendmsg to the unspecified address", s.sendmsg, [b"unspec"], [], 0, (any_addr(fam), r.getsockname()[1]))
    attempt("  arrives", recvfrom_wait, r, 100, show=lambda x: "%r from %s" % (x[0], addr(x[1], names)))
    u = sock(fam, UDP)
    attempt("sendmsg from an unbound socket", u.sendmsg, [b"auto"], [], 0, r.getsockname()[:2])
    out("  sender now bound", local(u))
    attempt("  arrives", recvfrom_wait, r, 100, show=lambda x: "%r from %s" % (x[0], addr(x[1])))
    attempt("recvmsg on empty, MSG_DONTWAIT", r.recvmsg, 100, 0, socket.MSG_DONTWAIT)
    c = sock(fam, UDP)
    c.connect(r.getsockname()[:2])
    attempt("sendmsg without an address, connected", c.sendmsg, [b"conn"])
    attempt("  arrives", recvfrom_wait, r, 100, show=lambda x: "%r from == connected socket: %s" % (x[0], x[1] == c.getsockname()))
    r.sendmsg([b"back"], [], 0, c.getsockname()[:2])
    wait_readable(c)
    d, anc, flags, frm = c.recvmsg(100)
    out("connected recvmsg", d)
    out("connected recvmsg source", addr(frm, names))
    for x in (r, s, u, c):
        x.close()
