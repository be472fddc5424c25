# A TCP connection whose reader does not read: non-blocking sends fill the
# buffers and then fail with EAGAIN, poll stops reporting POLLOUT, and once the
# reader drains everything the writer is writable again and every byte arrived.
import select
import socket
import time

from lib import *

for fam in (V4, V6):
    c, a, l = tcp_pair(fam)
    c.setblocking(False)
    sent = 0
    counts = []
    while True:
        n, err = quiet(c.send, b"z" * 100000)
        if err:
            break
        counts.append(n)
        sent += n
    out("%d full: send" % fam, err)
    out("%d some sends were partial" % fam, any(n < 100000 for n in counts))
    out("%d poll full writer" % fam, poll_mask(c, select.POLLOUT))
    got = 0
    while got < sent:
        wait_readable(a)
        got += len(a.recv(1 << 20))
    out("%d reader got every byte" % fam, got == sent)
    time.sleep(0.1)
    out("%d poll drained writer" % fam, poll_mask(c, select.POLLOUT))
    attempt("%d reader has nothing more" % fam, a.recv, 10, socket.MSG_DONTWAIT)
    for x in (c, a, l):
        x.close()
