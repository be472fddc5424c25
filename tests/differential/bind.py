# bind(): wildcard and specific addresses, port 0 (ephemeral), EADDRINUSE,
# EADDRNOTAVAIL for an address the host does not own, EINVAL when bound twice,
# short lengths, wrong families, and TCP and UDP ports being separate.

from lib import *

for fam in (V4, V6):
    note("family %d" % fam)
    own = OWN6 if fam == V6 else OWN4
    foreign = FOREIGN6 if fam == V6 else FOREIGN4
    for ty in (TCP, UDP):
        t = "%d/%d" % (fam, ty)
        for host in (any_addr(fam), lo(fam), own):
            s = sock(fam, ty)
            attempt("%s bind %s:0" % (t, host), s.bind, (host, 0), show=ok)
            out("%s getsockname after bind %s:0" % (t, host), local(s))
            s.close()
        s = sock(fam, ty)
        attempt("%s bind foreign %s" % (t, foreign), s.bind, (foreign, 0), show=ok)
        out("%s getsockname after failed bind" % t, local(s))
        attempt("%s bind again after failure" % t, s.bind, (lo(fam), 0), show=ok)
        attempt("%s bind a third time" % t, s.bind, (lo(fam), 0), show=ok)
        s.close()

        a = sock(fam, ty)
        a.bind((lo(fam), 0))
        port = a.getsockname()[1]
        b = sock(fam, ty)
        attempt("%s bind same addr and port" % t, b.bind, (lo(fam), port), show=ok)
        attempt("%s bind wildcard on a used port" % t, b.bind, (any_addr(fam), port), show=ok)
        attempt("%s bind own address on a port used on loopback" % t, b.bind, (own, port), show=ok)
        b.close()
        other = sock(fam, TCP if ty == UDP else UDP)
        attempt("%s other protocol on the same port" % t, other.bind, (lo(fam), port), show=ok)
        other.close()
        a.close()
        c = sock(fam, ty)
        attempt("%s port free again after close" % t, c.bind, (lo(fam), port), show=ok)
        c.close()


note("addresses in 127.0.0.0/8 and the v4-mapped forms")
for fam, host in (
    (V4, "127.0.0.5"),
    (V4, "127.255.255.254"),
    (V6, "::ffff:127.0.0.1"),
    (V6, "::ffff:10.0.0.2"),
    (V6, "::ffff:192.0.2.1"),
):
    for ty in (TCP, UDP):
        s = sock(fam, ty)
        attempt("%d/%d bind %s" % (fam, ty, host), s.bind, (host, 0), show=ok)
        out("getsockname", local(s))
        s.close()

note("raw sockaddr checks, each on a fresh socket")
for fam in (V4, V6):
    good = sockaddr(fam, lo(fam), 0)
    other = V6 if fam == V4 else V4
    wrong = sockaddr(other, lo(other), 0)
    wrong = wrong + b"\0" * max(0, len(good) - len(wrong))
    checks = [
        ("len 0", good, 0),
        ("len 2", good, 2),
        ("len one short", good, len(good) - 1),
        ("len 24", good, 24),
        ("len 16", good, 16),
        ("long length", good + b"\0" * 64, None),
        ("other family", wrong, None),
        ("AF_UNIX", b"\x01\x00" + good[2:], None),
        ("AF_UNSPEC loopback", b"\0\0" + good[2:], None),
        ("AF_UNSPEC any", b"\0" * len(good), None),
        ("AF_UNSPEC any len 2", b"\0" * len(good), 2),
    ]
    for ty in (TCP, UDP):
        for what, raw, length in checks:
            s = sock(fam, ty)
            r = raw_bind(s, raw, length)
            out("%d/%d bind %s" % (fam, ty, what), "%s %s" % (r, local(s)))
            s.close()
