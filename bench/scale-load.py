#!/usr/bin/env python3
"""The workloads of bench/scale.sh, run inside a netvm session (or natively).

Each workload prints `MARK name` on standard output when it reaches a point the
script measures the supervisor at, then waits for a line on standard input before
it goes on; results come as `RESULT {json}` lines. Usage:

    scale-load.py udp N ADDR           bind N UDP sockets on ADDR
    scale-load.py listen N ADDR        N TCP listeners on ADDR
    scale-load.py tcp N ADDR [SERVER]  N idle connections to an echo server on
                                       ADDR:PORT (started with SERVER, a command
                                       prefix such as `netvm stack lwip1 --`, or
                                       in this process when none); measures the
                                       echo round trip and connect latency with
                                       0, 1,000, 5,000... idle connections open
    scale-load.py serve ADDR PORT      the echo server (prints `LISTENING`)
    scale-load.py udp-loss COUNT SIZE ADDR [RECEIVER]
                                       COUNT datagrams of SIZE bytes to a receiver
                                       on ADDR (started with RECEIVER as above);
                                       reports how many arrived
    scale-load.py receive ADDR PORT    the receiver of udp-loss
    scale-load.py idle                 marks `start` and ends (the supervisor
                                       measured with nothing open)
    scale-load.py stacks-config N SWITCHES
                                       prints a modules.toml of N smoltcp stacks
                                       h0..hN-1 on SWITCHES switches joined by one
                                       router, and on stderr the address of the
                                       last stack
"""

import json
import os
import resource
import selectors
import shlex
import socket
import subprocess
import sys
import time

PORT = 7999


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def mark(name):
    """Tells the script a measuring point is reached and waits for it to go on."""
    print("MARK", name, flush=True)
    sys.stdin.readline()


def result(**fields):
    print("RESULT", json.dumps(fields), flush=True)


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def hold(n, make):
    """Marks `start`, makes `n` sockets with `make`, marks `open`, closes them
    all, and marks `closed` once the supervisor had time to notice."""
    mark("start")
    sockets = [make() for _ in range(n)]
    mark("open")
    for s in sockets:
        s.close()
    time.sleep(1.5)
    mark("closed")


def bound(kind, addr):
    s = socket.socket(family(addr), kind)
    s.bind((addr, 0))
    return s


def udp(n, addr):
    hold(n, lambda: bound(socket.SOCK_DGRAM, addr))


def listen(n, addr):
    def listener():
        s = bound(socket.SOCK_STREAM, addr)
        s.listen(16)
        return s

    hold(n, listener)


def serve(addr, port):
    """Accepts connections and echoes whatever they send, forever."""
    raise_fd_limit()
    listener = socket.socket(family(addr), socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((addr, port))
    listener.listen(4096)
    listener.setblocking(False)
    chosen = selectors.DefaultSelector()
    chosen.register(listener, selectors.EVENT_READ)
    print("LISTENING", flush=True)
    while True:
        for key, _ in chosen.select():
            if key.fileobj is listener:
                while True:
                    try:
                        conn, _ = listener.accept()
                    except BlockingIOError:
                        break
                    conn.setblocking(False)
                    chosen.register(conn, selectors.EVENT_READ)
                continue
            try:
                data = key.fileobj.recv(65536)
            except BlockingIOError:
                continue
            except ConnectionError:
                data = b""
            if data:
                key.fileobj.sendall(data)
            else:
                chosen.unregister(key.fileobj)
                key.fileobj.close()


def start_helper(prefix, *args):
    """Starts this script with `args` under command prefix `prefix` (a string);
    returns the process once it printed its first line."""
    command = shlex.split(prefix) + [sys.executable, os.path.abspath(__file__), *args]
    child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    line = child.stdout.readline()
    if not line:
        sys.exit("the helper ended before it was ready: " + " ".join(command))
    return child


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def probe(addr, rounds=200):
    """Median connect latency and echo round trip, in microseconds."""
    connects, trips = [], []
    for _ in range(rounds // 10):
        start = time.perf_counter()
        s = socket.create_connection((addr, PORT))
        connects.append(time.perf_counter() - start)
        s.close()
    s = socket.create_connection((addr, PORT))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for _ in range(rounds):
        start = time.perf_counter()
        s.sendall(b"x" * 64)
        got = 0
        while got < 64:
            got += len(s.recv(64 - got))
        trips.append(time.perf_counter() - start)
    s.close()
    return median(connects) * 1e6, median(trips) * 1e6


def tcp(n, addr, server_prefix=None):
    raise_fd_limit()
    server = start_helper(server_prefix or "", "serve", addr, str(PORT))
    mark("start")
    steps = sorted({0, min(1000, n), min(5000, n), n})
    held = []
    for step in steps:
        while len(held) < step:
            s = socket.create_connection((addr, PORT))
            s.sendall(b"hello")
            s.recv(16)
            held.append(s)
        connect_us, rtt_us = probe(addr)
        result(idle=step, connect_us=round(connect_us, 1), rtt_us=round(rtt_us, 1))
    mark("open")
    for s in held:
        s.close()
    server.kill()
    server.wait()
    time.sleep(1.5)
    mark("closed")
    time.sleep(3)
    mark("settled")


def receive(addr, port):
    s = socket.socket(family(addr), socket.SOCK_DGRAM)
    s.bind((addr, port))
    print("LISTENING", flush=True)
    got = 0
    s.settimeout(None)
    while True:
        data = s.recv(65536)
        if data == b"end":
            break
        got += 1
    print(got, flush=True)


def udp_loss(count, size, addr, receiver_prefix=None):
    receiver = start_helper(receiver_prefix or "", "receive", addr, str(PORT))
    s = socket.socket(family(addr), socket.SOCK_DGRAM)
    payload = b"u" * size
    start = time.perf_counter()
    for _ in range(count):
        s.sendto(payload, (addr, PORT))
    elapsed = time.perf_counter() - start
    time.sleep(1)
    for _ in range(50):
        s.sendto(b"end", (addr, PORT))
        try:
            got = int(receiver.stdout.readline() or -1)
            break
        except ValueError:
            got = -1
            break
    receiver.wait()
    result(sent=count, received=got, lost=count - got, send_s=round(elapsed, 3))


def stacks_config(n, switches):
    """A configuration of `n` stacks on `switches` switches (as tests/scale.rs)."""
    lines = ['[vunet]', 'default = "h0"']
    for s in range(switches):
        lines += ['[[vunet.switch]]', f'name = "sw{s}"']
    lines += ['[[vunet.router]]', 'name = "gw"']
    for s in range(switches):
        lines += ['[[vunet.router.interface]]', f'switch = "sw{s}"', f'addresses = ["10.{s}.0.1/16"]']
    address = None
    for i in range(n):
        s = i * switches // n
        address = f"10.{s}.{(i + 2) // 250}.{(i + 2) % 250 + 1}"
        lines += ['[[vunet.stack]]', f'name = "h{i}"', 'kind = "smoltcp"',
                  '[[vunet.stack.interface]]', f'switch = "sw{s}"', f'addresses = ["{address}/16"]',
                  '[[vunet.stack.route]]', 'to = "default"', f'via = "10.{s}.0.1"']
    print("\n".join(lines))
    print(address, file=sys.stderr)


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    work, rest = args[0], args[1:]
    if work == "udp":
        udp(int(rest[0]), rest[1])
    elif work == "listen":
        raise_fd_limit()
        listen(int(rest[0]), rest[1])
    elif work == "tcp":
        tcp(int(rest[0]), rest[1], rest[2] if len(rest) > 2 else None)
    elif work == "serve":
        serve(rest[0], int(rest[1]))
    elif work == "udp-loss":
        udp_loss(int(rest[0]), int(rest[1]), rest[2], rest[3] if len(rest) > 3 else None)
    elif work == "receive":
        receive(rest[0], int(rest[1]))
    elif work == "idle":
        mark("start")
    elif work == "stacks-config":
        stacks_config(int(rest[0]), int(rest[1]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
