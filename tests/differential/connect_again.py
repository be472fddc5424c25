# connect() called again on a socket whose non-blocking connect has completed:
# Linux reports success once (the connect "finishes"), then EISCONN.
import select

from lib import *

for fam in (V4, V6):
    note("family %d" % fam)
    l = listener(fam)
    c = sock(fam, TCP)
    c.setblocking(False)
    out("non-blocking connect", ename(c.connect_ex(l.getsockname()[:2])))
    p = select.poll()
    p.register(c, select.POLLOUT)
    p.poll(5000)
    out("connect again once established", ename(c.connect_ex(l.getsockname()[:2])))
    out("and once more", ename(c.connect_ex(l.getsockname()[:2])))
    out("and to somewhere else", ename(c.connect_ex((lo(fam), 9))))
    c.close()
    l.close()
