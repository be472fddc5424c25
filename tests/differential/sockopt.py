# getsockopt/setsockopt: defaults, values read back after setting, range errors
# (EINVAL), options of the wrong level or protocol (ENOPROTOOPT), read-only
# options, short option lengths, and SO_RCVTIMEO honoured by a blocking recv.
import socket
import struct
import time

from lib import *

SO = socket.SOL_SOCKET
TCPL = socket.IPPROTO_TCP
IP = socket.IPPROTO_IP
IP6 = socket.IPPROTO_IPV6


def get(s, level, name, what):
    attempt("get %s" % what, s.getsockopt, level, name)


def setget(s, level, name, value, what):
    r, err = quiet(s.setsockopt, level, name, value)
    if err:
        out("set %s=%r" % (what, value), err)
    else:
        attempt("set %s=%r, get" % (what, value), s.getsockopt, level, name)


for fam in (V4, V6):
    for ty in (TCP, UDP):
        note("family %d type %d" % (fam, ty))
        s = sock(fam, ty)
        for name, opt in (
            ("SO_REUSEADDR", socket.SO_REUSEADDR),
            ("SO_REUSEPORT", socket.SO_REUSEPORT),
            ("SO_KEEPALIVE", socket.SO_KEEPALIVE),
            ("SO_BROADCAST", socket.SO_BROADCAST),
            ("SO_OOBINLINE", socket.SO_OOBINLINE),
            ("SO_DONTROUTE", socket.SO_DONTROUTE),
        ):
            get(s, SO, opt, name)
            setget(s, SO, opt, 1, name)
            setget(s, SO, opt, 0, name)
        attempt("get SO_LINGER", lambda: struct.unpack("ii", s.getsockopt(SO, socket.SO_LINGER, 8)), show=str)
        s.setsockopt(SO, socket.SO_LINGER, struct.pack("ii", 1, 5))
        attempt("set SO_LINGER 1,5, get", lambda: struct.unpack("ii", s.getsockopt(SO, socket.SO_LINGER, 8)), show=str)
        attempt("get SO_RCVLOWAT", s.getsockopt, SO, socket.SO_RCVLOWAT)
        setget(s, SO, socket.SO_RCVLOWAT, 4, "SO_RCVLOWAT")
        s.setsockopt(SO, socket.SO_RCVTIMEO, struct.pack("ll", 1, 500000))
        attempt("set SO_RCVTIMEO 1.5s, get", lambda: struct.unpack("ll", s.getsockopt(SO, socket.SO_RCVTIMEO, 16)), show=str)
        s.setsockopt(SO, socket.SO_SNDTIMEO, struct.pack("ll", 2, 0))
        attempt("set SO_SNDTIMEO 2s, get", lambda: struct.unpack("ll", s.getsockopt(SO, socket.SO_SNDTIMEO, 16)), show=str)
        attempt("SO_TYPE is read-only", s.setsockopt, SO, socket.SO_TYPE, 1, show=ok)
        attempt("SO_PROTOCOL is read-only", s.setsockopt, SO, socket.SO_PROTOCOL, 1, show=ok)
        attempt("SO_DOMAIN is read-only", s.setsockopt, SO, socket.SO_DOMAIN, 1, show=ok)
        attempt("SO_ACCEPTCONN is read-only", s.setsockopt, SO, socket.SO_ACCEPTCONN, 1, show=ok)
        attempt("SO_ERROR is read-only", s.setsockopt, SO, socket.SO_ERROR, 1, show=ok)
        attempt("unknown SOL_SOCKET option", s.getsockopt, SO, 9999)
        attempt("set unknown SOL_SOCKET option", s.setsockopt, SO, 9999, 1, show=ok)
        attempt("SO_TYPE with a 2-byte buffer", s.getsockopt, SO, socket.SO_TYPE, 2)
        attempt("SO_DOMAIN with a 2-byte buffer", s.getsockopt, SO, socket.SO_DOMAIN, 2)
        attempt("set SO_KEEPALIVE with 2 bytes", s.setsockopt, SO, socket.SO_KEEPALIVE, b"\1\0", show=ok)

        note("TCP level")
        for name, opt in (
            ("TCP_NODELAY", socket.TCP_NODELAY),
            ("TCP_KEEPIDLE", socket.TCP_KEEPIDLE),
            ("TCP_KEEPINTVL", socket.TCP_KEEPINTVL),
            ("TCP_KEEPCNT", socket.TCP_KEEPCNT),
            ("TCP_CORK", socket.TCP_CORK),
            ("TCP_SYNCNT", socket.TCP_SYNCNT),
            ("TCP_LINGER2", socket.TCP_LINGER2),
            ("TCP_DEFER_ACCEPT", socket.TCP_DEFER_ACCEPT),
            ("TCP_USER_TIMEOUT", socket.TCP_USER_TIMEOUT),
        ):
            # getsockopt at a level an IPv4 socket lacks: see sockopt_details.py
            if ty == TCP or fam == V6:
                get(s, TCPL, opt, name)
        setget(s, TCPL, socket.TCP_NODELAY, 1, "TCP_NODELAY")
        setget(s, TCPL, socket.TCP_NODELAY, 7, "TCP_NODELAY")
        setget(s, TCPL, socket.TCP_NODELAY, 0, "TCP_NODELAY")
        for name, opt, values in (
            ("TCP_KEEPIDLE", socket.TCP_KEEPIDLE, (60, 0, -1, 32767, 32768)),
            ("TCP_KEEPINTVL", socket.TCP_KEEPINTVL, (10, 0, 32767, 32768)),
            ("TCP_KEEPCNT", socket.TCP_KEEPCNT, (3, 0, 127, 128)),
            ("TCP_USER_TIMEOUT", socket.TCP_USER_TIMEOUT, (1000, 0)),
            ("TCP_NOTSENT_LOWAT", socket.TCP_NOTSENT_LOWAT, (16384,)),
        ):
            for v in values:
                setget(s, TCPL, opt, v, name)
        if ty == TCP or fam == V6:
            attempt("unknown TCP option", s.getsockopt, TCPL, 9999)
        attempt("set unknown TCP option", s.setsockopt, TCPL, 9999, 1, show=ok)
        if ty == TCP:
            s.setsockopt(TCPL, socket.TCP_CONGESTION, b"reno")
            attempt("set TCP_CONGESTION reno, get", lambda: s.getsockopt(TCPL, socket.TCP_CONGESTION, 16).rstrip(b"\0"), show=repr)
            attempt("set TCP_CONGESTION nonsense", s.setsockopt, TCPL, socket.TCP_CONGESTION, b"nonsense", show=ok)

        note("IP level")
        get(s, IP, socket.IP_TTL, "IP_TTL")
        for v in (1, 255, 0, 256, -1, 100):
            setget(s, IP, socket.IP_TTL, v, "IP_TTL")
        get(s, IP, socket.IP_TOS, "IP_TOS")
        setget(s, IP, socket.IP_TOS, 0x10, "IP_TOS")
        get(s, IP, socket.IP_RECVTOS, "IP_RECVTOS")
        get(s, IP, socket.IP_MULTICAST_TTL, "IP_MULTICAST_TTL")
        get(s, IP, socket.IP_MULTICAST_LOOP, "IP_MULTICAST_LOOP")
        attempt("unknown IP option", s.getsockopt, IP, 9999)

        note("IPv6 level")
        if fam == V6:
            get(s, IP6, socket.IPV6_V6ONLY, "IPV6_V6ONLY")
            setget(s, IP6, socket.IPV6_V6ONLY, 1, "IPV6_V6ONLY")
            setget(s, IP6, socket.IPV6_V6ONLY, 0, "IPV6_V6ONLY")
        else:
            attempt("set IPV6_V6ONLY on an IPv4 socket", s.setsockopt, IP6, socket.IPV6_V6ONLY, 1, show=ok)
        if fam == V6:
            get(s, IP6, socket.IPV6_UNICAST_HOPS, "IPV6_UNICAST_HOPS")
            for v in (10, -1, 256, -2):
                setget(s, IP6, socket.IPV6_UNICAST_HOPS, v, "IPV6_UNICAST_HOPS")
            get(s, IP6, socket.IPV6_TCLASS, "IPV6_TCLASS")
            attempt("unknown level", s.getsockopt, 9999, 1)
        attempt("set at an unknown level", s.setsockopt, 9999, 1, 1, show=ok)
        s.close()

note("IPV6_V6ONLY once bound")
s = sock(V6, TCP)
s.bind(("::", 0))
attempt("set IPV6_V6ONLY on a bound socket", s.setsockopt, IP6, socket.IPV6_V6ONLY, 1, show=ok)
attempt("get", s.getsockopt, IP6, socket.IPV6_V6ONLY)
s.close()

note("SO_ERROR and SO_ACCEPTCONN through a connection")
c, a, l = tcp_pair(V4)
out("listener SO_ACCEPTCONN", l.getsockopt(SO, socket.SO_ACCEPTCONN))
out("client SO_ACCEPTCONN", c.getsockopt(SO, socket.SO_ACCEPTCONN))
out("client SO_ERROR", c.getsockopt(SO, socket.SO_ERROR))
c.setsockopt(TCPL, socket.TCP_NODELAY, 1)
out("accepted inherits nothing of the client's options", a.getsockopt(TCPL, socket.TCP_NODELAY))
l2 = sock(V4, TCP)
l2.setsockopt(TCPL, socket.TCP_NODELAY, 1)
l2.setsockopt(TCPL, socket.TCP_KEEPIDLE, 77)
l2.bind((LO4, 0))
l2.listen()
c2 = socket.create_connection(l2.getsockname())
a2, _ = l2.accept()
out("accepted inherits TCP_NODELAY", a2.getsockopt(TCPL, socket.TCP_NODELAY))
out("accepted inherits TCP_KEEPIDLE", a2.getsockopt(TCPL, socket.TCP_KEEPIDLE))
for x in (c, a, l, l2, c2, a2):
    x.close()

note("SO_RCVTIMEO is honoured")
for ty in (TCP, UDP):
    if ty == TCP:
        c, a, l = tcp_pair(V4)
    else:
        c = udp_bound(V4)
        a = l = None
    c.setsockopt(SO, socket.SO_RCVTIMEO, struct.pack("ll", 0, 200000))
    t0 = time.monotonic()
    attempt("type %d blocking recv with SO_RCVTIMEO 0.2s" % ty, c.recv, 10)
    dt = time.monotonic() - t0
    out("type %d waited at least 0.15s and under 5s" % ty, 0.15 <= dt < 5)
    for x in (c, a, l):
        if x is not None:
            x.close()
