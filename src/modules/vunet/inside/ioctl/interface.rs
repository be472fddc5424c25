//! The requests that change an interface: `SIOCSIFFLAGS`, `SIOCSIFMTU`,
//! `SIOCSIFHWADDR`, `SIOCSIFTXQLEN` (`dev_ifsioc`), the IPv4 address requests
//! `SIOCSIFADDR`, `SIOCSIFNETMASK`, `SIOCSIFBRDADDR` (`devinet_ioctl`), and
//! IPv6's `SIOCSIFADDR`, `SIOCDIFADDR` (`addrconf_add_ifaddr`,
//! `addrconf_del_ifaddr`), each read into the [`Change`]s that do what the
//! kernel does.
//!
//! `devinet_ioctl` works on one address of an interface, the first whose label
//! is the name asked for (`eth0`, or an alias such as `eth0:1`). Changing its
//! netmask or broadcast takes it out and puts it back (`inet_del_ifa`, then
//! `inet_insert_ifa`), which deletes the secondaries of a primary as deleting
//! it does: so does the [`Change::DeleteAddress`] it becomes here.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use nix::errno::Errno;

use super::{
    IFREQ_LEN, SIOCDIFADDR, SIOCSIFADDR, SIOCSIFBRDADDR, SIOCSIFDSTADDR, SIOCSIFFLAGS,
    SIOCSIFHWADDR, SIOCSIFMETRIC, SIOCSIFMTU, SIOCSIFNETMASK, SIOCSIFPFLAGS, SIOCSIFTXQLEN, UNION,
    hardware_type, labelled, link_named, netmask, requested_name, sockaddr_address,
    sockaddr_family,
};
use crate::modules::vunet::cidr::Cidr;
use crate::modules::vunet::inside::change::LinkSettings;
use crate::modules::vunet::inside::change::{Change, Mode};
use crate::modules::vunet::inside::{AddressView, Inside, LinkKind, LinkView, Scope};
use crate::syscall::Ioctl;
use crate::tracer::TraceeMemory;

/// `sizeof(struct in6_ifreq)`: the address, its prefix length, the link's index.
const IN6_IFREQ_LEN: usize = 24;

/// Whether `request`, with a `struct ifreq`, changes an interface.
pub(super) fn is_change(request: u32) -> bool {
    [
        SIOCSIFFLAGS,
        SIOCSIFADDR,
        SIOCSIFBRDADDR,
        SIOCSIFNETMASK,
        SIOCSIFDSTADDR,
        SIOCSIFPFLAGS,
        SIOCSIFMTU,
        SIOCSIFHWADDR,
        SIOCSIFTXQLEN,
        SIOCSIFMETRIC,
    ]
    .contains(&request)
}

/// `dev_ifsioc`: what `request` with `ifreq` changes of the interface it names
/// (an alias names its interface), or the kernel's errno.
pub(super) fn device_change(
    inside: &Inside,
    request: u32,
    ifreq: &[u8; IFREQ_LEN],
) -> Result<Vec<Change>, Errno> {
    let link = link_named(inside, ifreq)?;
    let value = i32::from_ne_bytes(ifreq[UNION..UNION + 4].try_into().expect("4 bytes"));
    let settings = |settings: LinkSettings| Ok(vec![Change::SetLink(settings)]);
    let index = link.index;
    match request {
        SIOCSIFFLAGS => Ok(vec![set_up(link, ifreq)]),
        SIOCSIFMTU if value < 0 => Err(Errno::EINVAL),
        SIOCSIFMTU => {
            settings(LinkSettings { index, mtu: Some(value as u32), ..Default::default() })
        }
        SIOCSIFHWADDR if sockaddr_family(&ifreq[UNION..]) != hardware_type(link) => {
            Err(Errno::EINVAL)
        }
        SIOCSIFHWADDR => {
            let mac = ifreq[UNION + 2..UNION + 8].try_into().expect("6 bytes");
            settings(LinkSettings { index, mac: Some(mac), ..Default::default() })
        }
        // The queue length is kept as `ip link set txqueuelen` keeps it: not at
        // all (a stack's links have no queue).
        SIOCSIFTXQLEN if value < 0 => Err(Errno::EINVAL),
        SIOCSIFTXQLEN => Ok(Vec::new()),
        _ => Err(Errno::EOPNOTSUPP),
    }
}

/// `IFF_UP` of `ifr_flags` for `link` (`dev_change_flags`); the other flags a
/// program may set (`IFF_PROMISC`, `IFF_NOARP`, ...) are not kept.
fn set_up(link: &LinkView, ifreq: &[u8; IFREQ_LEN]) -> Change {
    let flags = i16::from_ne_bytes([ifreq[UNION], ifreq[UNION + 1]]);
    let up = Some(i32::from(flags) & libc::IFF_UP != 0);
    Change::SetLink(LinkSettings { index: link.index, up, ..Default::default() })
}

/// `devinet_ioctl`: what `request` with `ifreq` (on an `AF_INET` socket) changes
/// of the IPv4 address its name labels, or the kernel's errno, checked in the
/// kernel's order.
pub(super) fn devinet_change(
    inside: &Inside,
    request: u32,
    ifreq: &[u8; IFREQ_LEN],
) -> Result<Vec<Change>, Errno> {
    let sockaddr = &ifreq[UNION..UNION + 16];
    match request {
        SIOCSIFFLAGS => {}
        SIOCSIFADDR | SIOCSIFBRDADDR | SIOCSIFDSTADDR | SIOCSIFNETMASK
            if sockaddr_family(sockaddr) == libc::AF_INET as u16 => {}
        _ => return Err(Errno::EINVAL),
    }
    let link = link_named(inside, ifreq)?;
    let name = requested_name(ifreq);
    let alias = name.contains(&b':');
    let wanted = sockaddr_address(sockaddr);
    let address = labelled(inside, link, ifreq, false);
    match (request, address) {
        (SIOCSIFFLAGS, _) if !alias => Ok(vec![set_up(link, ifreq)]),
        (SIOCSIFADDR, _) => {
            let label = String::from_utf8_lossy(name).into_owned();
            set_address(link, label, address, wanted)
        }
        (_, None) => Err(Errno::EADDRNOTAVAIL),
        // An alias taken down is deleted; brought up, it is already.
        (SIOCSIFFLAGS, Some(address)) => match set_up(link, ifreq) {
            Change::SetLink(LinkSettings { up: Some(false), .. }) => Ok(vec![deletion(address)]),
            _ => Ok(Vec::new()),
        },
        (SIOCSIFNETMASK, Some(address)) => set_netmask(link, address, wanted),
        (SIOCSIFBRDADDR, Some(address)) => {
            let broadcast = (!wanted.is_unspecified()).then_some(wanted);
            if address.broadcast == broadcast {
                return Ok(Vec::new());
            }
            Ok(replacement(address, AddressView { broadcast, ..address.clone() }))
        }
        // `SIOCSIFDSTADDR`: the same peer is no change; another is one the
        // stack's addresses cannot have.
        (_, Some(address)) if address.address.ip == IpAddr::V4(wanted) => Ok(Vec::new()),
        (_, Some(_)) if classful_prefix(wanted).is_none() => Err(Errno::EINVAL),
        (_, Some(_)) => Err(Errno::EOPNOTSUPP),
    }
}

/// `SIOCSIFADDR`: `ip` for the address labelled `label` on `link` (`address`,
/// if there is one), with the classful prefix and its broadcast, as
/// `devinet_ioctl` gives a new address; the one it replaces keeps its label.
fn set_address(
    link: &LinkView,
    label: String,
    address: Option<&AddressView>,
    ip: Ipv4Addr,
) -> Result<Vec<Change>, Errno> {
    let prefix = classful_prefix(ip).ok_or(Errno::EINVAL)?;
    let cidr = Cidr::new(IpAddr::V4(ip), prefix);
    let new = AddressView {
        index: link.index,
        address: cidr,
        scope: if ip.is_loopback() { Scope::Host } else { Scope::Universe },
        broadcast: cidr.broadcast().filter(|_| link.kind == LinkKind::Ethernet),
        label: Some(label),
    };
    match address {
        None => Ok(vec![Change::AddAddress { address: new, mode: Mode::ADD }]),
        Some(old) if old.address.ip == IpAddr::V4(ip) => Ok(Vec::new()),
        Some(old) => Ok(replacement(old, AddressView { label: old.label.clone(), ..new })),
    }
}

/// `SIOCSIFNETMASK`: `mask` for `address`, which must be contiguous; a broadcast
/// that was its subnet's follows the new subnet, another is left as set.
fn set_netmask(
    link: &LinkView,
    address: &AddressView,
    mask: Ipv4Addr,
) -> Result<Vec<Change>, Errno> {
    let hosts = !u32::from(mask);
    if hosts & hosts.wrapping_add(1) != 0 {
        return Err(Errno::EINVAL);
    }
    if mask == netmask(address.address.prefix) {
        return Ok(Vec::new());
    }
    let prefix = mask.to_bits().count_ones() as u8;
    let IpAddr::V4(local) = address.address.ip else { unreachable!("an IPv4 address") };
    let subnet_broadcast = |mask: Ipv4Addr| Ipv4Addr::from(local.to_bits() | !mask.to_bits());
    let follows = link.kind == LinkKind::Ethernet
        && prefix < 31
        && address.broadcast == Some(subnet_broadcast(netmask(address.address.prefix)));
    let broadcast = if follows { Some(subnet_broadcast(mask)) } else { address.broadcast };
    let address_now = Cidr::new(address.address.ip, prefix);
    Ok(replacement(address, AddressView { address: address_now, broadcast, ..address.clone() }))
}

/// The changes that take `old` out and put `new` in.
fn replacement(old: &AddressView, new: AddressView) -> Vec<Change> {
    vec![deletion(old), Change::AddAddress { address: new, mode: Mode::ADD }]
}

/// The change that deletes `address`.
fn deletion(address: &AddressView) -> Change {
    Change::DeleteAddress {
        index: address.index,
        ip: address.address.ip,
        prefix: Some(address.address.prefix),
        label: address.label.clone(),
    }
}

/// The prefix length of `ip`'s class (`inet_abc_len`): 0 for `0.0.0.0` and
/// `255.255.255.255`, 8, 16 or 24 for classes A to C, 32 for class E; none for
/// a multicast address (class D).
fn classful_prefix(ip: Ipv4Addr) -> Option<u8> {
    if ip.is_unspecified() || ip.is_broadcast() {
        return Some(0);
    }
    match ip.octets()[0] {
        0..=127 => Some(8),
        128..=191 => Some(16),
        192..=223 => Some(24),
        224..=239 => None,
        240..=255 => Some(32),
    }
}

/// IPv6's `SIOCSIFADDR` and `SIOCDIFADDR` (on an `AF_INET6` socket) with the
/// `struct in6_ifreq` at `call.arg`: the address to add or delete on the link
/// it gives by index. `SIOCSIFDSTADDR` sets a tunnel's peer: there are none.
pub(super) fn read_ipv6(
    memory: &TraceeMemory,
    inside: &Inside,
    call: Ioctl,
) -> Result<Change, Errno> {
    let bytes = memory.read_bytes(call.arg, IN6_IFREQ_LEN)?;
    ipv6_change(inside, call.request, bytes.as_slice().try_into().expect("read whole"))
}

/// What `request` with `struct in6_ifreq` `in6_ifreq` asks (`inet6_addr_add`,
/// `inet6_addr_del`).
fn ipv6_change(
    inside: &Inside,
    request: u32,
    in6_ifreq: &[u8; IN6_IFREQ_LEN],
) -> Result<Change, Errno> {
    let ip = IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&in6_ifreq[..16]).expect("16")));
    let prefix = u32::from_ne_bytes(in6_ifreq[16..20].try_into().expect("4 bytes"));
    let index = i32::from_ne_bytes(in6_ifreq[20..24].try_into().expect("4 bytes"));
    if request == SIOCSIFDSTADDR {
        return Err(Errno::ENODEV);
    }
    let prefix = u8::try_from(prefix).ok().filter(|&p| p <= 128).ok_or(Errno::EINVAL)?;
    let link = inside.links.iter().find(|l| i64::from(l.index) == i64::from(index));
    let index = link.ok_or(Errno::ENODEV)?.index;
    Ok(match request {
        SIOCDIFADDR => Change::DeleteAddress { index, ip, prefix: Some(prefix), label: None },
        _ => {
            let address = Cidr::new(ip, prefix);
            let scope = Scope::Universe;
            let address = AddressView { index, address, scope, broadcast: None, label: None };
            Change::AddAddress { address, mode: Mode::ADD }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::vunet::inside::ioctl::tests::lwip0;
    use crate::modules::vunet::inside::ioctl::{IFNAMSIZ, name_bytes};

    fn ifreq(name: &str, union: &[u8]) -> [u8; IFREQ_LEN] {
        let mut ifreq = [0u8; IFREQ_LEN];
        ifreq[..IFNAMSIZ].copy_from_slice(&name_bytes(name));
        ifreq[UNION..UNION + union.len()].copy_from_slice(union);
        ifreq
    }

    fn sin(ip: &str) -> [u8; 16] {
        super::super::sockaddr_in(ip.parse().unwrap())
    }

    /// Carries out `request` with `ifreq` on `inside` as an `AF_INET` socket's.
    fn apply(inside: &mut Inside, request: u32, ifreq: &[u8; IFREQ_LEN]) -> Result<(), Errno> {
        for change in devinet_change(inside, request, ifreq)? {
            inside.apply(&change).map_err(Errno::from_raw)?;
        }
        Ok(())
    }

    /// The IPv4 addresses of eth0: address/prefix, broadcast, label.
    fn ipv4(inside: &Inside) -> Vec<String> {
        let show = |a: &AddressView| {
            let broadcast = a.broadcast.map(|b| b.to_string()).unwrap_or_default();
            format!("{} {broadcast} {}", a.address, a.label.as_deref().unwrap_or("-"))
        };
        let eth0 = |a: &&AddressView| a.index == 2 && a.address.ip.is_ipv4();
        inside.addresses.iter().filter(eth0).map(show).collect()
    }

    #[test]
    fn an_alias_gets_a_classful_address_then_its_netmask_and_goes_down() {
        let mut inside = lwip0();
        apply(&mut inside, SIOCSIFADDR, &ifreq("eth0:1", &sin("10.0.0.9"))).unwrap();
        assert_eq!(
            ipv4(&inside),
            ["10.0.0.2/24 10.0.0.255 eth0", "10.0.0.9/8 10.255.255.255 eth0:1"]
        );
        apply(&mut inside, SIOCSIFNETMASK, &ifreq("eth0:1", &sin("255.255.255.0"))).unwrap();
        assert_eq!(ipv4(&inside)[1], "10.0.0.9/24 10.0.0.255 eth0:1", "the broadcast follows");
        // Up is already up; down deletes the alias, and only it.
        apply(&mut inside, SIOCSIFFLAGS, &ifreq("eth0:1", &1u16.to_ne_bytes())).unwrap();
        apply(&mut inside, SIOCSIFFLAGS, &ifreq("eth0:1", &0u16.to_ne_bytes())).unwrap();
        assert_eq!(ipv4(&inside), ["10.0.0.2/24 10.0.0.255 eth0"]);
        let down = apply(&mut inside, SIOCSIFFLAGS, &ifreq("eth0:1", &0u16.to_ne_bytes()));
        assert_eq!(down, Err(Errno::EADDRNOTAVAIL));
        assert!(inside.links[1].up);
    }

    #[test]
    fn a_replaced_address_keeps_its_label_and_a_set_broadcast_stays() {
        let mut inside = lwip0();
        apply(&mut inside, SIOCSIFBRDADDR, &ifreq("eth0", &sin("10.0.0.254"))).unwrap();
        apply(&mut inside, SIOCSIFNETMASK, &ifreq("eth0", &sin("255.255.0.0"))).unwrap();
        assert_eq!(ipv4(&inside), ["10.0.0.2/16 10.0.0.254 eth0"]);
        apply(&mut inside, SIOCSIFADDR, &ifreq("eth0", &sin("192.168.7.2"))).unwrap();
        assert_eq!(ipv4(&inside), ["192.168.7.2/24 192.168.7.255 eth0"]);
        // Address 0 deletes it.
        apply(&mut inside, SIOCSIFADDR, &ifreq("eth0", &sin("0.0.0.0"))).unwrap();
        assert!(ipv4(&inside).is_empty());
    }

    #[test]
    fn classes_give_the_prefix() {
        let prefix = |ip: &str| classful_prefix(ip.parse().unwrap());
        assert_eq!(prefix("0.1.2.3"), Some(8));
        assert_eq!(prefix("172.16.0.1"), Some(16));
        assert_eq!(prefix("192.168.0.1"), Some(24));
        assert_eq!(prefix("224.0.0.1"), None);
        assert_eq!(prefix("240.0.0.1"), Some(32));
        assert_eq!(prefix("255.255.255.255"), Some(0));
    }

    #[test]
    fn bogus_requests_fail_in_the_kernels_order() {
        let inside = lwip0();
        let refused = |request, ifreq| devinet_change(&inside, request, &ifreq).unwrap_err();
        let mut ipv6_family = sin("10.0.0.9");
        ipv6_family[0] = libc::AF_INET6 as u8;
        assert_eq!(refused(SIOCSIFADDR, ifreq("wlan9", &ipv6_family)), Errno::EINVAL);
        assert_eq!(refused(SIOCSIFADDR, ifreq("wlan9", &sin("10.0.0.9"))), Errno::ENODEV);
        assert_eq!(refused(SIOCSIFADDR, ifreq("eth0", &sin("224.0.0.9"))), Errno::EINVAL);
        assert_eq!(refused(SIOCSIFNETMASK, ifreq("eth0", &sin("255.0.255.0"))), Errno::EINVAL);
        assert_eq!(refused(SIOCSIFNETMASK, ifreq("eth0:7", &sin("255.0.0.0"))), {
            Errno::EADDRNOTAVAIL
        });
        assert_eq!(refused(SIOCSIFPFLAGS, ifreq("eth0", &[])), Errno::EINVAL);
        let device = |request, ifreq| device_change(&inside, request, &ifreq).unwrap_err();
        assert_eq!(device(SIOCSIFMTU, ifreq("eth0", &(-1i32).to_ne_bytes())), Errno::EINVAL);
        assert_eq!(device(SIOCSIFMTU, ifreq("wlan9", &1400i32.to_ne_bytes())), Errno::ENODEV);
        let ipv4_family = [2, 0, 2, 0, 0, 0, 0, 9];
        assert_eq!(device(SIOCSIFHWADDR, ifreq("eth0", &ipv4_family)), Errno::EINVAL);
        assert_eq!(device(SIOCSIFTXQLEN, ifreq("eth0", &(-1i32).to_ne_bytes())), Errno::EINVAL);
        assert_eq!(device(SIOCSIFMETRIC, ifreq("eth0", &[])), Errno::EOPNOTSUPP);
    }

    #[test]
    fn device_requests_set_the_links_settings() {
        let inside = lwip0();
        let change = |request, ifreq| device_change(&inside, request, &ifreq).unwrap();
        let set = |settings| vec![Change::SetLink(settings)];
        let mtu = change(SIOCSIFMTU, ifreq("eth0:1", &1400i32.to_ne_bytes()));
        assert_eq!(mtu, set(LinkSettings { index: 2, mtu: Some(1400), ..Default::default() }));
        let mac = [1, 0, 2, 0, 0, 0, 0, 9];
        let mac = change(SIOCSIFHWADDR, ifreq("eth0", &mac));
        let wanted = Some([2, 0, 0, 0, 0, 9]);
        assert_eq!(mac, set(LinkSettings { index: 2, mac: wanted, ..Default::default() }));
        // On other sockets, an alias's flags are its interface's.
        let down = change(SIOCSIFFLAGS, ifreq("eth0:1", &0u16.to_ne_bytes()));
        assert_eq!(down, set(LinkSettings { index: 2, up: Some(false), ..Default::default() }));
        assert!(change(SIOCSIFTXQLEN, ifreq("eth0", &500i32.to_ne_bytes())).is_empty());
    }

    #[test]
    fn ipv6_addresses_are_added_and_deleted_by_index() {
        let inside = lwip0();
        let in6_ifreq = |ip: &str, prefix: u32, index: i32| {
            let mut bytes = [0u8; IN6_IFREQ_LEN];
            bytes[..16].copy_from_slice(&ip.parse::<Ipv6Addr>().unwrap().octets());
            bytes[16..20].copy_from_slice(&prefix.to_ne_bytes());
            bytes[20..].copy_from_slice(&index.to_ne_bytes());
            bytes
        };
        let added = ipv6_change(&inside, SIOCSIFADDR, &in6_ifreq("fd01::2", 64, 2)).unwrap();
        let Change::AddAddress { address, .. } = added else { panic!("{added:?}") };
        assert_eq!(address.address, Cidr::parse("fd01::2/64").unwrap());
        let ask = |request, bytes| ipv6_change(&inside, request, &bytes).unwrap_err();
        assert_eq!(ask(SIOCSIFADDR, in6_ifreq("fd01::2", 129, 2)), Errno::EINVAL);
        assert_eq!(ask(SIOCSIFADDR, in6_ifreq("fd01::2", 64, 9)), Errno::ENODEV);
        assert_eq!(ask(SIOCSIFDSTADDR, in6_ifreq("fd01::2", 64, 2)), Errno::ENODEV);
        let deleted = ipv6_change(&inside, SIOCDIFADDR, &in6_ifreq("fd00::2", 64, 2)).unwrap();
        assert!(matches!(deleted, Change::DeleteAddress { index: 2, prefix: Some(64), .. }));
    }
}
