//! Datagrams larger than the path, as on Linux: stacks fragment what they send
//! (IPv4 and IPv6) and reassemble what they receive, the router fragments what
//! it forwards (IPv4 without DF) or reports its port's MTU ("fragmentation
//! needed", "packet too big"), stacks learn the path MTU from those reports, and
//! SYNs announce a segment size that fits the path, so TCP needs no fragments.
//!
//! On the built-in network (lwip0 10.0.0.2, lwip1 10.0.0.3, the router gw at
//! 10.0.0.1, MTU 1500): `ping -s 4000` gets its replies from the other stack and
//! from the router; `ping -M do -s 2000` gets "message too long, mtu=1500" locally;
//! UDP datagrams of 1,473 to 65,507 (IPv6: 65,527) bytes arrive whole and in
//! order; `iperf3 -u -l 32K` gets its datagrams through; a connected TCP socket
//! says TCP_MAXSEG 1448 (IPv6: 1428) and IP_MTU 1500, an unconnected one ENOTCONN.
//! As root, ping and the socket options are also run in a network namespace at
//! 10.0.0.2 whose veth leads to another at 10.0.0.3 (see [`on_two_linux_hosts`]),
//! and must print the same lines.
//!
//! Through a router whose far port has MTU 1280 ([`narrow_hop`]): the first
//! oversized ping is lost while the path MTU is learnt, the next ones get through
//! in fragments; a TCP transfer across it is intact, the server's TCP_MAXSEG is
//! 1228 (IPv6: 1208), and it puts no fragment on the far link, where a 3,000-byte
//! ping puts several, a ping to a second neighbour right after the first is not
//! held back a second, and a client's TCP_MAXSEG takes the server's announced
//! segment size into account.
//!
//! Before this work, UDP datagrams of 1,473 bytes or more and `ping -s 2000`
//! between stacks vanished silently, TCP_MAXSEG said 32768 and IP_MTU
//! ENOPROTOOPT.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::{
    Output, TempDir, USERS, User, narrow_hop, on_two_linux_hosts, path_str, python, run, session,
    session_with, skip,
};
use serde_json::Value;

/// Receives `COUNT` datagrams on `HOST PORT` and prints the length and SHA-256 of
/// each, or stops after 5 s without one.
const UDP_RECEIVER: &str = r#"
import hashlib, os, socket, sys

def say(*words):
    os.write(1, (" ".join(map(str, words)) + "\n").encode())

host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
s.bind((host, port))
s.settimeout(5)
for _ in range(count):
    try:
        data = s.recv(70000)
    except TimeoutError:
        say("received nothing more within 5 s")
        break
    say("datagram", len(data), hashlib.sha256(data).hexdigest())
"#;

/// Sends one datagram of random bytes of each size to `HOST PORT`, printing what
/// the receiver should print for it.
const UDP_SENDER: &str = r#"
import hashlib, os, socket, sys, time

def say(*words):
    os.write(1, (" ".join(map(str, words)) + "\n").encode())

host, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
for size in map(int, sys.argv[3:]):
    data = os.urandom(size)
    assert s.sendto(data, (host, port)) == size
    say("sent", "datagram", size, hashlib.sha256(data).hexdigest())
    time.sleep(0.02)
"#;

/// A dual-stack TCP listener on port `PORT` that takes `COUNT` connections, one
/// after the other, each until the peer closes it.
const TCP_HOLDER: &str = r#"
import socket, sys

s = socket.socket(socket.AF_INET6)
s.bind(("::", int(sys.argv[1])))
s.listen(4)
for _ in range(int(sys.argv[2])):
    c, _ = s.accept()
    while c.recv(4096):
        pass
    c.close()
"#;

/// For each host: IP_MTU (IPV6_MTU) of an unconnected TCP socket, then TCP_MAXSEG
/// and IP_MTU (IPV6_MTU) once connected to port 9998 there.
const SEGMENT_SIZES: &str = r#"
import errno, socket, sys

IP_MTU, IPV6_MTU = 14, 24
for host in sys.argv[1:]:
    v6 = ":" in host
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET)
    level, mtu = (socket.IPPROTO_IPV6, IPV6_MTU) if v6 else (socket.IPPROTO_IP, IP_MTU)
    try:
        print("unconnected:", s.getsockopt(level, mtu))
    except OSError as e:
        print("unconnected:", errno.errorcode[e.errno], e.errno)
    s.connect((host, 9998))
    print(host, s.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG), s.getsockopt(level, mtu))
    s.close()
"#;

/// Serves `SIZE` random bytes to the one client that connects to `HOST PORT`,
/// and prints their length and SHA-256.
const TCP_SOURCE: &str = r#"
import hashlib, os, socket, sys

def say(*words):
    os.write(1, (" ".join(map(str, words)) + "\n").encode())

host, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
s.bind((host, port))
s.listen(1)
c, _ = s.accept()
say("server maxseg", host, c.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG))
data = os.urandom(size)
c.sendall(data)
c.close()
say("stream", len(data), hashlib.sha256(data).hexdigest())
"#;

/// Reads everything `HOST PORT` sends, then prints the connection's TCP_MAXSEG
/// and the length and SHA-256 of what came.
const TCP_SINK: &str = r#"
import hashlib, os, socket, sys

def say(*words):
    os.write(1, (" ".join(map(str, words)) + "\n").encode())

host, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection((host, port), timeout=20)
data = bytearray()
while chunk := s.recv(65536):
    data += chunk
say("client maxseg", host, s.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG))
say("received", "stream", len(data), hashlib.sha256(data).hexdigest())
"#;

/// Reads a classic pcap file of Ethernet frames and prints how many IPv4 and
/// IPv6 fragments it holds per protocol, how many unfragmented TCP packets, and
/// the largest of those (IP header included).
const PCAP_FRAGMENTS: &str = r#"
import struct, sys
from collections import Counter

data = open(sys.argv[1], "rb").read()
order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
assert struct.unpack(order + "I", data[20:24])[0] == 1, "not Ethernet"
names = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6"}
fragments, tcp, largest, pos = Counter(), 0, 0, 24
while pos + 16 <= len(data):
    (captured,) = struct.unpack(order + "I", data[pos + 8 : pos + 12])
    frame = data[pos + 16 : pos + 16 + captured]
    pos += 16 + captured
    (ethertype,) = struct.unpack(">H", frame[12:14])
    ip = frame[14:]
    if ethertype == 0x0800:
        (length,) = struct.unpack(">H", ip[2:4])
        (flags_offset,) = struct.unpack(">H", ip[6:8])
        protocol, fragment = ip[9], flags_offset & 0x3FFF != 0
    elif ethertype == 0x86DD:
        length, protocol = 40 + struct.unpack(">H", ip[4:6])[0], ip[6]
        fragment = protocol == 44
        if fragment:
            protocol = ip[40]
    else:
        continue
    if fragment:
        fragments[names.get(protocol, str(protocol))] += 1
    elif protocol == 6:
        tcp, largest = tcp + 1, max(largest, length)
print("tcp", tcp, largest)
for name in ("tcp", "udp", "icmp", "icmpv6"):
    print(name, "fragments", fragments[name])
"#;

/// The Python programs above, as files anyone can read, in a directory that
/// lives as long as the first value; the second is the script's preamble that
/// names them: `$PY` runs Python, `$D` is the directory.
fn programs() -> (TempDir, String) {
    let dir = TempDir::new("fragmentation");
    for (name, text) in [
        ("udp_receiver.py", UDP_RECEIVER),
        ("udp_sender.py", UDP_SENDER),
        ("tcp_holder.py", TCP_HOLDER),
        ("segment_sizes.py", SEGMENT_SIZES),
        ("tcp_source.py", TCP_SOURCE),
        ("tcp_sink.py", TCP_SINK),
        ("pcap_fragments.py", PCAP_FRAGMENTS),
    ] {
        dir.write(name, text.as_bytes(), 0o644);
    }
    let preamble = format!("PY='{}'\nD='{}'\n", python(), path_str(dir.path()));
    (dir, preamble)
}

/// `on_b CMD...` runs CMD on lwip1, the "other host" of [`on_two_linux_hosts`].
const ON_LWIP1: &str = "on_b() { \"$N\" stack lwip1 -- \"$@\"; }\n";

/// Runs `script` in a session (default stack lwip0) as `user`, with `on_b` of
/// [`ON_LWIP1`] and `listening` of [`PRELUDE`](common::PRELUDE).
fn on_lwip0(user: User, script: &str) -> Output {
    session(user, &format!("{ON_LWIP1}{script}"))
}

/// `ping`'s reply lines and its summary with the times left out.
const PING_LINES: &str =
    r"sed -nE '/bytes from|transmitted/{s/time=[0-9.]+ ms/time=T/; s/, time [0-9]+ms//; p}'";

/// What [`PING_LINES`] leaves of two replies of 4,008 bytes from `host`.
fn two_big_replies(host: &str) -> String {
    format!(
        "4008 bytes from {host}: icmp_seq=1 ttl=64 time=T\n\
         4008 bytes from {host}: icmp_seq=2 ttl=64 time=T\n\
         2 packets transmitted, 2 received, 0% packet loss\n"
    )
}

#[test]
fn a_4000_byte_ping_gets_its_replies_from_the_other_stack_and_the_router() {
    let ping = |hosts: &[&str]| {
        hosts
            .iter()
            .map(|host| format!("ping -c 2 -i 0.2 -s 4000 {host} | {PING_LINES}\n"))
            .collect::<String>()
    };
    let between_hosts = ["10.0.0.3", "fd00::3"];
    let expected: String = between_hosts.iter().map(|host| two_big_replies(host)).collect();
    for user in USERS {
        let output = session(user, &ping(&between_hosts));
        output.assert_code(0);
        assert_eq!(output.stdout, expected, "{user:?}\n{output}");
        let output = session(user, &ping(&["10.0.0.1", "fd00::1"]));
        output.assert_code(0);
        let expected = two_big_replies("10.0.0.1") + &two_big_replies("fd00::1");
        assert_eq!(output.stdout, expected, "{user:?}\n{output}");
    }
    if let Some(native) = on_two_linux_hosts(&ping(&between_hosts)) {
        native.assert_code(0);
        assert_eq!(native.stdout, expected, "Linux itself says otherwise\n{native}");
    }
}

/// Asserts what `ping -c 2 -M do -s 2000` printed: two local errors naming the
/// MTU as `mtu` (`mtu=1500` or `mtu: 1500`) and no reply.
fn assert_two_local_errors(output: &Output, mtu: &str, who: &str) {
    output.assert_code(1);
    let error = format!("ping: local error: message too long, {mtu}\n");
    assert_eq!(output.stderr, error.repeat(2), "{who}\n{output}");
    assert!(
        output.stdout.contains("2 packets transmitted, 0 received, +2 errors, 100% packet loss"),
        "{who}: no such summary\n{output}"
    );
}

#[test]
fn ping_with_dont_fragment_beyond_the_mtu_gets_a_local_error_naming_it() {
    let cases = [
        ("ping -c 2 -i 0.2 -M do -s 2000 10.0.0.3", "mtu=1500"),
        ("ping -6 -c 2 -i 0.2 -M do -s 2000 fd00::3", "mtu: 1500"),
    ];
    for (ping, mtu) in cases {
        for user in USERS {
            assert_two_local_errors(&session(user, ping), mtu, &format!("{user:?}"));
        }
        if let Some(native) = on_two_linux_hosts(ping) {
            assert_two_local_errors(&native, mtu, "Linux itself says otherwise");
        }
    }
}

/// The sizes sent to `host`: around one Ethernet frame's payload, several
/// frames, and the largest a datagram can be.
fn datagram_sizes(host: &str) -> String {
    let largest = if host.contains(':') { 65527 } else { 65507 };
    format!("1472 1473 4000 20000 32768 {largest}")
}

#[test]
fn udp_datagrams_up_to_the_largest_cross_stacks_whole_and_in_order() {
    let (_dir, preamble) = programs();
    for user in USERS {
        for host in ["10.0.0.3", "fd00::3"] {
            let sizes = datagram_sizes(host);
            let count = sizes.split(' ').count();
            let script = format!(
                "{preamble}\
                 on_b \"$PY\" \"$D/udp_receiver.py\" {host} 9999 {count} & receiver=$!\n\
                 listening udp 9999\n\
                 \"$PY\" \"$D/udp_sender.py\" {host} 9999 {sizes}\n\
                 wait $receiver"
            );
            let output = on_lwip0(user, &script);
            output.assert_code(0);
            let sent: Vec<&str> =
                output.stdout.lines().filter_map(|l| l.strip_prefix("sent ")).collect();
            let received: Vec<&str> =
                output.stdout.lines().filter(|l| !l.starts_with("sent ")).collect();
            assert_eq!(sent.len(), count, "{user:?} {host}: not everything was sent\n{output}");
            assert_eq!(received, sent, "{user:?} {host}: what arrived differs\n{output}");
        }
    }
}

#[test]
fn iperf3_udp_with_32_kib_datagrams_gets_them_across() {
    if Command::new("iperf3").arg("--version").output().is_err() {
        return skip("needs iperf3");
    }
    let script = r#"
        "$N" stack lwip1 -- iperf3 -s -1 >/dev/null & server=$!
        listening tcp 5201
        iperf3 -c 10.0.0.3 -u -l 32K -b 20M -t 1 -J
        wait $server"#;
    for user in USERS {
        let output = session(user, script);
        output.assert_code(0);
        let report: Value = serde_json::from_str(&output.stdout)
            .unwrap_or_else(|e| panic!("{user:?}: iperf3 -J printed no JSON ({e})\n{output}"));
        let received = &report["end"]["sum_received"];
        let packets = received["packets"].as_u64().unwrap_or(0);
        let lost = received["lost_percent"].as_f64().unwrap_or(100.0);
        assert!(packets > 0 && lost < 50.0, "{user:?}: the receiver's sum is {received}\n{output}");
    }
}

/// What [`SEGMENT_SIZES`] prints against a listener on 10.0.0.3 and fd00::3
/// across an MTU of 1500 (timestamps take 12 bytes of each segment).
const EXPECTED_SEGMENT_SIZES: &str = "unconnected: ENOTCONN 107\n10.0.0.3 1448 1500\n\
    unconnected: ENOTCONN 107\nfd00::3 1428 1500\n";

#[test]
fn tcp_maxseg_and_ip_mtu_of_a_connection_across_stacks_follow_the_mtu() {
    let (_dir, preamble) = programs();
    let script = format!(
        "{preamble}\
         on_b \"$PY\" \"$D/tcp_holder.py\" 9998 2 & holder=$!\n\
         listening tcp 9998\n\
         \"$PY\" \"$D/segment_sizes.py\" 10.0.0.3 fd00::3\n\
         wait $holder"
    );
    for user in USERS {
        let output = on_lwip0(user, &script);
        output.assert_code(0);
        assert_eq!(output.stdout, EXPECTED_SEGMENT_SIZES, "{user:?}\n{output}");
    }
    if let Some(native) = on_two_linux_hosts(&script) {
        native.assert_code(0);
        assert_eq!(native.stdout, EXPECTED_SEGMENT_SIZES, "Linux itself says otherwise\n{native}");
    }
}

/// [`narrow_hop`] in a directory that lives as long as the first value.
fn narrow() -> (TempDir, String) {
    let dir = TempDir::new("narrow");
    let path = dir.write("modules.toml", narrow_hop(Some(1280)).as_bytes(), 0o644);
    let path = path_str(&path).to_owned();
    (dir, path)
}

/// Asserts that `output` has at least two replies of 1,408 bytes from `host`.
fn assert_replies_through_the_narrow_port(output: &Output, host: &str, who: &str) {
    let reply = format!("1408 bytes from {host}: ");
    let replies = output.stdout.lines().filter(|l| l.starts_with(&reply)).count();
    assert!(replies >= 2, "{who}: {replies} replies from {host}\n{output}");
}

#[test]
fn a_1400_byte_ping_through_a_narrower_router_port_gets_through_once_the_path_mtu_is_learnt() {
    let (_dir, config) = narrow();
    for user in USERS {
        // One session for each: see the test below for why.
        for host in ["10.2.0.2", "fd02::2"] {
            let output = session_with(
                user,
                &["--config", &config],
                &format!("ping -c 3 -i 0.2 -s 1400 {host}"),
            );
            assert_replies_through_the_narrow_port(&output, host, &format!("{user:?}"));
        }
    }
}

#[test]
fn a_1400_byte_ping_over_ipv6_right_after_one_over_ipv4_gets_through_the_narrower_port() {
    let (_dir, config) = narrow();
    let script = "ping -c 3 -i 0.2 -s 1400 10.2.0.2; ping -c 3 -i 0.2 -s 1400 fd02::2";
    for user in USERS {
        let output = session_with(user, &["--config", &config], script);
        for host in ["10.2.0.2", "fd02::2"] {
            assert_replies_through_the_narrow_port(&output, host, &format!("{user:?}"));
        }
    }
}

/// A session on [`narrow_hop`] (with `run_args` as well) in which a client on `a`
/// reads 3,000,000 random bytes from a server on `b`, over IPv4 then IPv6, and
/// then pings `b` with 3,000 bytes. Both ends print TCP_MAXSEG ("server maxseg
/// HOST N", "client maxseg HOST N"), the server "stream LEN SHA256" of what it
/// sent and the client "received stream LEN SHA256" of what came.
fn transfer_through_the_narrow_port(user: User, run_args: &[&str]) -> Output {
    let (_dir, config) = narrow();
    let (_programs, preamble) = programs();
    let script = format!(
        "{preamble}\
         for pair in \"10.2.0.2 7000\" \"fd02::2 7001\"; do\n\
             set -- $pair\n\
             \"$N\" stack b -- \"$PY\" \"$D/tcp_source.py\" $1 $2 3000000 & server=$!\n\
             listening tcp $2 || exit 1\n\
             \"$PY\" \"$D/tcp_sink.py\" $1 $2 || kill $server\n\
             wait $server\n\
         done\n\
         ping -c 1 -s 3000 10.2.0.2"
    );
    let mut args = vec!["--config", &config];
    args.extend_from_slice(run_args);
    let output = session_with(user, &args, &script);
    output.assert_code(0);
    output
}

/// Asserts that `output` has the line `line`, naming `user` if not.
fn assert_has_line(output: &Output, line: &str, user: User) {
    assert!(output.stdout.lines().any(|l| l == line), "{user:?}: no line {line:?}\n{output}");
}

#[test]
fn tcp_through_a_narrower_router_port_is_intact_and_needs_no_fragment_where_ping_does() {
    for user in USERS {
        let captures = TempDir::new("narrow-pcap");
        // The session's user writes the captures.
        std::fs::set_permissions(captures.path(), std::fs::Permissions::from_mode(0o777))
            .expect("chmod");
        let output = transfer_through_the_narrow_port(user, &["--pcap", path_str(captures.path())]);

        let served: Vec<&str> =
            output.stdout.lines().filter(|l| l.starts_with("stream ")).collect();
        let received: Vec<&str> =
            output.stdout.lines().filter_map(|l| l.strip_prefix("received ")).collect();
        assert_eq!(served.len(), 2, "{user:?}: not both streams were served\n{output}");
        assert_eq!(received, served, "{user:?}: what arrived differs\n{output}");
        // The server's segments fit its own link of 1280 (less 12 bytes of
        // timestamps, as Linux counts them).
        assert_has_line(&output, "server maxseg 10.2.0.2 1228", user);
        assert_has_line(&output, "server maxseg fd02::2 1208", user);
        assert!(output.stdout.contains("3008 bytes from 10.2.0.2: "), "{user:?}\n{output}");

        let far = captures.path().join("gw-far.pcap");
        let mut count = Command::new(python());
        count.arg("-c").arg(PCAP_FRAGMENTS).arg(&far);
        let counted = run(count);
        counted.assert_code(0);
        let lines: Vec<&str> = counted.stdout.lines().collect();
        let [tcp, tcp_fragments, udp_fragments, icmp_fragments, icmpv6_fragments] = lines[..]
        else {
            panic!("{user:?}: unexpected count of {}\n{counted}", far.display());
        };
        let tcp: Vec<u64> = tcp.split(' ').skip(1).map(|n| n.parse().expect("a number")).collect();
        // Two streams of 3,000,000 bytes in segments of at most 1,240 bytes.
        assert!(tcp[0] > 2 * 2400, "{user:?}: only {} TCP packets on the far link", tcp[0]);
        assert!(tcp[1] <= 1280, "{user:?}: a TCP packet of {} bytes on the far link", tcp[1]);
        assert_eq!(tcp_fragments, "tcp fragments 0", "{user:?}\n{counted}");
        assert_eq!(udp_fragments, "udp fragments 0", "{user:?}\n{counted}");
        assert_eq!(icmpv6_fragments, "icmpv6 fragments 0", "{user:?}\n{counted}");
        let icmp: u64 = icmp_fragments.rsplit(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0);
        // 3,028 bytes cut for 1,280: three fragments each way at least.
        assert!(icmp >= 6, "{user:?}: the ping left {icmp} fragments on the far link\n{counted}");
    }
}

#[test]
fn a_client_across_a_narrower_router_port_says_the_servers_tcp_maxseg() {
    for user in USERS {
        let output = transfer_through_the_narrow_port(user, &[]);
        assert_has_line(&output, "client maxseg 10.2.0.2 1228", user);
        assert_has_line(&output, "client maxseg fd02::2 1208", user);
    }
}
