# sendfile() from a file into a TCP socket: the whole file, a range given by
# offset and count, and a count past the end of the file (short count).
import os
import socket
import tempfile

from lib import *

data = bytes(range(256)) * 1024
f = tempfile.TemporaryFile()
f.write(data)
f.flush()
for fam in (V4, V6):
    c, a, l = tcp_pair(fam)
    got = []
    t = in_thread(lambda: got.append(drain(a)))
    total = 0
    while total < len(data):
        total += os.sendfile(c.fileno(), f.fileno(), total, len(data) - total)
    out("%d sendfile whole file" % fam, total)
    out("%d sendfile range" % fam, os.sendfile(c.fileno(), f.fileno(), 1000, 24))
    out("%d sendfile past the end" % fam, os.sendfile(c.fileno(), f.fileno(), len(data) - 10, 100))
    out("%d sendfile at the end" % fam, os.sendfile(c.fileno(), f.fileno(), len(data), 100))
    c.shutdown(socket.SHUT_WR)
    t.join()
    out("%d received" % fam, got[0] == data + data[1000:1024] + data[-10:])
    for x in (c, a, l):
        x.close()
f.close()
