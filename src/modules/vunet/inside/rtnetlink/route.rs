//! Routes (`RTM_GETROUTE` dumps): the routes Linux holds for a host with these
//! links, addresses and configured routes, derived as the kernel derives them
//! (`fib_add_ifaddr` for IPv4, `addrconf` for IPv6), in its dump order, with the
//! strict dump's filters (`ip_valid_fib_dump_req`).

use std::cmp::Ordering;
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{DefaultNla, NLM_F_DUMP_FILTERED};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RoutePreference,
    RouteProtocol, RouteScope, RouteType,
};

use super::address::{self, Listed};
use super::request::{self, Policies, Policy};
use super::{Dump, Errno, Request, family};
use crate::modules::vunet::cidr::Cidr;
use crate::modules::vunet::inside::IPV6_DEFAULT_METRIC;
use crate::modules::vunet::inside::change::{Change, Mode, RouteMatch};
use crate::modules::vunet::inside::{Inside, LinkKind, LinkView, RouteView};

/// The main table (`RT_TABLE_MAIN`).
pub(super) const MAIN: u8 = libc::RT_TABLE_MAIN;
/// The local table (`RT_TABLE_LOCAL`): addresses, broadcasts, multicast.
pub(super) const LOCAL: u8 = libc::RT_TABLE_LOCAL;
/// The metric of the routes IPv6 derives from addresses and for multicast.
const IPV6_KERNEL_METRIC: u32 = 256;
/// The length of a route message's family header (`struct rtmsg`).
pub(super) const HEADER_LEN: usize = 12;

/// A route as the kernel holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Route {
    pub table: u8,
    pub protocol: RouteProtocol,
    pub scope: RouteScope,
    pub kind: RouteType,
    /// The destination, host bits cleared.
    pub destination: Cidr,
    pub gateway: Option<IpAddr>,
    /// The preferred source (`RTA_PREFSRC`).
    pub source: Option<IpAddr>,
    /// The link it leaves by.
    pub link: u32,
    /// Its metric (`RTA_PRIORITY`): IPv6 routes always have one.
    pub metric: Option<u32>,
    /// Its link has no carrier (`RTNH_F_LINKDOWN`).
    pub linkdown: bool,
}

impl Route {
    /// A route of the kernel's own (`proto kernel`) to `destination` by `link`.
    pub(super) fn kernel(table: u8, kind: RouteType, destination: Cidr, link: &LinkView) -> Route {
        let scope = match (destination.ip, kind) {
            (IpAddr::V6(_), _) => RouteScope::Universe,
            (IpAddr::V4(_), RouteType::Local) => RouteScope::Host,
            (IpAddr::V4(_), _) => RouteScope::Link,
        };
        Route {
            table,
            protocol: RouteProtocol::Kernel,
            scope,
            kind,
            destination: destination.network(),
            gateway: None,
            source: None,
            link: link.index,
            metric: None,
            linkdown: false,
        }
    }

    /// The route with preferred source `source`.
    fn with_source(self, source: IpAddr) -> Route {
        Route { source: Some(source), ..self }
    }

    /// The route with metric `metric`.
    fn with_metric(self, metric: u32) -> Route {
        Route { metric: Some(metric), ..self }
    }

    /// All that tells it from another route, hashable (the netlink types are
    /// not): lists of routes are compared by it in linear time.
    fn key(&self) -> RouteKey {
        let kinds = [self.protocol.into(), self.scope.into(), self.kind.into()];
        let (destination, gateway, source) = (self.destination, self.gateway, self.source);
        (self.table, kinds, destination, gateway, source, self.link, self.metric, self.linkdown)
    }
}

/// What [`Route::key`] gives: table, protocol, scope and type, destination,
/// gateway, source, link, metric, `linkdown`.
type RouteKey = (u8, [u8; 3], Cidr, Option<IpAddr>, Option<IpAddr>, u32, Option<u32>, bool);

/// The routes of one family Linux holds for `inside`, in its dump order: the
/// main table, then the local table.
pub(super) fn routes(inside: &Inside, ipv6: bool) -> Vec<Route> {
    let mut routes = Vec::new();
    for link in &inside.links {
        if ipv6 {
            routes.extend(ipv6_link_routes(inside, link));
        } else {
            routes.extend(ipv4_link_routes(inside, link));
        }
    }
    routes.extend(configured_routes(inside, ipv6));
    let mut seen = HashSet::new();
    let mut unique: Vec<Route> =
        routes.into_iter().filter(|route| seen.insert(route.key())).collect();
    let walk = if ipv6 { ipv6_walk_order } else { ipv4_walk_order };
    unique.sort_by(|a, b| {
        a.table
            .cmp(&b.table)
            .then_with(|| walk(&a.destination, &b.destination))
            .then_with(|| a.metric.cmp(&b.metric))
    });
    unique
}

/// The main table's IPv4 unicast routes (see [`super::main_ipv4_routes`]).
pub(super) fn main_unicast(inside: &Inside) -> Vec<RouteView> {
    routes(inside, false)
        .into_iter()
        .filter(|route| route.table == MAIN && route.kind == RouteType::Unicast)
        .map(|route| RouteView {
            destination: route.destination,
            gateway: route.gateway,
            index: route.link,
            metric: route.metric.unwrap_or(0),
            protocol: route.protocol.into(),
        })
        .collect()
}

/// The IPv4 routes `fib_add_ifaddr` gives a link's addresses; a link that is down
/// keeps only the local ones, one without carrier has the others marked.
fn ipv4_link_routes(inside: &Inside, link: &LinkView) -> Vec<Route> {
    let listed: Vec<Listed> = address::listed(inside, false)
        .into_iter()
        .filter(|listed| listed.link.index == link.index)
        .collect();
    let mut routes = Vec::new();
    for one in &listed {
        let cidr = one.address.address;
        // A secondary address's routes take its subnet's primary as source.
        let primary = listed
            .iter()
            .find(|other| {
                let other = other.address.address;
                other.prefix == cidr.prefix && other.network() == cidr.network()
            })
            .map_or(cidr.ip, |primary| primary.address.address.ip);
        routes.extend(ipv4_address_routes(link, one, primary));
    }
    routes.retain(|route| link.up || route.kind == RouteType::Local);
    routes.iter_mut().for_each(|route| route.linkdown = marked_linkdown(link, route));
    routes
}

/// The routes one IPv4 address gives (`fib_add_ifaddr`): its local route, the
/// broadcast it was given, and for a primary its subnet and subnet broadcast; all
/// from its subnet's `primary` address.
fn ipv4_address_routes(link: &LinkView, listed: &Listed, primary: IpAddr) -> Vec<Route> {
    let cidr = listed.address.address;
    let host = |ip: Ipv4Addr| Cidr::new(IpAddr::V4(ip), 32);
    let mut routes = vec![Route::kernel(LOCAL, RouteType::Local, Cidr::new(cidr.ip, 32), link)];
    if let Some(broadcast) = listed.address.broadcast.filter(|b| *b != Ipv4Addr::BROADCAST) {
        routes.push(Route::kernel(LOCAL, RouteType::Broadcast, host(broadcast), link));
    }
    let network = cidr.network();
    // Linux makes no route to a subnet of 0.0.0.0/8 or of multicast groups.
    let routeless =
        matches!(network.ip, IpAddr::V4(ip) if ip.octets()[0] == 0 || ip.is_multicast());
    if !listed.secondary && !routeless && (network.ip != cidr.ip || cidr.prefix < 32) {
        routes.push(match link.kind {
            LinkKind::Loopback => Route::kernel(LOCAL, RouteType::Local, network, link),
            LinkKind::Ethernet => Route::kernel(MAIN, RouteType::Unicast, network, link),
        });
        if let Some(broadcast) = cidr.broadcast() {
            routes.push(Route::kernel(LOCAL, RouteType::Broadcast, host(broadcast), link));
        }
    }
    routes.into_iter().map(|route| route.with_source(primary)).collect()
}

/// The IPv6 routes a link that is up has (`addrconf`): each address's prefix and
/// local route, and on Ethernet the multicast route; none while down.
fn ipv6_link_routes(inside: &Inside, link: &LinkView) -> Vec<Route> {
    if !link.up {
        return Vec::new();
    }
    let mut routes = Vec::new();
    for listed in address::listed(inside, true) {
        if listed.link.index != link.index {
            continue;
        }
        let cidr = listed.address.address;
        let kernel_loopback = link.kind == LinkKind::Loopback && cidr.ip == Ipv6Addr::LOCALHOST;
        if !kernel_loopback {
            let prefix = Route::kernel(MAIN, RouteType::Unicast, cidr, link);
            routes.push(prefix.with_metric(IPV6_KERNEL_METRIC));
        }
        let local = Route::kernel(LOCAL, RouteType::Local, Cidr::new(cidr.ip, 128), link);
        routes.push(local.with_metric(0));
    }
    if link.kind == LinkKind::Ethernet {
        let multicast = Cidr::new(IpAddr::V6(Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0)), 8);
        let route = Route::kernel(LOCAL, RouteType::Multicast, multicast, link);
        routes.push(route.with_metric(IPV6_KERNEL_METRIC));
    }
    routes.iter_mut().for_each(|route| route.linkdown = marked_linkdown(link, route));
    routes
}

/// The configured routes of one family (`proto boot`, as `ip route add` makes
/// them), on links that are up.
fn configured_routes(inside: &Inside, ipv6: bool) -> Vec<Route> {
    inside
        .routes
        .iter()
        .filter(|route| route.destination.ip.is_ipv6() == ipv6)
        .filter_map(|configured| configured_route(inside, configured))
        .collect()
}

/// A configured route as the kernel holds it, if its link is up.
fn configured_route(inside: &Inside, configured: &RouteView) -> Option<Route> {
    let link = inside.links.iter().find(|link| link.index == configured.index)?;
    if !link.up {
        return None;
    }
    let ipv6 = configured.destination.ip.is_ipv6();
    let mut route = Route::kernel(MAIN, RouteType::Unicast, configured.destination, link);
    route.protocol = RouteProtocol::from(configured.protocol);
    route.gateway = configured.gateway;
    if ipv6 || configured.metric != 0 {
        route.metric = Some(configured.metric);
    }
    if !ipv6 && configured.gateway.is_some() {
        route.scope = RouteScope::Universe;
    }
    route.linkdown = marked_linkdown(link, &route);
    Some(route)
}

/// The routes that differ between `before` and `after`, both families, in dump
/// order: whether each came (or went), whether it is IPv6, and its message.
pub(super) fn changed(before: &Inside, after: &Inside) -> Vec<(bool, bool, RouteMessage)> {
    let mut changed = Vec::new();
    for ipv6 in [false, true] {
        let (old, new) = (routes(before, ipv6), routes(after, ipv6));
        let keys = |routes: &[Route]| routes.iter().map(Route::key).collect::<HashSet<_>>();
        let (old_keys, new_keys) = (keys(&old), keys(&new));
        let gone = old.iter().filter(|r| !new_keys.contains(&r.key())).map(|r| (false, r));
        let came = new.iter().filter(|r| !old_keys.contains(&r.key())).map(|r| (true, r));
        changed.extend(gone.chain(came).map(|(added, route)| (added, ipv6, message(route))));
    }
    changed
}

/// How `rtm_ipv4_policy` and `rtm_ipv6_policy` check a change's attributes.
const CHANGE_POLICIES: Policies = Policies {
    max_kind: 30,
    of: |kind| match kind {
        libc::RTA_TABLE | libc::RTA_OIF | libc::RTA_IIF | libc::RTA_PRIORITY => Policy::AtLeast(4),
        _ => Policy::Any,
    },
};

/// `RTA_VIA`, `RTA_NH_ID` and the other attributes a stack's routes cannot hold.
const UNSUPPORTED_ATTRIBUTES: [u16; 7] = [
    libc::RTA_SRC,
    libc::RTA_METRICS,
    libc::RTA_MULTIPATH,
    libc::RTA_FLOW,
    18, // RTA_VIA
    22, // RTA_ENCAP
    30, // RTA_NH_ID
];

/// Reads an `RTM_NEWROUTE` or `RTM_DELROUTE` request (`rtm_to_fib_config`,
/// `rtm_to_fib6_config`) into the change it asks. A stack holds unicast routes
/// of the main table, by a gateway.
pub(super) fn read_change(inside: &Inside, request: &Request, mode: Mode) -> Result<Change, Errno> {
    let family = request.message.family();
    let (ipv6, max_prefix) = match family {
        family::INET => (false, 32),
        family::INET6 => (true, 128),
        _ => return Err(libc::EOPNOTSUPP),
    };
    let attributes = request::parse(&request.message, HEADER_LEN, CHANGE_POLICIES, false)?;
    let header =
        RouteHeader::parse(&request.message.payload()[..HEADER_LEN]).map_err(|_| libc::EINVAL)?;
    if header.destination_prefix_length > max_prefix {
        return Err(libc::EINVAL);
    }
    let destination = attributes.ip(libc::RTA_DST, ipv6)?.unwrap_or(request::unspecified(ipv6));
    let destination = Cidr::new(destination, header.destination_prefix_length);
    let gateway = attributes.ip(libc::RTA_GATEWAY, ipv6)?;
    let index = attributes.u32(libc::RTA_OIF);
    if let Some(index) = index.filter(|&index| index != 0) {
        inside.link(index)?;
    }
    let table = attributes.u32(libc::RTA_TABLE).unwrap_or(u32::from(header.table));
    let unsupported = header.source_prefix_length != 0
        || header.tos != 0
        || ![0, u32::from(MAIN)].contains(&table)
        || attributes.kinds().any(|kind| UNSUPPORTED_ATTRIBUTES.contains(&kind));
    if unsupported {
        return Err(libc::EOPNOTSUPP);
    }
    let metric = attributes.u32(libc::RTA_PRIORITY);
    let protocol = u8::from(header.protocol);
    if request.message.header.message_type == libc::RTM_DELROUTE {
        if destination.network() != destination {
            return Err(libc::EINVAL);
        }
        let wanted = RouteMatch {
            destination,
            gateway,
            index: index.filter(|&index| index != 0),
            metric: metric.filter(|&metric| metric != 0 || !ipv6),
            protocol: (protocol != 0).then_some(protocol),
        };
        return Ok(Change::DeleteRoute(wanted));
    }
    if header.kind != RouteType::Unicast {
        return Err(libc::EOPNOTSUPP);
    }
    let metric = match metric.unwrap_or(0) {
        0 if ipv6 => IPV6_DEFAULT_METRIC,
        metric => metric,
    };
    let route = RouteView { destination, gateway, index: index.unwrap_or(0), metric, protocol };
    Ok(Change::AddRoute { route, mode })
}

/// Whether `route` is marked `linkdown`: its link is up without a carrier, and it
/// is not a local route.
fn marked_linkdown(link: &LinkView, route: &Route) -> bool {
    link.up && !link.carrier && route.kind != RouteType::Local
}

/// The order of IPv4 destinations in a dump: by address (the trie's key), longer
/// prefixes first for the same address.
fn ipv4_walk_order(a: &Cidr, b: &Cidr) -> Ordering {
    a.ip.cmp(&b.ip).then(b.prefix.cmp(&a.prefix))
}

/// The order of IPv6 destinations in a dump (`fib6_walk`, post-order on the
/// prefix tree): the branch with bit 0 before the one with bit 1, a prefix after
/// the prefixes inside it.
fn ipv6_walk_order(a: &Cidr, b: &Cidr) -> Ordering {
    let bits = |cidr: &Cidr| match cidr.ip {
        IpAddr::V6(ip) => u128::from(ip),
        IpAddr::V4(ip) => u128::from(ip.to_ipv6_mapped()),
    };
    let (x, y) = (bits(a), bits(b));
    let first_difference = (x ^ y).leading_zeros();
    if first_difference < u32::from(a.prefix.min(b.prefix)) {
        let bit_of_a = (x >> (127 - first_difference)) & 1;
        if bit_of_a == 0 { Ordering::Less } else { Ordering::Greater }
    } else {
        b.prefix.cmp(&a.prefix)
    }
}

/// The `RTM_NEWROUTE` message of `route`, attributes in the kernel's order
/// (`fib_dump_info`, `rt6_fill_node`).
pub(super) fn message(route: &Route) -> RouteMessage {
    let address = |ip: IpAddr| match ip {
        IpAddr::V4(ip) => RouteAddress::Inet(ip),
        IpAddr::V6(ip) => RouteAddress::Inet6(ip),
    };
    let ipv6 = route.destination.ip.is_ipv6();
    let header = RouteHeader {
        address_family: if ipv6 { family::INET6 } else { family::INET }.into(),
        destination_prefix_length: route.destination.prefix,
        table: route.table,
        protocol: route.protocol,
        scope: route.scope,
        kind: route.kind,
        flags: if route.linkdown { RouteFlags::Linkdown } else { RouteFlags::empty() },
        ..RouteHeader::default()
    };
    let mut attributes = vec![RouteAttribute::Table(route.table.into())];
    if route.destination.prefix > 0 {
        attributes.push(RouteAttribute::Destination(address(route.destination.ip)));
    }
    attributes.extend(route.source.map(|source| RouteAttribute::PrefSource(address(source))));
    attributes.extend(route.metric.map(RouteAttribute::Priority));
    attributes.extend(route.gateway.map(|gateway| RouteAttribute::Gateway(address(gateway))));
    attributes.push(RouteAttribute::Oif(route.link));
    if ipv6 {
        // struct rta_cacheinfo: all zero for a route no one has used.
        attributes.push(RouteAttribute::Other(DefaultNla::new(libc::RTA_CACHEINFO, vec![0; 32])));
        attributes.push(RouteAttribute::Preference(RoutePreference::Medium));
    }
    let mut message = RouteMessage::default();
    message.header = header;
    message.attributes = attributes;
    message
}

/// What a route dump asks (`ip_valid_fib_dump_req` when strict; leniently only
/// the header's flags count).
#[derive(Default)]
struct Filter {
    /// Only cached clones (`RTM_F_CLONED`, strict) or prefix routes
    /// (`RTM_F_PREFIX`): a stack has neither.
    nothing: bool,
    table: u32,
    protocol: u8,
    kind: u8,
    link: Option<u32>,
}

impl Filter {
    /// Whether the request set a filter (`filter_set`).
    fn is_set(&self, flags: u32) -> bool {
        flags != 0 || self.table != 0 || self.protocol != 0 || self.kind != 0 || self.link.is_some()
    }

    /// Whether `route` passes.
    fn passes(&self, route: &Route) -> bool {
        (self.protocol == 0 || self.protocol == u8::from(route.protocol))
            && (self.kind == 0 || self.kind == u8::from(route.kind))
            && self.link.is_none_or(|link| link == route.link)
    }
}

/// How `rtm_ipv4_policy` checks the attributes of a strict dump request.
const DUMP_POLICIES: Policies = Policies {
    max_kind: 30,
    of: |kind| match kind {
        libc::RTA_TABLE | libc::RTA_OIF | libc::RTA_IIF | libc::RTA_PRIORITY => Policy::AtLeast(4),
        _ => Policy::Any,
    },
};

/// Reads a strict dump request; marks `dump` as Linux does: its messages always
/// filtered (cached clones or routes, never both), its end when a filter is set.
fn strict_filter(inside: &Inside, request: &Request, dump: &mut Dump) -> Result<Filter, Errno> {
    let payload = request.message.payload();
    let header = payload.get(..HEADER_LEN).ok_or(libc::EINVAL)?;
    let header = RouteHeader::parse(header).map_err(|_| libc::EINVAL)?;
    let flags = header.flags.bits();
    let allowed_flags = libc::RTM_F_CLONED | libc::RTM_F_PREFIX;
    if payload[1..4].iter().any(|&byte| byte != 0) || payload[6] != 0 || flags & !allowed_flags != 0
    {
        return Err(libc::EINVAL);
    }
    let mut filter = Filter {
        nothing: flags != 0,
        table: header.table.into(),
        protocol: header.protocol.into(),
        kind: header.kind.into(),
        link: None,
    };
    let attributes = request::parse(&request.message, HEADER_LEN, DUMP_POLICIES, true)?;
    for kind in attributes.kinds() {
        let value = attributes.u32(kind).unwrap_or(0);
        match kind {
            libc::RTA_TABLE => filter.table = value,
            libc::RTA_OIF if inside.links.iter().any(|link| link.index == value) => {
                filter.link = Some(value)
            }
            libc::RTA_OIF => return Err(libc::ENODEV),
            _ => return Err(libc::EINVAL),
        }
    }
    dump.message_flags |= NLM_F_DUMP_FILTERED;
    if filter.is_set(flags) {
        dump.done_flags |= NLM_F_DUMP_FILTERED;
    }
    Ok(filter)
}

/// The filter of a lenient dump: the header's `RTM_F_PREFIX` asks for prefix
/// routes only, which a stack has not.
fn lenient_filter(request: &Request) -> Filter {
    let prefix_only = request.message.payload().get(..HEADER_LEN).is_some_and(|header| {
        RouteHeader::parse(header).is_ok_and(|header| header.flags.bits() & libc::RTM_F_PREFIX != 0)
    });
    Filter { nothing: prefix_only, ..Filter::default() }
}

/// Answers a route dump (`inet_dump_fib`, then `inet6_dump_fib` for `AF_UNSPEC`
/// and the families without a handler of their own).
pub(super) fn dump(inside: &Inside, request: &Request) -> Dump {
    let mut dump = Dump::new(request.to);
    let filter = if request.strict {
        match strict_filter(inside, request, &mut dump) {
            Ok(filter) => filter,
            Err(errno) => {
                dump.fail(errno);
                return dump;
            }
        }
    } else {
        lenient_filter(request)
    };
    let asked_family = request.message.family();
    let families: &[(bool, u8)] = match asked_family {
        family::INET => &[(false, family::INET)],
        family::INET6 => &[(true, family::INET6)],
        _ => &[(false, family::INET), (true, family::INET6)],
    };
    for &(ipv6, own_family) in families {
        if ![0, u32::from(MAIN), u32::from(LOCAL)].contains(&filter.table) {
            // No such table: an error only when the family was asked for by name.
            if asked_family == own_family {
                dump.fail(libc::ENOENT);
                return dump;
            }
            continue;
        }
        let wanted = |route: &Route| {
            !filter.nothing
                && (filter.table == 0 || filter.table == u32::from(route.table))
                && filter.passes(route)
        };
        for route in routes(inside, ipv6).iter().filter(|route| wanted(route)) {
            dump.add(RouteNetlinkMessage::NewRoute(message(route)));
        }
    }
    dump
}
