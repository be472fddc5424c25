# connect(): blocking and non-blocking TCP connects (EINPROGRESS, POLLOUT,
# SO_ERROR), refusal, EISCONN, connecting to the unspecified address, implicit
# binding, address checks, and unreachable destinations. (Connecting again after
# a non-blocking connect: connect_again.py; v4-mapped addresses: v4mapped.py;
# non-blocking refusal: connect_refused_nonblocking.py.)
import socket

from lib import *

SO = socket.SOL_SOCKET

for fam in (V4, V6):
    note("family %d" % fam)
    l = listener(fam)
    lport = l.getsockname()[1]
    names = {lport: "listener"}

    c = sock(fam, TCP)
    attempt("blocking connect", c.connect, (lo(fam), lport), show=ok)
    out("local after connect", local(c))
    out("peer after connect", peer(c, names))
    out("SO_ERROR", c.getsockopt(SO, socket.SO_ERROR))
    attempt("connect again", c.connect, (lo(fam), lport), show=ok)
    attempt("connect elsewhere", c.connect, (lo(fam), lport + 1), show=ok)
    out("poll connected", poll_mask(c))
    a, _ = l.accept()
    a.close()
    c.close()

    c = sock(fam, TCP)
    c.setblocking(False)
    r = c.connect_ex((lo(fam), lport))
    out("non-blocking connect", ename(r))
    p = select.poll()
    p.register(c, select.POLLOUT)
    ev = p.poll(5000)
    out("poll POLLOUT after non-blocking connect", mask_text(ev[0][1]) if ev else "0")
    out("SO_ERROR after non-blocking connect", ename(c.getsockopt(SO, socket.SO_ERROR)))
    out("peer after non-blocking connect", peer(c, names))
    a, _ = l.accept()
    a.close()
    c.close()

    note("refused")
    dead = sock(fam, TCP)
    dead.bind((lo(fam), 0))
    dport = dead.getsockname()[1]  # bound, never listening
    c = sock(fam, TCP)
    attempt("connect to a bound, not listening port", c.connect, (lo(fam), dport), show=ok)
    out("SO_ERROR after refusal", c.getsockopt(SO, socket.SO_ERROR))
    attempt("getpeername after refusal", c.getpeername)
    attempt("connect again after refusal", c.connect, (lo(fam), lport), show=ok)
    out("peer of the retry", peer(c, names))
    a, _ = l.accept()
    a.close()
    c.close()
    dead.close()

    note("unspecified address")
    c = sock(fam, TCP)
    attempt("connect to the unspecified address", c.connect, (any_addr(fam), lport), show=ok)
    out("peer", peer(c, names))
    out("local", local(c))
    a, _ = l.accept()
    a.close()
    c.close()

    note("bound before connecting")
    c = sock(fam, TCP)
    c.bind((any_addr(fam), 0))
    attempt("connect from a wildcard-bound socket", c.connect, (lo(fam), lport), show=ok)
    out("local", local(c))
    a, _ = l.accept()
    out("accepted peer == client local", a.getpeername() == c.getsockname())
    a.close()
    c.close()
    c = sock(fam, TCP)
    own = OWN6 if fam == V6 else OWN4
    c.bind((own, 0))
    attempt("connect from own address to loopback", c.connect, (lo(fam), lport), show=ok)
    out("local", local(c))
    a, _ = l.accept()
    out("accepted peer", addr(a.getpeername()))
    a.close()
    c.close()
    w = listener(fam, any_addr(fam))
    c = sock(fam, TCP)
    c.bind((lo(fam), 0))
    attempt("connect from loopback to own address", c.connect, (own, w.getsockname()[1]), show=ok)
    out("local", local(c))
    out("peer", peer(c, {w.getsockname()[1]: "listener"}))
    a, _ = w.accept()
    out("accepted local", local(a, {w.getsockname()[1]: "listener"}))
    a.close()
    c.close()
    w.close()

    note("addresses connect() rejects")
    good = sockaddr(fam, lo(fam), lport)
    other = V6 if fam == V4 else V4
    for what, raw, length in (
        ("len 0", good, 0),
        ("len 2", good, 2),
        ("len one short", good, len(good) - 1),
        ("other family", sockaddr(other, lo(other), lport) + b"\0" * 16, len(good)),
        ("AF_UNIX", b"\x01\x00" + good[2:], None),
    ):
        c = sock(fam, TCP)
        out("connect %s" % what, raw_connect(c, raw, length))
        c.close()
    for dest in ((FOREIGN6 if fam == V6 else FOREIGN4),):
        c = sock(fam, TCP)
        attempt("connect to an address nobody routes", c.connect, (dest, 80), show=ok)
        c.close()
    l.close()
