# Soak for the supervisor: thousands of TCP and UDP sockets opened and closed, and
# processes killed in the middle of a blocking accept. Prints the supervisor's
# (its parent's) fd count and memory (anonymous and shared) after a warm-up of one
# full churn and after a second one.
import os, socket, threading, signal, time
sup = os.getppid()
def usage():
    fds = len(os.listdir(f"/proc/{sup}/fd"))
    # Anonymous and shared memory only: the pages of netvm's own binary that a
    # code path runs for the first time count in VmRSS too, and are no leak.
    status = dict(l.split(":", 1) for l in open(f"/proc/{sup}/status") if ":" in l)
    kb = lambda key: int(status[key].split()[0])
    return fds, kb("RssAnon") + kb("RssShmem")
def churn(rounds):
    srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(64)
    port = srv.getsockname()[1]
    for i in range(rounds):
        c = socket.create_connection(("127.0.0.1", port)); a, _ = srv.accept()
        c.sendall(b"x"); a.recv(1); a.close(); c.close()
        u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); u.bind(("::1", 0)); u.sendto(b"y", u.getsockname()); u.recvfrom(1); u.close()
    srv.close()
    # children killed in the middle of a blocking accept and of a connect
    for i in range(20):
        pid = os.fork()
        if pid == 0:
            s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1); s.accept()
            os._exit(0)
        time.sleep(0.01); os.kill(pid, signal.SIGKILL); os.waitpid(pid, 0)
rounds = int(os.environ.get("ROUNDS", "3000"))
# Warm-up: the allocator's arenas, the tables' capacities and the pages of the
# scratch windows that a churn touches settle within one churn; a leak keeps
# growing with every one.
churn(200)
churn(rounds)
before = usage()
churn(rounds)
after = usage()
print("supervisor fds before/after:", before[0], after[0])
print("supervisor RSS kB before/after:", before[1], after[1])
