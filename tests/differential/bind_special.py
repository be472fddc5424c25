# bind() to addresses that are neither unicast nor wildcard: the IPv4 broadcast
# address and a multicast group (Linux accepts both), the v4-mapped wildcard
# (accepted, and reported as given) and a link-scope IPv6 multicast group without
# an interface (EINVAL).
from lib import *

for fam, host in (
    (V4, "255.255.255.255"),
    (V4, "224.0.0.1"),
    (V4, "239.1.2.3"),
    (V6, "::ffff:0.0.0.0"),
    (V6, "ff02::1"),
):
    for ty in (TCP, UDP):
        s = sock(fam, ty)
        attempt("%d/%d bind %s" % (fam, ty, host), s.bind, (host, 0), show=ok)
        out("getsockname", local(s))
        s.close()
