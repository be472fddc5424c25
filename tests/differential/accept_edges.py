# accept's edges that netvm serves in two ways (the supervisor accepting on its
# copy of the listener when nothing need wait, the kernel when the call must):
# - with the descriptor table full, EMFILE comes before any connection is taken,
#   and the pending connection stays queued for the next accept;
# - a bad address buffer fails with EFAULT once a connection was taken, which
#   is lost (its peer sees the end), and the next one is accepted;
# - several threads blocked in accept on one listener each get one connection;
# - a call whose first argument has garbage in its upper half (the kernel reads
#   an int) works as the plain call;
# - the accepted socket's address, peer, flags and data work either way.
import ctypes
import os
import resource
import socket
import threading

from lib import *
from lib import _libc

SYS_ACCEPT4 = 288


def accept_upper_half(l):
    """accept4 through syscall(2), with bits set in the fd's upper half."""
    buf = ctypes.create_string_buffer(128)
    ln = ctypes.c_uint(128)
    fd = _libc.syscall(
        ctypes.c_long(SYS_ACCEPT4),
        ctypes.c_long(l.fileno() | (0x4E56 << 32)),
        buf,
        ctypes.byref(ln),
        ctypes.c_long(0),
    )
    if fd < 0:
        return ename(ctypes.get_errno())
    s = socket.socket(fileno=fd)
    peer = addr(s.getpeername())
    s.close()
    return peer


for fam in (V4, V6):
    note("family %d" % fam)

    # The descriptor table full: EMFILE, and the connection waits.
    l = listener(fam)
    c = sock(fam, TCP)
    c.connect(l.getsockname()[:2])
    wait_readable(l)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    spare = []
    try:
        while True:
            spare.append(os.open("/dev/null", os.O_RDONLY))
    except OSError as e:
        out("filling the table ends with", ename(e.errno))
    # One slot free under the limit is enough; none is EMFILE.
    attempt("accept with no descriptor free", lambda: l.accept()[0], show=ok)
    attempt("non-blocking accept4 with no descriptor free",
            lambda: accept4(l, socket.SOCK_NONBLOCK)[0], show=ok)
    out("  the connection still pending", poll_mask(l) == "POLLIN")
    os.close(spare.pop())
    a = attempt("accept with one free", lambda: l.accept()[0], show=ok)
    for fd in spare:
        os.close(fd)
    if a is not None:
        c.sendall(b"x")
        out("  data reaches the accepted socket", recv_wait(a, 10))
        a.close()
    c.close()

    # A bad address buffer: EFAULT, the connection lost, the next one fine.
    first = sock(fam, TCP)
    first.connect(l.getsockname()[:2])
    wait_readable(l)
    ln = ctypes.c_uint(128)
    fd = _libc.accept4(l.fileno(), ctypes.c_void_p(8), ctypes.byref(ln), 0)
    out("accept into a bad address", ename(ctypes.get_errno()) if fd < 0 else "ok")
    out("  what the listener polls", poll_mask(l))
    wait_readable(first)
    attempt("  the lost connection's peer reads", lambda: first.recv(10, socket.MSG_DONTWAIT))
    first.close()
    second = sock(fam, TCP)
    second.connect(l.getsockname()[:2])
    a = attempt("the next accept", lambda: l.accept()[0], show=ok)
    if a is not None:
        out("  its peer is the connecting socket", a.getpeername() == second.getsockname())
        a.close()
    second.close()

    # The upper half of the fd argument is the kernel's to ignore.
    c = sock(fam, TCP)
    c.connect(l.getsockname()[:2])
    out("accept4 with the fd's upper half set", accept_upper_half(l) == addr(c.getsockname()))
    c.close()

    # Threads blocked in accept on one listener, then connections arrive.
    got = []
    lock = threading.Lock()

    def take():
        a, who = l.accept()
        with lock:
            got.append((a, who))

    threads = [in_thread(take) for _ in range(4)]
    time.sleep(0.3)
    clients = []
    for _ in range(4):
        c = sock(fam, TCP)
        c.connect(l.getsockname()[:2])
        clients.append(c)
    for t in threads:
        t.join(10)
    out("four blocked accepts each got a connection", len(got))
    names = sorted(c.getsockname() for c in clients)
    out("  their peers are the four clients", sorted(who for _, who in got) == names)
    out("  and so are their peer names", sorted(a.getpeername() for a, _ in got) == names)
    for a, _ in got:
        a.close()
    for c in clients:
        c.close()
    l.close()
