# TCP_INFO's tcpi_state through a connection's life: CLOSE when fresh and when
# bound, LISTEN, ESTABLISHED on both ends, then FIN_WAIT2 and CLOSE_WAIT once one
# side sent SHUT_WR and the other acknowledged it.
import socket
import time

from lib import *

STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
          6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING"}


def state(s):
    return STATES.get(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)[0], "?")


for fam in (V4, V6):
    s = sock(fam, TCP)
    out("%d fresh" % fam, state(s))
    s.bind((lo(fam), 0))
    out("%d bound" % fam, state(s))
    s.close()
    c, a, l = tcp_pair(fam)
    out("%d listener" % fam, state(l))
    out("%d client" % fam, state(c))
    out("%d accepted" % fam, state(a))
    c.shutdown(socket.SHUT_WR)
    wait_readable(a)
    time.sleep(0.05)
    out("%d client after its SHUT_WR" % fam, state(c))
    out("%d accepted after the peer's SHUT_WR" % fam, state(a))
    out("%d TCP_INFO with a 1-byte buffer" % fam, raw_getsockopt(a, socket.IPPROTO_TCP, socket.TCP_INFO, 1))
    for x in (c, a, l):
        x.close()
