//! The `/proc/net` files a stack's programs read (`route -n`, `ifconfig`,
//! `arp -n`), written from its [`Inside`] as the kernel writes them for a
//! namespace: `route` (`fib_route_seq_show`), `if_inet6` (`if6_seq_show`),
//! `arp` (`arp_seq_show`) and `dev` (`dev_seq_show`).

use std::fmt::Write;
use std::net::IpAddr;

use crate::modules::vunet::inside::{Inside, NeighbourView, RouteView, Scope};

/// The files written, by name.
pub(super) const NAMES: [&str; 4] = ["route", "if_inet6", "arp", "dev"];

/// The contents of file `name` for `inside`, whose main table's IPv4 routes
/// (those Linux derives included) are `ipv4_routes`.
pub(super) fn contents(name: &str, inside: &Inside, ipv4_routes: &[RouteView]) -> String {
    match name {
        "route" => route(inside, ipv4_routes),
        "if_inet6" => if_inet6(inside),
        "arp" => arp(inside),
        _ => dev(inside),
    }
}

/// A line of `/proc/net/route`, padded as the kernel pads it (to 127 columns).
fn padded(line: &str) -> String {
    format!("{line:<127}\n")
}

/// An IPv4 address as `/proc/net/route` writes it: the 32 bits in memory order,
/// as a native (little-endian) number in hex.
fn hex_address(octets: [u8; 4]) -> String {
    format!("{:08X}", u32::from_ne_bytes(octets))
}

/// `/proc/net/route`: the main table's unicast routes, in its order.
fn route(inside: &Inside, routes: &[RouteView]) -> String {
    let header =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT";
    let mut out = padded(header);
    let octets = |ip: Option<IpAddr>| match ip {
        Some(IpAddr::V4(ip)) => ip.octets(),
        _ => [0; 4],
    };
    for route in routes {
        let Ok(link) = inside.link(route.index) else { continue };
        let prefix = u32::from(route.destination.prefix);
        let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
        let mut flags = libc::RTF_UP;
        if route.gateway.is_some() {
            flags |= libc::RTF_GATEWAY;
        }
        if prefix == 32 {
            flags |= libc::RTF_HOST;
        }
        let line = format!(
            "{}\t{}\t{}\t{:04X}\t0\t0\t{}\t{}\t0\t0\t0",
            link.name,
            hex_address(octets(Some(route.destination.ip))),
            hex_address(octets(route.gateway)),
            flags,
            route.metric,
            hex_address(mask.to_be_bytes()),
        );
        out.push_str(&padded(&line));
    }
    out
}

/// `/proc/net/if_inet6`: each IPv6 address, its link, prefix, scope and flags
/// (all permanent).
fn if_inet6(inside: &Inside) -> String {
    let mut out = String::new();
    for address in &inside.addresses {
        let IpAddr::V6(ip) = address.address.ip else { continue };
        let Ok(link) = inside.link(address.index) else { continue };
        let scope = match address.scope {
            Scope::Universe => 0x00,
            Scope::Link => 0x20,
            Scope::Host => 0x10,
        };
        let hex: String = ip.octets().iter().map(|byte| format!("{byte:02x}")).collect();
        let _ = writeln!(
            out,
            "{hex} {:02x} {:02x} {scope:02x} 80 {:>8}",
            link.index, address.address.prefix, link.name
        );
    }
    out
}

/// `/proc/net/arp`: the IPv4 neighbour entries.
fn arp(inside: &Inside) -> String {
    let mut out = String::from(
        "IP address       HW type     Flags       HW address            Mask     Device\n",
    );
    for neighbour in inside.neighbours.iter().filter(|n| n.ip.is_ipv4()) {
        let Ok(link) = inside.link(neighbour.index) else { continue };
        let _ = writeln!(
            out,
            "{:<16} 0x{:<10x}0x{:<10x}{:<17}     *        {}",
            neighbour.ip.to_string(),
            libc::ARPHRD_ETHER,
            arp_flags(neighbour),
            mac_text(neighbour.mac.unwrap_or_default()),
            link.name
        );
    }
    out
}

/// `ATF_COM` for an entry with a hardware address, `ATF_PERM` for a permanent one.
fn arp_flags(neighbour: &NeighbourView) -> u32 {
    const ATF_COM: u32 = 0x02;
    const ATF_PERM: u32 = 0x04;
    let mut flags = 0;
    if neighbour.mac.is_some() {
        flags |= ATF_COM;
    }
    if neighbour.state & crate::modules::vunet::inside::change::NUD_PERMANENT != 0 {
        flags |= ATF_PERM;
    }
    flags
}

/// A hardware address as `aa:bb:cc:dd:ee:ff`.
fn mac_text(mac: [u8; 6]) -> String {
    mac.map(|byte| format!("{byte:02x}")).join(":")
}

/// `/proc/net/dev`: each link's counters.
fn dev(inside: &Inside) -> String {
    let mut out = String::from(
        "Inter-|   Receive                                                |  Transmit\n \
         face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n",
    );
    for link in &inside.links {
        let c = &link.counters;
        let _ = writeln!(
            out,
            "{:>6}:{:>8} {:>7} {:>4} {:>4} {:>4} {:>5} {:>10} {:>9} {:>8} {:>7} {:>4} {:>4} {:>4} {:>5} {:>7} {:>10}",
            link.name,
            c.rx_bytes,
            c.rx_packets,
            0,
            c.dropped,
            0,
            0,
            0,
            0,
            c.tx_bytes,
            c.tx_packets,
            0,
            0,
            0,
            0,
            0,
            0
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::vunet::cidr::Cidr;
    use crate::modules::vunet::inside::fixtures::link;
    use crate::modules::vunet::inside::{AddressView, LinkKind};

    fn lwip0() -> Inside {
        let mut inside = Inside::default();
        inside.links.push(link(1, "lo", LinkKind::Loopback, [0; 6], 65536));
        inside.links.push(link(2, "eth0", LinkKind::Ethernet, [2, 0x6e, 0x76, 0, 0, 0], 1500));
        for (index, text, scope) in
            [(2, "fd00::2/64", Scope::Universe), (2, "fe80::6e:76ff:fe00:0/64", Scope::Link)]
        {
            let address = Cidr::parse(text).unwrap();
            inside.addresses.push(AddressView {
                index,
                address,
                scope,
                broadcast: None,
                label: None,
            });
        }
        inside.neighbours.push(NeighbourView {
            index: 2,
            ip: "10.0.0.77".parse().unwrap(),
            mac: Some([2, 0, 0, 0, 0, 0x77]),
            state: crate::modules::vunet::inside::change::NUD_PERMANENT,
            router: false,
        });
        inside
    }

    /// As a namespace configured like lwip0 writes them (Linux 6.18).
    #[test]
    fn files_read_as_linuxs() {
        let inside = lwip0();
        let default =
            RouteView::through(Cidr::parse("0.0.0.0/0").unwrap(), "10.0.0.1".parse().unwrap(), 2);
        let subnet = RouteView {
            gateway: None,
            ..RouteView::through(
                Cidr::parse("10.0.0.0/24").unwrap(),
                "10.0.0.1".parse().unwrap(),
                2,
            )
        };
        let routes = [default, subnet];
        let route = contents("route", &inside, &routes);
        let lines: Vec<&str> = route.lines().map(str::trim_end).collect();
        assert_eq!(lines[1], "eth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0");
        assert_eq!(lines[2], "eth0\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0");
        assert!(route.lines().all(|line| line.len() == 127), "{route:?}");
        assert_eq!(
            contents("if_inet6", &inside, &[]),
            "fd000000000000000000000000000002 02 40 00 80     eth0\n\
             fe80000000000000006e76fffe000000 02 40 20 80     eth0\n"
        );
        assert_eq!(
            contents("arp", &inside, &[]).lines().nth(1),
            Some("10.0.0.77        0x1         0x6         02:00:00:00:00:77     *        eth0")
        );
        assert_eq!(
            contents("dev", &inside, &[]).lines().nth(3),
            Some(
                "  eth0:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0"
            )
        );
    }
}
