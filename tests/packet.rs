//! Packet sockets (`AF_PACKET`) on a stack's interfaces (issue 13): `tcpdump` and
//! `arping`, unmodified, inside a stack.
//!
//! They see that stack's frames, both ways, with their own BPF filters; what
//! they send goes out on the stack's link; a stack sees nothing of another's
//! link; only a process with `CAP_NET_RAW` gets one, as on Linux; and the
//! host's interfaces stay as they were.

mod common;

use common::{NETVM, Output, User, is_root, netvm_as, run, skip};

/// Two LANs joined by the router `gw`: lwip0 (10.0.0.2 on sw0) and far (10.0.1.2
/// on sw1).
const TWO_LANS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/network/two-lans.toml");

/// `capture ARGS...`: starts `tcpdump ARGS...` in the background, its output to
/// `$cap.out` and `$cap.err`, and returns once it listens. `capture_on STACK
/// ARGS...` does the same on stack STACK (with `netvm stack`).
const PRELUDE: &str = r#"
cap=$(mktemp -d)/cap
capture_on() {
    stack=$1; shift
    "$N" stack "$stack" -- tcpdump -n "$@" >"$cap.out" 2>"$cap.err" &
    for i in $(seq 100); do
        grep -q "listening on" "$cap.err" && return 0
        sleep 0.05
    done
    echo "tcpdump does not listen" >&2; cat "$cap.err" >&2
    return 1
}
capture() { capture_on lwip0 "$@"; }
"#;

/// Runs `script` with `sh -c` in a session of [`TWO_LANS`] as `user`, with `$N`
/// and `capture` of [`PRELUDE`].
fn session(user: User, script: &str) -> Output {
    let script = format!("N='{NETVM}'\n{PRELUDE}\n{script}");
    run(netvm_as(user, &["run", "--config", TWO_LANS, "--", "sh", "-c", &script]))
}

/// The lines of standard output that start with a tcpdump timestamp, without it.
fn captured(output: &Output) -> Vec<&str> {
    output
        .stdout
        .lines()
        .filter_map(|line| {
            let (time, rest) = line.split_once(' ')?;
            (time.starts_with(|c: char| c.is_ascii_digit()) && time.contains(':')).then_some(rest)
        })
        .collect()
}

#[test]
fn tcpdump_on_eth0_sees_a_ping_between_stacks_through_its_filter() {
    if !is_root() {
        return skip("needs root: a packet socket needs CAP_NET_RAW in the session");
    }
    let output = session(
        User::Invoker,
        "capture -i eth0 -c 5 icmp\n\
         ping -c 3 -i 0.2 10.0.1.2 >/dev/null\n\
         wait; cat \"$cap.out\" \"$cap.err\"",
    );
    output.assert_code(0);
    let lines = captured(&output);
    assert_eq!(lines.len(), 5, "{output}");
    for (n, line) in lines.iter().enumerate() {
        let seq = n / 2 + 1;
        let expected = if n % 2 == 0 {
            "IP 10.0.0.2 > 10.0.1.2: ICMP echo request, id "
        } else {
            "IP 10.0.1.2 > 10.0.0.2: ICMP echo reply, id "
        };
        assert!(line.starts_with(expected), "line {n}: {line}\n{output}");
        assert!(line.ends_with(&format!(", seq {seq}, length 64")), "line {n}: {line}\n{output}");
    }
    assert!(output.stdout.contains("listening on eth0, link-type EN10MB (Ethernet)"), "{output}");
    assert!(output.stdout.contains("5 packets captured"), "{output}");
}

#[test]
fn tcpdump_on_any_tells_outgoing_from_incoming_frames() {
    if !is_root() {
        return skip("needs root: a packet socket needs CAP_NET_RAW in the session");
    }
    let output = session(
        User::Invoker,
        "capture -i any -c 2 icmp\n\
         ping -c 1 10.0.0.1 >/dev/null\n\
         wait; cat \"$cap.out\"",
    );
    output.assert_code(0);
    let lines = captured(&output);
    assert_eq!(lines.len(), 2, "{output}");
    assert!(
        lines[0].starts_with("eth0  Out IP 10.0.0.2 > 10.0.0.1: ICMP echo request"),
        "{output}"
    );
    assert!(lines[1].starts_with("eth0  In  IP 10.0.0.1 > 10.0.0.2: ICMP echo reply"), "{output}");
}

#[test]
fn arping_gets_the_routers_replies() {
    if !is_root() {
        return skip("needs root: a packet socket needs CAP_NET_RAW in the session");
    }
    // arping finds its interface with a route lookup, and binds a probe socket
    // to it by name: both the stack's. With a deadline it waits for two
    // replies (without one, a reply later than the next tick of its 1 s timer
    // is not waited for, and a loaded machine lost one that way).
    let output = session(User::Invoker, "arping -c 2 -w 20 10.0.0.1");
    output.assert_code(0);
    assert!(output.stdout.contains("ARPING 10.0.0.1 from 10.0.0.2 eth0"), "{output}");
    assert!(!output.stderr.contains("WARNING"), "{output}");
    let replies = output
        .stdout
        .lines()
        .filter(|l| l.starts_with("Unicast reply from 10.0.0.1 [02:6E:76:FF:00:00]"))
        .count();
    assert_eq!(replies, 2, "{output}");
    assert!(output.stdout.contains("Received 2 response(s)"), "{output}");
}

#[test]
fn a_stack_sees_nothing_of_another_stacks_link() {
    if !is_root() {
        return skip("needs root: a packet socket needs CAP_NET_RAW in the session");
    }
    // far captures while lwip0 talks to the router on sw0, then talks itself on
    // sw1: the first frames far sees must be its own.
    let output = session(
        User::Invoker,
        "capture_on far -i any -c 2\n\
         ping -c 3 -i 0.2 10.0.0.1 >/dev/null && echo lwip0 pinged\n\
         arping -I eth0 -c 1 10.0.0.1 >/dev/null 2>&1 && echo lwip0 arped\n\
         \"$N\" stack far -- ping -c 1 10.0.1.1 >/dev/null && echo far pinged\n\
         wait; cat \"$cap.out\"",
    );
    output.assert_code(0);
    for line in ["lwip0 pinged", "lwip0 arped", "far pinged"] {
        assert!(output.stdout.lines().any(|l| l == line), "no {line:?}\n{output}");
    }
    let lines = captured(&output);
    assert_eq!(lines.len(), 2, "{output}");
    for line in lines {
        assert!(!line.contains("10.0.0."), "far saw lwip0's link: {line}\n{output}");
        assert!(line.contains("10.0.1."), "{line}\n{output}");
    }
}

/// `socket(AF_PACKET, type)` for each type, printing the errno (0: made).
const MAKE_PACKET_SOCKETS: &str = "import socket\n\
    for t in (socket.SOCK_RAW, socket.SOCK_DGRAM, socket.SOCK_STREAM, 42):\n    \
    try:\n        socket.socket(socket.AF_PACKET, t); print(0, end=' ')\n    \
    except OSError as e:\n        print(e.errno, end=' ')\n";

#[test]
fn only_a_process_with_cap_net_raw_gets_one() {
    if !is_root() {
        return skip("needs root: to run a program as root and as nobody in one session");
    }
    let output = session(
        User::Invoker,
        &format!(
            "/usr/bin/python3 -c \"{MAKE_PACKET_SOCKETS}\"; echo\n\
             setpriv --reuid=65534 --regid=65534 --clear-groups -- \
             /usr/bin/python3 -c \"{MAKE_PACKET_SOCKETS}\"; echo\n\
             setpriv --reuid=65534 --regid=65534 --clear-groups -- tcpdump -i eth0 -c 1"
        ),
    );
    // As Linux: EPERM before the type is judged (ESOCKTNOSUPPORT), EINVAL first.
    let lines: Vec<&str> = output.stdout.lines().map(str::trim_end).collect();
    assert_eq!(lines, ["0 0 94 22", "1 1 1 22"], "{output}");
    assert!(output.stderr.contains("Operation not permitted"), "{output}");
    // A session of an unprivileged user: its programs have no CAP_NET_RAW.
    let output =
        session(User::Unprivileged, &format!("/usr/bin/python3 -c \"{MAKE_PACKET_SOCKETS}\""));
    assert_eq!(output.stdout.trim_end(), "1 1 1 22", "{output}");
}

#[test]
fn python_binds_to_eth0_and_reads_back_the_stacks_interface() {
    if !is_root() {
        return skip("needs root: a packet socket needs CAP_NET_RAW in the session");
    }
    let script = "import socket\n\
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))\n\
        s.bind(('eth0', 0))\n\
        print(s.getsockname())\n";
    let output = session(User::Invoker, &format!("/usr/bin/python3 -c \"{script}\""));
    output.assert_code(0);
    assert_eq!(output.stdout, "('eth0', 3, 0, 1, b'\\x02nv\\x00\\x00\\x00')\n", "{output}");
    // A hardware address changed inside is the packet device's too.
    let changed = format!(
        "/usr/bin/python3 -c \"{script}\"; ip link set eth0 address 02:6e:76:00:00:99; \
         /usr/bin/python3 -c \"{script}\""
    );
    let output = session(User::Invoker, &changed);
    output.assert_code(0);
    assert!(output.stdout.ends_with("b'\\x02nv\\x00\\x00\\x99')\n"), "{output}");
}

#[test]
fn the_hosts_interfaces_do_not_change() {
    if !is_root() {
        return skip("needs root: a packet socket needs CAP_NET_RAW in the session");
    }
    let links = || {
        let mut ip = std::process::Command::new("ip");
        ip.args(["-j", "link"]);
        let output = run(ip);
        let value: serde_json::Value = serde_json::from_str(&output.stdout).expect("ip -j link");
        value
            .as_array()
            .expect("a list")
            .iter()
            .map(|link| format!("{} {} {}", link["ifindex"], link["ifname"], link["address"]))
            .collect::<Vec<_>>()
    };
    let before = links();
    let output = session(
        User::Invoker,
        "capture -i eth0 -c 2 icmp\nping -c 1 10.0.1.2 >/dev/null\nwait\n\
         ip -o link | cut -d' ' -f2",
    );
    output.assert_code(0);
    assert_eq!(output.stdout, "lo:\neth0:\n", "the stack's own links\n{output}");
    assert_eq!(links(), before);
}
