# Which error comes first when a call has more than one thing wrong, as the
# kernel checks them: socket()'s type flags before its family, socketpair()'s
# vector before its family's refusal, shutdown()'s `how` before the socket's
# state, accept4()'s pending connection before its address length pointer,
# sendto()'s buffer even when nobody listens, and SIOCGSTAMP before any packet.
import ctypes
import socket

from lib import *

BAD = ctypes.c_void_p(8)  # a pointer into the unmapped first page


def call(label, fn, *args):
    rc = fn(*args)
    out(label, "ok" if rc >= 0 else ename(ctypes.get_errno()))


libc = ctypes.CDLL(None, use_errno=True)

note("socket")
for domain, ty, proto in [(-1, -1, -1), (99, 1 | 0x80000000, 0), (99, 1, 0),
                          (V4, 1 | 0x40000000, 0), (V4, 77, 0), (V4, -1, 0),
                          (V4, 12, 0), (4096, 1, 0)]:
    call("socket(%d, %#x, %d)" % (domain, ty & 0xFFFFFFFF, proto), libc.socket, domain, ty, proto)

note("socketpair")
room = (ctypes.c_int * 2)()
for domain, ty in [(V4, TCP), (V6, UDP), (V4, 1 | 0x40000000), (99, TCP)]:
    call("socketpair(%d, %#x) bad vector" % (domain, ty), libc.socketpair, domain, ty, 0, BAD)
    call("socketpair(%d, %#x)" % (domain, ty), libc.socketpair, domain, ty, 0, room)

note("shutdown")
for fam, ty in [(V4, TCP), (V6, TCP), (V4, UDP)]:
    s = sock(fam, ty)
    for how in (-1, 3, 0x7FFFFFFF, 0):
        call("unconnected %d/%d how %d" % (fam, ty, how), libc.shutdown, s.fileno(), how)
    s.close()
l = listener(V4, OWN4)
call("listener how 7", libc.shutdown, l.fileno(), 7)

note("accept4")
l.setblocking(False)
buf = ctypes.create_string_buffer(128)
call("nothing pending, bad length pointer", libc.accept4, l.fileno(), buf, BAD, 0)
negative = ctypes.c_int(-1)
call("nothing pending, negative length", libc.accept4, l.fileno(), buf, ctypes.byref(negative), 0)
call("nothing pending, bad flags", libc.accept4, l.fileno(), buf, None, 0x1234)
l.close()

note("sendto")
u = udp_bound(V4, OWN4)
nobody = sockaddr(V4, OWN4, 9)
target = ctypes.create_string_buffer(nobody, len(nobody))
call("bad buffer to nobody", libc.sendto, u.fileno(), BAD, 10, 0, target, len(nobody))
call("address length 129", libc.sendto, u.fileno(), buf, 10, 0, target, 129)
call("zero length to nobody", libc.sendto, u.fileno(), BAD, 0, 0, target, len(nobody))
call("accept4 on UDP, bad flags", libc.accept4, u.fileno(), None, None, 0x1234)
call("accept4 on UDP", libc.accept4, u.fileno(), None, None, 0)

note("ioctl")
for fam, ty in [(V4, UDP), (V4, TCP), (V6, UDP)]:
    s = sock(fam, ty)
    stamp = ctypes.create_string_buffer(16)
    call("SIOCGSTAMP %d/%d" % (fam, ty), libc.ioctl, s.fileno(), ctypes.c_ulong(0x8906), stamp)
    call("SIOCGSTAMPNS %d/%d" % (fam, ty), libc.ioctl, s.fileno(), ctypes.c_ulong(0x8907), stamp)
    s.close()

note("accept4 with a connection pending")
l = listener(V4, OWN4)
c = sock(V4, TCP)
c.connect(l.getsockname())
wait_readable(l)
call("pending, negative length", libc.accept4, l.fileno(), buf, ctypes.byref(negative), 0)
