# UDP source addresses and errors where netvm has differed: the source a
# wildcard-bound sender uses toward the host's own address, IPv4 datagrams to a
# dual-stack socket (v4-mapped source, and the reply back), EDESTADDRREQ for a
# sendmsg without destination, EMSGSIZE, and the autobound address released by a
# disconnect. (send() without a destination is carrier_send_unaddressed.py.)

from lib import *

for fam in (V4, V6):
    own = OWN6 if fam == V6 else OWN4
    note("family %d" % fam)
    r = udp_bound(fam, any_addr(fam))
    rport = r.getsockname()[1]
    names = {rport: "receiver"}
    s = sock(fam, UDP)
    attempt("wildcard-bound sender to own address", s.sendto, b"own", (own, rport))
    attempt("  source", recvfrom_wait, r, 100, show=lambda x: addr(x[1]))
    attempt("  reply", r.sendto, b"reply", (own, s.getsockname()[1]))
    attempt("  reply source", recvfrom_wait, s, 100, show=lambda x: addr(x[1], names))
    attempt("sendmsg without a destination", s.sendmsg, [b"x"])
    s.close()
    s = sock(fam, UDP)
    attempt("sendto larger than a datagram can be", s.sendto, b"z" * 70000, (lo(fam), rport))
    attempt("sendto 65507 bytes", s.sendto, b"z" * 65507, (lo(fam), rport))
    s.close()
    c = sock(fam, UDP)
    c.connect((lo(fam), rport))
    out("local while connected", local(c))
    out("disconnect with AF_UNSPEC", raw_connect(c, b"\0" * 16))
    out("local after disconnect (bound by connect)", local(c))
    attempt("sendmsg after disconnect", c.sendmsg, [b"x"])
    c.close()
    c = sock(fam, UDP)
    c.bind((lo(fam), 0))
    c.connect((lo(fam), rport))
    raw_connect(c, b"\0" * 16)
    out("local after disconnect (bound by bind)", local(c))
    c.close()
    r.close()

note("IPv4 datagrams to a dual-stack socket")
r = udp_bound(V6, "::")
names = {r.getsockname()[1]: "receiver"}
s = sock(V4, UDP)
s.sendto(b"v4", (LO4, r.getsockname()[1]))
attempt("received", recvfrom_wait, r, 100, show=lambda x: x[0])
s.sendto(b"v4", (LO4, r.getsockname()[1]))
data, frm = recvfrom_wait(r, 100)
out("source", addr(frm))
attempt("reply to the source", r.sendto, b"back", frm)
attempt("v4 sender got", recvfrom_wait, s, 100, show=lambda x: "%r from %s" % (x[0], addr(x[1], names)))
s.close()
r.close()
