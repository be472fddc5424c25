# A connected UDP socket told of a port unreachable: on Linux's loopback the
# error is there when send() returns (poll shows POLLERR at once), and the next
# plain recv() fails with ECONNREFUSED. send() and recv() run natively on netvm's
# AF_UNIX carrier: netvm learns of the datagram after send() returned and marks
# the carrier a moment later, with the only error the kernel can put there,
# ECONNRESET (trapped calls, recvfrom, recvmsg and SO_ERROR, say ECONNREFUSED).
from lib import *

for fam in (V4, V6):
    c = sock(fam, UDP)
    c.connect((lo(fam), 9))
    attempt("%d send" % fam, c.send, b"x")
    out("%d poll" % fam, poll_mask(c, timeout=200))
    attempt("%d recv" % fam, recv_wait, c, 100, 0, 200)
    c.close()
