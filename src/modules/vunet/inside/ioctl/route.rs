//! `SIOCADDRT` and `SIOCDELRT`: a `struct rtentry` on an `AF_INET` socket
//! (`ip_rt_ioctl`, `rtentry_to_fib_config`), a `struct in6_rtmsg` on an
//! `AF_INET6` one (`ipv6_route_ioctl`), read into the [`Change`] `ip route add`
//! or `ip route del` would ask, as `route` (net-tools) asks them.
//!
//! A route added this way is `proto boot`, with no exclusive flag: another
//! route to the same destination and metric goes before it, an identical one
//! is `EEXIST`.

use std::net::{IpAddr, Ipv6Addr};

use nix::errno::Errno;

use super::{IFNAMSIZ, SIOCDELRT, c_string, label_of, sockaddr_address, sockaddr_family};
use crate::modules::vunet::cidr::Cidr;
use crate::modules::vunet::inside::change::{Change, Mode, RouteMatch};
use crate::modules::vunet::inside::{IPV6_DEFAULT_METRIC, Inside, RouteView};
use crate::syscall::Ioctl;
use crate::tracer::TraceeMemory;

/// `struct rtentry` (LP64): its size and where its fields are.
mod rtentry {
    pub const LEN: usize = 120;
    pub const DST: usize = 8;
    pub const GATEWAY: usize = 24;
    pub const GENMASK: usize = 40;
    pub const FLAGS: usize = 56;
    pub const METRIC: usize = 80;
    pub const DEV: usize = 88;
}

/// `struct in6_rtmsg` (LP64): its size and where its fields are.
mod in6_rtmsg {
    pub const LEN: usize = 80;
    pub const GATEWAY: usize = 32;
    pub const TYPE: usize = 48;
    pub const DST_LEN: usize = 52;
    pub const METRIC: usize = 56;
    pub const FLAGS: usize = 72;
    pub const IFINDEX: usize = 76;
}

/// `RTF_*` route flags.
const RTF_GATEWAY: u32 = 0x2;
const RTF_HOST: u32 = 0x4;
const RTF_REJECT: u32 = 0x200;
const RTF_CACHE: u32 = 0x0100_0000;
const RTF_PCPU: u32 = 0x4000_0000;
/// The highest route type (`RTN_MAX`).
const RTN_MAX: u32 = 11;

/// What a route request made with `ioctl` asks: create, and no more.
const IOCTL_ADD: Mode = Mode { create: true, exclusive: false, replace: false, append: false };

/// `ip_rt_ioctl` with the `struct rtentry` at `call.arg`.
pub(super) fn read_ipv4(
    memory: &TraceeMemory,
    inside: &Inside,
    call: Ioctl,
) -> Result<Change, Errno> {
    let rtentry = memory.read_bytes(call.arg, rtentry::LEN)?;
    // `rt_dev` points to a name, of which the kernel copies `IFNAMSIZ - 1` bytes.
    let read_name = |at| memory.read_bytes(at, IFNAMSIZ - 1);
    ipv4_change(inside, &rtentry, call.request == SIOCDELRT, read_name)
}

/// `rtentry_to_fib_config`: the change `rtentry` asks, reading the name of its
/// device with `read_name`, or the kernel's errno, in the kernel's order.
fn ipv4_change(
    inside: &Inside,
    rtentry: &[u8],
    delete: bool,
    read_name: impl FnOnce(u64) -> Result<Vec<u8>, Errno>,
) -> Result<Change, Errno> {
    let field = |at: usize| &rtentry[at..at + 16];
    let flags =
        u32::from(u16::from_ne_bytes([rtentry[rtentry::FLAGS], rtentry[rtentry::FLAGS + 1]]));
    let metric = i16::from_ne_bytes([rtentry[rtentry::METRIC], rtentry[rtentry::METRIC + 1]]);
    let device = u64::from_ne_bytes(rtentry[rtentry::DEV..rtentry::DEV + 8].try_into().expect("8"));
    if sockaddr_family(field(rtentry::DST)) != libc::AF_INET as u16 {
        return Err(Errno::EAFNOSUPPORT);
    }
    let destination = sockaddr_address(field(rtentry::DST));
    let prefix = if flags & RTF_HOST != 0 {
        32
    } else {
        let genmask = field(rtentry::GENMASK);
        let mask = sockaddr_address(genmask).to_bits();
        let family = sockaddr_family(genmask);
        if family != libc::AF_INET as u16 && (mask != 0 || family != 0) {
            return Err(Errno::EAFNOSUPPORT);
        }
        // `bad_mask`: host bits in the destination, or holes in the mask.
        let hosts = !mask;
        if destination.to_bits() & hosts != 0 || hosts & hosts.wrapping_add(1) != 0 {
            return Err(Errno::EINVAL);
        }
        mask.count_ones() as u8
    };
    // `route` gives the metric plus one, 0 for none.
    let priority = (metric != 0).then(|| (i32::from(metric) - 1) as u32);
    if flags & RTF_REJECT != 0 {
        // An unreachable route: a stack's routes all lead somewhere.
        return Err(Errno::EOPNOTSUPP);
    }
    let index = match device {
        0 => None,
        at => Some(device_index(inside, &read_name(at)?)?),
    };
    let gateway_field = field(rtentry::GATEWAY);
    let gateway = Some(IpAddr::V4(sockaddr_address(gateway_field))).filter(|ip| {
        sockaddr_family(gateway_field) == libc::AF_INET as u16 && !ip.is_unspecified()
    });
    let destination = Cidr::new(IpAddr::V4(destination), prefix);
    if delete {
        let metric = priority.filter(|&metric| metric != 0);
        return Ok(Change::DeleteRoute(RouteMatch {
            destination,
            gateway,
            index,
            metric,
            protocol: None,
        }));
    }
    if flags & RTF_GATEWAY != 0 && gateway.is_none() {
        return Err(Errno::EINVAL);
    }
    added(destination, gateway, index, priority.unwrap_or(0))
}

/// The index of the device `name` (read from `rt_dev`) names; an alias must
/// label an address of it. `ENODEV` if none.
fn device_index(inside: &Inside, name: &[u8]) -> Result<u32, Errno> {
    let name = c_string(name);
    let base = name.split(|&b| b == b':').next().unwrap_or(name);
    let link = inside.links.iter().find(|l| l.name.as_bytes() == base).ok_or(Errno::ENODEV)?;
    let labels =
        inside.addresses.iter().filter(|a| a.index == link.index && a.address.ip.is_ipv4());
    if name.contains(&b':') && !labels.map(|a| label_of(a, link)).any(|l| l.as_bytes() == name) {
        return Err(Errno::ENODEV);
    }
    Ok(link.index)
}

/// The route to add: with neither gateway nor device it leads nowhere (the
/// kernel finds no device for it).
fn added(
    destination: Cidr,
    gateway: Option<IpAddr>,
    index: Option<u32>,
    metric: u32,
) -> Result<Change, Errno> {
    if gateway.is_none() && index.is_none() {
        return Err(Errno::ENODEV);
    }
    let route = RouteView {
        destination,
        gateway,
        index: index.unwrap_or(0),
        metric,
        protocol: libc::RTPROT_BOOT,
    };
    Ok(Change::AddRoute { route, mode: IOCTL_ADD })
}

/// `ipv6_route_ioctl` with the `struct in6_rtmsg` at `call.arg`.
pub(super) fn read_ipv6(
    memory: &TraceeMemory,
    inside: &Inside,
    call: Ioctl,
) -> Result<Change, Errno> {
    let rtmsg = memory.read_bytes(call.arg, in6_rtmsg::LEN)?;
    ipv6_change(inside, &rtmsg, call.request == SIOCDELRT)
}

/// `rtmsg_to_fib6_config`, then `ip6_route_add` or `ip6_route_del`: the change
/// `rtmsg` asks, or the kernel's errno.
fn ipv6_change(inside: &Inside, rtmsg: &[u8], delete: bool) -> Result<Change, Errno> {
    let u32_at = |at: usize| u32::from_ne_bytes(rtmsg[at..at + 4].try_into().expect("4 bytes"));
    let address =
        |at: usize| Ipv6Addr::from(<[u8; 16]>::try_from(&rtmsg[at..at + 16]).expect("16"));
    let length = u16::from_ne_bytes([rtmsg[in6_rtmsg::DST_LEN], rtmsg[in6_rtmsg::DST_LEN + 1]]);
    let flags = u32_at(in6_rtmsg::FLAGS);
    let metric = u32_at(in6_rtmsg::METRIC);
    let index = u32_at(in6_rtmsg::IFINDEX);
    let gateway = (flags & RTF_GATEWAY != 0).then(|| IpAddr::V6(address(in6_rtmsg::GATEWAY)));
    let destination = |prefix| Cidr::new(IpAddr::V6(address(0)), prefix).network();
    if delete {
        // `fib6_locate` finds nothing for a prefix that long.
        let prefix = u8::try_from(length).ok().filter(|&p| p <= 128).ok_or(Errno::ESRCH)?;
        return Ok(Change::DeleteRoute(RouteMatch {
            destination: destination(prefix),
            gateway,
            index: (index != 0).then_some(index),
            metric: (metric != 0).then_some(metric),
            protocol: None,
        }));
    }
    if flags & (RTF_PCPU | RTF_CACHE) != 0 || u32_at(in6_rtmsg::TYPE) > RTN_MAX {
        return Err(Errno::EINVAL);
    }
    let prefix = u8::try_from(length).ok().filter(|&p| p <= 128).ok_or(Errno::EINVAL)?;
    if index != 0 && !inside.links.iter().any(|link| link.index == index) {
        return Err(Errno::ENODEV);
    }
    if flags & RTF_REJECT != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    let metric = if metric == 0 { IPV6_DEFAULT_METRIC } else { metric };
    added(destination(prefix), gateway, (index != 0).then_some(index), metric)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::modules::vunet::inside::ioctl::sockaddr_in;
    use crate::modules::vunet::inside::ioctl::tests::lwip0;

    /// A `struct rtentry` as `route add -net DST netmask MASK [gw GW]` makes it.
    fn rtentry(destination: &str, mask: &str, gateway: Option<&str>, flags: u16) -> Vec<u8> {
        let mut bytes = vec![0u8; rtentry::LEN];
        let sockaddr = |ip: &str| sockaddr_in(ip.parse::<Ipv4Addr>().unwrap());
        bytes[rtentry::DST..rtentry::DST + 16].copy_from_slice(&sockaddr(destination));
        bytes[rtentry::GENMASK..rtentry::GENMASK + 16].copy_from_slice(&sockaddr(mask));
        if let Some(gateway) = gateway {
            bytes[rtentry::GATEWAY..rtentry::GATEWAY + 16].copy_from_slice(&sockaddr(gateway));
        }
        bytes[rtentry::FLAGS..rtentry::FLAGS + 2].copy_from_slice(&flags.to_ne_bytes());
        bytes
    }

    fn no_name(_: u64) -> Result<Vec<u8>, Errno> {
        unreachable!("no device named")
    }

    fn cidr(text: &str) -> Cidr {
        Cidr::parse(text).unwrap()
    }

    #[test]
    fn route_add_and_del_read_as_ip_route_would_ask() {
        let inside = lwip0();
        let entry = rtentry("10.9.0.0", "255.255.255.0", Some("10.0.0.1"), 0x3);
        let added = ipv4_change(&inside, &entry, false, no_name).unwrap();
        let gateway = "10.0.0.1".parse().unwrap();
        let mut route = RouteView::through(cidr("10.9.0.0/24"), gateway, 0);
        assert_eq!(added, Change::AddRoute { route: route.clone(), mode: IOCTL_ADD });
        let mut entry = rtentry("0.0.0.0", "0.0.0.0", Some("10.0.0.1"), 0x3);
        entry[rtentry::METRIC..rtentry::METRIC + 2].copy_from_slice(&6i16.to_ne_bytes());
        entry[rtentry::DEV..rtentry::DEV + 8].copy_from_slice(&0x1000u64.to_ne_bytes());
        let named = |at| {
            assert_eq!(at, 0x1000);
            Ok(b"eth0\0garbage!!!".to_vec())
        };
        let default = ipv4_change(&inside, &entry, false, named).unwrap();
        (route.destination, route.metric, route.index) = (cidr("0.0.0.0/0"), 5, 2);
        assert_eq!(default, Change::AddRoute { route, mode: IOCTL_ADD });
        let entry = rtentry("10.9.0.0", "255.255.255.0", None, 0x1);
        let Change::DeleteRoute(wanted) = ipv4_change(&inside, &entry, true, no_name).unwrap()
        else {
            panic!("a deletion")
        };
        assert_eq!(
            (wanted.destination, wanted.gateway, wanted.metric),
            (cidr("10.9.0.0/24"), None, None)
        );
    }

    #[test]
    fn bogus_routes_fail_in_the_kernels_order() {
        let inside = lwip0();
        let refused = |entry: Vec<u8>| ipv4_change(&inside, &entry, false, no_name).unwrap_err();
        let mut entry = rtentry("10.9.0.0", "255.255.255.0", Some("10.0.0.1"), 0x3);
        entry[rtentry::DST] = 0;
        assert_eq!(refused(entry), Errno::EAFNOSUPPORT);
        let holes = rtentry("10.9.0.0", "255.0.255.0", Some("10.0.0.1"), 0x3);
        assert_eq!(refused(holes), Errno::EINVAL);
        let host_bits = rtentry("10.9.0.1", "255.255.255.0", Some("10.0.0.1"), 0x3);
        assert_eq!(refused(host_bits), Errno::EINVAL);
        assert_eq!(refused(rtentry("10.9.0.0", "255.255.255.0", None, 0x3)), Errno::EINVAL);
        assert_eq!(refused(rtentry("10.9.0.0", "255.255.255.0", None, 0x1)), Errno::ENODEV);
        let mut entry = rtentry("10.9.0.0", "255.255.255.0", Some("10.0.0.1"), 0x3);
        entry[rtentry::DEV] = 8;
        let unreadable = ipv4_change(&inside, &entry, false, |_| Err(Errno::EFAULT));
        assert_eq!(unreadable, Err(Errno::EFAULT));
        for name in [&b"wlan9\0"[..], b"eth0:7\0"] {
            let unknown = ipv4_change(&inside, &entry, false, |_| Ok(name.to_vec()));
            assert_eq!(unknown, Err(Errno::ENODEV));
        }
    }

    /// A `struct in6_rtmsg` as `route -6 add DST/LEN [gw GW] [dev]` makes it.
    fn rtmsg(destination: &str, length: u16, gateway: Option<&str>, index: u32) -> Vec<u8> {
        let mut bytes = vec![0u8; in6_rtmsg::LEN];
        let ip = |text: &str| text.parse::<Ipv6Addr>().unwrap().octets();
        bytes[..16].copy_from_slice(&ip(destination));
        let mut flags = 1u32;
        if let Some(gateway) = gateway {
            bytes[in6_rtmsg::GATEWAY..in6_rtmsg::GATEWAY + 16].copy_from_slice(&ip(gateway));
            flags |= RTF_GATEWAY;
        }
        bytes[in6_rtmsg::DST_LEN..in6_rtmsg::DST_LEN + 2].copy_from_slice(&length.to_ne_bytes());
        bytes[in6_rtmsg::METRIC..in6_rtmsg::METRIC + 4].copy_from_slice(&1u32.to_ne_bytes());
        bytes[in6_rtmsg::FLAGS..in6_rtmsg::FLAGS + 4].copy_from_slice(&flags.to_ne_bytes());
        bytes[in6_rtmsg::IFINDEX..in6_rtmsg::IFINDEX + 4].copy_from_slice(&index.to_ne_bytes());
        bytes
    }

    #[test]
    fn ipv6_routes_read_as_route_6_asks() {
        let inside = lwip0();
        let added = ipv6_change(&inside, &rtmsg("fd09::1", 64, Some("fd00::1"), 0), false);
        let Ok(Change::AddRoute { route, .. }) = added else { panic!("{added:?}") };
        // The host bits are dropped; `route -6` gives metric 1.
        assert_eq!((route.destination, route.metric), (cidr("fd09::/64"), 1));
        let refused = |bytes: Vec<u8>| ipv6_change(&inside, &bytes, false).unwrap_err();
        assert_eq!(refused(rtmsg("fd09::", 129, Some("fd00::1"), 0)), Errno::EINVAL);
        assert_eq!(refused(rtmsg("fd09::", 64, None, 0)), Errno::ENODEV);
        assert_eq!(refused(rtmsg("fd09::", 64, Some("fd00::1"), 9)), Errno::ENODEV);
        let deleted = ipv6_change(&inside, &rtmsg("fd09::", 64, None, 0), true).unwrap();
        let Change::DeleteRoute(wanted) = deleted else { panic!("{deleted:?}") };
        assert_eq!((wanted.metric, wanted.gateway, wanted.index), (Some(1), None, None));
    }
}
