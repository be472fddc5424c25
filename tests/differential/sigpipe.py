# EPIPE and SIGPIPE when writing after one's own SHUT_WR: SIGPIPE is raised
# unless MSG_NOSIGNAL is given, and write(2)/sendmsg behave as send.
import os
import signal
import socket

from lib import *

count_sigpipes()


for fam in (V4, V6):
    note("family %d" % fam)
    c, a, l = tcp_pair(fam)
    c.shutdown(socket.SHUT_WR)
    attempt("send MSG_NOSIGNAL", c.send, b"x", socket.MSG_NOSIGNAL)
    out("SIGPIPEs", sigpipes())
    attempt("send", c.send, b"x")
    out("SIGPIPEs", sigpipes())
    attempt("write(2)", os.write, c.fileno(), b"x")
    out("SIGPIPEs", sigpipes())
    attempt("sendmsg MSG_NOSIGNAL", c.sendmsg, [b"x"], [], socket.MSG_NOSIGNAL)
    out("SIGPIPEs", sigpipes())
    attempt("sendmsg", c.sendmsg, [b"x"])
    out("SIGPIPEs", sigpipes())
    attempt("sendto MSG_NOSIGNAL with an address", c.sendto, b"x", socket.MSG_NOSIGNAL, (lo(fam), 9))
    out("SIGPIPEs", sigpipes())
    attempt("peer reads EOF", recv_wait, a, 10)
    attempt("peer writes back", a.send, b"ok")
    attempt("and we read it", recv_wait, c, 10)
    for s in (c, a, l):
        s.close()

note("SIGPIPE with the default action kills the writer")
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
c, a, l = tcp_pair(V4)
c.shutdown(socket.SHUT_WR)
pid = os.fork()
if pid == 0:
    try:
        c.send(b"x", socket.MSG_NOSIGNAL)
    except OSError:
        pass
    os.write(1, b"child survived MSG_NOSIGNAL\n")
    try:
        c.send(b"x")
    except OSError:
        pass
    os.write(1, b"child survived a plain send\n")
    os._exit(0)
_, status = os.waitpid(pid, 0)
out("child killed by signal", os.WTERMSIG(status) if os.WIFSIGNALED(status) else "no")
for s in (c, a, l):
    s.close()
