# Sockets that change hands without a socket call: dup/dup2/F_DUPFD_CLOEXEC
# copies, a child using an inherited socket after fork, and a TCP socket (a
# connection and a listener) passed to another process with SCM_RIGHTS over an
# AF_UNIX socketpair. The addresses and options travel with the socket.
import array
import fcntl
import os
import socket

from lib import *


def send_fd(chan, fd, note_bytes=b"fd"):
    chan.sendmsg([note_bytes], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])


def recv_fd(chan):
    msg, anc, flags, _ = chan.recvmsg(16, socket.CMSG_SPACE(4))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            return array.array("i", data[:4])[0]
    return None


def child(fn, meanwhile=None):
    """Runs fn() in a child (and meanwhile() in the parent); prints the child's
    lines and its exit status."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            lines = fn()
            code = 0
        except Exception as e:  # a broken case must show, not hang
            lines = ["child raised %r" % (e,)]
            code = 1
        os.write(w, ("\n".join(lines) + "\n").encode())
        os._exit(code)
    os.close(w)
    if meanwhile is not None:
        meanwhile()
    data = b""
    while True:
        b = os.read(r, 65536)
        if not b:
            break
        data += b
    os.close(r)
    _, status = os.waitpid(pid, 0)
    print(data.decode(), end="", flush=True)
    out("child exit status", status)


for fam in (V4, V6):
    note("family %d: dup" % fam)
    c, a, l = tcp_pair(fam)
    names = {l.getsockname()[1]: "listener"}
    d = socket.socket(fileno=os.dup(c.fileno()))
    out("dup getsockname equal", d.getsockname() == c.getsockname())
    out("dup getpeername", peer(d, names))
    d.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    out("option set through the dup, read through the original", c.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
    d.send(b"via dup")
    out("peer got", recv_wait(a, 100))
    target = 200
    os.dup2(c.fileno(), target)
    t = socket.socket(fileno=target)
    out("dup2 getpeername", peer(t, names))
    out("dup2 flags", flags_of(t))
    x = fcntl.fcntl(c.fileno(), fcntl.F_DUPFD_CLOEXEC, 300)
    xs = socket.socket(fileno=x)
    out("F_DUPFD_CLOEXEC flags", flags_of(xs))
    out("F_DUPFD_CLOEXEC SO_DOMAIN", xs.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN))
    c.close()
    d.close()
    xs.close()
    out("after closing the others, dup2 copy still connected", peer(t, names))
    t.send(b"via dup2")
    out("peer got", recv_wait(a, 100))
    t.close()
    out("after closing every copy, peer reads", recv_wait(a, 100))
    a.close()

    note("family %d: fork" % fam)
    c, a, _ = tcp_pair(fam)

    def use_inherited():
        lines = ["child getpeername == parent's: %s" % (c.getpeername() == a.getsockname())]
        c.sendall(b"from child")
        lines.append("child recv -> %r" % recv_wait(c, 100))
        d = sock(fam, TCP)
        d.connect(l.getsockname()[:2])
        d.sendall(b"new in child")
        d.close()
        return lines

    def answer():
        got = recv_wait(a, 100)
        a.sendall(b"parent saw " + got)

    child(use_inherited, answer)
    n, _ = l.accept()
    out("parent accepts the child's connection", drain(n))
    n.close()
    out("child closed nothing of ours: send still works", c.send(b"after"))
    out("peer got", recv_wait(a, 100))
    c.close()
    a.close()

    note("family %d: SCM_RIGHTS" % fam)
    c, a, _ = tcp_pair(fam)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 33)
    p, q = socket.socketpair()
    cname = c.getsockname()
    peer_name = c.getpeername()

    def receive_connection():
        fd = recv_fd(q)
        s = socket.socket(fileno=fd)
        lines = [
            "received SO_DOMAIN -> %d" % s.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN),
            "received SO_TYPE -> %d" % s.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE),
            "received SO_PROTOCOL -> %d" % s.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL),
            "received getsockname same -> %s" % (s.getsockname() == cname),
            "received getpeername same -> %s" % (s.getpeername() == peer_name),
            "received SO_KEEPALIVE -> %d" % s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
            "received TCP_KEEPIDLE -> %d" % s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
        ]
        s.sendall(b"from the receiver")
        lines.append("received socket recv -> %r" % recv_wait(s, 100))
        s.shutdown(socket.SHUT_WR)
        return lines

    send_fd(p, c.fileno())
    c.close()

    def server():
        got = recv_wait(a, 100)
        a.sendall(b"ack " + got)

    child(receive_connection, server)
    out("after the receiver's SHUT_WR, peer reads", recv_wait(a, 100))
    a.close()

    note("family %d: SCM_RIGHTS of a listener" % fam)
    lport = l.getsockname()[1]

    def accept_there():
        fd = recv_fd(q)
        s = socket.socket(fileno=fd)
        lines = ["received listener SO_ACCEPTCONN -> %d" % s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)]
        lines.append("received listener name -> %s" % local(s, {lport: "listener"}))
        n, pn = s.accept()
        lines.append("accepted in the receiver, local -> %s" % local(n, {lport: "listener"}))
        lines.append("accepted in the receiver, peer kind -> %s" % addr(pn))
        lines.append("accepted in the receiver, data -> %r" % recv_wait(n, 100))
        return lines

    send_fd(p, l.fileno())
    d = sock(fam, TCP)
    d.connect((lo(fam), lport))
    d.sendall(b"to the far listener")
    child(accept_there)
    d.close()
    l.close()
    p.close()
    q.close()
