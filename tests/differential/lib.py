# Shared helpers for the differential cases: every case prints a transcript of
# observations that must be identical natively (host kernel, fresh network
# namespace) and under netvm. Nothing printed here may depend on fd numbers,
# ephemeral port numbers or timing.
import ctypes
import ctypes.util
import errno
import fcntl
import os
import select
import signal
import socket
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True

V4 = socket.AF_INET
V6 = socket.AF_INET6
TCP = socket.SOCK_STREAM
UDP = socket.SOCK_DGRAM

# The addresses that exist both in the native namespace and on netvm's stack.
LO4 = "127.0.0.1"
LO6 = "::1"
OWN4 = "10.0.0.2"
OWN6 = "fd00::2"
# An address nobody on either side owns (TEST-NET-1; never routed anywhere).
FOREIGN4 = "192.0.2.1"
FOREIGN6 = "2001:db8::1"

EPHEMERAL = range(32768, 61000)

FIONREAD = 0x541B
SIOCOUTQ = 0x5411

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def ename(code):
    """The symbolic name of an errno value."""
    if code is None:
        return "None"
    if code == 0:
        return "ok"
    return errno.errorcode.get(code, "E?%d" % code)


def out(label, value):
    """Prints one observation."""
    print("%s -> %s" % (label, value), flush=True)


def note(text):
    """Prints a line that is not an observation (a section heading)."""
    print("# %s" % text, flush=True)


def attempt(label, fn, *args, show=repr):
    """Runs fn(*args) and prints its result through `show`, or the errno name of
    the OSError it raised. Returns the result, or None on error."""
    try:
        r = fn(*args)
    except OSError as e:
        if isinstance(e, socket.timeout) and e.errno is None:
            out(label, "timeout")
        else:
            out(label, ename(e.errno))
        return None
    out(label, show(r))
    return r


def quiet(fn, *args):
    """Runs fn(*args), returning (result, None) or (None, errno name)."""
    try:
        return fn(*args), None
    except OSError as e:
        return None, ename(e.errno)


def ok(_):
    return "ok"


# ---------------------------------------------------------------- addresses


def port_kind(port):
    """How a port number is described: '0', 'ephemeral' (Linux's default range) or
    'fixed'."""
    if port == 0:
        return "0"
    if port in EPHEMERAL:
        return "ephemeral"
    return "fixed"


def addr(a, ports=None):
    """Describes a socket address without its (unpredictable) port: the IP and
    either the port's name from `ports` (a dict port -> name) or its kind."""
    if not isinstance(a, tuple):
        return repr(a)
    ip, port = a[0], a[1]
    if ports and port in ports:
        p = ports[port]
    else:
        p = port_kind(port)
    if len(a) == 4:
        return "[%s]:%s flow=%d scope=%d" % (ip, p, a[2], a[3])
    return "%s:%s" % (ip, p)


def local(s, ports=None):
    return addr(s.getsockname(), ports)


def peer(s, ports=None):
    return addr(s.getpeername(), ports)


# ---------------------------------------------------------------- sockets


def sock(family=V4, ty=TCP, proto=0):
    return socket.socket(family, ty, proto)


def any_addr(family):
    return "::" if family == V6 else "0.0.0.0"


def lo(family):
    return LO6 if family == V6 else LO4


def listener(family=V4, host=None, port=0, backlog=16, reuse=False):
    """A listening TCP socket bound to host (default: loopback)."""
    s = sock(family, TCP)
    if reuse:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host if host is not None else lo(family), port))
    s.listen(backlog)
    return s


def tcp_pair(family=V4, host=None):
    """A connected TCP pair (client, server side) and the listener."""
    l = listener(family, host)
    c = sock(family, TCP)
    c.connect(l.getsockname()[:2])
    a, _ = l.accept()
    return c, a, l


def udp_bound(family=V4, host=None, port=0):
    s = sock(family, UDP)
    s.bind((host if host is not None else lo(family), port))
    return s


def flags_of(s):
    """O_NONBLOCK and FD_CLOEXEC of a socket's fd, as text."""
    fl = fcntl.fcntl(s.fileno(), fcntl.F_GETFL)
    fd = fcntl.fcntl(s.fileno(), fcntl.F_GETFD)
    parts = []
    parts.append("O_NONBLOCK" if fl & os.O_NONBLOCK else "blocking")
    parts.append("FD_CLOEXEC" if fd & fcntl.FD_CLOEXEC else "inherit")
    return "|".join(parts)


def flags_of_fd(fd):
    fl = fcntl.fcntl(fd, fcntl.F_GETFL)
    fdf = fcntl.fcntl(fd, fcntl.F_GETFD)
    return "%s|%s" % (
        "O_NONBLOCK" if fl & os.O_NONBLOCK else "blocking",
        "FD_CLOEXEC" if fdf & fcntl.FD_CLOEXEC else "inherit",
    )


def drain(s, limit=1 << 24):
    """Reads a blocking socket to EOF; returns the bytes."""
    chunks = []
    total = 0
    while total < limit:
        b = s.recv(65536)
        if not b:
            break
        chunks.append(b)
        total += len(b)
    return b"".join(chunks)


def in_thread(fn, *args):
    """Runs fn(*args) in a thread; returns the thread (join it)."""
    t = threading.Thread(target=fn, args=args, daemon=True)
    t.start()
    return t


# ---------------------------------------------------------------- readiness

POLL_NAMES = [
    ("POLLIN", select.POLLIN),
    ("POLLPRI", select.POLLPRI),
    ("POLLOUT", select.POLLOUT),
    ("POLLERR", select.POLLERR),
    ("POLLHUP", select.POLLHUP),
    ("POLLNVAL", select.POLLNVAL),
    ("POLLRDNORM", select.POLLRDNORM),
    ("POLLRDBAND", select.POLLRDBAND),
    ("POLLWRNORM", select.POLLWRNORM),
    ("POLLWRBAND", select.POLLWRBAND),
    ("POLLRDHUP", select.POLLRDHUP),
]

# What programs commonly ask poll for; POLLERR, POLLHUP and POLLNVAL come anyway.
COMMON = select.POLLIN | select.POLLPRI | select.POLLOUT | select.POLLRDHUP
# Every bit poll knows about.
EVERY = 0
for _, _bit in POLL_NAMES:
    EVERY |= _bit


def mask_text(mask, names=POLL_NAMES):
    if mask == 0:
        return "0"
    parts = [n for n, b in names if mask & b]
    rest = mask & ~sum(b for _, b in names)
    if rest:
        parts.append(hex(rest))
    return "|".join(parts)


def poll_mask(s, events=COMMON, timeout=0):
    """The revents poll(2) reports for s right now (timeout in ms)."""
    p = select.poll()
    p.register(s, events)
    r = p.poll(timeout)
    return mask_text(r[0][1]) if r else "0"


def wait_readable(s, timeout=5000):
    """Waits (bounded) until s is readable; the wait itself is not an observation."""
    p = select.poll()
    p.register(s, select.POLLIN)
    p.poll(timeout)


EPOLL_NAMES = [
    ("EPOLLIN", select.EPOLLIN),
    ("EPOLLPRI", select.EPOLLPRI),
    ("EPOLLOUT", select.EPOLLOUT),
    ("EPOLLERR", select.EPOLLERR),
    ("EPOLLHUP", select.EPOLLHUP),
    ("EPOLLRDHUP", select.EPOLLRDHUP),
]


def epoll_text(events):
    """Describes a list of (fd, mask) from epoll.poll, by registration name."""
    return ", ".join("%s:%s" % (name, mask_text(m, EPOLL_NAMES)) for name, m in events) or "none"


# ---------------------------------------------------------------- raw calls


def _sockaddr_in(ip, port):
    return struct.pack("=H", socket.AF_INET) + struct.pack("!H", port) + socket.inet_aton(ip) + b"\0" * 8


def _sockaddr_in6(ip, port):
    return (
        struct.pack("=H", socket.AF_INET6)
        + struct.pack("!HI", port, 0)
        + socket.inet_pton(socket.AF_INET6, ip)
        + struct.pack("=I", 0)
    )


def sockaddr(family, ip, port):
    """A raw struct sockaddr for (family, ip, port)."""
    return _sockaddr_in6(ip, port) if family == V6 else _sockaddr_in(ip, port)


def _raw(call, fd, raw, length):
    buf = ctypes.create_string_buffer(raw, max(len(raw), 1))
    n = len(raw) if length is None else length
    rc = call(fd, buf, ctypes.c_uint(n))
    if rc < 0:
        return ename(ctypes.get_errno())
    return "ok"


def raw_bind(s, raw, length=None):
    """bind(2) with raw sockaddr bytes and an explicit length: 'ok' or errno name."""
    return _raw(_libc.bind, s.fileno(), raw, length)


def raw_connect(s, raw, length=None):
    return _raw(_libc.connect, s.fileno(), raw, length)


def raw_socket(domain, ty, proto=0):
    """socket(2) without Python's checks: (fd or None, 'ok' or errno name)."""
    fd = _libc.socket(domain, ty, proto)
    if fd < 0:
        return None, ename(ctypes.get_errno())
    return fd, "ok"


def accept4(s, flags):
    """accept4(2); returns (new socket object, peer address) or raises OSError."""
    buf = ctypes.create_string_buffer(128)
    ln = ctypes.c_uint(128)
    fd = _libc.accept4(s.fileno(), buf, ctypes.byref(ln), flags)
    if fd < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    ns = socket.socket(fileno=fd)
    return ns, ns.getpeername()


def raw_shutdown(s, how):
    rc = _libc.shutdown(s.fileno(), how)
    return "ok" if rc == 0 else ename(ctypes.get_errno())


def ioctl_int(s, request):
    """An int-valued ioctl on s: the value or errno name."""
    buf = ctypes.c_int(0)
    rc = _libc.ioctl(s.fileno(), ctypes.c_ulong(request), ctypes.byref(buf))
    if rc < 0:
        return ename(ctypes.get_errno())
    return buf.value


def recvfrom_wait(s, n=65536, flags=0, timeout=3000):
    """recvfrom after waiting (bounded) for s to turn readable, so that a datagram
    that never comes is an EAGAIN observation, not a hang."""
    wait_readable(s, timeout)
    return s.recvfrom(n, flags | socket.MSG_DONTWAIT)


def recv_wait(s, n=65536, flags=0, timeout=3000):
    wait_readable(s, timeout)
    return s.recv(n, flags | socket.MSG_DONTWAIT)


def raw_name(call, s, room, null_len=False):
    """getsockname/getpeername(2) with a buffer of `room` bytes: (errno name or
    'ok', the length the kernel reported, the bytes it wrote)."""
    buf = ctypes.create_string_buffer(b"\xee" * 128, 128)
    ln = ctypes.c_uint(room)
    fn = _libc.getsockname if call == "getsockname" else _libc.getpeername
    rc = fn(s.fileno(), buf, None if null_len else ctypes.byref(ln))
    if rc < 0:
        return ename(ctypes.get_errno()), None, None
    return "ok", ln.value, buf.raw[: min(room, 128)]


def raw_accept(s, room, flags=0):
    """accept4(2) with an address buffer of `room` bytes: (errno name or the new
    socket, reported length, bytes written)."""
    buf = ctypes.create_string_buffer(b"\xee" * 128, 128)
    ln = ctypes.c_uint(room)
    fd = _libc.accept4(s.fileno(), buf, ctypes.byref(ln), flags)
    if fd < 0:
        return ename(ctypes.get_errno()), None, None
    return socket.socket(fileno=fd), ln.value, buf.raw[: min(room, 128)]


def raw_recvfrom(s, n, room, flags=0):
    """recvfrom(2) with an address buffer of `room` bytes: (errno name or data,
    reported length, address bytes written)."""
    data = ctypes.create_string_buffer(n)
    buf = ctypes.create_string_buffer(b"\xee" * 128, 128)
    ln = ctypes.c_uint(room)
    rc = _libc.recvfrom(s.fileno(), data, ctypes.c_size_t(n), flags, buf, ctypes.byref(ln))
    if rc < 0:
        return ename(ctypes.get_errno()), None, None
    return data.raw[:rc], ln.value, buf.raw[: min(room, 128)]


def raw_sendto(s, payload, raw, length=None, flags=0):
    """sendto(2) with raw sockaddr bytes: the count or errno name."""
    buf = ctypes.create_string_buffer(raw, max(len(raw), 1))
    n = len(raw) if length is None else length
    rc = _libc.sendto(s.fileno(), payload, ctypes.c_size_t(len(payload)), flags, buf, ctypes.c_uint(n))
    if rc < 0:
        return ename(ctypes.get_errno())
    return rc


def family_of(raw):
    """The sa_family of raw sockaddr bytes (at least 2 of them), or '-'."""
    if raw is None or len(raw) < 2:
        return "-"
    return struct.unpack("=H", raw[:2])[0]


def reset_transcript(how):
    """Resets a connection from the accepting side (`how`: 'unread data' or
    'SO_LINGER 0') and prints what the connecting side observes."""
    for fam in (V4, V6):
        note("family %d: close with %s" % (fam, how))
        c, a, l = tcp_pair(fam)
        if how == "unread data":
            c.sendall(b"never read")
            wait_readable(a)
        else:
            a.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        a.close()
        wait_readable(c)
        time.sleep(0.05)
        out("peer poll", poll_mask(c))
        attempt("peer recv", c.recv, 10)
        out("peer poll after the error was read", poll_mask(c))
        attempt("peer recv again", c.recv, 10)
        attempt("peer send", c.send, b"x", socket.MSG_NOSIGNAL)
        out("SO_ERROR", ename(c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)))
        c.close()
        l.close()


_sigpipes = []


def count_sigpipes():
    """Count SIGPIPEs from now on (instead of dying of them); see sigpipes()."""
    signal.signal(signal.SIGPIPE, lambda *_: _sigpipes.append(1))


def sigpipes():
    """How many SIGPIPEs arrived since the last call."""
    n = len(_sigpipes)
    del _sigpipes[:]
    return n


# ---------------------------------------------------------------- added helpers


def raw_getsockopt(s, level, name, room):
    """getsockopt(2) with a buffer of `room` bytes (0 allowed): (errno name or
    'ok', the length reported, the bytes written, as hex)."""
    buf = ctypes.create_string_buffer(b"\xee" * 64, 64)
    ln = ctypes.c_uint(room)
    rc = _libc.getsockopt(s.fileno(), level, name, buf, ctypes.byref(ln))
    if rc < 0:
        return ename(ctypes.get_errno()), None, None
    return "ok", ln.value, buf.raw[: min(ln.value, room)].hex()


def raw_setsockopt(s, level, name, value):
    """setsockopt(2) with the raw bytes `value` (any length, 0 allowed): 'ok' or
    the errno name."""
    buf = ctypes.create_string_buffer(value, max(len(value), 1))
    rc = _libc.setsockopt(s.fileno(), level, name, buf, ctypes.c_uint(len(value)))
    return "ok" if rc == 0 else ename(ctypes.get_errno())


ICMP4 = socket.IPPROTO_ICMP
ICMP6 = socket.IPPROTO_ICMPV6


def ping_sock(family=V4):
    """An unprivileged ICMP (ping) socket: SOCK_DGRAM with IPPROTO_ICMP/ICMPV6."""
    return socket.socket(family, UDP, ICMP6 if family == V6 else ICMP4)


def echo_request(family=V4, ident=0, seq=1, payload=b"ping", ty=None):
    """An ICMP echo request header and payload; a ping socket fills in the
    identifier (its port) and the checksum."""
    if ty is None:
        ty = 128 if family == V6 else 8
    return struct.pack("!BBHHH", ty, 0, 0, ident, seq) + payload


def echo_text(packet, ident=None):
    """Describes an ICMP message a ping socket received: type, code, whether the
    identifier is `ident`, sequence number and payload."""
    if len(packet) < 8:
        return "short %r" % packet
    ty, code, _, i, seq = struct.unpack("!BBHHH", packet[:8])
    who = "id=port" if ident is not None and i == ident else "id=%d" % i
    return "type=%d code=%d %s seq=%d payload=%r" % (ty, code, who, seq, packet[8:])


# The C structures of sendmmsg/recvmmsg, for cases that call libc through ctypes.
import ctypes  # noqa: E402


class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class msghdr(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32),
        ("iov", ctypes.POINTER(iovec)), ("iovlen", ctypes.c_size_t),
        ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
        ("flags", ctypes.c_int),
    ]


class mmsghdr(ctypes.Structure):
    _fields_ = [("hdr", msghdr), ("len", ctypes.c_uint)]
