//! Hostile review of 82abd63..fda95a3 (shadow sockets, raw sockets of every
//! protocol, data calls on unconnected sockets, memberships, SYN retries).
//! Each test failed on the code it was written against.

mod common;

use common::{
    TempDir, User, compile_probe, is_root, netvm_as, path_str, python, run, run_netvm, session,
    skip,
};

/// A root program's `IPT_SO_SET_REPLACE` reaches the supervisor's shadow socket
/// with the program's `ipt_replace` copied verbatim, so its `counters` pointer
/// (where the kernel writes the replaced table's counters) is an address of the
/// *supervisor*: the kernel writes program-chosen 64-bit values there (the
/// program sets them first with `IPT_SO_SET_ADD_COUNTERS`). Pointing it at the
/// supervisor's heap aborts netvm ("malloc(): unaligned tcache chunk detected").
/// Natively the counters land in the program's own buffer.
#[test]
fn iptables_counters_are_never_written_into_the_supervisor() {
    if !is_root() {
        return skip("needs root (CAP_NET_ADMIN) and legacy iptables");
    }
    let probe = compile_probe("review_ipt_counters");
    let dir = TempDir::new("review-ipt");
    let table = dir.path().join("filter.bin");
    let mut dump = std::process::Command::new("unshare");
    dump.args(["-n", path_str(&probe), "dump", path_str(&table)]);
    let dumped = run(dump);
    if dumped.code() != 0 {
        return skip("no legacy iptables filter table here");
    }
    let mut native = std::process::Command::new("unshare");
    native.args(["-n", path_str(&probe), "replace", path_str(&table)]);
    let native = run(native);
    assert!(native.stdout.contains("first counter: 0x4141414141414141"), "{native}");
    let netvm = run_netvm(&["run", "--", path_str(&probe), "replace", path_str(&table)]);
    netvm.assert_code(0);
    assert!(
        netvm.stdout.contains("first counter: 0x4141414141414141")
            || netvm.stdout.contains("SET_REPLACE=-1"),
        "the kernel wrote the counters somewhere in the supervisor, not in the program\n{netvm}"
    );
}

/// `sendmsg` whose iovec lengths overflow an `i64` when summed: the
/// supervisor panics (debug: add with overflow in `total_iov_len`; release:
/// the sum wraps to 10 and `iov_data` allocates 2^63 bytes). Linux: EINVAL.
#[test]
fn iovec_lengths_that_overflow_do_not_panic_the_supervisor() {
    let probe = compile_probe("review_iov_overflow");
    let output = run_netvm(&["run", "--", path_str(&probe)]);
    assert!(!output.stderr.contains("panicked"), "{output}");
    output.assert_code(0);
    assert!(output.stdout.contains("wrapping to 10: -1 EINVAL"), "{output}");
    assert!(output.stdout.contains("still alive"), "{output}");
}

/// A datagram to the stack's own address at a port nobody bound: `sendmsg`
/// queues the port unreachable (IP_RECVERR), `sendmmsg` returns 1 and reports
/// nothing (its `Destination::Silent` skips `refused_by_host`). Linux queues it
/// for both.
#[test]
fn sendmmsg_to_a_silent_port_of_the_host_is_refused_as_sendmsg_is() {
    let probe = compile_probe("review_sendmmsg_refused");
    let output = run_netvm(&["run", "--", path_str(&probe), "mmsg"]);
    output.assert_code(0);
    assert!(output.stdout.contains("sendmmsg: 1"), "{output}");
    assert!(output.stdout.contains("errqueue: 3"), "no port unreachable queued\n{output}");
}

/// Capabilities are per thread, but the shadow's calls are made with the
/// capabilities of the thread group leader: a thread that dropped
/// CAP_NET_ADMIN still sets TCP_REPAIR (Linux: EPERM).
#[test]
fn a_thread_without_the_capability_is_refused() {
    if !is_root() {
        return skip("needs root");
    }
    let probe = compile_probe("review_thread_caps");
    let output = run_netvm(&["run", "--", path_str(&probe)]);
    output.assert_code(0);
    assert!(
        output.stdout.contains("thread without CAP_NET_ADMIN: TCP_REPAIR -1 EPERM"),
        "{output}"
    );
}

/// Multicast membership is judged by the shadow in the supervisor's namespace,
/// which has no eth0 and no 10.0.0.2: ENODEV. A Linux host with eth0
/// 10.0.0.2/24, fd00::2/64 and a default route via 10.0.0.1 says 0 for each.
#[test]
fn multicast_membership_uses_the_stacks_interfaces() {
    let probe = compile_probe("review_multicast");
    let output = run_netvm(&["run", "--", path_str(&probe)]);
    output.assert_code(0);
    for line in [
        "IP_ADD_MEMBERSHIP any 0 ",
        "IP_ADD_MEMBERSHIP 10.0.0.2 0 ",
        "IP_ADD_MEMBERSHIP eth0 0 ",
        "IPV6_ADD_MEMBERSHIP eth0 0 ",
    ] {
        assert!(output.stdout.lines().any(|l| l == line), "no line {line:?}\n{output}");
    }
}

/// Sends an echo request to the gateway on a raw ICMP socket and counts the
/// replies (after `socket(AF_INET6, SOCK_RAW, 1)` if asked: an IPv6 raw socket
/// of next header 1, which makes `open_raw(1)` add a second raw smoltcp socket
/// for ICMP beside the stack's own, so every ICMP packet is delivered twice).
const ECHO_COUNT: &str = r#"
import socket, struct, sys, time, select
def csum(b):
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b)); s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
if len(sys.argv) > 1:
    socket.socket(socket.AF_INET6, socket.SOCK_RAW, 1).close()
r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
h = struct.pack('!BBHHH', 8, 0, 0, 0x1234, 7) + b'hello!'
r.sendto(struct.pack('!BBHHH', 8, 0, csum(h), 0x1234, 7) + b'hello!', ('10.0.0.1', 0))
n, end = 0, time.time() + 1.5
while time.time() < end:
    if select.select([r], [], [], 0.2)[0]:
        d = r.recv(2000)
        if d[20] == 0 and d[24:28] == b'\x12\x34\x00\x07':
            n += 1
print('replies', n)
"#;

#[test]
fn an_ipv6_raw_socket_of_protocol_1_does_not_duplicate_icmp() {
    if !is_root() {
        return skip("raw sockets need root");
    }
    let dir = TempDir::new("review-rawdup");
    let script = dir.write("echo.py", ECHO_COUNT.as_bytes(), 0o644);
    let baseline = run_netvm(&["run", "--", python(), path_str(&script)]);
    baseline.assert_code(0);
    assert_eq!(baseline.stdout, "replies 1\n", "{baseline}");
    let primed = run_netvm(&["run", "--", python(), path_str(&script), "prime"]);
    primed.assert_code(0);
    assert_eq!(primed.stdout, "replies 1\n", "each ICMP packet delivered twice\n{primed}");
}

/// From lwip1: a TCP connect and a connected UDP send to a closed port of
/// lwip0. Once any raw TCP and raw UDP socket was opened on lwip0 (and closed),
/// smoltcp counts every TCP/UDP packet as "handled by a raw socket" (netvm's raw
/// smoltcp sockets are never closed) and sends no RST nor port unreachable any
/// more: the connect fails after 3 s with EHOSTUNREACH, the UDP error never
/// comes. Linux's raw sockets never silence TCP's RST or UDP's unreachable.
const CLOSED_PORT: &str = r#"
import socket, time
s = socket.socket(); s.settimeout(10)
try:
    s.connect(('10.0.0.2', 9)); print('tcp connected')
except OSError as e:
    print('tcp errno', e.errno)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.connect(('10.0.0.2', 9))
u.send(b'x'); time.sleep(0.5)
print('udp error', u.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
"#;

#[test]
fn a_closed_raw_socket_leaves_tcp_resets_and_port_unreachables_alone() {
    if !is_root() {
        return skip("raw sockets need root");
    }
    let dir = TempDir::new("review-rawrst");
    let client = dir.write("client.py", CLOSED_PORT.as_bytes(), 0o644);
    let py = python();
    let script = format!(
        "{py} -c 'import socket as s; s.socket(s.AF_INET, s.SOCK_RAW, s.IPPROTO_TCP).close(); \
         s.socket(s.AF_INET, s.SOCK_RAW, s.IPPROTO_UDP).close()'\n\
         \"$N\" stack lwip1 -- {py} {client}",
        client = path_str(&client)
    );
    let output = session(User::Invoker, &script);
    output.assert_code(0);
    assert_eq!(output.stdout, "tcp errno 111\nudp error 111\n", "{output}");
}

/// An int option's value that ends where the program's memory ends, with a
/// longer length: Linux reads the int and succeeds; the shadow's value was
/// read whole first, and the short read was EFAULT.
#[test]
fn an_option_value_is_read_no_further_than_linux_reads_it() {
    let probe = compile_probe("review_short_value");
    let native = run(std::process::Command::new(&probe));
    native.assert_code(0);
    assert!(native.stdout.contains("length 32: 0"), "{native}");
    let netvm = run_netvm(&["run", "--", path_str(&probe)]);
    netvm.assert_code(0);
    assert_eq!(netvm.stdout, native.stdout, "{netvm}");
}

/// Stack `a` behind router `gw`, whose default route leads to `b`, which
/// answers for nothing beyond itself: a SYN to 192.0.2.1 is retried (the
/// router answers ARP) for 127 s. Each process holds at most 8 descriptors.
fn silent_beyond() -> String {
    let routes = "[[vunet.router.route]]\nto = \"default\"\nvia = \"10.2.0.2\"\n";
    let config = common::narrow_hop(None)
        .replace("default = \"a\"\n", "default = \"a\"\ndescriptors-per-process = 8\n");
    format!("{config}{routes}")
}

/// Non-blocking connects to the silent host, each closed at once (a client
/// with a short connect timeout, a port scanner, happy eyeballs), then a
/// connect to the router's closed port.
const CONNECT_AND_CLOSE: &str = r#"
import socket, time, errno
for i in range(40):
    s = socket.socket(); s.setblocking(False)
    r = s.connect_ex(("192.0.2.1", 80))
    s.close()
    if r != errno.EINPROGRESS:
        print("connect", i, errno.errorcode.get(r, r)); break
    time.sleep(0.1)
else:
    print("40 connects")
s = socket.socket(); s.settimeout(5)
try:
    s.connect(("10.1.0.1", 9))
except OSError as e:
    print("router:", errno.errorcode.get(e.errno, e))
"#;

/// A non-blocking connect's carrier is plugged with a copy the supervisor
/// keeps (`Plug::carrier`), so closing the program's socket leaves the carrier
/// alive in `/proc/net/unix`: the sweep never forgets the socket and the dial
/// goes on. Since fda95a3 a dial whose router answered lives 127 s (it was
/// 3 s): the SYNs keep going out after close, and every closed connect keeps
/// a descriptor of the process's share, until `connect` fails with ENOBUFS
/// (here the 9th of 40 closed connects; with the default share ~4700) and so
/// does any later connect of the process, to anywhere, for two minutes.
/// Linux: a socket in SYN_SENT is gone on close; every connect says
/// EINPROGRESS and the router's closed port refuses.
#[test]
fn a_closed_connect_under_way_gives_its_descriptor_back() {
    let dir = TempDir::new("review-dial-close");
    let config = dir.write("modules.toml", silent_beyond().as_bytes(), 0o644);
    let script = dir.write("connect.py", CONNECT_AND_CLOSE.as_bytes(), 0o644);
    let output = run(netvm_as(
        User::Invoker,
        &["run", "--config", path_str(&config), "--", python(), path_str(&script)],
    ));
    output.assert_code(0);
    assert_eq!(output.stdout, "40 connects\nrouter: ECONNREFUSED\n", "{output}");
}

/// `has_capability` reads `CapEff` of `/proc/TID/status`, which is the
/// thread's set in *its own* user namespace. A process that drops to nobody
/// and makes a user namespace of its own (`unshare -U -r`, no new network
/// namespace) shows a full `CapEff`, and netvm lets it bind port 80 and open
/// raw sockets on the stack (and cuts the supervisor's capabilities to that
/// full set for the shadow sockets' calls). Linux checks capabilities against
/// the network namespace's owner (`ns_capable(net->user_ns, ...)`): EACCES
/// and EPERM.
#[test]
fn capabilities_of_a_user_namespace_of_its_own_give_nothing_on_the_stack() {
    if !is_root() {
        return skip("needs root (to drop to nobody inside the session)");
    }
    let userns = run({
        let mut c = std::process::Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
            "unshare",
            "-U",
            "-r",
            "true",
        ]);
        c
    });
    if userns.code() != 0 {
        return skip("unprivileged user namespaces are not allowed here");
    }
    let script = "import socket\n\
        for name, make in [('bind 80', lambda: socket.socket().bind(('0.0.0.0', 80))),\n\
            ('raw', lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP))]:\n\
        \x20   try: make(); print(name, 'allowed')\n\
        \x20   except OSError as e: print(name, e.errno)\n";
    let dir = TempDir::new("review-userns-caps");
    let script = dir.write("caps.py", script.as_bytes(), 0o644);
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let output = run_netvm(&[
        "run",
        "--",
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--",
        "unshare",
        "-U",
        "-r",
        python(),
        path_str(&script),
    ]);
    output.assert_code(0);
    assert_eq!(output.stdout, "bind 80 13\nraw 1\n", "{output}");
}

/// The protocol-independent membership options (RFC 3678) are not judged
/// against the stack's links as `IP_ADD_MEMBERSHIP` is since fda95a3: they
/// reach the supervisor's shadow socket, whose namespace has only a loopback,
/// so a join on the stack's eth0 (index 2) is ENODEV, and a join on index 1
/// succeeds whatever the stack has. Linux (eth0 at 2, a default route): 0.
#[test]
fn mcast_join_group_is_judged_against_the_stacks_links() {
    let probe = compile_probe("review2_mcast_group_req");
    let output = run_netvm(&["run", "--", path_str(&probe)]);
    output.assert_code(0);
    assert_eq!(
        output.stdout,
        "IP_ADD_MEMBERSHIP: 0 \nMCAST_JOIN_GROUP: 0 \nIP_ADD_SOURCE_MEMBERSHIP: 0 \n",
        "{output}"
    );
}

/// `membership` matches a join or a drop with index 0 only against the link
/// the route to the group leaves by; Linux's IPv6 (`ipv6_sock_mc_join`,
/// `ipv6_sock_mc_drop`) takes index 0 to match a membership on any link.
#[test]
fn an_ipv6_membership_by_index_zero_matches_any_link() {
    let probe = compile_probe("review2_mcast_match");
    let output = run_netvm(&["run", "--", path_str(&probe)]);
    output.assert_code(0);
    assert_eq!(
        output.stdout,
        "join lo: 0 \njoin any: -1 EADDRINUSE\ndrop any: 0 \ndrop lo: -1 EADDRNOTAVAIL\n",
        "{output}"
    );
}
