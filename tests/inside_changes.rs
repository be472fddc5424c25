//! Changes made from inside a stack take effect at once (issue 13): an address
//! added with `ip addr add` answers pings and connections from another stack, a
//! link taken down stops traffic and brought up restores it, a route added with
//! `ip route add` carries traffic through the router, and `netvm status` shows
//! what changed. As root and as an unprivileged user: the session's own user is
//! its stacks' administrator.

mod common;

use common::{USERS, User, assert_line, path_str, session, session_with};

/// The test configuration with two LANs joined by the router.
const TWO_LANS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/network/two-lans.toml");

#[test]
fn an_added_address_answers_pings_and_connections() {
    for user in USERS {
        let output = session(
            user,
            r#"
            ping_from_lwip1() { "$N" stack lwip1 -- ping -c 1 -W 1 "$1" >/dev/null 2>&1; }
            ping_from_lwip1 10.0.0.50 || echo "before: no reply from .50"
            ip addr add 10.0.0.50/24 dev eth0
            ping_from_lwip1 10.0.0.50 && echo "added: .50 replies"
            nc -l 10.0.0.50 7050 &
            listening tcp 7050
            echo "hello .50" | "$N" stack lwip1 -- nc -N 10.0.0.50 7050
            wait
            "$N" status | grep -q "eth0 .*10.0.0.50/24" && echo "status shows .50"
            ip addr del 10.0.0.50/24 dev eth0
            ping_from_lwip1 10.0.0.50 || echo "deleted: no reply from .50"
            "#,
        );
        output.assert_code(0);
        for line in [
            "before: no reply from .50",
            "added: .50 replies",
            "hello .50",
            "status shows .50",
            "deleted: no reply from .50",
        ] {
            assert_line(&output, line);
        }
    }
}

#[test]
fn a_link_down_stops_traffic_and_up_restores_it() {
    for user in USERS {
        let output = session(
            user,
            r#"
            ping_from_lwip1() { "$N" stack lwip1 -- ping -c 1 -W 1 10.0.0.2 >/dev/null 2>&1; }
            ping_from_lwip1 && echo "up: reply"
            ip link set eth0 down
            ping_from_lwip1 || echo "down: no reply"
            ping -c 1 -W 1 10.0.0.3 2>&1 | grep -q "unreachable" && echo "down: unreachable"
            "$N" status | grep -q "eth0 .*DOWN" && echo "status shows DOWN"
            ip link set eth0 up
            # The link's neighbours were flushed, and smoltcp drops the first
            # reply while it resolves its asker again (Linux queues it).
            "$N" stack lwip1 -- ping -c 2 -i 0.3 -W 1 10.0.0.2 >/dev/null && echo "up again: reply"
            "#,
        );
        output.assert_code(0);
        for line in [
            "up: reply",
            "down: no reply",
            "down: unreachable",
            "status shows DOWN",
            "up again: reply",
        ] {
            assert_line(&output, line);
        }
    }
}

#[test]
fn an_added_route_carries_traffic_through_the_router() {
    for user in USERS {
        let script = r#"
            ip route del default
            ip -6 route del default
            ping -c 1 -W 1 10.0.1.2 2>&1 | grep -q "unreachable" && echo "no route: unreachable"
            ip route add 10.0.1.0/24 via 10.0.0.1
            ip -6 route add fd01::/64 via fd00::1
            ping -c 1 -W 2 10.0.1.2 >/dev/null && echo "route added: far replies"
            ping -6 -c 1 -W 2 fd01::2 >/dev/null && echo "route added: far replies over IPv6"
            "$N" status | grep -q "10.0.1.0/24 via 10.0.0.1 dev eth0" && echo "status shows the route"
            ip route del 10.0.1.0/24
            ping -c 1 -W 1 10.0.1.2 >/dev/null 2>&1 || echo "route deleted: no reply"
            "#;
        let output = session_with(user, &["--config", path_str(TWO_LANS.as_ref())], script);
        output.assert_code(0);
        for line in [
            "no route: unreachable",
            "route added: far replies",
            "route added: far replies over IPv6",
            "status shows the route",
            "route deleted: no reply",
        ] {
            assert_line(&output, line);
        }
    }
}

/// Each stack is configured apart: what lwip0 changes, lwip1 does not see.
#[test]
fn a_change_stays_on_its_stack() {
    let output = session(
        User::Invoker,
        r#"
        ip addr add 10.0.0.50/24 dev eth0
        ip link set eth0 mtu 1400
        "$N" stack lwip1 -- ip -o addr show eth0 | grep -q 10.0.0.50 || echo "lwip1 lacks .50"
        "$N" stack lwip1 -- ip link show eth0 | grep -q "mtu 1500" && echo "lwip1 keeps mtu 1500"
        "#,
    );
    output.assert_code(0);
    assert_line(&output, "lwip1 lacks .50");
    assert_line(&output, "lwip1 keeps mtu 1500");
}

/// Found by review: smoltcp panics on an address that is not unicast, so `ip
/// addr add 224.0.0.5/24 dev eth0` (which Linux takes) brought the supervisor
/// down. Now the stack lists it as Linux does, and such requests leave the
/// session serving.
#[test]
fn odd_changes_leave_the_session_serving() {
    let output = session(
        User::Invoker,
        r#"
        for a in 224.0.0.5/24 255.255.255.255/32 127.0.0.9/8 0.0.0.0/0 10.0.0.1/24 169.254.0.1/16; do
            ip addr add $a dev eth0
        done
        ip addr add ff02::5/64 dev eth0 2>/dev/null || echo "ipv6 multicast refused"
        ip addr add ::/0 dev eth0 2>/dev/null || echo "ipv6 unspecified refused"
        ip link set eth0 mtu 68; ip link set eth0 mtu 65535; ip link set lo mtu 68
        ip link set eth0 mtu 67 2>/dev/null || echo "mtu 67 refused"
        ip link set eth0 address ff:ff:ff:ff:ff:ff 2>/dev/null || echo "broadcast mac refused"
        ip link set eth0 address 02:00:00:00:00:99
        ip route add 10.5.0.0/16 via 10.0.0.2
        ip link set eth0 mtu 1500
        ip -br addr show eth0 | grep -q "224.0.0.5/24 255.255.255.255/32" && echo "listed"
        ping -c 1 -W 2 10.0.0.3 >/dev/null && echo "still serving"
        "#,
    );
    output.assert_code(0);
    for line in [
        "ipv6 multicast refused",
        "ipv6 unspecified refused",
        "mtu 67 refused",
        "broadcast mac refused",
        "listed",
        "still serving",
    ] {
        assert_line(&output, line);
    }
}

/// The neighbours a stack learns show in `ip neigh` (the router's reply
/// `REACHABLE`, with the router flag over IPv6; a peer that only asked,
/// `STALE`), and `ip neigh flush` forgets them.
#[test]
fn learnt_neighbours_show_and_flush() {
    let output = session(
        User::Invoker,
        r#"
        ping -c 1 10.0.0.1 >/dev/null
        ping -6 -c 1 fd00::1 >/dev/null
        "$N" stack lwip1 -- ping -c 1 10.0.0.2 >/dev/null
        ip neigh
        ip neigh flush dev eth0
        ip neigh | wc -l
        "#,
    );
    output.assert_code(0);
    for line in [
        "10.0.0.1 dev eth0 lladdr 02:6e:76:ff:00:00 REACHABLE ",
        "10.0.0.3 dev eth0 lladdr 02:6e:76:00:01:00 STALE ",
        "fd00::1 dev eth0 lladdr 02:6e:76:ff:00:00 router REACHABLE ",
        "0",
    ] {
        assert_line(&output, line);
    }
}

/// What `route -n`, `arp -n`, `ifconfig` and `/proc/net/if_inet6` print (they
/// read `/proc/net`), inside a stack after changes made there, as a namespace
/// configured alike prints it; but the counters (the namespace's veth carries
/// IPv6's own chatter, the stack's link nothing yet), the order of IPv6
/// addresses (a hash order, random per namespace) and the `nodad` flag of the
/// namespace's own address.
const PROC_NET_READERS: &str = "ip addr add 10.0.0.50/24 dev eth0\n\
    ip route add 10.9.0.0/24 via 10.0.0.1 metric 5\n\
    ip neigh add 10.0.0.77 lladdr 02:00:00:00:00:77 dev eth0\n\
    route -n; arp -n; sort /proc/net/if_inet6\n\
    ifconfig eth0 | grep -v 'packets\\|errors' | sort\n";

#[test]
fn programs_that_read_proc_net_see_the_stack() {
    if !common::is_root() {
        return common::skip("needs root for a network namespace");
    }
    let native = common::run({
        let mut command = std::process::Command::new("unshare");
        let setup = common::namespace::NAMESPACE_LIKE_LWIP0;
        command.args(["-n", "sh", "-c", setup, "sh", PROC_NET_READERS]);
        command
    });
    native.assert_code(0);
    let host_mounts = || std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let before = host_mounts();
    for user in USERS {
        let output = session(user, PROC_NET_READERS);
        output.assert_code(0);
        // The namespace's veth peer shows in its if_inet6; the stack has none.
        let expected: String = native
            .stdout
            .replace(" 02 40 00 82 ", " 02 40 00 80 ")
            .lines()
            .filter(|line| !line.ends_with("peer0"))
            .map(|line| format!("{line}\n"))
            .collect();
        assert_eq!(output.stdout, expected, "{user:?}");
    }
    assert_eq!(host_mounts(), before, "the mounts stay in the session");
    // Each stack's programs read their own stack's.
    let output = session(
        User::Invoker,
        "ip route add 10.9.0.0/24 via 10.0.0.1\n\"$N\" stack lwip1 -- route -n",
    );
    assert!(!output.stdout.contains("10.9.0.0"), "{output}");
    assert!(
        output.stdout.contains("0.0.0.0         10.0.0.1        0.0.0.0         UG"),
        "{output}"
    );
}

/// Found in review: the counters of `/proc/net/dev` were rewritten for the
/// first stack only each second (the second found the second not yet past).
/// Every stack whose programs read it gets its own counters.
#[test]
fn every_stacks_proc_net_counts_its_traffic() {
    let output = session(
        User::Invoker,
        r#"
        "$N" stack lwip1 -- sleep 4 &
        sleep 0.3
        ping -c 3 -i 0.2 10.0.0.3 >/dev/null
        sleep 1.5
        ping -c 1 10.0.0.3 >/dev/null
        "$N" stack lwip1 -- sh -c 'grep eth0: /proc/net/dev' | awk '{ print ($3 > 0) ? "lwip1 counted" : "lwip1 zero" }'
        grep eth0: /proc/net/dev | awk '{ print ($3 > 0) ? "lwip0 counted" : "lwip0 zero" }'
        wait
        "#,
    );
    output.assert_code(0);
    assert_line(&output, "lwip1 counted");
    assert_line(&output, "lwip0 counted");
}
