//! A hostile program inside a stack changing it (issue 13, found by review): what
//! it asks of rtnetlink must get the kernel's errno or take effect, never panic
//! the supervisor, stall the other stacks, or reach beyond its own stack.

mod common;

use common::{User, session};

/// Found by review: a route through a gateway that is not a unicast address
/// (multicast, broadcast, unspecified) was taken, and the first packet sent
/// through it panicked the supervisor in smoltcp's neighbour cache
/// (`assertion failed: protocol_addr.is_unicast()`). Linux refuses such a
/// gateway with `EINVAL` ("Nexthop has invalid gateway", "Invalid gateway
/// address"); the address that put the gateway on a subnet is Linux's to take.
#[test]
fn a_route_through_a_gateway_that_is_not_unicast_is_refused() {
    let output = session(
        User::Invoker,
        r#"
        try() { "$@" 2>/dev/null; echo "$*: $?"; }
        ip addr add 224.0.0.5/0 dev eth0
        try ip route add 10.9.0.0/24 via 224.0.0.7
        try ip route add 10.9.1.0/24 via 255.255.255.255
        try ip route add 10.9.2.0/24 via 10.0.0.255
        ip -6 addr add 8000::1/1 dev eth0
        try ip -6 route add 2001:db8::/64 via ff02::1
        try ip -6 route add 2001:db8:1::/64 via ::
        try ip -6 route add 2001:db8:2::/64 via fd00::2
        ping -c 1 -W 1 10.9.0.1 >/dev/null 2>&1
        ping -c 1 -W 1 10.9.1.1 >/dev/null 2>&1
        ping -6 -c 1 -W 1 2001:db8::1 >/dev/null 2>&1
        ping -6 -c 1 -W 1 2001:db8:1::1 >/dev/null 2>&1
        echo "still serving"
        "#,
    );
    output.assert_code(0);
    // `ip` exits 2 when the kernel refuses a change.
    for line in [
        "ip route add 10.9.0.0/24 via 224.0.0.7: 2",
        "ip route add 10.9.1.0/24 via 255.255.255.255: 2",
        "ip route add 10.9.2.0/24 via 10.0.0.255: 2",
        "ip -6 route add 2001:db8::/64 via ff02::1: 2",
        "ip -6 route add 2001:db8:1::/64 via ::: 2",
        "ip -6 route add 2001:db8:2::/64 via fd00::2: 2",
        "still serving",
    ] {
        common::assert_line(&output, line);
    }
}
