//! Found by a hostile review of issue 11's socket cells (every smoltcp
//! connection in a socket set of its own, touched only by its frames, its fds and
//! its timer) and of the rounds that serve only the stacks with work.

mod common;

use common::{TempDir, User, is_root, path_str, python, session, skip};

/// Run on lwip1 as `synflood.py COUNT`: sends COUNT SYNs to 10.0.0.2:5000 (lwip0,
/// whose MAC is the default one of the first stack) through a packet socket, each
/// from another port of 10.0.0.1. That is the router: it answers ARP, so lwip0's
/// SYN-ACKs and its resets go out, but it ignores TCP, so no handshake ends.
const SYN_FLOOD: &str = r#"
import socket, struct, sys, time
def checksum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
src, dst = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
p = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
p.bind(('eth0', 0))
ethernet = bytes.fromhex('026e76000000' '026e760000ee' '0800')
for i in range(int(sys.argv[1])):
    tcp = struct.pack('!HHIIBBHHH', 10000 + i, 5000, 1000 + i, 0, 5 << 4, 0x02, 64240, 0, 0)
    tcp = tcp[:16] + struct.pack('!H', checksum(src + dst + struct.pack('!BBH', 0, 6, len(tcp)) + tcp)) + tcp[18:]
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(tcp), i & 0xffff, 0, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack('!H', checksum(ip)) + ip[12:]
    p.send(ethernet + ip + tcp)
    if i % 256 == 255:
        time.sleep(0.01)  # the links hold so many frames at a time
print('flooded', flush=True)
"#;

/// Run on lwip1 as `echo.py`: a blocking connect to 10.0.0.2:5000 and one echo.
const ECHO_CLIENT: &str = r#"
import errno, socket
s = socket.socket()
try:
    s.connect(('10.0.0.2', 5000))
    s.settimeout(5)
    s.sendall(b'ping')
    print('echo', s.recv(16).decode(), flush=True)
except OSError as e:
    print('failed', errno.errorcode.get(e.errno, e), flush=True)
"#;

/// Found by review: a connection whose handshake nobody finished was given up by
/// smoltcp (a reset, after 3 s) in its cell's own turn, and nothing touched the
/// cell again: the listened port went on counting it as waiting. After 4,096
/// such SYNs (one flood from a program with a packet socket, or peers that went
/// away) every later SYN to the port was dropped, for the rest of the session.
/// A given-up handshake now leaves the port's queue with the cell.
#[test]
fn a_syn_flood_that_timed_out_leaves_the_port_open() {
    if !is_root() {
        return skip("needs root: a packet socket needs CAP_NET_RAW in the session");
    }
    let dir = TempDir::new("syn-flood");
    let flood = dir.write("synflood.py", SYN_FLOOD.as_bytes(), 0o644);
    let echo = dir.write("echo.py", ECHO_CLIENT.as_bytes(), 0o644);
    let py = python();
    let script = format!(
        r#"
{py} -c "
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', 5000)); s.listen(4096); s.settimeout(30)
while True:
    c = s.accept()[0]; c.sendall(c.recv(16)); c.close()
" 2>/dev/null &
listening tcp 5000
"$N" stack lwip1 -- {py} {echo}
"$N" stack lwip1 -- {py} {flood} 4200
# Every half-open connection is given up 3 s after its SYN.
sleep 5
"$N" stack lwip1 -- {py} {echo}
kill $!
"#,
        echo = path_str(&echo),
        flood = path_str(&flood),
    );
    let output = session(User::Invoker, &script);
    assert_eq!(output.stdout, "echo ping\nflooded\necho ping\n", "{output}");
}

/// Run on lwip0 as `down.py SUPERVISOR`: connects to 10.0.0.3:5001, takes eth0
/// down, sends (smoltcp has a retransmission due, and nowhere to send it), and
/// prints whether the supervisor used under a second of CPU in 2 s of waiting;
/// then brings eth0 up, sends the rest, and prints the server's answer.
const LINK_DOWN_CLIENT: &str = r#"
import socket, subprocess, sys, time
def cpu():
    fields = open('/proc/%s/stat' % sys.argv[1]).read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100
s = socket.socket()
s.connect(('10.0.0.3', 5001))
subprocess.run(['ip', 'link', 'set', 'eth0', 'down'], check=True)
s.sendall(b'x' * 1000)
before = cpu(); time.sleep(2); used = cpu() - before
print('supervisor idle while eth0 is down:', used < 1, flush=True)
subprocess.run(['ip', 'link', 'set', 'eth0', 'up'], check=True)
s.sendall(b'y' * 1000)
s.shutdown(socket.SHUT_WR)
s.settimeout(30)
print(s.recv(64).decode(), flush=True)
"#;

/// Found by review (older than the cells: the stack before them did the same):
/// with an interface down, smoltcp was not polled on it, so a connection's
/// retransmission stayed due and the stack asked for a round at once, for
/// ever: the supervisor spun at 100% CPU for as long as the interface was
/// down. Now what smoltcp sends on a down interface goes nowhere and its timers
/// move on; once the interface is up again the data gets through.
#[test]
fn a_connection_over_an_interface_taken_down_does_not_spin_the_supervisor() {
    if !is_root() {
        return skip("needs root: `ip link set` needs CAP_NET_ADMIN in the session");
    }
    let dir = TempDir::new("link-down");
    let client = dir.write("down.py", LINK_DOWN_CLIENT.as_bytes(), 0o644);
    let py = python();
    let script = format!(
        r#"
"$N" stack lwip1 -- {py} -c "
import socket
s = socket.socket(); s.bind(('0.0.0.0', 5001)); s.listen(1)
c = s.accept()[0]; got = 0
while True:
    data = c.recv(65536)
    if not data: break
    got += len(data)
c.sendall(b'got %d' % got)
" &
listening tcp 5001
{py} {client} $PPID
wait
"#,
        client = path_str(&client),
    );
    let output = session(User::Invoker, &script);
    assert_eq!(output.stdout, "supervisor idle while eth0 is down: True\ngot 2000\n", "{output}");
}
