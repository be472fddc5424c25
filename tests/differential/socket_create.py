# socket(): types, protocols and flags of TCP and UDP sockets, the errors for
# types and protocols that do not exist, and what getsockopt reports about a new
# socket (SO_TYPE, SO_DOMAIN, SO_PROTOCOL, SO_ACCEPTCONN, SO_ERROR).
import socket

from lib import *

SO = socket.SOL_SOCKET

for fam, fname in ((V4, "AF_INET"), (V6, "AF_INET6")):
    for ty, tname, proto, pname in (
        (TCP, "SOCK_STREAM", 0, "0"),
        (TCP, "SOCK_STREAM", socket.IPPROTO_TCP, "IPPROTO_TCP"),
        (UDP, "SOCK_DGRAM", 0, "0"),
        (UDP, "SOCK_DGRAM", socket.IPPROTO_UDP, "IPPROTO_UDP"),
    ):
        s = sock(fam, ty, proto)
        what = "%s %s %s" % (fname, tname, pname)
        out(what + " SO_TYPE", s.getsockopt(SO, socket.SO_TYPE))
        out(what + " SO_DOMAIN", s.getsockopt(SO, socket.SO_DOMAIN))
        out(what + " SO_PROTOCOL", s.getsockopt(SO, socket.SO_PROTOCOL))
        out(what + " SO_ACCEPTCONN", s.getsockopt(SO, socket.SO_ACCEPTCONN))
        out(what + " SO_ERROR", s.getsockopt(SO, socket.SO_ERROR))
        out(what + " flags", flags_of(s))
        s.close()

note("flags given to socket()")
for fam in (V4, V6):
    for ty in (TCP, UDP):
        for extra, name in (
            (socket.SOCK_NONBLOCK, "SOCK_NONBLOCK"),
            (socket.SOCK_CLOEXEC, "SOCK_CLOEXEC"),
            (socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, "SOCK_NONBLOCK|SOCK_CLOEXEC"),
        ):
            fd, err = raw_socket(fam, ty | extra, 0)
            label = "socket(%d, %d|%s)" % (fam, ty, name)
            if fd is None:
                out(label, err)
                continue
            out(label + " flags", flags_of_fd(fd))
            s = socket.socket(fileno=fd)
            out(label + " SO_TYPE", s.getsockopt(SO, socket.SO_TYPE))
            s.close()

note("types and protocols that do not exist")
for fam in (V4, V6):
    for ty, proto, what in (
        (TCP, socket.IPPROTO_UDP, "SOCK_STREAM IPPROTO_UDP"),
        (UDP, socket.IPPROTO_TCP, "SOCK_DGRAM IPPROTO_TCP"),
        (TCP, 99, "SOCK_STREAM 99"),
        (UDP, 200, "SOCK_DGRAM 200"),
        (socket.SOCK_SEQPACKET, 0, "SOCK_SEQPACKET 0"),
        (socket.SOCK_RDM, 0, "SOCK_RDM 0"),
        (42, 0, "type 42"),
        (TCP | 0x100000, 0, "SOCK_STREAM with an unknown flag"),
    ):
        fd, err = raw_socket(fam, ty, proto)
        if fd is not None:
            socket.socket(fileno=fd).close()
        out("socket(%d, %s)" % (fam, what), err)
