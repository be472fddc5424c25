//! A router's static routes (`[[vunet.router.route]]`): traffic to a network
//! no interface of the router is on leaves through the route's gateway, as
//! the capture of the gateway's link shows; without the route the router
//! answers "net unreachable".

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::{TempDir, USERS, netvm_as, path_str, run};

/// Stack `a` behind router `gw`, whose routes (`routes`, `[[vunet.router.route]]`
/// tables) may lead to stack `b` (standing for an upstream router): the
/// configuration of [`common::narrow_hop`], whose last tables the routes
/// join (TOML gives them to the last router).
fn config(routes: &str) -> String {
    format!("{}{routes}", common::narrow_hop(None))
}

const ROUTES: &str = r#"
[[vunet.router.route]]
to = "default"
via = "10.2.0.2"
[[vunet.router.route]]
to = "default"
via = "fd02::2"
"#;

/// What the capture of `b`'s link shows of pings to 192.0.2.1 and
/// 2001:db8::1, after `a` sent one to each.
fn pings_seen_upstream(user: common::User, routes: &str) -> (String, String) {
    let dir = TempDir::new("router-routes");
    // The session's user writes the captures.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let config = dir.write("modules.toml", config(routes).as_bytes(), 0o644);
    let script = "ping -c 1 -W 1 192.0.2.1; ping -c 1 -W 1 2001:db8::1; true";
    let pcap = ["--pcap", path_str(dir.path())];
    let run_args =
        [&["run", "--config", path_str(&config)][..], &pcap, &["--", "sh", "-c", script]].concat();
    let output = run(netvm_as(user, &run_args));
    output.assert_code(0);
    let capture = dir.path().join("b-eth0.pcap");
    let mut tcpdump = Command::new("tcpdump");
    tcpdump.args(["-nr", path_str(&capture), "icmp or icmp6"]);
    let seen = run(tcpdump);
    (seen.stdout.clone(), output.stdout.clone())
}

#[test]
fn a_default_route_leads_through_its_gateway() {
    for user in USERS {
        let (seen, _) = pings_seen_upstream(user, ROUTES);
        assert!(
            seen.contains("IP 10.1.0.2 > 192.0.2.1: ICMP echo request"),
            "{user:?}: the IPv4 ping went upstream:\n{seen}"
        );
        assert!(
            seen.contains("IP6 fd01::2 > 2001:db8::1: ICMP6, echo request"),
            "{user:?}: the IPv6 ping went upstream:\n{seen}"
        );
    }
}

#[test]
fn without_a_route_nothing_goes_upstream() {
    let (seen, pings) = pings_seen_upstream(common::User::Invoker, "");
    assert!(!seen.contains("echo request"), "nothing reached b:\n{seen}");
    assert!(pings.contains("100% packet loss"), "{pings}");
}

/// Connects (non-blocking) to a host beyond `b`, which nothing answers for,
/// and tells what the connect says after 4 seconds.
const SILENT_FAR_END: &str = r#"
import socket, select, errno
s = socket.socket(); s.setblocking(False)
s.connect_ex(("192.0.2.1", 80))
select.select([], [s], [], 4)
error = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
print("after 4 s:", errno.errorcode.get(error, "in progress") if error else "in progress")
"#;

#[test]
fn a_syn_the_far_end_leaves_unanswered_is_retried_as_on_linux() {
    // The router's neighbour `b` answers; only the far end is silent. Linux
    // sends the SYN again for two minutes (netvm used to give up after 3 s
    // with EHOSTUNREACH, as for a neighbour that never answers).
    let dir = TempDir::new("silent-far-end");
    let config = dir.write("modules.toml", config(ROUTES).as_bytes(), 0o644);
    let script = dir.write("connect.py", SILENT_FAR_END.as_bytes(), 0o644);
    let output = run(netvm_as(
        common::User::Invoker,
        &["run", "--config", path_str(&config), "--", common::python(), path_str(&script)],
    ));
    output.assert_code(0);
    assert_eq!(output.stdout, "after 4 s: in progress\n", "{output}");
}

/// `ping` prints the errors a router answers its echo requests with, as on a
/// Linux host: its ping socket is unconnected, with `IP_RECVERR`, and waits
/// for them with `poll` (netvm wakes it, see `alarm.rs`).
#[test]
fn ping_prints_the_routers_errors() {
    for user in USERS {
        let dir = TempDir::new("ping-errors");
        let config = dir.write("modules.toml", config(ROUTES).as_bytes(), 0o644);
        // 198.51.100.1 is beyond b, which has no route there: the router's
        // answer to TTL 1 is "time exceeded"; the built-in network's router
        // has no route to 192.0.2.1 at all: "net unreachable".
        let beyond = "ping -c 1 -t 1 -W 1 198.51.100.1; true";
        let output =
            run(netvm_as(user, &["run", "--config", path_str(&config), "--", "sh", "-c", beyond]));
        output.assert_code(0);
        assert!(
            output.stdout.contains("From 10.1.0.1 icmp_seq=1 Time to live exceeded"),
            "{user:?}\n{output}"
        );
        let unrouted =
            run(netvm_as(user, &["run", "--", "sh", "-c", "ping -c 2 -W 1 192.0.2.1; true"]));
        unrouted.assert_code(0);
        for seq in [1, 2] {
            let line = format!("From 10.0.0.1 icmp_seq={seq} Destination Net Unreachable");
            assert!(unrouted.stdout.lines().any(|l| l == line), "{user:?}: {line}\n{unrouted}");
        }
        assert!(!unrouted.stdout.contains("bytes from"), "{user:?}: no reply\n{unrouted}");
    }
}
