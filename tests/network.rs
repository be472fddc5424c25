//! Several stacks on one virtual network: the built-in configuration's switch `sw0`
//! with the router `gw` (10.0.0.1, fd00::1) and the hosts `lwip0` (10.0.0.2, fd00::2)
//! and `lwip1` (10.0.0.3, fd00::3); and `tests/network/two-lans.toml`, two switches
//! joined by the router.
//!
//! Unmodified tools run on them: ping (the router and the other stack answer),
//! nc, telnet, iperf3, curl and socat between the two stacks over IPv4 and IPv6,
//! traceroute through the router, `netvm stack` to move a process of the session to
//! another stack, `netvm run --pcap` to capture every link, and `netvm status`.
//!
//! A session's scripts call `$N`, the netvm binary under test, by its absolute path
//! (`PATH` may hold another netvm). Servers are one-shot; a client starts once
//! `netvm status` shows its server listening on the other stack (see [`PRELUDE`]).
//! The traceroute tests need root for the privileged half (raw sockets need
//! CAP_NET_RAW, as on Linux).

mod common;

use common::{
    NETVM, Output, TempDir, USERS, User, assert_line, is_root, netvm_as, path_str, run, session,
    session_with, skip,
};
use serde_json::Value;

/// The test configuration with two LANs joined by the router.
const TWO_LANS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/network/two-lans.toml");

/// Asserts that `ping` printed replies with sequence numbers 1..=`count` from `from`
/// with `ttl=TTL` and a round-trip time.
fn assert_ping_replies(output: &Output, from: &str, count: usize, ttl: u8) {
    for seq in 1..=count {
        let head = format!("64 bytes from {from}: icmp_seq={seq} ttl={ttl} time=");
        assert!(
            output.stdout.lines().any(|l| l.starts_with(&head) && l.ends_with(" ms")),
            "no reply line {head:?}... ms\n{output}"
        );
    }
    let stats = format!("{count} packets transmitted, {count} received, 0% packet loss");
    assert!(output.stdout.contains(&stats), "no {stats:?}\n{output}");
}

// ---------------------------------------------------------------------------
// ping

#[test]
fn ping_the_router_over_ipv4_and_ipv6() {
    for user in USERS {
        let output = run(netvm_as(
            user,
            &["run", "--stack", "lwip0", "--", "ping", "-c", "3", "-i", "0.2", "10.0.0.1"],
        ));
        output.assert_code(0);
        assert_ping_replies(&output, "10.0.0.1", 3, 64);

        let output =
            run(netvm_as(user, &["run", "--", "ping", "-6", "-c", "3", "-i", "0.2", "fd00::1"]));
        output.assert_code(0);
        assert_ping_replies(&output, "fd00::1", 3, 64);
    }
}

#[test]
fn ping_an_address_nobody_holds_loses_every_packet() {
    for user in USERS {
        let output = run(netvm_as(user, &["run", "--", "ping", "-c", "2", "-W", "1", "10.0.0.9"]));
        output.assert_code(1);
        assert!(output.stdout.contains("100% packet loss"), "no 100% packet loss\n{output}");
        assert!(!output.stdout.contains("bytes from"), "a reply from nobody\n{output}");
    }
}

#[test]
fn ping_the_other_stack() {
    for user in USERS {
        let output =
            run(netvm_as(user, &["run", "--", "ping", "-c", "2", "-i", "0.2", "10.0.0.3"]));
        output.assert_code(0);
        assert_ping_replies(&output, "10.0.0.3", 2, 64);

        let output = run(netvm_as(
            user,
            &["run", "--stack", "lwip1", "--", "ping", "-6", "-c", "2", "-i", "0.2", "fd00::2"],
        ));
        output.assert_code(0);
        assert_ping_replies(&output, "fd00::2", 2, 64);
    }
}

// ---------------------------------------------------------------------------
// netvm stack, TCP across stacks

#[test]
fn nc_between_stacks_both_directions() {
    let script = r#"
        "$N" stack lwip1 -- sh -c 'printf "reply from lwip1\n" | nc -l 10000' | sed 's/^/server got: /' &
        listening tcp 10000
        reply=$(printf 'hello from lwip0\n' | nc -N 10.0.0.3 10000); echo "client status $?"
        echo "client got: $reply"
        wait"#;
    for user in USERS {
        let output = session(user, script);
        output.assert_code(0);
        assert_line(&output, "client status 0");
        assert_line(&output, "server got: hello from lwip0");
        assert_line(&output, "client got: reply from lwip1");
    }
}

#[test]
fn nc_between_stacks_over_ipv6() {
    let script = r#"
        "$N" stack lwip1 -- sh -c 'printf "reply over ipv6\n" | nc -6 -l 10005' | sed 's/^/server got: /' &
        listening tcp 10005
        reply=$(printf 'hello over ipv6\n' | nc -N fd00::3 10005); echo "client status $?"
        echo "client got: $reply"
        wait"#;
    let output = session(User::Invoker, script);
    output.assert_code(0);
    assert_line(&output, "client status 0");
    assert_line(&output, "server got: hello over ipv6");
    assert_line(&output, "client got: reply over ipv6");
}

#[test]
fn another_stacks_loopback_is_out_of_reach() {
    // The server on lwip1 answers on lwip1's own 127.0.0.1; lwip0's 127.0.0.1 is
    // lwip0's, where nothing listens.
    let script = r#"
        "$N" stack lwip1 -- nc -k -l 127.0.0.1 10001 >/dev/null & server=$!
        listening tcp 10001
        "$N" stack lwip1 -- nc -z 127.0.0.1 10001 && echo lwip1 reaches it
        nc -v -z 127.0.0.1 10001 || echo "lwip0 loopback: refused $?"
        kill $server; wait"#;
    let output = session(User::Invoker, script);
    output.assert_code(0);
    assert_line(&output, "lwip1 reaches it");
    assert_line(&output, "lwip0 loopback: refused 1");
    output.assert_stderr_has("connect to 127.0.0.1 port 10001 (tcp) failed: Connection refused");
}

#[test]
fn a_loopback_listener_is_not_reachable_on_the_stacks_address() {
    // On Linux a SYN to an address no listener is bound to is answered with a
    // reset: connect fails with ECONNREFUSED.
    let script = r#"
        "$N" stack lwip1 -- nc -k -l 127.0.0.1 10001 >/dev/null & server=$!
        listening tcp 10001
        for i in $(seq 10); do nc -z 10.0.0.3 10001 && echo "connected at $i"; done
        echo done
        kill $server; wait"#;
    let output = session(User::Invoker, script);
    output.assert_code(0);
    assert_line(&output, "done");
    assert!(!output.stdout.contains("connected at"), "a connect went through\n{output}");
}

#[test]
fn connects_to_a_closed_port_on_another_stack_are_refused() {
    // nc connects non-blocking, polls for POLLOUT and reads SO_ERROR; lwip1 answers
    // its SYN with a reset, so every attempt must fail with ECONNREFUSED.
    let script = r#"
        for i in $(seq 100); do
            printf x | nc -N 10.0.0.3 10009 2>/dev/null && echo "connected at $i"
        done
        echo done"#;
    let output = session(User::Invoker, script);
    output.assert_code(0);
    assert_line(&output, "done");
    assert!(!output.stdout.contains("connected at"), "a connect went through\n{output}");
}

#[test]
fn netvm_stack_to_an_unknown_stack_lists_the_mounted_ones() {
    let output = session(User::Invoker, r#""$N" stack nosuch -- echo moved; echo "status $?""#);
    output.assert_code(0);
    assert_line(&output, "status 125");
    assert!(!output.stdout.contains("moved"), "the command ran\n{output}");
    let line = output
        .stderr
        .lines()
        .find(|l| l.contains("no stack named"))
        .unwrap_or_else(|| panic!("no `no stack named` message\n{output}"));
    assert!(line.contains("nosuch"), "the message does not name `nosuch`\n{output}");
    for stack in ["lwip0", "lwip1", "none"] {
        assert!(line.contains(stack), "the message does not list {stack}\n{output}");
    }
}

#[test]
fn netvm_stack_outside_a_session_fails() {
    let output = run(netvm_as(User::Invoker, &["stack", "lwip1", "--", "echo", "moved"]));
    output.assert_code(125);
    output.assert_stderr_has("not inside a netvm session");
    assert!(!output.stdout.contains("moved"), "the command ran\n{output}");
}

// ---------------------------------------------------------------------------
// The poem-lwip examples between two stacks

#[test]
fn telnet_to_nc_on_the_other_stack() {
    let script = r#"
        "$N" stack lwip1 -- nc -l 10002 | sed 's/^/server got: /' &
        listening tcp 10002
        (printf 'typed into telnet\n'; sleep 0.3) | telnet 10.0.0.3 10002
        wait"#;
    let output = session(User::Invoker, script);
    output.assert_code(0);
    assert_line(&output, "Connected to 10.0.0.3.");
    assert!(
        output.stdout.lines().any(|l| l.trim_end_matches('\r') == "server got: typed into telnet"),
        "the server did not get telnet's line\n{output}"
    );
}

#[test]
fn iperf3_between_stacks() {
    let script = r#"
        "$N" stack lwip1 -- iperf3 -s -1 >/dev/null & server=$!
        listening tcp 5201
        iperf3 -c 10.0.0.3 -t 1; echo "client status $?"
        wait $server; echo "server status $?""#;
    let output = session(User::Invoker, script);
    output.assert_code(0);
    assert_line(&output, "client status 0");
    assert_line(&output, "server status 0");
    let receiver = output
        .stdout
        .lines()
        .find(|l| l.trim_end().ends_with("receiver"))
        .unwrap_or_else(|| panic!("no receiver line\n{output}"));
    assert!(
        receiver.contains("Bytes") && !receiver.contains(" 0.00 Bytes"),
        "nothing received: {receiver:?}\n{output}"
    );
}

#[test]
fn curl_from_an_nc_http_responder_on_the_other_stack() {
    let script = r#"
        "$N" stack lwip1 -- sh -c 'printf "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello" | nc -l -N 8080 >/dev/null' &
        listening tcp 8080
        body=$(curl -sS --noproxy '*' --max-time 5 http://10.0.0.3:8080/); echo "curl status $?"
        echo "body: $body"
        wait"#;
    let output = session(User::Invoker, script);
    output.assert_code(0);
    assert_line(&output, "curl status 0");
    assert_line(&output, "body: hello");
}

#[test]
fn socat_udp_between_stacks_with_a_reply() {
    let script = r#"
        "$N" stack lwip1 -- socat UDP-RECVFROM:9300 EXEC:'tr a-z A-Z' & server=$!
        listening udp 9300
        reply=$(echo 'udp request' | socat -t 1 - UDP:10.0.0.3:9300); echo "client status $?"
        echo "client got: $reply"
        wait $server; echo "server status $?""#;
    let output = session(User::Invoker, script);
    output.assert_code(0);
    assert_line(&output, "client status 0");
    assert_line(&output, "client got: UDP REQUEST");
    assert_line(&output, "server status 0");
}

// ---------------------------------------------------------------------------
// Two LANs: traceroute and ping through the router

/// The hops `traceroute -n -q 1` printed, in order: (number, address).
fn hops(output: &Output) -> Vec<(u32, String)> {
    output
        .stdout
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let number = words.next()?.parse().ok()?;
            Some((number, words.next()?.to_owned()))
        })
        .collect()
}

#[test]
fn traceroute_through_the_router_with_udp_and_icmp() {
    if !is_root() {
        return skip("needs root: traceroute needs CAP_NET_RAW, which only root has here");
    }
    for mode in [&[][..], &["-I"][..]] {
        let mut args = vec!["run", "-c", TWO_LANS, "--", "busybox", "traceroute"];
        args.extend_from_slice(mode);
        args.extend_from_slice(&["-n", "-w", "1", "-q", "1", "10.0.1.2"]);
        let output = run(netvm_as(User::Invoker, &args));
        output.assert_code(0);
        let expected = vec![(1, "10.0.0.1".to_owned()), (2, "10.0.1.2".to_owned())];
        assert_eq!(hops(&output), expected, "traceroute {mode:?}\n{output}");
    }
}

#[test]
fn debian_traceroute_reads_the_routers_errors_from_the_error_queue() {
    // Modern traceroute's UDP mode (any user) and ICMP mode (root: a raw socket)
    // connect their probe sockets and read ICMP errors with IP_RECVERR and
    // recvmsg(MSG_ERRQUEUE) once poll says POLLERR.
    let mut modes = vec![(User::Invoker, vec!["-n"]), (User::Unprivileged, vec!["-n"])];
    modes.push((User::Invoker, vec!["-6", "-n"]));
    if is_root() {
        modes.push((User::Invoker, vec!["-I", "-n"]));
    } else {
        skip("its ICMP mode (-I) needs root: a raw socket needs CAP_NET_RAW");
    }
    for (user, mode) in modes {
        let v6 = mode.contains(&"-6");
        let target = if v6 { "fd01::2" } else { "10.0.1.2" };
        let mut args = vec!["run", "-c", TWO_LANS, "--", "traceroute"];
        args.extend_from_slice(&mode);
        args.extend_from_slice(&["-w", "1", "-q", "2", "-m", "4", target]);
        let output = run(netvm_as(user, &args));
        output.assert_code(0);
        let router = if v6 { "fd00::1" } else { "10.0.0.1" };
        let expected = vec![(1, router.to_owned()), (2, target.to_owned())];
        assert_eq!(hops(&output), expected, "traceroute {mode:?} as {user:?}\n{output}");
    }
}

#[test]
fn udp_to_a_closed_port_on_another_stack_is_refused_as_linux_reports_it() {
    // The port-unreachable error comes back: poll says POLLERR, SO_ERROR says
    // ECONNREFUSED; with IP_RECVERR the error queue holds it, with the offender.
    let script = r#"
import select, socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_IP, 11, 1)  # IP_RECVERR
s.connect(("10.0.0.3", 9999))
s.send(b"x")
p = select.poll()
p.register(s, select.POLLIN)
events = p.poll(3000)
print("events", [e & select.POLLERR for _, e in events])
data, ancillary, flags, addr = s.recvmsg(64, 512, socket.MSG_ERRQUEUE)
level, kind, info = ancillary[0]
errno, origin, icmp_type, icmp_code = struct.unpack("=IBBB", info[:7])
offender = socket.inet_ntoa(info[20:24])
print("queue", errno, origin, icmp_type, icmp_code, offender, addr, flags & socket.MSG_ERRQUEUE != 0)
print("so_error", s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
"#;
    let output = run(netvm_as(User::Invoker, &["run", "--", "python3", "-c", script]));
    output.assert_code(0);
    assert_line(&output, &format!("events [{}]", libc::POLLERR));
    assert_line(&output, "queue 111 2 3 3 10.0.0.3 ('10.0.0.3', 9999) True");
    assert_line(&output, "so_error 0");
}

#[test]
fn a_stack_answers_pings_to_its_own_addresses() {
    for user in USERS {
        for (to, v6) in [("127.0.0.1", false), ("10.0.0.2", false), ("::1", true)] {
            let mut args = vec!["run", "--", "ping"];
            if v6 {
                args.push("-6");
            }
            args.extend_from_slice(&["-c", "2", "-i", "0.2", to]);
            let output = run(netvm_as(user, &args));
            output.assert_code(0);
            assert_ping_replies(&output, to, 2, 64);
        }
    }
}

#[test]
fn a_peer_that_closes_with_unread_data_ends_the_connection_across_stacks() {
    // Linux resets such a connection; the client must not wait forever.
    let script = r#"
        "$N" stack lwip1 -- python3 -c '
import socket, time
s = socket.create_server(("", 10020)); c, _ = s.accept(); time.sleep(0.3); c.close()' &
        listening tcp 10020
        python3 -c '
import socket
c = socket.create_connection(("10.0.0.3", 10020)); c.settimeout(5)
c.sendall(b"x" * 100)
try:
    print("client got", c.recv(10))
except socket.timeout:
    print("client waited forever")
except OSError as e:
    print("client got", e.errno)'
        wait"#;
    let output = session(User::Invoker, script);
    output.assert_code(0);
    assert!(output.stdout.contains("client got"), "{output}");
}

#[test]
fn datagrams_to_thousands_of_addresses_leave_the_supervisor_bounded() {
    // One stand-in socket per remote address, for a while: not one forever.
    let script = r#"
        sup=$(awk '/TracerPid/ {print $2}' /proc/$$/status)
        python3 -c '
import socket
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for port in range(1, 2001):
    c.sendto(b"x", ("10.0.0.3", port))'
        sleep 0.2
        echo "fds $(ls /proc/$sup/fd | wc -l)""#;
    let output = session(User::Invoker, script);
    output.assert_code(0);
    let fds: usize = output
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("fds "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no fd count\n{output}"));
    assert!(fds < 600, "the supervisor holds {fds} fds after 2000 destinations\n{output}");
}

#[test]
fn a_session_answers_status_to_its_own_user_only() {
    if !is_root() {
        return skip("needs root to run a session another user can try");
    }
    // Inside a root session, nobody asks the session for its report.
    let script = r#"
        sup=$(awk '/TracerPid/ {print $2}' /proc/$$/status)
        setpriv --reuid=65534 --regid=65534 --clear-groups "$N" status --session "$sup"
        echo "nobody: $?"
        "$N" status --session "$sup" >/dev/null
        echo "root: $?""#;
    let output = session(User::Invoker, script);
    assert_line(&output, "nobody: 125");
    assert_line(&output, "root: 0");
    output.assert_stderr_has("this session belongs to another user");
}

/// From outside its namespaces, an unprivileged session is asked through the
/// helper that stays in the host's: root and its own user get the report, another
/// user does not (inside, every other user would read as the overflow id).
#[test]
fn an_unprivileged_session_answers_root_and_its_user_from_outside() {
    if !is_root() {
        return skip("needs root to run a session as another user");
    }
    let mut session = common::Session::spawn(netvm_as(
        User::Unprivileged,
        &["run", "--", "sh", "-c", "echo ready; sleep 20"],
    ));
    assert_eq!(session.next_line(), "ready");
    let supervisor = session.pid().to_string();
    let ask = |uid: Option<&str>| {
        let status = [NETVM, "status", "--session", &supervisor];
        let mut command = match uid {
            Some(uid) => {
                let mut c = std::process::Command::new("setpriv");
                c.args([&format!("--reuid={uid}"), &format!("--regid={uid}"), "--clear-groups"]);
                c.args(status);
                c
            }
            None => {
                let mut c = std::process::Command::new(status[0]);
                c.args(&status[1..]);
                c
            }
        };
        command.stdin(std::process::Stdio::null());
        run(command)
    };
    let root = ask(None);
    root.assert_code(0);
    assert!(root.stdout.contains("stack lwip0 (smoltcp), 2 processes"), "{root}");
    ask(Some("65534")).assert_code(0);
    ask(Some("4242")).assert_code(125).assert_stderr_has("this session belongs to another user");
    drop(session);
}

#[test]
fn a_stack_of_the_host_kind_is_not_reached_from_a_private_session() {
    let dir = TempDir::new("host-kind");
    let config = dir.write(
        "modules.toml",
        b"[vunet]\ndefault = \"v\"\n[[vunet.stack]]\nname = \"v\"\nkind = \"smoltcp\"\n\
          addresses = [\"10.0.0.2/24\"]\n[[vunet.stack]]\nname = \"real\"\nkind = \"host\"\n",
        0o644,
    );
    let script = r#""$N" stack real -- true; echo "real: $?""#;
    let output = session_with(User::Invoker, &["--config", path_str(&config)], script);
    output.assert_code(0).assert_stderr_has(
        "stack `real` passes the host's network through, and this session's programs run in \
         a network namespace of their own: start a session on it with `netvm run --stack real \
         -- CMD`",
    );
    assert_line(&output, "real: 125");
}

#[test]
fn ping_through_the_router_decrements_the_ttl() {
    for user in USERS {
        let output =
            run(netvm_as(user, &["run", "-c", TWO_LANS, "--", "ping", "-c", "1", "10.0.1.2"]));
        output.assert_code(0);
        assert_ping_replies(&output, "10.0.1.2", 1, 63);
    }
}

#[test]
fn traceroute_needs_cap_net_raw() {
    for mode in [&[][..], &["-I"][..]] {
        let mut args = vec!["run", "-c", TWO_LANS, "--", "busybox", "traceroute"];
        args.extend_from_slice(mode);
        args.extend_from_slice(&["-n", "-w", "1", "-q", "1", "10.0.1.2"]);
        let output = run(netvm_as(User::Unprivileged, &args));
        assert_ne!(output.code(), 0, "traceroute {mode:?} succeeded unprivileged\n{output}");
        output.assert_stderr_has("Operation not permitted");
        assert!(hops(&output).is_empty(), "traceroute {mode:?} printed hops\n{output}");
    }
}

// ---------------------------------------------------------------------------
// Captures

/// `tcpdump -n -r FILE`'s output, failing the test if tcpdump fails.
fn tcpdump(file: &std::path::Path) -> String {
    let output = std::process::Command::new("tcpdump")
        .arg("-n")
        .arg("-r")
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("run tcpdump: {e}"));
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "tcpdump -r {}: {}\n{}",
        file.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    text
}

#[test]
fn pcap_captures_every_link() {
    let dir = TempDir::new("pcap");
    let script = r#"
        "$N" stack lwip1 -- nc -l 10003 &
        listening tcp 10003
        ping -c 1 10.0.0.1
        echo x | nc -N 10.0.0.3 10003
        wait"#;
    let output = session_with(User::Invoker, &["--pcap", path_str(dir.path())], script);
    output.assert_code(0);
    assert_ping_replies(&output, "10.0.0.1", 1, 64);
    assert_line(&output, "x");

    for name in ["lwip0-eth0.pcap", "lwip1-eth0.pcap", "gw-sw0.pcap"] {
        assert!(dir.path().join(name).is_file(), "no capture {name}\n{output}");
    }

    let lwip0 = tcpdump(&dir.path().join("lwip0-eth0.pcap"));
    for text in [
        "ARP, Request who-has 10.0.0.1",
        "ARP, Reply 10.0.0.1 is-at",
        "IP 10.0.0.2 > 10.0.0.1: ICMP echo request",
        "IP 10.0.0.1 > 10.0.0.2: ICMP echo reply",
    ] {
        assert!(lwip0.contains(text), "lwip0-eth0.pcap lacks {text:?}:\n{lwip0}");
    }
    let syn = lwip0.lines().any(|l| l.contains(" > 10.0.0.3.10003: Flags [S],"));
    let syn_ack = lwip0
        .lines()
        .any(|l| l.contains("IP 10.0.0.3.10003 > 10.0.0.2.") && l.contains("Flags [S.],"));
    assert!(syn && syn_ack, "lwip0-eth0.pcap lacks the handshake to 10.0.0.3.10003:\n{lwip0}");

    let lwip1 = tcpdump(&dir.path().join("lwip1-eth0.pcap"));
    assert!(
        lwip1.lines().any(|l| l.contains(" > 10.0.0.3.10003: Flags [S],")),
        "lwip1-eth0.pcap lacks the SYN to 10.0.0.3.10003:\n{lwip1}"
    );
    let gw = tcpdump(&dir.path().join("gw-sw0.pcap"));
    assert!(
        gw.contains("IP 10.0.0.2 > 10.0.0.1: ICMP echo request"),
        "gw-sw0.pcap lacks the echo request:\n{gw}"
    );
}

// ---------------------------------------------------------------------------
// netvm status

/// The stack called `name` in a status report.
fn stack<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["stacks"]
        .as_array()
        .expect("stacks is a list")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no stack {name} in {report:#}"))
}

#[test]
fn status_shows_stacks_interfaces_routes_and_listeners() {
    let script = r#"
        "$N" stack lwip1 -- nc -l 10004 >/dev/null & server=$!
        listening tcp 10004
        echo "server pid $server"
        echo '--- json'
        "$N" status --json
        echo '--- text'
        "$N" status
        echo '--- end'
        kill $server; wait"#;
    let output = session(User::Invoker, script);
    output.assert_code(0);
    let section = |from: &str, to: &str| -> String {
        let start = output.stdout.find(from).unwrap_or_else(|| panic!("no {from:?}\n{output}"));
        let end = output.stdout.find(to).unwrap_or_else(|| panic!("no {to:?}\n{output}"));
        output.stdout[start + from.len()..end].to_owned()
    };
    let server: u64 = output
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("server pid "))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no server pid\n{output}"));

    let json = section("--- json\n", "--- text\n");
    let report: Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("status --json: {e}\n{output}"));

    let lwip0 = stack(&report, "lwip0");
    assert_eq!(lwip0["kind"], "smoltcp", "{lwip0:#}");
    let eth0 = lwip0["interfaces"]
        .as_array()
        .expect("interfaces is a list")
        .iter()
        .find(|i| i["name"] == "eth0")
        .unwrap_or_else(|| panic!("lwip0 has no eth0: {lwip0:#}"));
    assert_eq!(eth0["switch"], "sw0", "{eth0:#}");
    let addresses = eth0["addresses"].as_array().expect("addresses is a list");
    assert!(addresses.iter().any(|a| a == "10.0.0.2/24"), "{eth0:#}");
    assert!(addresses.iter().any(|a| a == "fd00::2/64"), "{eth0:#}");
    let routes = lwip0["routes"].as_array().expect("routes is a list");
    assert!(
        routes.iter().any(|r| r["to"] == "default" && r["via"] == "10.0.0.1"),
        "lwip0 has no default route via 10.0.0.1: {lwip0:#}"
    );

    let lwip1 = stack(&report, "lwip1");
    let processes = lwip1["processes"].as_array().expect("processes is a list");
    assert!(processes.iter().any(|p| p == server), "lwip1's processes lack {server}: {lwip1:#}");
    let listener = lwip1["sockets"]
        .as_array()
        .expect("sockets is a list")
        .iter()
        .find(|s| {
            s["proto"] == "tcp"
                && s["state"] == "LISTEN"
                && s["local"].as_str().is_some_and(|l| l.ends_with(":10004"))
        })
        .unwrap_or_else(|| panic!("lwip1 has no tcp LISTEN socket on :10004: {lwip1:#}"));
    let pids = listener["pids"].as_array().expect("pids is a list");
    assert!(pids.iter().any(|p| p == server), "the listener's pids lack {server}: {listener:#}");
    let lwip0_listens = lwip0["sockets"]
        .as_array()
        .expect("sockets is a list")
        .iter()
        .any(|s| s["local"].as_str().is_some_and(|l| l.ends_with(":10004")));
    assert!(!lwip0_listens, "lwip0 shows lwip1's listener: {lwip0:#}");

    let text = section("--- text\n", "--- end\n");
    let lwip1_text = text
        .split("\nstack ")
        .find(|s| s.starts_with("lwip1 "))
        .unwrap_or_else(|| panic!("no stack lwip1 in the text status\n{text}"));
    assert!(
        lwip1_text.lines().any(|l| l.contains("LISTEN") && l.contains(":10004")),
        "lwip1's text status has no listener on :10004\n{text}"
    );
}
