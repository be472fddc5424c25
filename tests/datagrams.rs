//! Datagrams that cross the network, as between two Linux hosts:
//! - `IP_PKTINFO` and `IPV6_RECVPKTINFO` name the address each datagram was
//!   sent to and its interface (every DNS server answers from it); the
//!   differential suite (`udp_pktinfo`) checks the same within one stack;
//! - `IP_RECVTTL` and `IPV6_RECVHOPLIMIT` give the TTL the datagram arrived
//!   with;
//! - a datagram sent just before its socket closes still leaves, even when it
//!   must wait for a neighbour to be resolved first;
//! - a datagram for a receiver that has just closed reaches the next socket
//!   bound to its port.

mod common;

use common::{TempDir, USERS, compile_probe, on_two_linux_hosts, path_str, python, session};

/// A UDP server bound to the wildcard, v4 (port 9797) and v6 (9798), that asks for each
/// datagram's destination and prints it with its interface.
const SERVER: &str = r#"
import socket, struct
v4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); v4.bind(("0.0.0.0", 9797))
v4.setsockopt(socket.IPPROTO_IP, 8, 1)  # IP_PKTINFO
v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1); v6.bind(("::", 9798))
v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
lines = []
for s in (v4, v6):
    d, anc, flags, frm = s.recvmsg(100, 256)
    for level, kind, data in anc:
        if s is v4:
            index, spec, dst = struct.unpack("i4s4s", data[:12])
            lines.append("v4 cmsg %d %d %d %s %s" % (level, kind, index,
                         socket.inet_ntoa(spec), socket.inet_ntoa(dst)))
        else:
            index, = struct.unpack("i", data[16:20])
            lines.append("v6 cmsg %d %d %d %s" % (level, kind, index,
                         socket.inet_ntop(socket.AF_INET6, data[:16])))
    lines.append("flags %d" % flags)
print("\n".join(lines))
"#;

/// The client: one datagram to each of the other host's addresses.
const CLIENT: &str = r#"
import socket
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"4", ("10.0.0.3", 9797))
socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).sendto(b"6", ("fd00::3", 9798))
"#;

const EXPECTED: &str =
    "v4 cmsg 0 8 2 10.0.0.3 10.0.0.3\nflags 0\nv6 cmsg 41 50 2 fd00::3\nflags 0\n";

#[test]
fn pktinfo_names_the_address_a_datagram_from_another_host_was_sent_to() {
    assert_server_prints_as_on_linux(SERVER, EXPECTED);
}

/// Runs `server` (a Python UDP server on ports 9797 and 9798) on lwip1 and
/// [`CLIENT`] on lwip0, as each user, and on two Linux hosts (as root): the
/// server prints `expected` each time.
fn assert_server_prints_as_on_linux(server: &str, expected: &str) {
    let dir = TempDir::new("datagrams");
    let server = dir.write("server.py", server.as_bytes(), 0o644);
    let client = dir.write("client.py", CLIENT.as_bytes(), 0o644);
    let script = format!(
        "on_b {py} {server} & listening udp 9797 && listening udp 9798 || exit 1\n\
         {py} {client}; wait",
        py = python(),
        server = path_str(&server),
        client = path_str(&client),
    );
    assert_prints_as_on_linux(&script, expected);
}

/// Runs `script` with lwip0 and lwip1 as the two hosts (`on_b` runs a command on
/// lwip1), as each user, and on two Linux hosts (as root): it prints `expected`
/// each time.
fn assert_prints_as_on_linux(script: &str, expected: &str) {
    for user in USERS {
        let output =
            session(user, &format!("on_b() {{ \"$N\" stack lwip1 -- \"$@\"; }}\n{script}"));
        output.assert_code(0);
        assert_eq!(output.stdout, expected, "{user:?}\n{output}");
    }
    if let Some(native) = on_two_linux_hosts(script) {
        native.assert_code(0);
        assert_eq!(native.stdout, expected, "Linux itself says otherwise\n{native}");
    }
}

/// Sends one datagram to each address given (`HOST PORT` pairs) and exits at
/// once: the socket closes before the neighbour answers.
const SEND_AND_GO: &str = r#"
import socket, sys
args = sys.argv[1:]
for host, port in zip(args[::2], args[1::2]):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    socket.socket(family, socket.SOCK_DGRAM).sendto(b"x", (host, int(port)))
"#;

#[test]
fn a_datagram_sent_just_before_its_socket_closes_still_arrives() {
    let dir = TempDir::new("send-and-go");
    let receiver = dir.write("receiver.py", SERVER.as_bytes(), 0o644);
    let sender = dir.write("sender.py", SEND_AND_GO.as_bytes(), 0o644);
    // Both addresses at once: the second neighbour is resolved a second later
    // (smoltcp asks for one neighbour at a time), long after the sender left.
    let script = format!(
        "\"$N\" stack lwip1 -- {py} {receiver} & listening udp 9797 && listening udp 9798 || exit 1\n\
         {py} {sender} 10.0.0.3 9797 fd00::3 9798; wait",
        py = python(),
        receiver = path_str(&receiver),
        sender = path_str(&sender),
    );
    for user in USERS {
        let output = session(user, &script);
        output.assert_code(0);
        assert_eq!(output.stdout, EXPECTED, "{user:?}\n{output}");
    }
}

/// A UDP server bound to the wildcard, v4 (9797) and v6 (9798), that asks for
/// each datagram's TTL (hop limit) and prints it.
const TTL_SERVER: &str = r#"
import socket, struct
v4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); v4.bind(("0.0.0.0", 9797))
v4.setsockopt(socket.IPPROTO_IP, 12, 1)  # IP_RECVTTL
v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1); v6.bind(("::", 9798))
v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
for s in (v4, v6):
    d, anc, flags, frm = s.recvmsg(100, 256)
    print(*[(level, kind, struct.unpack("i", data)[0]) for level, kind, data in anc])
"#;

#[test]
fn recvttl_gives_the_ttl_a_datagram_from_another_host_arrived_with() {
    assert_server_prints_as_on_linux(TTL_SERVER, "(0, 2, 64)\n(41, 52, 64)\n");
}

/// glibc's resolver sends its A and AAAA queries in one `sendmmsg` on a
/// connected socket, and gives up on the socket unless each header's
/// `msg_len` is its query's length: the lengths must reach the program's own
/// headers, not only netvm's copies of them. Found by the uplink's tests
/// (`curl http://NAME/` could not resolve).
#[test]
fn sendmmsg_gives_each_message_its_length() {
    let probe = compile_probe("sendmmsg_lengths");
    let expected = "connected sent 2 lengths 3 5\naddressed sent 2 lengths 3 5\n";
    for user in USERS {
        let script = format!(
            "\"$N\" stack lwip1 -- socat -u UDP-RECVFROM:9799,fork OPEN:/dev/null & \
             listening udp 9799 || exit 1; '{}' 10.0.0.3 9799; kill $!",
            path_str(&probe)
        );
        let output = session(user, &script);
        output.assert_code(0);
        assert_eq!(output.stdout, expected, "{user:?}\n{output}");
    }
}

/// Two UDP sockets on port 9797 of lwip1 (`SO_REUSEADDR`): one bound to
/// 10.0.0.3, which Linux prefers, and one to the wildcard. The first closes
/// (which netvm learns of only later) and then a datagram arrives from lwip0.
/// It must reach the wildcard's socket, as on Linux. A guard for delivery,
/// which finds a receiver's carrier gone by the kernel's refusal of its name
/// and then tries the next (before, a probe socket per datagram told).
const CLOSED_PREFERRED: &str = r#"
import socket
def bound(address):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((address, 9797))
    return s
wildcard, preferred = bound("0.0.0.0"), bound("10.0.0.3")
preferred.close()
ready = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
ready.bind(("0.0.0.0", 9798))  # for the script: the preferred one is closed
wildcard.settimeout(10)
print(wildcard.recv(100).decode())
"#;

#[test]
fn a_datagram_for_a_closed_preferred_receiver_reaches_the_next() {
    let dir = TempDir::new("closed-preferred");
    let server = dir.write("server.py", CLOSED_PREFERRED.as_bytes(), 0o644);
    let client = dir.write("client.py", SEND_AND_GO.as_bytes(), 0o644);
    let script = format!(
        "on_b {py} {server} & listening udp 9798 || exit 1\n\
         {py} {client} 10.0.0.3 9797; wait",
        py = python(),
        server = path_str(&server),
        client = path_str(&client),
    );
    assert_prints_as_on_linux(&script, "x\n");
}
