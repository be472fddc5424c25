# Ping sockets (SOCK_DGRAM, IPPROTO_ICMP/ICMPV6) to loopback and the host's own
# address: the first send binds an identifier (getsockname's port), the reply
# carries it, the sequence number and the payload back, and recvfrom names the
# address pinged, with port 0.
import socket

from lib import *

for fam in (V4, V6):
    for host in (lo(fam), OWN6 if fam == V6 else OWN4):
        p = ping_sock(fam)
        out("%d %s before sending" % (fam, host), local(p))
        attempt("%d %s send" % (fam, host), p.sendto, echo_request(fam, 0, 7, b"payload"), (host, 0))
        ident = p.getsockname()[1]
        out("%d %s after sending" % (fam, host), addr(p.getsockname(), {ident: "id"}))
        attempt("%d %s reply" % (fam, host), recvfrom_wait, p, show=lambda r: "%s from %s" % (echo_text(r[0], ident), addr(r[1])))
        attempt("%d %s only one reply" % (fam, host), p.recv, 100, socket.MSG_DONTWAIT)
        p.close()
