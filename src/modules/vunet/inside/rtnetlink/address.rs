//! Addresses (`RTM_GETADDR`): the messages Linux gives for IPv4 and IPv6 addresses
//! (`inet_fill_ifaddr`, `inet6_fill_ifaddr`), listed in the order Linux keeps them
//! on each link, the dump's strict checks and link filter, and the IPv6 single get.

use std::net::{IpAddr, Ipv6Addr};

use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeader, AddressHeaderFlags, AddressMessage,
    AddressProtocol, AddressScope, CacheInfo,
};

use super::request::{self, Attributes, Policies, Policy, ip_of};
use super::{Dump, Errno, GetAnswer, Request, family};
use crate::modules::vunet::cidr::Cidr;
use crate::modules::vunet::inside::change::{Change, Mode};
use crate::modules::vunet::inside::{AddressView, Inside, LinkKind, LinkView, Scope};

/// `IFA_*` attribute types (`linux/if_addr.h`).
mod ifa {
    pub const ADDRESS: u16 = 1;
    pub const LOCAL: u16 = 2;
    pub const LABEL: u16 = 3;
    pub const BROADCAST: u16 = 4;
    pub const CACHEINFO: u16 = 6;
    pub const FLAGS: u16 = 8;
    pub const RT_PRIORITY: u16 = 9;
    pub const TARGET_NETNSID: u16 = 10;
    pub const PROTO: u16 = 11;
    /// `IFA_MAX`.
    pub const MAX: u16 = 11;
}

/// The length of an address message's family header (`struct ifaddrmsg`).
const HEADER_LEN: usize = 8;

/// How `ifa_ipv4_policy` checks an IPv4 address request's attributes.
const IPV4_POLICIES: Policies = Policies {
    max_kind: ifa::MAX,
    of: |kind| match kind {
        ifa::ADDRESS | ifa::LOCAL | ifa::BROADCAST => Policy::AtLeast(4),
        ifa::LABEL => Policy::String { max: 15 },
        other => common_policy(other),
    },
};

/// How `ifa_ipv6_policy` checks an IPv6 address request's attributes.
const IPV6_POLICIES: Policies = Policies {
    max_kind: ifa::MAX,
    of: |kind| match kind {
        ifa::ADDRESS | ifa::LOCAL => Policy::AtLeast(16),
        other => common_policy(other),
    },
};

/// The checks both families' policies share.
fn common_policy(kind: u16) -> Policy {
    match kind {
        ifa::CACHEINFO => Policy::AtLeast(16),
        ifa::FLAGS | ifa::RT_PRIORITY | ifa::TARGET_NETNSID => Policy::AtLeast(4),
        ifa::PROTO => Policy::AtLeast(1),
        _ => Policy::Any,
    }
}

/// An address as Linux lists it: on its link, primary or secondary.
pub(super) struct Listed<'a> {
    /// The address.
    pub address: &'a AddressView,
    /// Its link.
    pub link: &'a LinkView,
    /// An IPv4 address in a subnet an earlier address of its link has.
    pub secondary: bool,
}

/// Answers an address dump (`inet_dump_ifaddr`, then `inet6_dump_ifaddr` for
/// `AF_UNSPEC` and the families without a handler of their own).
pub(super) fn dump(inside: &Inside, request: &Request) -> Dump {
    let family = request.message.family();
    let mut dump = Dump::new(request.to);
    let mut only_link = None;
    if request.strict {
        match strict_link_filter(inside, request, &mut dump) {
            Ok(link) => only_link = link,
            Err(errno) => {
                dump.fail(errno);
                return dump;
            }
        }
    }
    let families: &[bool] = match family {
        family::INET => &[false],
        family::INET6 => &[true],
        _ => &[false, true],
    };
    for &ipv6 in families {
        for listed in listed(inside, ipv6) {
            if only_link.is_none_or(|index| index == listed.link.index) {
                dump.add(RouteNetlinkMessage::NewAddress(message(&listed)));
            }
        }
    }
    dump
}

/// Checks a strict dump request (`inet_valid_dump_ifaddr_req`) and gives the link
/// it asks for, if any: asking for one marks `dump` filtered.
fn strict_link_filter(
    inside: &Inside,
    request: &Request,
    dump: &mut Dump,
) -> Result<Option<u32>, Errno> {
    let header = strict_header(request.message.payload())?;
    if header.index != 0 {
        *dump = std::mem::replace(dump, Dump::new(request.to)).filtered();
    }
    let policies =
        if request.message.family() == family::INET6 { IPV6_POLICIES } else { IPV4_POLICIES };
    let attributes = request::parse(&request.message, HEADER_LEN, policies, true)?;
    // The only attribute allowed names another namespace, which a stack has not.
    if !attributes.is_empty() {
        return Err(libc::EINVAL);
    }
    match header.index {
        0 => Ok(None),
        index if inside.links.iter().any(|link| link.index == index) => Ok(Some(index)),
        _ => Err(libc::ENODEV),
    }
}

/// A strict request's `ifaddrmsg`: present, with no prefix length, flags or scope.
fn strict_header(payload: &[u8]) -> Result<AddressHeader, Errno> {
    let header = AddressHeader::parse(payload).map_err(|_| libc::EINVAL)?;
    if payload[1..4].iter().any(|&byte| byte != 0) {
        return Err(libc::EINVAL);
    }
    Ok(header)
}

/// Answers an IPv6 single get (`inet6_rtm_getaddr`): the address `IFA_LOCAL`, else
/// `IFA_ADDRESS`, names, on the link `ifa_index` names if it exists.
pub(super) fn get_inet6(inside: &Inside, request: &Request) -> GetAnswer {
    let payload = request.message.payload();
    if payload.len() < HEADER_LEN {
        return Err(libc::EINVAL);
    }
    if request.strict {
        strict_header(payload)?;
    }
    let attributes = request::parse(&request.message, HEADER_LEN, IPV6_POLICIES, request.strict)?;
    let allowed = [ifa::ADDRESS, ifa::LOCAL, ifa::TARGET_NETNSID];
    if request.strict && attributes.kinds().any(|kind| !allowed.contains(&kind)) {
        return Err(libc::EINVAL);
    }
    if attributes.get(ifa::TARGET_NETNSID).is_some() {
        return Err(libc::EINVAL);
    }
    let value = attributes.get(ifa::LOCAL).or_else(|| attributes.get(ifa::ADDRESS));
    let wanted = value
        .and_then(|value| <[u8; 16]>::try_from(&value[..16]).ok())
        .map(|octets| IpAddr::V6(Ipv6Addr::from(octets)))
        .ok_or(libc::EINVAL)?;
    let index = AddressHeader::parse(payload).map_err(|_| libc::EINVAL)?.index;
    let on_link = inside.links.iter().any(|link| link.index == index).then_some(index);
    listed(inside, true)
        .into_iter()
        .find(|listed| {
            listed.address.address.ip == wanted
                && on_link.is_none_or(|index| index == listed.link.index)
        })
        .map(|listed| vec![request.to.reply(RouteNetlinkMessage::NewAddress(message(&listed)))])
        .ok_or(libc::EADDRNOTAVAIL)
}

/// The addresses of one family, link by link in index order, each link's in the
/// order Linux keeps them.
pub(super) fn listed(inside: &Inside, ipv6: bool) -> Vec<Listed<'_>> {
    let mut links: Vec<&LinkView> = inside.links.iter().collect();
    links.sort_by_key(|link| link.index);
    let mut all = Vec::new();
    for link in links {
        let mut own: Vec<&AddressView> = inside
            .addresses
            .iter()
            .filter(|address| address.index == link.index && address.address.ip.is_ipv6() == ipv6)
            .collect();
        if ipv6 {
            all.extend(ipv6_order(&mut own).map(|address| Listed {
                address,
                link,
                secondary: false,
            }));
        } else {
            all.extend(ipv4_order(&own).into_iter().map(|(address, secondary)| Listed {
                address,
                link,
                secondary,
            }));
        }
    }
    all
}

/// A link's IPv4 addresses as `inet_insert_ifa` keeps them: primaries by scope
/// (global first), then the secondaries (in a subnet an earlier address has);
/// each with whether it is secondary.
fn ipv4_order<'a>(addresses: &[&'a AddressView]) -> Vec<(&'a AddressView, bool)> {
    let in_earlier_subnet = |position: usize, address: &AddressView| {
        addresses[..position].iter().any(|earlier| {
            earlier.address.prefix == address.address.prefix
                && earlier.address.network() == address.address.network()
        })
    };
    let mut ordered: Vec<(&'a AddressView, bool)> = addresses
        .iter()
        .enumerate()
        .map(|(position, &address)| (address, in_earlier_subnet(position, address)))
        .collect();
    // Stable: primaries by scope, secondaries after them in their order.
    ordered.sort_by_key(|&(address, secondary)| {
        if secondary { u16::MAX } else { u16::from(u8::from(address_scope(address.scope))) }
    });
    ordered
}

/// A link's IPv6 addresses as `ipv6_link_dev_addr` keeps them: by scope, widest
/// first, the latest added first within a scope.
fn ipv6_order<'a>(
    addresses: &mut Vec<&'a AddressView>,
) -> impl Iterator<Item = &'a AddressView> + use<'a> {
    addresses.reverse();
    addresses.sort_by_key(|address| match address.scope {
        Scope::Universe => 0,
        Scope::Link => 1,
        Scope::Host => 2,
    });
    std::mem::take(addresses).into_iter()
}

/// A scope as a route or address message carries it (`RT_SCOPE_*`).
fn address_scope(scope: Scope) -> AddressScope {
    match scope {
        Scope::Universe => AddressScope::Universe,
        Scope::Link => AddressScope::Link,
        Scope::Host => AddressScope::Host,
    }
}

/// The `RTM_NEWADDR` message of a listed address: permanent, valid forever.
pub(super) fn message(listed: &Listed) -> AddressMessage {
    let Listed { address, link, secondary } = *listed;
    let mut flags = AddressFlags::Permanent;
    if secondary {
        flags |= AddressFlags::Secondary;
    }
    let header = AddressHeader {
        family: if address.address.ip.is_ipv6() { family::INET6 } else { family::INET }.into(),
        prefix_len: address.address.prefix,
        flags: AddressHeaderFlags::from_bits_retain(flags.bits() as u8),
        scope: address_scope(address.scope),
        index: link.index,
    };
    let mut cache = CacheInfo::default();
    cache.ifa_preferred = u32::MAX;
    cache.ifa_valid = u32::MAX;
    let ip = address.address.ip;
    let attributes = match ip {
        IpAddr::V4(_) => {
            let label = address.label.clone().unwrap_or_else(|| link.name.clone());
            let mut attributes = vec![AddressAttribute::Address(ip), AddressAttribute::Local(ip)];
            attributes.extend(address.broadcast.map(AddressAttribute::Broadcast));
            attributes.extend([
                AddressAttribute::Label(label),
                AddressAttribute::Flags(flags),
                AddressAttribute::CacheInfo(cache),
            ]);
            attributes
        }
        IpAddr::V6(v6) => {
            let mut attributes = vec![
                AddressAttribute::Address(ip),
                AddressAttribute::CacheInfo(cache),
                AddressAttribute::Flags(flags),
            ];
            attributes.extend(ipv6_protocol(v6, link).map(AddressAttribute::Protocol));
            attributes
        }
    };
    let mut message = AddressMessage::default();
    message.header = header;
    message.attributes = attributes;
    message
}

/// Who added an IPv6 address, when the kernel did: `::1` on loopback, a link-local
/// address on an Ethernet link.
fn ipv6_protocol(address: Ipv6Addr, link: &LinkView) -> Option<AddressProtocol> {
    match link.kind {
        LinkKind::Loopback if address == Ipv6Addr::LOCALHOST => Some(AddressProtocol::Loopback),
        LinkKind::Ethernet if address.is_unicast_link_local() => Some(AddressProtocol::LinkLocal),
        _ => None,
    }
}

/// The message of `address` as its notification carries it: listed as the
/// stack lists it now (a deleted one as a primary).
pub(super) fn notification_message(
    inside: &Inside,
    address: &AddressView,
) -> Option<AddressMessage> {
    let link = inside.links.iter().find(|link| link.index == address.index)?;
    let secondary = listed(inside, address.address.ip.is_ipv6())
        .iter()
        .any(|listed| listed.address == address && listed.secondary);
    Some(message(&Listed { address, link, secondary }))
}

/// Reads an `RTM_NEWADDR` or `RTM_DELADDR` request (`inet_rtm_newaddr`,
/// `inet_rtm_deladdr`, and their IPv6 twins) into the change it asks.
pub(super) fn read_change(inside: &Inside, request: &Request, mode: Mode) -> Result<Change, Errno> {
    let family = request.message.family();
    let (policies, len) = match family {
        family::INET => (IPV4_POLICIES, 4),
        family::INET6 => (IPV6_POLICIES, 16),
        _ => return Err(libc::EOPNOTSUPP),
    };
    let attributes = request::parse(&request.message, HEADER_LEN, policies, false)?;
    let header = AddressHeader::parse(request.message.payload()).map_err(|_| libc::EINVAL)?;
    let ip_of = |kind| attributes.get(kind).and_then(|bytes| ip_of(bytes.get(..len)?));
    // IPv6 takes its address from either attribute; IPv4's own is `IFA_LOCAL`.
    let local = ip_of(ifa::LOCAL);
    let ip = if family == family::INET6 { local.or_else(|| ip_of(ifa::ADDRESS)) } else { local };
    let deleting = request.message.header.message_type == libc::RTM_DELADDR;
    if deleting {
        inside.link(header.index)?;
        let ip = ip.or_else(|| ip_of(ifa::ADDRESS)).ok_or(libc::EADDRNOTAVAIL)?;
        let prefix_given = family == family::INET6 || attributes.get(ifa::ADDRESS).is_some();
        return Ok(Change::DeleteAddress {
            index: header.index,
            ip,
            prefix: prefix_given.then_some(header.prefix_len),
            label: label(&attributes),
        });
    }
    let ip = ip.ok_or(libc::EINVAL)?;
    if header.prefix_len > if family == family::INET { 32 } else { 128 } {
        return Err(libc::EINVAL);
    }
    inside.link(header.index)?;
    let broadcast = match ip_of(ifa::BROADCAST) {
        Some(IpAddr::V4(broadcast)) => Some(broadcast),
        _ => None,
    };
    let scope = match header.scope {
        AddressScope::Host => Scope::Host,
        AddressScope::Link => Scope::Link,
        _ => Scope::Universe,
    };
    let address = AddressView {
        index: header.index,
        address: Cidr::new(ip, header.prefix_len),
        scope,
        broadcast,
        label: label(&attributes),
    };
    Ok(Change::AddAddress { address, mode })
}

/// A request's `IFA_LABEL`.
fn label(attributes: &Attributes) -> Option<String> {
    let label = attributes.string(ifa::LABEL)?;
    Some(String::from_utf8_lossy(label).into_owned())
}
