# Urgent data (MSG_OOB) on TCP: the last byte of an MSG_OOB send is the urgent
# byte, read apart with recv(MSG_OOB) and skipped by ordinary reads; reading it
# twice is EINVAL; SIOCATMARK says when the next byte read is at the mark; with
# SO_OOBINLINE the byte stays in the stream.
import select
import socket
import time

from lib import *

SIOCATMARK = 0x8905
for fam in (V4, V6):
    c, a, l = tcp_pair(fam)
    c.send(b"abc")
    c.send(b"XY!", socket.MSG_OOB)
    c.send(b"def")
    time.sleep(0.1)
    out("%d poll" % fam, poll_mask(a, COMMON))
    out("%d SIOCATMARK before reading" % fam, ioctl_int(a, SIOCATMARK))
    attempt("%d recv MSG_OOB" % fam, a.recv, 10, socket.MSG_OOB)
    attempt("%d recv MSG_OOB again" % fam, a.recv, 10, socket.MSG_OOB)
    out("%d read up to the mark" % fam, a.recv(100))
    out("%d SIOCATMARK at the mark" % fam, ioctl_int(a, SIOCATMARK))
    out("%d read the rest" % fam, a.recv(100))
    attempt("%d recv MSG_OOB with none pending" % fam, a.recv, 10, socket.MSG_OOB | socket.MSG_DONTWAIT)
    a.setsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE, 1)
    c.send(b"12")
    c.send(b"3", socket.MSG_OOB)
    time.sleep(0.1)
    attempt("%d inline: recv MSG_OOB" % fam, a.recv, 10, socket.MSG_OOB)
    out("%d inline: the stream" % fam, a.recv(100))
    for x in (c, a, l):
        x.close()
