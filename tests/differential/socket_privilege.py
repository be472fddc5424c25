# What needs privilege: raw sockets and ports below 1024, seen by a process that
# dropped to an unprivileged user (nobody), and the ports a root process may bind.
import os
import socket

from lib import *

note("as root")
for fam in (V4, V6):
    for ty in (TCP, UDP):
        s = sock(fam, ty)
        attempt("root bind %d/%d port 80" % (fam, ty), s.bind, (any_addr(fam), 80), show=ok)
        attempt("root bind port 80 getsockname", local, s, show=str)
        s.close()

note("as nobody")
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    lines = []
    try:
        os.setgid(65534)
        os.setuid(65534)
    except OSError as e:
        lines.append("setuid -> %s" % ename(e.errno))
    else:
        lines.append("setuid -> ok")
        for fam in (V4, V6):
            for proto, pname in ((socket.IPPROTO_ICMP, "ICMP"), (socket.IPPROTO_TCP, "TCP"), (socket.IPPROTO_RAW, "RAW")):
                fd, err = raw_socket(fam, socket.SOCK_RAW, proto)
                if fd is not None:
                    os.close(fd)
                lines.append("nobody socket(%d, SOCK_RAW, %s) -> %s" % (fam, pname, err))
            for ty in (TCP, UDP):
                for port in (80, 1023, 1024):
                    s = sock(fam, ty)
                    _, err = quiet(s.bind, (any_addr(fam), port))
                    lines.append("nobody bind %d/%d port %d -> %s" % (fam, ty, port, err or "ok"))
                    s.close()
            s = sock(fam, TCP)
            _, err = quiet(s.bind, (lo(fam), 0))
            lines.append("nobody bind port 0 -> %s %s" % (err or "ok", local(s)))
            s.close()
    os.write(w, ("\n".join(lines) + "\n").encode())
    os._exit(0)
os.close(w)
data = b""
while True:
    b = os.read(r, 4096)
    if not b:
        break
    data += b
_, status = os.waitpid(pid, 0)
print(data.decode(), end="")
out("child exit status", status)
