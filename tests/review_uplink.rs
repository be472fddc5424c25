//! A hostile review of the uplink (NAT to the host's network, port forwards,
//! egress policy, audit log), in the fake internet of `common::world`: netvm
//! runs in namespace H, the internet's servers in W.
//!
//! Tests marked `FOUND:` showed a defect of the first version (each failed
//! before its fix, in the same session); the others (`GUARD:`) held from the
//! start and keep a property that matters.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::world::{ECHO_PORT, HOST_V4, INTERNET_V4, INTERNET_V6, World};
use common::{Output, Session, TempDir, User, python, run};

/// Runs `script` in a session of the built-in configuration started in H by
/// `user` with `netvm run` options `run_args`, to its end.
fn session_in_host_with(world: &World, user: User, run_args: &[&str], script: &str) -> Output {
    world.netvm_session(&[], user, run_args, script).finish()
}

/// `python3 -c 'CODE' ARGS` for a shell script.
/// Every snippet may use `struct` and `csum`, the Internet checksum.
fn py(code: &str, args: &str) -> String {
    let code = format!("{CHECKSUM}{code}");
    format!("{} -c '{}' {args}", python(), code.replace('\'', "'\\''"))
}

/// The Internet checksum (RFC 1071), for the snippets that forge packets.
const CHECKSUM: &str = r#"
import struct
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
"#;

/// A temporary directory anyone may write (the unprivileged sessions write there).
fn shared_dir(tag: &str) -> TempDir {
    let dir = TempDir::new(tag);
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

/// A session that runs `script`, then prints `HELD` and stays up until
/// [`Held::release`], so that the test can look at H and W while the
/// supervisor still holds what it holds. What the script left running in the
/// background is killed at the end.
struct Held {
    session: Session,
    marker: PathBuf,
    _dir: TempDir,
}

impl Held {
    fn start(world: &World, user: User, run_args: &[&str], script: &str) -> Self {
        let dir = shared_dir("review-held");
        let marker = dir.path().join("held");
        std::fs::write(&marker, "").unwrap();
        let jobs = dir.path().join("jobs");
        let script = format!(
            "{script}\necho HELD\nwhile [ -e '{}' ]; do sleep 0.05; done\n\
             jobs -p >'{jobs}'; kill $(cat '{jobs}') 2>/dev/null; true",
            marker.display(),
            jobs = jobs.display(),
        );
        let mut session = world.netvm_session(&[], user, run_args, &script);
        while session.next_line() != "HELD" {}
        Self { session, marker, _dir: dir }
    }

    fn release(self) -> Output {
        let _ = std::fs::remove_file(&self.marker);
        self.session.finish()
    }
}

/// The TCP connections W has established on its `port` (as `ss` prints them).
fn established_in_internet(world: &World, port: u16) -> Vec<String> {
    let filter = format!("( sport = :{port} )");
    let output = run(world.in_internet("ss", ["-Htn", "state", "established", filter.as_str()]));
    output.stdout.lines().map(str::to_owned).collect()
}

/// The audit log at `path`, one JSON value a line (failing on a line that is
/// not JSON).
fn audit_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// Python: `csum(bytes)` (the Internet checksum) and `segment(src, dst, sport,
/// dport, flags, checksum=True)`, which sends a bare TCP segment (seq 1000)
/// through a raw socket of lwip0 (root's), the stack writing the IP header.
const RAW_TCP: &str = r#"
import socket, struct, sys, time
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
def segment(src, dst, sport, dport, flags, checksum=True):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, 1000, 0, 5 << 4, flags, 65535, 0, 0)
    if checksum:
        pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(tcp))
        tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
    raw.sendto(tcp, (dst, 0))
"#;

/// The uplink's host connections to W's echo server a second after `sends`
/// (Python lines after [`RAW_TCP`]) ran in lwip0 as root.
fn host_connections_after_raw_segments(world: &World, sends: &str) -> (Vec<String>, Output) {
    let code = format!("{RAW_TCP}\n{sends}\ntime.sleep(0.5)\nprint(\"sent\")");
    let held = Held::start(world, User::Invoker, &[], &py(&code, ""));
    std::thread::sleep(Duration::from_millis(1000));
    let open = established_in_internet(world, ECHO_PORT);
    (open, held.release())
}

/// FOUND: a SYN whose SYN-ACK the stack answers with a reset (no socket of
/// the stack's sent it: a raw socket did, or the stack gave up on it) leaves
/// the host's connection to the remote established for the rest of the
/// session. smoltcp puts a socket in SYN-RECEIVED back to LISTEN on a reset,
/// and `Tcp::pump` ends a connection only in CLOSED or TIME-WAIT, so the
/// uplink keeps the host socket, its 2 x 256 KiB buffers and a listener on the
/// remote's endpoint (which then takes the SYN of the next connection there,
/// mixing two flows on one host socket). Each raw SYN costs the program
/// nothing, and the host keeps a real connection to the victim.
#[test]
fn a_syn_the_stack_resets_does_not_leave_the_hosts_connection_open() {
    let Some(world) = World::new() else { return };
    let sends = format!(
        "for port in range(40000, 40005):\n    segment(\"10.0.0.2\", \"{INTERNET_V4}\", port, {ECHO_PORT}, 0x02)"
    );
    let (open, output) = host_connections_after_raw_segments(&world, &sends);
    output.assert_code(0);
    assert_eq!(output.stdout, "sent\nHELD\n", "{output}");
    assert!(open.is_empty(), "the host still holds these connections to W:\n{open:#?}");
}

/// FOUND: a "SYN" the uplink's own smoltcp socket will not take (a bad TCP
/// checksum, source port 0, SYN with FIN or RST) still makes the uplink dial
/// the host's connection (`Tcp::segment` looks at the flags alone), and the
/// listening socket that was to take it stays in LISTEN forever: the host's
/// connection is never closed.
#[test]
fn a_syn_the_uplink_cannot_take_does_not_leave_a_host_connection_open() {
    let Some(world) = World::new() else { return };
    let sends = format!(
        "segment(\"10.0.0.2\", \"{w}\", 41000, {e}, 0x02, checksum=False)
segment(\"10.0.0.2\", \"{w}\", 0, {e}, 0x02)
segment(\"10.0.0.2\", \"{w}\", 41001, {e}, 0x03)
segment(\"10.0.0.2\", \"{w}\", 41002, {e}, 0x06)",
        w = INTERNET_V4,
        e = ECHO_PORT,
    );
    let (open, output) = host_connections_after_raw_segments(&world, &sends);
    output.assert_code(0);
    assert!(open.is_empty(), "the host still holds these connections to W:\n{open:#?}");
}

/// W's server for uploads: on each connection it ends its own side at once
/// (`shutdown(SHUT_WR)`), reads nothing for argv[2] seconds, then reads
/// everything and prints the byte count and SHA-256 of what arrived (or the
/// error that ended the stream).
const LATE_READER: &str = r#"
import hashlib, socket, sys, time
srv = socket.socket(socket.AF_INET6)
srv.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("::", int(sys.argv[1])))
srv.listen()
print("listening", flush=True)
while True:
    c, _ = srv.accept()
    c.shutdown(socket.SHUT_WR)
    time.sleep(float(sys.argv[2]))
    h, n = hashlib.sha256(), 0
    try:
        while b := c.recv(65536):
            h.update(b); n += len(b)
        print(n, h.hexdigest(), flush=True)
    except OSError as e:
        print(n, "error", e.errno, flush=True)
    c.close()
"#;

/// A client of [`LATE_READER`]: connects, waits for the server's end of
/// stream, then sends SIZE bytes and closes; prints the count and SHA-256 sent.
const UPLOADER: &str = r#"
import hashlib, socket, sys
host, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
c = socket.create_connection((host, port), timeout=20)
assert c.recv(1) == b""
block = hashlib.sha256(b"seed").digest() * 2048
h, sent = hashlib.sha256(), 0
while sent < size:
    chunk = block[: size - sent]
    c.sendall(chunk); h.update(chunk); sent += len(chunk)
c.close()
print(sent, h.hexdigest(), flush=True)
"#;

/// FOUND: when the remote ends its side first (half-close) and the stack
/// then sends more than the host's socket takes at once before closing, the
/// tail is lost and the remote gets a reset: the stack's FIN puts the uplink's
/// socket in TIME-WAIT while its receive buffer still holds bytes the host
/// socket had no room for, and `Tcp::pump` ends every connection in TIME-WAIT
/// at once (with SO_LINGER 0, as for a reset). The same upload from H itself
/// arrives whole (the reference).
#[test]
fn an_upload_after_the_remote_half_closed_arrives_whole() {
    let Some(world) = World::new() else { return };
    // The host's side holds little (H's send buffers, W's receive buffers),
    // so that what the slow reader has not read waits in the uplink.
    run(world.in_host("sysctl", ["-qw", "net.ipv4.tcp_wmem=4096 4096 4096"])).assert_code(0);
    run(world.in_internet("sysctl", ["-qw", "net.ipv4.tcp_rmem=4096 4096 4096"])).assert_code(0);
    let port = "9200";
    let mut server = Session::spawn(world.in_internet(python(), ["-c", LATE_READER, port, "2"]));
    assert_eq!(server.next_line(), "listening");
    let size = (192 << 10).to_string();
    let native = run(world.in_host(python(), ["-c", UPLOADER, INTERNET_V4, port, &size]));
    assert_eq!(native.stdout.trim(), server.next_line(), "from H itself\n{native}");
    let held = Held::start(
        &world,
        User::Invoker,
        &[],
        &py(UPLOADER, &format!("{INTERNET_V4} {port} {size}")),
    );
    let received = server.next_line();
    let output = held.release();
    let sent = output.stdout.lines().next().unwrap_or_default();
    assert_eq!(received, sent, "W received / the program sent\n{output}");
}

/// Runs `flood` (a shell command) in a session of `user` whose supervisor may
/// open 256 descriptors, then checks what the supervisor's reserve is for: a
/// connection between two stacks of the session, and `netvm status`.
fn after_a_flood(world: &World, user: User, flood: &str) -> Output {
    let script = format!(
        "timeout 30 {flood}
         sleep 1.5
         timeout 10 \"$N\" stack lwip1 -- socat TCP-LISTEN:7100,reuseaddr EXEC:cat & server=$!
         sleep 1
         echo across | timeout 5 socat -t3 - TCP:10.0.0.3:7100 || echo connect failed
         kill $server 2>/dev/null
         timeout 5 \"$N\" status >/dev/null && echo status ok"
    );
    let prlimit = ["prlimit", "--nofile=256:256", "--"];
    world.netvm_session(&prlimit, user, &[], &script).finish()
}

/// Asserts that the session still worked after its flood.
fn assert_survived(output: &Output) {
    let lines: Vec<&str> = output.stdout.lines().collect();
    assert!(lines.contains(&"flood done"), "{output}");
    assert!(lines.contains(&"across"), "a connection between stacks failed\n{output}");
    assert!(lines.contains(&"status ok"), "netvm status got no answer\n{output}");
}

/// Opens N UDP mappings through the uplink: N sockets, each bound to a port of
/// its own, sending one datagram out and closed at once (the program never
/// holds more than one descriptor).
const UDP_MAPPING_FLOOD: &str = r#"
import socket, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", 20000 + i))
        s.sendto(b"x", (host, port))
        s.close()
    except OSError:
        pass
print("flood done")
"#;

/// FOUND: the uplink has no limit on its host sockets. A UDP mapping (one
/// host socket) outlives the stack's socket by 180 s, so an unprivileged
/// program that never holds more than one descriptor takes every descriptor
/// of the supervisor's: the per-process budget (budget.rs), whose whole point
/// is that one process cannot make another's connect fail and that a reserve
/// stays for the supervisor's own work, does not count them. Afterwards a
/// connection between two stacks fails (EINVAL) and `netvm status` gets no
/// answer ("control socket: accept: EMFILE"; new processes also lose their
/// sealed scratch window). (On the host, the same flood holds one ephemeral
/// UDP port each.)
#[test]
fn udp_mappings_of_closed_sockets_cannot_exhaust_the_supervisor() {
    let Some(world) = World::new() else { return };
    let flood = py(UDP_MAPPING_FLOOD, &format!("{INTERNET_V4} {ECHO_PORT} 300"));
    assert_survived(&after_a_flood(&world, User::Unprivileged, &flood));
}

/// Non-blocking connects to N ports of an address that never answers (W drops
/// what it does not route), each socket closed at once.
const HALF_OPEN_FLOOD: &str = r#"
import socket, sys, time
host, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex((host, 80))
        s.close()
    except OSError:
        time.sleep(0.05)
print("flood done")
"#;

/// FOUND: as for UDP, each half-open TCP connection through the uplink holds
/// a host socket (for the host's whole connect timeout, some two minutes),
/// uncounted and unlimited, after the program closed its socket.
#[test]
fn half_open_connections_cannot_exhaust_the_supervisor() {
    let Some(world) = World::new() else { return };
    let flood = py(HALF_OPEN_FLOOD, "198.51.100.1 300");
    assert_survived(&after_a_flood(&world, User::Unprivileged, &flood));
}

/// Sends N echo requests with N identifiers from a raw ICMP socket (root's).
const PING_IDENT_FLOOD: &str = r#"
import socket, struct, sys
host, n = sys.argv[1], int(sys.argv[2])
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
for ident in range(n):
    echo = struct.pack("!BBHHH", 8, 0, 0, ident, 1) + b"flood"
    echo = echo[:2] + struct.pack("!H", csum(echo)) + echo[4:]
    raw.sendto(echo, (host, 0))
print("flood done")
"#;

/// FOUND: each echo identifier gets a host ping socket of its own for 60 s,
/// uncounted and unlimited. (When they run out, netvm also tells the user
/// that the host refuses ping sockets, which is not why.)
#[test]
fn ping_identifiers_cannot_exhaust_the_supervisor() {
    let Some(world) = World::new() else { return };
    world.allow_ping_sockets();
    let flood = py(PING_IDENT_FLOOD, &format!("{INTERNET_V4} 300"));
    assert_survived(&after_a_flood(&world, User::Invoker, &flood));
}

/// Sends, through a packet socket on lwip0's eth0 (root's), an IPv6 UDP
/// datagram to the router `gw` (MAC argv[3]) for argv[1] port argv[2], which
/// no socket of the stack could send.
const FORGED_IPV6_UDP: &str = r#"
import socket, struct, sys, time
dst, port, router = sys.argv[1], int(sys.argv[2]), bytes.fromhex(sys.argv[3].replace(":", ""))
p = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
p.bind(("eth0", 0))
src_mac = p.getsockname()[4]
src, dst6 = socket.inet_pton(socket.AF_INET6, "fd00::2"), socket.inet_pton(socket.AF_INET6, dst)
data = b"past the policy"
udp = struct.pack("!HHHH", 47000, port, 8 + len(data), 0) + data
pseudo = src + dst6 + struct.pack("!IxxxB", len(udp), 17)
udp = udp[:6] + struct.pack("!H", csum(pseudo + udp) or 0xffff) + udp[8:]
ip6 = struct.pack("!IHBB", 6 << 28, len(udp), 17, 64) + src + dst6 + udp
p.send(router + src_mac + b"\x86\xdd" + ip6)
time.sleep(1)
print("sent")
"#;

/// FOUND: an IPv6 packet to an IPv4-mapped address (`::ffff:192.0.2.2`)
/// escapes every rule with a prefix: `Flows::admit` hands the policy the
/// IPv6 address, which no IPv4 prefix contains, and the host's IPv6 socket
/// then sends to the IPv4 address. A root program forges one with a packet
/// socket; `--deny all@192.0.2.0/24` lets it out (and its answer back in).
/// Such addresses never belong on an IPv6 wire: they should be refused, or
/// judged as their IPv4 address.
#[test]
fn an_ipv4_mapped_destination_cannot_pass_a_prefix_rule() {
    let Some(world) = World::new() else { return };
    let capture = world.start_capture();
    // The built-in router's MAC on sw0 (02:6e:76:ff:RR:II, router 0, interface 0).
    let forge = py(FORGED_IPV6_UDP, &format!("::ffff:{INTERNET_V4} {ECHO_PORT} 02:6e:76:ff:00:00"));
    let args = ["--deny", "all@192.0.2.0/24", "--audit", "-"];
    let output = session_in_host_with(&world, User::Invoker, &args, &forge);
    let wire = capture.read(&format!("udp port {ECHO_PORT}"));
    assert_eq!(output.stdout, "sent\n", "{output}");
    assert_eq!(wire, "", "W received what --deny all@192.0.2.0/24 refuses\n{output}");
}

/// FOUND: with `--map-host-loopback 10.0.2.2`, a TCP connection or datagram
/// to 10.0.2.2 reaches the host's 127.0.0.1, but a ping to it is sent out to
/// the host's network for 10.0.2.2 (`Ping::send` sends to the address the
/// stack named, ignoring where `Flows::admit` said it leads) and is never
/// answered: a packet meant for the host's loopback leaves the host.
#[test]
fn a_ping_to_the_mapped_host_loopback_stays_on_the_host() {
    let Some(world) = World::new() else { return };
    world.allow_ping_sockets();
    let capture = world.start_capture();
    let args = ["--map-host-loopback", "10.0.2.2"];
    let output = session_in_host_with(
        &world,
        User::Invoker,
        &args,
        "ping -c1 -W2 10.0.2.2 >/dev/null; echo $?",
    );
    let wire = capture.read("icmp");
    assert_eq!(wire, "", "a ping for the host's loopback left the host\n{output}");
    assert_eq!(output.stdout, "0\n", "the host's loopback did not answer\n{output}");
}

/// FOUND: a refused flow is decided, numbered and logged again for every
/// packet: 20 datagrams from one socket to one denied destination make 20
/// `deny` lines with 20 flow numbers (and a dropped connect one line per SYN
/// retransmission), where the policy says each flow is decided once, where it
/// starts. A program can grow the audit log by a line per packet.
#[test]
fn a_refused_flow_is_decided_and_logged_once() {
    let Some(world) = World::new() else { return };
    let dir = shared_dir("review-audit");
    let audit = dir.path().join("audit.jsonl");
    let code = r#"
import socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(20):
    try: u.sendto(b"x", ("192.0.2.2", 5353))
    except OSError: pass
print("sent")
"#;
    let args = ["--deny", "udp:5353", "--audit", common::path_str(&audit)];
    let output = session_in_host_with(&world, User::Unprivileged, &args, &py(code, ""));
    assert_eq!(output.stdout, "sent\n", "{output}");
    let lines = audit_lines(&audit);
    let denied: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l["dst"] == "192.0.2.2:5353").collect();
    assert_eq!(denied.len(), 1, "{denied:#?}");
}

/// A service on lwip1: TCP and UDP on port argv[1], answering any request
/// with `ok`.
const OK_SERVICE: &str = r#"
import socket, sys, threading
port = int(sys.argv[1])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", port))
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("0.0.0.0", port)); t.listen()
def udp():
    while True:
        _, peer = u.recvfrom(65536)
        u.sendto(b"ok", peer)
threading.Thread(target=udp, daemon=True).start()
while True:
    c, _ = t.accept()
    c.recv(65536); c.sendall(b"ok"); c.close()
"#;

/// FOUND: the audit log counts the bytes of a flow that came in by a
/// published port one way for TCP and the other way for UDP: a client's
/// 100-byte request and the service's 2-byte answer close as bytes_in 100,
/// bytes_out 2 over TCP (`Tcp::pump`: out is what the stack sent, as
/// `FlowRecord` defines it) but bytes_in 2, bytes_out 100 over UDP
/// (`Udp::arrive` adds the client's bytes to `bytes_out`, `Udp::send` the
/// stack's answers to `bytes_in`). `netvm status` shows the same swapped
/// numbers (and status.rs documents a third meaning).
#[test]
fn inbound_tcp_and_udp_count_their_bytes_the_same_way() {
    let Some(world) = World::new() else { return };
    let dir = shared_dir("review-inbound");
    let audit = dir.path().join("audit.jsonl");
    let service = py(OK_SERVICE, "7300");
    let script =
        format!("\"$N\" stack lwip1 -- {service} & listening tcp 7300 && listening udp 7300");
    let args =
        ["-p", "8300:lwip1:7300", "-p", "8300:lwip1:7300/udp", "--audit", common::path_str(&audit)];
    let held = Held::start(&world, User::Invoker, &args, &script);
    let client = r#"
import socket, sys
t = socket.create_connection((sys.argv[1], 8300), timeout=5); t.sendall(b"x" * 100)
print(t.recv(10).decode()); t.close()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(5)
u.sendto(b"x" * 100, (sys.argv[1], 8300)); print(u.recv(10).decode())
"#;
    let answers = run(world.in_internet(python(), ["-c", client, HOST_V4]));
    std::thread::sleep(Duration::from_millis(300));
    let output = held.release();
    assert_eq!(answers.stdout, "ok\nok\n", "{answers}\n{output}");
    let lines = audit_lines(&audit);
    let closed = |proto: &str| {
        let line = lines
            .iter()
            .find(|l| l["event"] == "close" && l["direction"] == "in" && l["proto"] == proto);
        let line = line.unwrap_or_else(|| panic!("no {proto} close line: {lines:#?}"));
        (line["bytes_in"].as_u64(), line["bytes_out"].as_u64())
    };
    assert_eq!(closed("tcp"), closed("udp"), "(bytes_in, bytes_out) of TCP and of UDP");
}

/// Sends malformed and odd packets to the uplink from lwip0 (root's raw
/// sockets): truncated and lying TCP and UDP headers, every TCP flag, ports
/// 0, IP options, unknown protocols, short echoes, fragments that overlap or
/// run past 64 KiB, and the IPv6 kin of some.
const MALFORMED: &str = r#"
import socket, struct, sys, time
W4, W6 = sys.argv[1], sys.argv[2]
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
ident = [100]
def ip4(proto, payload, dst=W4, frag=0x4000, options=b""):
    ident[0] += 1
    ihl = 5 + len(options) // 4
    h = struct.pack("!BBHHHBBH4s4s", (4 << 4) | ihl, 0, 4 * ihl + len(payload), ident[0], frag, 64,
                    proto, 0, socket.inet_aton("10.0.0.2"), socket.inet_aton(dst)) + options
    try:
        raw.sendto(h + payload, (dst, 0))
    except OSError as e:
        print("refused", proto, e, file=sys.stderr)
def tcp(sport, dport, flags, offset=5, data=b"", dst=W4):
    t = struct.pack("!HHIIBBHHH", sport, dport, 7, 9, offset << 4, flags, 65535, 0, 0) + data
    pseudo = socket.inet_aton("10.0.0.2") + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(t))
    return t[:16] + struct.pack("!H", csum(pseudo + t)) + t[18:]
def udp(sport, dport, data, length=None):
    return struct.pack("!HHHH", sport, dport, 8 + len(data) if length is None else length, 0) + data
for data in [b"", b"\x00" * 10]:
    ip4(6, data)
ip4(6, tcp(42000, 80, 0x02, offset=15))
ip4(6, tcp(42001, 80, 0x02, offset=2))
for flags in [0x3f, 0x03, 0x06, 0x07, 0x01, 0x10, 0x04, 0x00, 0xff]:
    ip4(6, tcp(42100 + flags, 80, flags))
ip4(6, tcp(42300, 80, 0x02, data=b"payload on a SYN"))
ip4(6, tcp(42301, 0, 0x02))
for i, length in enumerate([0, 7, 9, 65535]):
    ip4(17, udp(43000 + i, 7, b"12345678", length))
ip4(17, udp(0, 7, b"from port 0"))
ip4(17, udp(43100, 0, b"to port 0"))
ip4(17, udp(43101, 53, b"junk for the relay"), dst="10.0.2.3")
ip4(6, tcp(0, 53, 0x02, dst="10.0.2.3"), dst="10.0.2.3")
ip4(1, b"\x08\x00\x00\x00")
ip4(1, b"\x08\x63\x00\x00\x12\x34\x00\x01")
ip4(1, b"\x00\x00\x00\x00\x12\x34\x00\x01")
ip4(1, b"\x03\x03\x00\x00" + b"\x00" * 4 + b"\x45" + b"\x00" * 27)
for proto in [0, 2, 41, 47, 132, 253, 255]:
    ip4(proto, b"\x00" * 40)
ip4(6, tcp(42400, 80, 0x02), options=b"\x01" * 40)
ip4(6, tcp(42401, 80, 0x02), options=b"\x07\x27\x04" + b"\x00" * 37)
ip4(17, udp(44000, 7, b"a" * 24)[:16], frag=0x2000)
ip4(17, udp(44001, 7, b"b" * 24)[:16], frag=0x2000)
ip4(17, b"c" * 16, frag=0x2001)
ip4(17, b"d" * 24, frag=0x0001)
ip4(17, b"e" * 64, frag=0x1fff)
ip4(17, b"f" * 8, frag=0x3ffe)
ip4(6, tcp(44100, 80, 0x02)[:8], frag=0x2000)
ip4(6, tcp(44100, 80, 0x02)[8:], frag=0x0001)
for proto, payload in [
    (socket.IPPROTO_TCP, b"\x00" * 7),
    (socket.IPPROTO_TCP, struct.pack("!HHIIBBHHH", 45000, 80, 1, 0, 0xf0, 0x3f, 0, 0, 0)),
    (socket.IPPROTO_UDP, struct.pack("!HHHH", 45001, 7, 3, 0)),
    (socket.IPPROTO_UDP, struct.pack("!HHHH", 45002, 7, 65535, 0) + b"x"),
    (socket.IPPROTO_ICMPV6, b"\x80\x00"),
    (socket.IPPROTO_ICMPV6, b"\x80\x00\x00\x00\x00"),
]:
    try:
        socket.socket(socket.AF_INET6, socket.SOCK_RAW, proto).sendto(payload, (W6, 0))
    except OSError as e:
        print("refused v6", proto, e, file=sys.stderr)
time.sleep(1)
print("sent")
"#;

/// GUARD: whatever malformed packet reaches the uplink, the supervisor (a
/// debug build: overflow checks on) does not panic, and the uplink still
/// carries connections over both families.
#[test]
fn malformed_packets_leave_the_uplink_working() {
    let Some(world) = World::new() else { return };
    let script = format!(
        "{}
         curl -sSf --max-time 10 -o /dev/null http://{INTERNET_V4}/ && echo web ok
         curl -sSf --max-time 10 -o /dev/null http://[{INTERNET_V6}]/ && echo web6 ok",
        py(MALFORMED, &format!("{INTERNET_V4} {INTERNET_V6}")),
    );
    // (Session::finish fails the test if netvm printed a panic.)
    let output = session_in_host_with(&world, User::Invoker, &[], &script);
    assert_eq!(output.stdout, "sent\nweb ok\nweb6 ok\n", "{output}");
}

/// What a probe prints for `connect` to each of `targets` (`ADDRESS PORT`):
/// `ok`, or the errno's name.
const CONNECT_PROBE: &str = r#"
import errno, socket, sys
for target in sys.argv[1:]:
    host, port = target.rsplit(" ", 1)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect((host, int(port)))
        print(target, "ok")
    except OSError as e:
        print(target, errno.errorcode.get(e.errno, e))
    s.close()
"#;

/// GUARD: a service on the host's loopback (127.0.0.1 and ::1) answers no
/// alias of it: the unspecified addresses, the IPv4-mapped loopback, the
/// uplink's addresses and DNS relays, the host's own addresses (Linux routes
/// those over its loopback device, but the service is bound to 127.0.0.1).
#[test]
fn the_hosts_loopback_stays_out_of_reach_by_every_alias() {
    let Some(world) = World::new() else { return };
    let server = r#"
import socket, threading
def serve(family, address):
    s = socket.socket(family); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((address, 8125)); s.listen()
    while True: s.accept()[0].close()
threading.Thread(target=serve, args=(socket.AF_INET6, "::1"), daemon=True).start()
serve(socket.AF_INET, "127.0.0.1")
"#;
    let mut server = world.in_host(python(), ["-c", server]).spawn().unwrap();
    // The reference, once the service is up.
    let probe = ["-c", CONNECT_PROBE, "127.0.0.1 8125", "::1 8125", "192.0.2.1 8125"];
    let mut native = run(world.in_host(python(), probe));
    for _ in 0..50 {
        if native.stdout.starts_with("127.0.0.1 8125 ok\n::1 8125 ok") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        native = run(world.in_host(python(), probe));
    }
    let targets = [
        "0.0.0.0",
        "::",
        "::ffff:127.0.0.1",
        "::ffff:0.0.0.0",
        "10.0.2.2",
        "10.0.2.3",
        "fd00:0:0:2::2",
        "fd00:0:0:2::3",
        HOST_V4,
        common::world::HOST_V6,
    ];
    let quoted: Vec<String> = targets.iter().map(|t| format!("'{t} 8125'")).collect();
    let output = session_in_host_with(
        &world,
        User::Unprivileged,
        &[],
        &py(CONNECT_PROBE, &quoted.join(" ")),
    );
    let _ = server.kill();
    let _ = server.wait();
    // The reference: the service answers on the host's loopback, not on H's
    // own address.
    assert_eq!(
        native.stdout, "127.0.0.1 8125 ok\n::1 8125 ok\n192.0.2.1 8125 ECONNREFUSED\n",
        "{native}"
    );
    let reached: Vec<&str> = output.stdout.lines().filter(|l| l.ends_with(" ok")).collect();
    assert!(reached.is_empty(), "{reached:?}\n{output}");
    assert_eq!(output.stdout.lines().count(), targets.len(), "{output}");
}

/// GUARD: killing the supervisor ends its helper too: the published ports
/// (which the helper, forked after they were taken, also holds) are free at
/// once.
#[test]
fn killing_the_supervisor_frees_the_published_ports() {
    let Some(world) = World::new() else { return };
    let bind = r#"
import socket, time
for i in range(50):
    try:
        t = socket.socket(); t.bind(("0.0.0.0", 8400)); t.listen()
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", 8400))
        print("free"); break
    except OSError as e:
        err = e
        time.sleep(0.1)
else:
    print("taken", err)
"#;
    let args = ["-p", "8400:lwip1:80", "-p", "8400:lwip1:53/udp"];
    let held = Held::start(&world, User::Unprivileged, &args, "true");
    let taken =
        run(world
            .in_host(python(), ["-c", "import socket; socket.socket().bind(('0.0.0.0', 8400))"]));
    assert_ne!(taken.code(), 0, "the published port was not taken");
    nix::sys::signal::kill(held.session.pid(), nix::sys::signal::Signal::SIGKILL).unwrap();
    let after = run(world.in_host(python(), ["-c", bind]));
    let _ = held.release();
    assert_eq!(after.stdout.trim(), "free", "{after}");
}

/// W's sink: reads each connection to its end, then answers the byte count
/// and SHA-256 of what arrived.
const SINK: &str = r#"
import hashlib, socket, sys, threading
srv = socket.socket(socket.AF_INET6)
srv.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("::", int(sys.argv[1])))
srv.listen()
print("listening", flush=True)
def serve(c):
    h, n = hashlib.sha256(), 0
    while b := c.recv(1 << 20):
        h.update(b); n += len(b)
    c.sendall(f"{n} {h.hexdigest()}\n".encode())
    c.close()
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

/// Uploads SIZE bytes to [`SINK`], half-closes, and prints what it sent and
/// what the sink says it received.
const UPLOAD_TO_SINK: &str = r#"
import hashlib, socket, sys
host, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
c = socket.create_connection((host, port), timeout=30)
block = hashlib.sha256(b"seed").digest() * 32768
h, sent = hashlib.sha256(), 0
while sent < size:
    chunk = block[: size - sent]
    c.sendall(chunk); h.update(chunk); sent += len(chunk)
c.shutdown(socket.SHUT_WR)
answer = b""
while b := c.recv(4096):
    answer += b
print(sent, h.hexdigest())
print(answer.decode().strip())
"#;

/// GUARD: a large upload (the existing tests only download) arrives whole,
/// over both families, and the stack's half-close lets the remote's answer
/// come back.
#[test]
fn a_large_upload_arrives_whole_and_the_answer_after_a_half_close_comes_back() {
    let Some(world) = World::new() else { return };
    let port = "9300";
    let mut server = Session::spawn(world.in_internet(python(), ["-c", SINK, port]));
    assert_eq!(server.next_line(), "listening");
    let size = 24 << 20;
    let script = format!(
        "{}\n{}",
        py(UPLOAD_TO_SINK, &format!("{INTERNET_V4} {port} {size}")),
        py(UPLOAD_TO_SINK, &format!("{INTERNET_V6} {port} {}", size / 4)),
    );
    let output = session_in_host_with(&world, User::Unprivileged, &[], &script);
    let lines: Vec<&str> = output.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{output}");
    assert_eq!(lines[0], lines[1], "IPv4: sent / received\n{output}");
    assert_eq!(lines[2], lines[3], "IPv6: sent / received\n{output}");
}

/// GUARD: audit lines stay one JSON object each whatever the process that
/// opened the flow calls itself (quotes, a backslash, a newline in `comm`).
#[test]
fn audit_lines_are_json_whatever_the_process_name() {
    let Some(world) = World::new() else { return };
    let dir = shared_dir("review-comm");
    let audit = dir.path().join("audit.jsonl");
    let code = r#"
import ctypes, socket, time
ctypes.CDLL(None).prctl(15, b"a\"b\\c\nd{}", 0, 0, 0)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b"x", ("192.0.2.2", 7))
time.sleep(0.5)  # (the log asks for the process once the network has run)
print("sent")
"#;
    let args = ["--audit", common::path_str(&audit)];
    let output = session_in_host_with(&world, User::Unprivileged, &args, &py(code, ""));
    assert_eq!(output.stdout, "sent\n", "{output}");
    let lines = audit_lines(&audit);
    let open = lines.iter().find(|l| l["event"] == "open" && l["dst"] == "192.0.2.2:7");
    let open = open.unwrap_or_else(|| panic!("{lines:#?}"));
    assert_eq!(open["comm"], "a\"b\\c\nd{}", "{lines:#?}");
}
