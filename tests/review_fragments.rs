//! A hostile review of fragmentation, path MTU and the datagram changes that
//! came with them (fragment.rs, path_mtu.rs, the router's MTUs, net.rs's
//! `Wire` and `Role::Draining`, IP_PMTUDISC_DO, IP_PKTINFO). Each test states
//! what Linux does (checked with two network namespaces joined by a veth, see
//! the expected lines); each failed before its fix:
//!
//! - a program that closed UDP sockets right after sending to a neighbour that
//!   never answers made the supervisor hold every closed socket's datagrams
//!   for 3 s, outside any budget (now at most Linux's 212,992 bytes wait);
//! - `IP_PMTUDISC_DO` was enforced only for `sendto` with an address: not for a
//!   connected socket's `sendmsg`, not for `IP_PMTUDISC_PROBE`, and, on an IPv6
//!   socket sending to an IPv4 address, by the IPv6 option instead of the IPv4
//!   one;
//! - `IP_PKTINFO`/`IPV6_PKTINFO` named the stack's first address, not the
//!   secondary address a datagram was sent to;
//! - on a link whose MTU a program set to 68, TCP_MAXSEG went negative over
//!   IPv6 and differed over IPv4;
//! - the reassembly limit of 4 MiB counted fragment bytes, not what holding
//!   them costs: tiny fragments made it hold many times more.
//!
//! Three stay `#[ignore]`d with their reasons: a connected socket's plain
//! `send` (the carrier's), TCP in fragments after a path MTU report, and IPv6
//! on a link below 1280 bytes.

mod common;

use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    Session, TempDir, USERS, User, narrow_hop, netvm_as, path_str, python, run, session,
    session_with,
};
use netvm::modules::vunet::network::fragment::Reassembly;

/// Creates `COUNT` UDP sockets; each sends `PER` datagrams of `SIZE` bytes to
/// `HOST` port 9 and is closed at once. Prints "flooded" when done.
const DRAIN_FLOOD: &str = r#"
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
int main(int argc, char **argv) {
    int count = atoi(argv[1]), per = atoi(argv[2]), size = atoi(argv[3]);
    static char buf[65507];
    memset(buf, 'x', sizeof buf);
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(9) };
    inet_pton(AF_INET, argv[4], &to.sin_addr);
    for (int i = 0; i < count; i++) {
        int s = socket(AF_INET, SOCK_DGRAM, 0);
        if (s < 0) { perror("socket"); return 1; }
        for (int j = 0; j < per; j++)
            sendto(s, buf, size, 0, (struct sockaddr *)&to, sizeof to);
        close(s);
    }
    printf("flooded\n");
    fflush(stdout);
    return 0;
}
"#;

/// The peak resident memory (VmHWM) of process `pid`, in KiB.
fn peak_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM");
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("a number")
}

/// The peak memory of a session's supervisor after 2,000 UDP sockets each sent
/// 4 datagrams of 60,000 bytes to `host` and closed.
fn supervisor_peak_after_a_flood_to(host: &str) -> u64 {
    let dir = TempDir::new("drain-flood");
    let source = dir.write("flood.c", DRAIN_FLOOD.as_bytes(), 0o644);
    let program = dir.path().join("flood");
    let built = Command::new("cc").arg("-O1").arg("-o").arg(&program).arg(&source).output();
    assert!(built.expect("run cc").status.success(), "cc failed");
    let script = format!("{} 2000 4 60000 {host}; sleep 1", path_str(&program));
    let mut session = Session::spawn(netvm_as(User::Invoker, &["run", "--", "sh", "-c", &script]));
    assert_eq!(session.next_line(), "flooded");
    let peak = peak_kib(session.pid().as_raw());
    session.finish().assert_code(0);
    peak
}

/// Linux keeps what waits for an unresolved neighbour in the neighbour's queue
/// (`unres_qlen_bytes`, 212,992 bytes by default), whatever the number of
/// sockets that sent it. netvm keeps each closed socket's cell, with its
/// 256 KiB send buffer, for up to DIAL_TIMEOUT (3 s) after the close
/// (`Role::Draining`, set in `NetHost::close_udp`), and the socket's descriptor
/// budget is given back at the close: 2,000 sockets sending 240 KB each to
/// 10.0.0.99 (nobody) took the supervisor to ~565 MB, against ~30 MB for the
/// same flood to 10.0.0.3 (resolved at once).
#[test]
fn closing_udp_sockets_whose_datagrams_wait_for_a_missing_neighbour_does_not_pile_up_memory() {
    if !common::is_root() {
        common::skip("reads the supervisor's /proc status");
        return;
    }
    let resolved = supervisor_peak_after_a_flood_to("10.0.0.3");
    let unresolved = supervisor_peak_after_a_flood_to("10.0.0.99");
    assert!(
        unresolved < resolved + 100 * 1024,
        "the supervisor peaked at {} MiB flooding a missing neighbour, {} MiB a present one",
        unresolved / 1024,
        resolved / 1024
    );
}

/// For each case, sends one datagram just too large for the 1500-byte path and
/// prints what the call said. Each case uses a fresh socket.
const PMTU_CASES: &str = r#"
import errno, os, socket, sys
IP_MTU_DISCOVER, IPV6_MTU_DISCOVER, DO, PROBE = 10, 23, 2, 3
A4, A6, IP, IP6 = socket.AF_INET, socket.AF_INET6, socket.IPPROTO_IP, socket.IPPROTO_IPV6
CASES = {
    "v4-do-sendto": (A4, IP, DO, ("10.0.0.3", 9), 1473, False),
    "v4-do-send-connected": (A4, IP, DO, ("10.0.0.3", 9), 1473, True),
    "v6-do-send-connected": (A6, IP6, DO, ("fd00::3", 9), 1453, True),
    "v4-do-sendmsg-connected": (A4, IP, DO, ("10.0.0.3", 9), 1473, True),
    "v6-do-sendmsg-connected": (A6, IP6, DO, ("fd00::3", 9), 1453, True),
    "v4-probe-sendto": (A4, IP, PROBE, ("10.0.0.3", 9), 1473, False),
    "v6-probe-sendto": (A6, IP6, PROBE, ("fd00::3", 9), 1453, False),
    "v6sock-ipv6-do-to-mapped": (A6, IP6, DO, ("::ffff:10.0.0.3", 9), 1473, False),
    "v6sock-ip-do-to-mapped": (A6, IP, DO, ("::ffff:10.0.0.3", 9), 1473, False),
}
for name in sys.argv[1:]:
    family, level, value, to, size, connected = CASES[name]
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.setsockopt(level, IP_MTU_DISCOVER if level == IP else IPV6_MTU_DISCOVER, value)
    try:
        if connected:
            s.connect(to)
            send = s.sendmsg if "sendmsg" in name else lambda b: s.send(b[0])
            n = send([b"x" * size])
        else:
            n = s.sendto(b"x" * size, to)
        print(name, "sent", n)
    except OSError as e:
        print(name, errno.errorcode[e.errno])
    s.close()
"#;

/// Runs [`PMTU_CASES`] on lwip0 for `cases` as each user and asserts Linux's
/// answers, `expected` (one line per case).
fn assert_pmtu_cases(cases: &[&str], expected: &str) {
    let dir = TempDir::new("pmtu");
    let program = dir.write("pmtu.py", PMTU_CASES.as_bytes(), 0o644);
    let script = format!("{} {} {}", python(), path_str(&program), cases.join(" "));
    for user in USERS {
        let output = session(user, &script);
        output.assert_code(0);
        assert_eq!(output.stdout, expected, "{user:?}\n{output}");
    }
}

/// Linux (`__ip_append_data`, `ip6_append_data`) refuses a datagram larger
/// than the path whatever the call: `sendmsg` on a connected socket too (netvm
/// checked only calls that name an address), so QUIC-style connected sockets
/// learn that their probe was too large.
#[test]
fn ip_pmtudisc_do_refuses_an_oversized_sendmsg_on_a_connected_udp_socket() {
    assert_pmtu_cases(
        &["v4-do-sendto", "v4-do-sendmsg-connected", "v6-do-sendmsg-connected"],
        "v4-do-sendto EMSGSIZE\nv4-do-sendmsg-connected EMSGSIZE\nv6-do-sendmsg-connected EMSGSIZE\n",
    );
}

/// The same with a plain `send`, which runs natively on the carrier.
#[test]
#[ignore = "carrier: send() on a connected UDP socket runs natively on the AF_UNIX carrier, \
            which cannot refuse it for its size: IP_PMTUDISC_DO sends it in fragments \
            (Linux: EMSGSIZE); sendmsg and sendto are refused"]
fn ip_pmtudisc_do_refuses_an_oversized_send_on_a_connected_udp_socket() {
    assert_pmtu_cases(
        &["v4-do-send-connected", "v6-do-send-connected"],
        "v4-do-send-connected EMSGSIZE\nv6-do-send-connected EMSGSIZE\n",
    );
}

/// `IP_PMTUDISC_PROBE` (what quinn and msquic set) ignores the learnt path
/// MTU but still refuses what exceeds the link's (`ip_sk_ignore_df` is false
/// for it): EMSGSIZE on Linux; netvm's `refuse_oversize` only knows `DO`.
#[test]
fn ip_pmtudisc_probe_refuses_a_datagram_larger_than_the_link() {
    assert_pmtu_cases(
        &["v4-probe-sendto", "v6-probe-sendto"],
        "v4-probe-sendto EMSGSIZE\nv6-probe-sendto EMSGSIZE\n",
    );
}

/// An IPv6 socket sending to a v4-mapped address goes through IPv4's UDP on
/// Linux, which looks at the IPv4 option (`inet->pmtudisc`): IPV6_MTU_DISCOVER
/// does not forbid fragments there, IP_MTU_DISCOVER does. netvm's
/// `refuse_oversize` reads `ip_option(IP_MTU_DISCOVER, IPV6_MTU_DISCOVER)`,
/// which picks by the socket's family: the other way round.
#[test]
fn an_ipv6_socket_sending_to_a_mapped_ipv4_address_obeys_the_ipv4_pmtu_option() {
    assert_pmtu_cases(
        &["v6sock-ipv6-do-to-mapped", "v6sock-ip-do-to-mapped"],
        "v6sock-ipv6-do-to-mapped sent 1473\nv6sock-ip-do-to-mapped EMSGSIZE\n",
    );
}

/// The built-in configuration with a second address (IPv4 and IPv6) on
/// lwip0's interface.
fn two_addresses() -> (TempDir, String) {
    let builtin = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/modules.toml"))
        .expect("modules.toml");
    let first = r#"addresses = ["10.0.0.2/24", "fd00::2/64"]"#;
    assert!(builtin.contains(first));
    let both = r#"addresses = ["10.0.0.2/24", "fd00::2/64", "10.0.0.20/24", "fd00::20/64"]"#;
    let dir = TempDir::new("two-addresses");
    let path = dir.write("modules.toml", builtin.replacen(first, both, 1).as_bytes(), 0o644);
    let path = path_str(&path).to_owned();
    (dir, path)
}

/// A server on the wildcard (v4 port 9797, v6 9798) printing each datagram's
/// IP_PKTINFO / IPV6_PKTINFO.
const PKTINFO_SERVER: &str = r#"
import socket, struct
v4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); v4.bind(("0.0.0.0", 9797))
v4.setsockopt(socket.IPPROTO_IP, 8, 1)
v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1); v6.bind(("::", 9798))
v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
for s in (v4, v6):
    s.settimeout(10)
    d, anc, flags, frm = s.recvmsg(100, 256)
    for level, kind, data in anc:
        if s is v4:
            index, spec, dst = struct.unpack("i4s4s", data[:12])
            print("v4 pktinfo", index, socket.inet_ntoa(spec), socket.inet_ntoa(dst))
        else:
            index, = struct.unpack("i", data[16:20])
            print("v6 pktinfo", index, socket.inet_ntop(socket.AF_INET6, data[:16]))
"#;

/// Linux names the address in the datagram's header (and answers from it:
/// every DNS server relies on this). netvm's `SmoltcpStack::pktinfo` guesses
/// the route's source back to the sender, which is the first address:
/// "10.0.0.2 10.0.0.2" and "fd00::2". The cell that received the datagram
/// knows its destination (smoltcp's `UdpMetadata::local_address`).
#[test]
fn pktinfo_names_the_secondary_address_a_datagram_was_sent_to() {
    let (_config, config) = two_addresses();
    let dir = TempDir::new("pktinfo2");
    let server = dir.write("server.py", PKTINFO_SERVER.as_bytes(), 0o644);
    let py = python();
    let script = format!(
        "{py} {server} & listening udp 9797 && listening udp 9798 || exit 1\n\
         \"$N\" stack lwip1 -- {py} -c 'import socket\n\
         socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b\"4\", (\"10.0.0.20\", 9797))\n\
         socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).sendto(b\"6\", (\"fd00::20\", 9798))'\n\
         wait",
        server = path_str(&server),
    );
    for user in USERS {
        let output = session_with(user, &["--config", &config], &script);
        output.assert_code(0);
        assert_eq!(
            output.stdout, "v4 pktinfo 2 10.0.0.20 10.0.0.20\nv6 pktinfo 2 fd00::20\n",
            "{user:?}\n{output}"
        );
    }
}

/// Serves `SIZE` bytes to one client on `HOST PORT`.
const TCP_SOURCE: &str = r#"
import socket, sys
host, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
s.bind((host, port)); s.listen(1)
c, _ = s.accept()
c.sendall(b"t" * size); c.close()
"#;

/// Reads all `HOST PORT` sends and prints how much.
const TCP_SINK: &str = r#"
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
n = 0
while chunk := s.recv(65536):
    n += len(chunk)
print("received", sys.argv[1], n)
"#;

/// Counts IPv4 and IPv6 fragments carrying TCP in a pcap file.
const TCP_FRAGMENTS: &str = r#"
import struct, sys
data = open(sys.argv[1], "rb").read()
order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
pos, count = 24, 0
while pos + 16 <= len(data):
    (captured,) = struct.unpack(order + "I", data[pos + 8 : pos + 12])
    frame = data[pos + 16 : pos + 16 + captured]
    pos += 16 + captured
    ip = frame[14:]
    if frame[12:14] == b"\x08\x00" and ip[9] == 6:
        count += struct.unpack(">H", ip[6:8])[0] & 0x3FFF != 0
    elif frame[12:14] == b"\x86\xdd" and ip[6] == 44 and ip[40] == 6:
        count += 1
print("tcp fragments", count)
"#;

/// Linux lowers a connection's segment size when a router reports a smaller
/// path MTU (`tcp_v4_mtu_reduced`, `tcp_v6_mtu_reduced`) and never fragments
/// TCP. netvm's `Wire::send` cuts each full-size segment (smoltcp still uses
/// the 1460 / 1440 MSS b announced) into fragments for the rest of the
/// connection: ~8,000 TCP fragments on the far link for 2 x 3 MB, and a
/// transfer several times slower.
#[test]
#[ignore = "netvm differs: smoltcp has no way to lower a connection's segment size, so once a \
            router reports a smaller path MTU, a stack's TCP segments go in fragments (intact, \
            slower; Linux lowers the MSS)"]
fn tcp_sends_no_fragment_once_a_router_reports_a_smaller_path_mtu() {
    let dir = TempDir::new("narrow-hop");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let config = dir.write("modules.toml", narrow_hop(None).as_bytes(), 0o644);
    let source = dir.write("source.py", TCP_SOURCE.as_bytes(), 0o644);
    let sink = dir.write("sink.py", TCP_SINK.as_bytes(), 0o644);
    let captures = dir.path().join("pcap");
    std::fs::create_dir(&captures).expect("mkdir");
    std::fs::set_permissions(&captures, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let py = python();
    let script = format!(
        "for pair in \"10.1.0.2 7000\" \"fd01::2 7001\"; do\n\
             set -- $pair\n\
             {py} {source} $1 $2 1000000 & server=$!\n\
             listening tcp $2 || exit 1\n\
             \"$N\" stack b -- {py} {sink} $1 $2 || kill $server; wait\n\
         done",
        source = path_str(&source),
        sink = path_str(&sink),
    );
    let config = path_str(&config);
    let output =
        session_with(User::Invoker, &["--config", config, "--pcap", path_str(&captures)], &script);
    output.assert_code(0);
    assert_eq!(output.stdout, "received 10.1.0.2 1000000\nreceived fd01::2 1000000\n", "{output}");
    let mut count = Command::new(python());
    count.arg("-c").arg(TCP_FRAGMENTS).arg(captures.join("gw-far.pcap"));
    let counted = run(count);
    assert_eq!(counted.stdout, "tcp fragments 0\n", "{counted}");
}

/// Connects to a server on lwip1 over IPv4 then IPv6 and prints TCP_MAXSEG, or
/// the error.
const MAXSEG_CLIENT: &str = r#"
import socket, sys
for host in ("10.0.0.3", "fd00::3"):
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.settimeout(5)
    try:
        s.connect((host, 7001))
        print(host, "maxseg", s.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG))
    except OSError as e:
        print(host, "error", e.strerror)
    s.close()
"#;

/// `ip link set eth0 mtu 68` (the least Linux and netvm take) in the session.
/// Linux then removes IPv6 from the link (below 1280, `addrconf_notify`), so
/// the IPv6 connect fails with ENETUNREACH, and over IPv4 says TCP_MAXSEG 36
/// (its floor of 48 less the timestamps). netvm says 16 over IPv4 and -4 over
/// IPv6: `options.rs` computes `path_mtu - 40 - 32` with no floor.
#[test]
#[ignore = "netvm differs: a link's MTU below 1280 does not take IPv6 off it (Linux: the IPv6 \
            connect is ENETUNREACH); the IPv4 half holds, see the test below"]
fn tcp_maxseg_over_a_68_byte_link_is_never_negative_and_ipv6_leaves_the_link() {
    assert_eq!(
        maxseg_over_a_68_byte_link(),
        "10.0.0.3 maxseg 36\nfd00::3 error Network is unreachable\n"
    );
}

/// Linux never lets the segment size fall below 48 bytes (`TCP_MIN_SND_MSS`),
/// less the 12 of timestamps: 36 over a 68-byte link, where netvm said 16
/// (and -4 over IPv6).
#[test]
fn tcp_maxseg_over_a_68_byte_link_is_linuxs_least() {
    let output = maxseg_over_a_68_byte_link();
    assert_eq!(output.lines().next(), Some("10.0.0.3 maxseg 36"), "{output}");
}

/// What the client prints on lwip0 once its link's MTU is 68, against a
/// listener on lwip1.
fn maxseg_over_a_68_byte_link() -> String {
    let dir = TempDir::new("mtu68");
    let client = dir.write("client.py", MAXSEG_CLIENT.as_bytes(), 0o644);
    let py = python();
    let script = format!(
        "\"$N\" stack lwip1 -- {py} -c 'import socket, time\n\
         s = socket.socket(socket.AF_INET6); s.bind((\"::\", 7001)); s.listen(4); time.sleep(8)' & server=$!\n\
         listening tcp 7001 || exit 1\n\
         ip link set eth0 mtu 68 || exit 1\n\
         {py} {client}; kill $server",
        client = path_str(&client),
    );
    session(User::Invoker, &script).stdout
}

/// An IPv4 first fragment (8 bytes of UDP data, "more fragments") from
/// 10.0.0.3 to 10.0.0.2 with identification `ident`.
fn tiny_fragment(ident: u16) -> Vec<u8> {
    let mut packet = vec![0u8; 28];
    packet[0] = 0x45;
    packet[2..4].copy_from_slice(&28u16.to_be_bytes());
    packet[4..6].copy_from_slice(&ident.to_be_bytes());
    packet[6..8].copy_from_slice(&0x2000u16.to_be_bytes());
    packet[8] = 64;
    packet[9] = 17;
    packet[12..16].copy_from_slice(&Ipv4Addr::new(10, 0, 0, 3).octets());
    packet[16..20].copy_from_slice(&Ipv4Addr::new(10, 0, 0, 2).octets());
    packet
}

fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("a number")
}

/// `REASSEMBLY_BYTES` (4 MiB, "Linux's ipfrag_high_thresh") is compared with
/// the fragments' IP bytes (`Partial::bytes`: data and header, 28 bytes for
/// the smallest fragment), while each datagram waiting costs a `HashMap`
/// entry, a `BTreeMap` node, two `Vec`s and an arrival: some 20 times that.
/// Linux counts each fragment's `truesize` (the whole buffer). Every stack
/// interface and the router has its own `Reassembly`, and a stack takes in
/// fragments whatever their IP destination (`take_frame` runs before anything
/// looks at the address), so one program with a packet socket that floods
/// broadcast fragments costs this on every host of its switch.
#[test]
fn the_reassembly_limit_bounds_the_memory_tiny_fragments_cost() {
    let mut reassembly = Reassembly::default();
    let now = Instant::now();
    let before = resident_kib();
    // 28 bytes x 150,000 is 4 MiB: what the limit lets wait at once. (Sources
    // vary so that the 16-bit identification does not repeat.)
    for i in 0..150_000u32 {
        let mut packet = tiny_fragment(i as u16);
        packet[14] = (i >> 16) as u8;
        let at = now + Duration::from_micros(u64::from(i));
        assert_eq!(reassembly.take(packet, at), None);
    }
    let grown = resident_kib().saturating_sub(before);
    drop(reassembly);
    assert!(grown < 16 * 1024, "4 MiB of fragments took {} MiB to hold", grown / 1024);
}
