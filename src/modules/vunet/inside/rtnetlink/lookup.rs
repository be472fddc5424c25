//! Route lookups (`ip route get`, and `arping` finding its interface): the route
//! a packet to an address would take, looked up in the routes the kernel holds
//! for the stack (the local table first, then the main table, the longest prefix
//! and then the lowest metric winning), answered as `inet_rtm_getroute` and
//! `inet6_rtm_getroute` answer.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::DefaultNla;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteProtocol, RouteScope,
    RouteType,
};

use super::request::{self, Policies, Policy};
use super::route::{HEADER_LEN, LOCAL, MAIN, Route, message, routes};
use super::{Errno, GetAnswer, Request, family};
use crate::modules::vunet::cidr::Cidr;
use crate::modules::vunet::inside::{Inside, LinkKind, Scope};

/// `RTCF_*`: what an IPv4 lookup's answer says of its destination, in the high
/// bits of `rtm_flags`.
mod rtcf {
    pub const LOCAL: u32 = 0x8000_0000;
    pub const BROADCAST: u32 = 0x1000_0000;
    pub const MULTICAST: u32 = 0x2000_0000;
}

/// `RTM_F_LOOKUP_TABLE` and `RTM_F_FIB_MATCH`, the flags a lookup may ask with.
const LOOKUP_FLAGS: u32 = 0x1000 | 0x2000;
/// `RTA_UID`.
const RTA_UID: u16 = 25;
/// The attributes a strict lookup may carry (`inet_rtm_valid_getroute_req`):
/// `RTA_IIF`, `RTA_OIF`, `RTA_SRC`, `RTA_DST`, `RTA_MARK`, `RTA_UID`,
/// `RTA_IP_PROTO`, `RTA_SPORT`, `RTA_DPORT`.
const STRICT_ATTRIBUTES: [u16; 9] = [3, 4, 2, 1, 16, 25, 27, 28, 29];

/// How `rtm_ipv4_policy` checks a lookup's attributes.
const POLICIES: Policies = Policies {
    max_kind: 30,
    of: |kind| match kind {
        libc::RTA_OIF | libc::RTA_IIF | libc::RTA_MARK | RTA_UID => Policy::AtLeast(4),
        _ => Policy::Any,
    },
};

/// What a lookup asks.
struct Asked {
    ipv6: bool,
    destination: IpAddr,
    /// The source it gave (`ip route get ... from`), if any.
    source: Option<IpAddr>,
    /// The link it must leave by (`oif`), if any.
    link: Option<u32>,
}

/// Answers a route lookup: the route as the kernel's lookup finds it, or
/// `ENETUNREACH`.
pub(super) fn get(inside: &Inside, request: &Request) -> GetAnswer {
    let asked = read(inside, request)?;
    let all = routes(inside, asked.ipv6);
    let is_local = |ip: IpAddr| {
        let local = |route: &&Route| route.table == LOCAL && route.kind == RouteType::Local;
        all.iter().filter(local).any(|route| route.destination.contains(ip))
    };
    // `ip_route_output_key_hash_rcu`: a source must be one of the host's own.
    if !asked.ipv6 && asked.source.is_some_and(|source| !is_local(source)) {
        return Err(libc::ENETUNREACH);
    }
    let found = |table: u8| {
        all.iter()
            .filter(|route| route.table == table && route.destination.contains(asked.destination))
            .filter(|route| asked.link.is_none_or(|link| route.link == link || table == LOCAL))
            .max_by_key(|route| (route.destination.prefix, u32::MAX - route.metric.unwrap_or(0)))
    };
    let forced = asked.link.and_then(|link| forced_route(inside, &asked, link));
    let special = ipv4_special(inside, &asked);
    let route = special
        .as_ref()
        .or_else(|| found(LOCAL))
        .or_else(|| found(MAIN))
        .or(forced.as_ref())
        .ok_or(libc::ENETUNREACH)?;
    // A loopback source leaves by loopback only (`ip_route_output_key_hash_rcu`).
    let looped = route.kind == RouteType::Local
        || inside.link(route.link).is_ok_and(|link| link.kind == LinkKind::Loopback);
    if asked.source.is_some_and(|source| source.is_loopback()) && !asked.ipv6 && !looped {
        return Err(libc::EINVAL);
    }
    let broadcast;
    let route = if asked.destination == IpAddr::V4(Ipv4Addr::BROADCAST) {
        // The limited broadcast leaves by the route's link, to no gateway.
        broadcast = Route { kind: RouteType::Broadcast, gateway: None, ..route.clone() };
        &broadcast
    } else {
        route
    };
    let answer = if asked.ipv6 {
        ipv6_answer(inside, &asked, route)
    } else {
        ipv4_answer(inside, &asked, route, request.uid)
    };
    Ok(vec![request.to.reply(RouteNetlinkMessage::NewRoute(answer))])
}

/// Reads a lookup request, checked strictly when the socket asks it.
fn read(inside: &Inside, request: &Request) -> Result<Asked, Errno> {
    let ipv6 = request.message.family() == family::INET6;
    let payload = request.message.payload();
    let header = payload.get(..HEADER_LEN).ok_or(libc::EINVAL)?;
    let header = RouteHeader::parse(header).map_err(|_| libc::EINVAL)?;
    let attributes = request::parse(&request.message, HEADER_LEN, POLICIES, request.strict)?;
    if request.strict {
        let full = if ipv6 { 128 } else { 32 };
        let prefix_ok = |len: u8| len == 0 || len == full;
        let header_ok = prefix_ok(header.destination_prefix_length)
            && prefix_ok(header.source_prefix_length)
            && payload[4..8].iter().all(|&byte| byte == 0)
            && header.flags.bits() & !LOOKUP_FLAGS == 0;
        if !header_ok || attributes.kinds().any(|kind| !STRICT_ATTRIBUTES.contains(&kind)) {
            return Err(libc::EINVAL);
        }
    }
    if attributes.get(libc::RTA_IIF).is_some_and(|iif| iif != [0; 4]) {
        // A lookup as for a packet coming in: a stack forwards nothing.
        return Err(libc::EOPNOTSUPP);
    }
    let link = attributes.u32(libc::RTA_OIF).filter(|&link| link != 0);
    if let Some(link) = link {
        inside.link(link)?;
    }
    Ok(Asked {
        ipv6,
        destination: attributes.ip(libc::RTA_DST, ipv6)?.unwrap_or(request::unspecified(ipv6)),
        source: attributes.ip(libc::RTA_SRC, ipv6)?,
        link,
    })
}

/// A lookup's address attribute.
fn route_address(ip: IpAddr) -> RouteAddress {
    match ip {
        IpAddr::V4(ip) => RouteAddress::Inet(ip),
        IpAddr::V6(ip) => RouteAddress::Inet6(ip),
    }
}

/// The route IPv4 gives `0.0.0.0` before any table: the host itself, by `lo`
/// from `127.0.0.1` (`ip_route_output_key_hash_rcu`).
fn ipv4_special(inside: &Inside, asked: &Asked) -> Option<Route> {
    if asked.destination != IpAddr::V4(Ipv4Addr::UNSPECIFIED) {
        return None;
    }
    let lo = inside.links.iter().find(|link| link.kind == LinkKind::Loopback)?;
    let mut route = Route::kernel(LOCAL, RouteType::Local, Cidr::new(asked.destination, 32), lo);
    route.source = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    Some(route)
}

/// The route a lookup that names its link (`oif`) takes when no route leads
/// there: IPv4 sends to the destination on that link, as if it were on-link
/// (`ip_route_output_key_hash_rcu`); IPv6 finds none.
fn forced_route(inside: &Inside, asked: &Asked, link: u32) -> Option<Route> {
    if asked.ipv6 {
        return None;
    }
    let link = inside.link(link).ok()?;
    let mut route = Route::kernel(MAIN, RouteType::Unicast, Cidr::new(asked.destination, 32), link);
    route.source = inside
        .addresses
        .iter()
        .filter(|a| a.address.ip.is_ipv4() && a.scope != Scope::Host)
        .min_by_key(|a| a.index != link.index)
        .map(|a| a.address.ip);
    Some(route)
}

/// The IPv4 answer (`rt_fill_info` of the route the lookup made): the packet's
/// destination, the link it leaves by (`lo` for a local one), its source and
/// gateway, whose lookup it was.
fn ipv4_answer(inside: &Inside, asked: &Asked, route: &Route, uid: u32) -> RouteMessage {
    let multicast = matches!(asked.destination, IpAddr::V4(ip) if ip.is_multicast());
    let (kind, flags, link) = match route.kind {
        RouteType::Local => (RouteType::Local, rtcf::LOCAL, 1),
        RouteType::Broadcast => (RouteType::Broadcast, rtcf::LOCAL | rtcf::BROADCAST, route.link),
        _ if multicast => (RouteType::Multicast, rtcf::LOCAL | rtcf::MULTICAST, route.link),
        _ => (RouteType::Unicast, 0, route.link),
    };
    // Sent out of loopback (a lookup that named `lo`), it comes back in.
    let looped = inside.link(link).is_ok_and(|link| link.kind == LinkKind::Loopback);
    let flags = if looped { flags | rtcf::LOCAL } else { flags };
    let header = RouteHeader {
        address_family: family::INET.into(),
        destination_prefix_length: 32,
        source_prefix_length: if asked.source.is_some() { 32 } else { 0 },
        table: MAIN,
        protocol: RouteProtocol::Unspec,
        scope: RouteScope::Universe,
        kind,
        flags: RouteFlags::from_bits_retain(libc::RTM_F_CLONED | flags),
        ..RouteHeader::default()
    };
    let mut attributes = vec![
        RouteAttribute::Table(u32::from(MAIN)),
        RouteAttribute::Destination(route_address(asked.destination)),
    ];
    if let Some(source) = asked.source {
        attributes.push(RouteAttribute::Source(route_address(source)));
    }
    attributes.push(RouteAttribute::Oif(link));
    if asked.source.is_none()
        && let Some(source) = route.source.or_else(|| ipv4_source(inside, route))
    {
        attributes.push(RouteAttribute::PrefSource(route_address(source)));
    }
    // A multicast group is reached on the link, never through a gateway.
    let gateway = route.gateway.filter(|_| !multicast);
    attributes.extend(gateway.map(|gateway| RouteAttribute::Gateway(route_address(gateway))));
    attributes.push(RouteAttribute::Other(DefaultNla::new(RTA_UID, uid.to_ne_bytes().to_vec())));
    // struct rta_cacheinfo: nothing cached.
    attributes.push(RouteAttribute::Other(DefaultNla::new(libc::RTA_CACHEINFO, vec![0; 32])));
    let mut answer = RouteMessage::default();
    answer.header = header;
    answer.attributes = attributes;
    answer
}

/// The source `inet_select_addr` picks for a route without one: the link's
/// primary address on the gateway's subnet, else its first one reaching beyond.
fn ipv4_source(inside: &Inside, route: &Route) -> Option<IpAddr> {
    let own =
        || inside.addresses.iter().filter(|a| a.index == route.link && a.address.ip.is_ipv4());
    let on_subnet = route.gateway.and_then(|gateway| own().find(|a| a.address.contains(gateway)));
    on_subnet.or_else(|| own().find(|a| a.scope != Scope::Host)).map(|a| a.address.ip)
}

/// The IPv6 answer (`rt6_fill_node` of the route found): the route's own
/// message made for this destination, with the source IPv6 would pick.
fn ipv6_answer(inside: &Inside, asked: &Asked, route: &Route) -> RouteMessage {
    let destination = Cidr::new(asked.destination, 128);
    let source = asked.source.or_else(|| ipv6_source(inside, route.link, asked.destination));
    let found = Route {
        destination,
        source,
        link: if route.kind == RouteType::Local { 1 } else { route.link },
        ..route.clone()
    };
    let mut answer = message(&found);
    answer.header.source_prefix_length = 128;
    let at = answer
        .attributes
        .iter()
        .position(|attribute| matches!(attribute, RouteAttribute::Destination(_)))
        .map_or(1, |at| at + 1);
    let from = asked.source.unwrap_or(Ipv6Addr::UNSPECIFIED.into());
    answer.attributes.insert(at, RouteAttribute::Source(route_address(from)));
    answer
}

/// The source IPv6 picks for `destination` on `link` (`ipv6_dev_get_saddr`, in
/// short): an address of the destination's scope, the one sharing its prefix
/// first.
fn ipv6_source(inside: &Inside, link: u32, destination: IpAddr) -> Option<IpAddr> {
    let IpAddr::V6(v6) = destination else { return None };
    if v6.is_loopback() {
        return Some(destination);
    }
    let scope = if v6.is_unicast_link_local() { Scope::Link } else { Scope::Universe };
    let own: Vec<_> = inside
        .addresses
        .iter()
        .filter(|a| a.index == link && a.address.ip.is_ipv6() && a.scope == scope)
        .collect();
    let best = own.iter().find(|a| a.address.contains(destination)).or(own.first())?;
    Some(best.address.ip)
}
