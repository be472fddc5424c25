# send() without a destination on an unconnected datagram socket: Linux's UDP
# and ping sockets say EDESTADDRREQ. The call runs natively on netvm's AF_UNIX
# carrier (only sendto with an address is trapped), which says ENOTCONN.
import socket
import struct

from lib import *

UNSPEC = struct.pack("=H", socket.AF_UNSPEC) + b"\0" * 14
for fam in (V4, V6):
    u = sock(fam, UDP)
    attempt("%d UDP send, never connected" % fam, u.send, b"x")
    u.connect((lo(fam), 9))
    raw_connect(u, UNSPEC)
    attempt("%d UDP send after a disconnect" % fam, u.send, b"x")
    u.close()
    p = ping_sock(fam)
    attempt("%d ping send, never connected" % fam, p.send, echo_request(fam))
    p.close()
