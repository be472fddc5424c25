//! Changes a program asks of its stack's network (`ip addr add`, `ip link set
//! down`, `ip route replace`, `ip neigh add`, `ifconfig`), judged and carried out
//! on an [`Inside`] as Linux does them.
//!
//! A request, whichever way it came (an rtnetlink message, an interface ioctl),
//! becomes one [`Change`]. [`Inside::apply`] refuses it with the errno the
//! kernel's handler gives (`inet_rtm_newaddr`, `fib_table_insert`, `do_setlink`,
//! `neigh_add`), or carries it out with the kernel's side effects: a link going
//! down loses its IPv6 addresses and the routes through it, a link coming up gets
//! its IPv6 link-local address, deleting a primary IPv4 address deletes its
//! secondaries. What changed comes back as [`Event`]s, which become the
//! notifications `ip monitor` reads.

use std::net::{IpAddr, Ipv6Addr};

use super::view::{
    AddressView, Errno, Inside, LinkKind, LinkView, NeighbourView, RouteView, Scope,
};
use crate::modules::vunet::cidr::Cidr;

/// The most addresses one link holds: smoltcp's interfaces hold a fixed number
/// (`IFACE_MAX_ADDR_COUNT`, set in `.cargo/config.toml`).
pub const MAX_ADDRESSES_PER_LINK: usize = 32;
/// The most routes a stack's configuration holds (`IFACE_MAX_ROUTE_COUNT`).
pub const MAX_ROUTES: usize = 256;
/// The most neighbour entries a stack's programs add.
pub const MAX_NEIGHBOURS: usize = 256;
/// `NUD_PERMANENT`: an entry a program added, kept until deleted.
pub const NUD_PERMANENT: u16 = 0x80;
/// `NUD_NOARP`: an entry the link needs no resolution for.
pub const NUD_NOARP: u16 = 0x40;

/// What a request's `NLM_F_CREATE`, `NLM_F_EXCL`, `NLM_F_REPLACE` and
/// `NLM_F_APPEND` ask of an object that may already exist.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mode {
    /// Make it if it does not exist.
    pub create: bool,
    /// Fail if it exists (`EEXIST`).
    pub exclusive: bool,
    /// Replace it if it exists.
    pub replace: bool,
    /// Add another after those with the same key (routes).
    pub append: bool,
}

impl Mode {
    /// What `ip ... add` asks: create, and fail if it exists.
    pub const ADD: Mode = Mode { create: true, exclusive: true, replace: false, append: false };
    /// What `ip ... replace` asks: create, or replace what exists.
    pub const REPLACE: Mode = Mode { create: true, exclusive: false, replace: true, append: false };
}

/// A change to a stack's network, as a request asks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Adds (or replaces) an address (`RTM_NEWADDR`, `SIOCSIFADDR`).
    AddAddress {
        /// The address, on its link.
        address: AddressView,
        /// What to do if it exists.
        mode: Mode,
    },
    /// Deletes the first address of a link that matches (`RTM_DELADDR`).
    DeleteAddress {
        /// The link's index.
        index: u32,
        /// The address.
        ip: IpAddr,
        /// Its prefix length, if given.
        prefix: Option<u8>,
        /// Its label, if given (IPv4).
        label: Option<String>,
    },
    /// Changes a link's settings (`RTM_NEWLINK`, `RTM_SETLINK`, `SIOCSIF*`).
    SetLink(LinkSettings),
    /// Adds a route (`RTM_NEWROUTE`, `SIOCADDRT`).
    AddRoute {
        /// The route; its `index` 0 leaves the link to the gateway's subnet.
        route: RouteView,
        /// What to do if one with its destination and metric exists.
        mode: Mode,
    },
    /// Deletes the first configured route that matches (`RTM_DELROUTE`, `SIOCDELRT`).
    DeleteRoute(RouteMatch),
    /// Adds (or updates) a neighbour entry (`RTM_NEWNEIGH`, `SIOCSARP`).
    AddNeighbour {
        /// The entry.
        neighbour: NeighbourView,
        /// What to do if it exists.
        mode: Mode,
    },
    /// Deletes a neighbour entry (`RTM_DELNEIGH`, `SIOCDARP`).
    DeleteNeighbour {
        /// The link's index.
        index: u32,
        /// The neighbour's address.
        ip: IpAddr,
    },
}

/// New settings for link `index`; `None` keeps a setting.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkSettings {
    /// The link's index.
    pub index: u32,
    /// Administratively up or down (`IFF_UP`).
    pub up: Option<bool>,
    /// Its MTU.
    pub mtu: Option<u32>,
    /// Its hardware address.
    pub mac: Option<[u8; 6]>,
}

/// Which route a delete means: its destination, and what else the request gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteMatch {
    /// The destination (host bits cleared).
    pub destination: Cidr,
    /// The gateway, if given.
    pub gateway: Option<IpAddr>,
    /// The link, if given.
    pub index: Option<u32>,
    /// The metric, if given.
    pub metric: Option<u32>,
    /// The protocol, if given.
    pub protocol: Option<u8>,
}

/// What a change did, one object at a time, as the kernel notifies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A link's settings changed (`RTM_NEWLINK`).
    Link(u32),
    /// An address was added or changed (`RTM_NEWADDR`).
    NewAddress(AddressView),
    /// An address was deleted (`RTM_DELADDR`).
    DeletedAddress(AddressView),
    /// A route was added (`RTM_NEWROUTE`).
    NewRoute(RouteView),
    /// A route was deleted (`RTM_DELROUTE`).
    DeletedRoute(RouteView),
    /// A neighbour entry was added or changed (`RTM_NEWNEIGH`).
    NewNeighbour(NeighbourView),
    /// A neighbour entry was deleted (`RTM_DELNEIGH`).
    DeletedNeighbour(NeighbourView),
}

impl Inside {
    /// Carries out `change` as Linux would, or refuses it with Linux's errno
    /// (changing nothing); what it changed, in the kernel's order.
    pub fn apply(&mut self, change: &Change) -> Result<Vec<Event>, Errno> {
        match change {
            Change::AddAddress { address, mode } => self.add_address(address, *mode),
            Change::DeleteAddress { index, ip, prefix, label } => {
                self.delete_address(*index, *ip, *prefix, label.as_deref())
            }
            Change::SetLink(settings) => self.set_link(settings),
            Change::AddRoute { route, mode } => self.add_route(route, *mode),
            Change::DeleteRoute(wanted) => self.delete_route(wanted),
            Change::AddNeighbour { neighbour, mode } => self.add_neighbour(neighbour, *mode),
            Change::DeleteNeighbour { index, ip } => self.delete_neighbour(*index, *ip),
        }
    }

    /// Link `index`, or `ENODEV`.
    pub fn link(&self, index: u32) -> Result<&LinkView, Errno> {
        self.links.iter().find(|link| link.index == index).ok_or(libc::ENODEV)
    }

    /// `inet_rtm_newaddr`, `inet6_rtm_newaddr`: an IPv4 address is the same as
    /// one with its address and prefix, an IPv6 one as one with its address.
    /// An IPv4 address without a label gets its link's name, as Linux labels it.
    fn add_address(&mut self, wanted: &AddressView, mode: Mode) -> Result<Vec<Event>, Errno> {
        let link_name = self.link(wanted.index)?.name.clone();
        let max_prefix = if wanted.address.ip.is_ipv4() { 32 } else { 128 };
        if wanted.address.prefix > max_prefix {
            return Err(libc::EINVAL);
        }
        match wanted.address.ip {
            // IPv6 refuses multicast addresses (but with `IFA_F_MCAUTOJOIN`) and
            // `::`; IPv4 takes `0.0.0.0` and lists nothing.
            IpAddr::V6(ip) if ip.is_multicast() || ip.is_unspecified() => return Err(libc::EINVAL),
            IpAddr::V4(ip) if ip.is_unspecified() => return Ok(Vec::new()),
            _ => {}
        }
        let same = |address: &AddressView| {
            address.index == wanted.index
                && address.address.ip == wanted.address.ip
                && (wanted.address.ip.is_ipv6() || address.address.prefix == wanted.address.prefix)
        };
        let mut address = wanted.clone();
        match address.address.ip {
            IpAddr::V6(ip) => {
                address.scope = ipv6_scope(ip);
                address.broadcast = None;
                address.label = None;
            }
            IpAddr::V4(_) => {
                address.label.get_or_insert(link_name);
            }
        }
        match self.addresses.iter().position(same) {
            Some(_) if mode.exclusive || !mode.replace => Err(libc::EEXIST),
            Some(at) => {
                self.addresses[at] = address.clone();
                Ok(vec![Event::NewAddress(address)])
            }
            None if !self.has_room_for_an_address(wanted.index) => Err(libc::ENOBUFS),
            None => {
                self.addresses.push(address.clone());
                Ok(vec![Event::NewAddress(address)])
            }
        }
    }

    /// Whether link `index` has room for another address, keeping one for the
    /// link-local address an Ethernet link gets when it comes up.
    fn has_room_for_an_address(&self, index: u32) -> bool {
        let Ok(link) = self.link(index) else { return false };
        let automatic = automatic_ipv6_address(link).address;
        let own = self.addresses.iter().filter(|a| a.index == index);
        let (count, has_automatic) =
            own.fold((0, false), |(n, has), a| (n + 1, has || a.address == automatic));
        count + usize::from(!has_automatic) < MAX_ADDRESSES_PER_LINK
    }

    /// `inet_rtm_deladdr`, `inet6_addr_del`: deleting a primary IPv4 address
    /// deletes the secondaries of its subnet (`promote_secondaries` is off).
    fn delete_address(
        &mut self,
        index: u32,
        ip: IpAddr,
        prefix: Option<u8>,
        label: Option<&str>,
    ) -> Result<Vec<Event>, Errno> {
        let link_name = self.link(index)?.name.clone();
        let matches = |address: &AddressView| {
            address.index == index
                && address.address.ip == ip
                && prefix.is_none_or(|prefix| prefix == address.address.prefix)
                && label.is_none_or(|label| {
                    address.label.as_deref().unwrap_or(&link_name) == label || ip.is_ipv6()
                })
        };
        let at = self.addresses.iter().position(matches).ok_or(libc::EADDRNOTAVAIL)?;
        let removed = self.addresses.remove(at);
        let subnet = removed.address.network();
        let was_primary = removed.address.ip.is_ipv4()
            && !self.addresses[..at].iter().any(|a| {
                a.index == index && a.address.ip.is_ipv4() && a.address.network() == subnet
            });
        let mut events = Vec::new();
        if was_primary {
            let secondary = |a: &AddressView| {
                a.index == index && a.address.ip.is_ipv4() && a.address.network() == subnet
            };
            events.extend(self.take_addresses(secondary).into_iter().map(Event::DeletedAddress));
        }
        // The secondaries go first, as `__inet_del_ifa` deletes them.
        events.push(Event::DeletedAddress(removed));
        Ok(events)
    }

    /// Removes and returns the addresses `which` picks.
    fn take_addresses(&mut self, which: impl Fn(&AddressView) -> bool) -> Vec<AddressView> {
        let (taken, kept) = std::mem::take(&mut self.addresses).into_iter().partition(which);
        self.addresses = kept;
        taken
    }

    /// `do_setlink`: every setting is checked before any is made.
    fn set_link(&mut self, settings: &LinkSettings) -> Result<Vec<Event>, Errno> {
        let link = self.link(settings.index)?;
        if let Some(mac) = settings.mac {
            if link.kind == LinkKind::Loopback {
                return Err(libc::EOPNOTSUPP);
            }
            if mac[0] & 1 != 0 || mac == [0; 6] {
                return Err(libc::EADDRNOTAVAIL);
            }
        }
        if let Some(mtu) = settings.mtu {
            let max = if link.kind == LinkKind::Loopback { u32::MAX >> 1 } else { 65535 };
            if !(68..=max).contains(&mtu) {
                return Err(libc::EINVAL);
            }
        }
        let index = settings.index;
        let was_up = link.up;
        let link = self.links.iter_mut().find(|link| link.index == index).expect("found above");
        let mut changed = false;
        if let Some(mac) = settings.mac {
            changed |= link.mac != mac;
            link.mac = mac;
        }
        if let Some(mtu) = settings.mtu {
            changed |= link.mtu != mtu;
            link.mtu = mtu;
        }
        let mut events = Vec::new();
        match settings.up {
            Some(true) if !was_up => events = self.bring_up(index),
            Some(false) if was_up => events = self.bring_down(index),
            _ if changed => events.push(Event::Link(index)),
            _ => {}
        }
        Ok(events)
    }

    /// A link goes down (`NETDEV_DOWN`): its IPv6 addresses, the routes through
    /// it and its neighbour entries go; its IPv4 addresses stay.
    fn bring_down(&mut self, index: u32) -> Vec<Event> {
        self.links.iter_mut().filter(|link| link.index == index).for_each(|link| link.up = false);
        let mut events = vec![Event::Link(index)];
        let (gone, kept): (Vec<RouteView>, Vec<RouteView>) =
            std::mem::take(&mut self.routes).into_iter().partition(|route| route.index == index);
        self.routes = kept;
        events.extend(gone.into_iter().map(Event::DeletedRoute));
        let v6 = self.take_addresses(|a| a.index == index && a.address.ip.is_ipv6());
        events.extend(v6.into_iter().map(Event::DeletedAddress));
        // `neigh_ifdown` flushes every entry of the link, permanent ones too.
        let (gone, kept): (Vec<NeighbourView>, Vec<NeighbourView>) =
            std::mem::take(&mut self.neighbours).into_iter().partition(|n| n.index == index);
        self.neighbours = kept;
        events.extend(gone.into_iter().map(Event::DeletedNeighbour));
        events
    }

    /// A link comes up (`NETDEV_UP`): IPv6 gives it its link-local address
    /// (`::1` on loopback).
    fn bring_up(&mut self, index: u32) -> Vec<Event> {
        let link = self.links.iter_mut().find(|link| link.index == index).expect("checked");
        link.up = true;
        let mut events = vec![Event::Link(index)];
        let automatic = automatic_ipv6_address(link);
        if !self.addresses.iter().any(|a| a.index == index && a.address == automatic.address) {
            self.addresses.push(automatic.clone());
            events.push(Event::NewAddress(automatic));
        }
        events
    }

    /// `fib_table_insert` (IPv6 alike): the gateway must be on a subnet of a link
    /// that is up; a route with the destination and metric of one that exists
    /// is refused, replaces it, or goes beside it, as the request's mode says.
    fn add_route(&mut self, wanted: &RouteView, mode: Mode) -> Result<Vec<Event>, Errno> {
        let destination = wanted.destination;
        if destination.network() != destination {
            return Err(libc::EINVAL);
        }
        // A route with no gateway to a subnet no address gives: smoltcp sends off
        // its subnets only through a gateway.
        // `via 0.0.0.0` is no gateway to IPv4.
        let no_gateway = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
        let gateway = wanted.gateway.filter(|&g| g != no_gateway).ok_or(libc::EOPNOTSUPP)?;
        if gateway.is_ipv4() != destination.ip.is_ipv4() || !self.may_be_gateway(gateway) {
            return Err(libc::EINVAL);
        }
        if wanted.index != 0 {
            self.link(wanted.index)?;
        }
        let unreachable = if gateway.is_ipv4() { libc::ENETUNREACH } else { libc::EHOSTUNREACH };
        let index = self
            .connected_link(gateway)
            .filter(|&index| wanted.index == 0 || wanted.index == index)
            .ok_or(unreachable)?;
        let route = RouteView { index, ..wanted.clone() };
        let same_key = |r: &RouteView| r.destination == destination && r.metric == route.metric;
        let first = self.routes.iter().position(same_key);
        match first {
            Some(_) if mode.exclusive => return Err(libc::EEXIST),
            Some(at) if mode.replace => {
                let old = std::mem::replace(&mut self.routes[at], route.clone());
                return Ok(vec![Event::DeletedRoute(old), Event::NewRoute(route)]);
            }
            Some(_) if self.routes.contains(&route) => return Err(libc::EEXIST),
            _ if !mode.create => return Err(libc::ENOENT),
            _ if self.routes.len() >= MAX_ROUTES => return Err(libc::ENOBUFS),
            Some(at) if !mode.append => self.routes.insert(at, route.clone()),
            _ => self.routes.push(route.clone()),
        }
        Ok(vec![Event::NewRoute(route)])
    }

    /// Whether `ip` may be a route's gateway: a unicast address, as
    /// `fib_check_nh_v4_gw` (the route to it is unicast or local) and
    /// `ip6_validate_gw` (unicast, not one of the host's own) judge it.
    fn may_be_gateway(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => {
                let broadcast =
                    |a: &AddressView| a.broadcast == Some(v4) || a.address.broadcast() == Some(v4);
                !(v4.is_multicast() || v4.is_broadcast() || self.addresses.iter().any(broadcast))
            }
            IpAddr::V6(v6) => {
                !(v6.is_unspecified()
                    || v6.is_multicast()
                    || v6.is_loopback()
                    || self.addresses.iter().any(|a| a.address.ip == ip))
            }
        }
    }

    /// The up link with an address whose subnet holds `ip`.
    pub fn connected_link(&self, ip: IpAddr) -> Option<u32> {
        self.addresses
            .iter()
            .filter(|a| a.scope != Scope::Host && a.address.contains(ip))
            .map(|a| a.index)
            .find(|&index| self.links.iter().any(|link| link.index == index && link.up))
    }

    /// `fib_table_delete`: the first configured route that matches goes. The
    /// routes Linux derives from addresses cannot be deleted here.
    fn delete_route(&mut self, wanted: &RouteMatch) -> Result<Vec<Event>, Errno> {
        let matches = |route: &RouteView| {
            route.destination == wanted.destination
                && wanted.gateway.is_none_or(|gateway| route.gateway == Some(gateway))
                && wanted.index.is_none_or(|index| route.index == index)
                && wanted.metric.is_none_or(|metric| route.metric == metric)
                && wanted.protocol.is_none_or(|protocol| route.protocol == protocol)
        };
        if let Some(at) = self.routes.iter().position(matches) {
            return Ok(vec![Event::DeletedRoute(self.routes.remove(at))]);
        }
        let derived = self.addresses.iter().any(|a| a.address.network() == wanted.destination);
        Err(if derived { libc::EOPNOTSUPP } else { libc::ESRCH })
    }

    /// `neigh_add`.
    fn add_neighbour(&mut self, wanted: &NeighbourView, mode: Mode) -> Result<Vec<Event>, Errno> {
        if wanted.index == 0 {
            return Err(libc::EINVAL);
        }
        self.link(wanted.index)?;
        let at = self.neighbours.iter().position(|n| n.index == wanted.index && n.ip == wanted.ip);
        match at {
            Some(_) if mode.exclusive => Err(libc::EEXIST),
            Some(at) => {
                self.neighbours[at] = wanted.clone();
                Ok(vec![Event::NewNeighbour(wanted.clone())])
            }
            None if !mode.create => Err(libc::ENOENT),
            None if self.neighbours.len() >= MAX_NEIGHBOURS => Err(libc::ENOBUFS),
            None => {
                self.neighbours.push(wanted.clone());
                Ok(vec![Event::NewNeighbour(wanted.clone())])
            }
        }
    }

    /// `neigh_delete`.
    fn delete_neighbour(&mut self, index: u32, ip: IpAddr) -> Result<Vec<Event>, Errno> {
        if index == 0 {
            return Err(libc::EINVAL);
        }
        self.link(index)?;
        let at = self
            .neighbours
            .iter()
            .position(|n| n.index == index && n.ip == ip)
            .ok_or(libc::ENOENT)?;
        Ok(vec![Event::DeletedNeighbour(self.neighbours.remove(at))])
    }
}

/// The scope Linux gives an IPv6 address (`ipv6_addr_scope`).
fn ipv6_scope(ip: Ipv6Addr) -> Scope {
    if ip.is_loopback() {
        Scope::Host
    } else if ip.is_unicast_link_local() {
        Scope::Link
    } else {
        Scope::Universe
    }
}

/// The IPv6 address a link gets when it comes up: `::1` on loopback, the
/// link-local address made from its hardware address (`addrconf_addr_gen` in the
/// default EUI-64 mode) on Ethernet.
pub fn automatic_ipv6_address(link: &LinkView) -> AddressView {
    let address = match link.kind {
        LinkKind::Loopback => Cidr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 128),
        LinkKind::Ethernet => Cidr::new(IpAddr::V6(link_local(link.mac)), 64),
    };
    let scope = if link.kind == LinkKind::Loopback { Scope::Host } else { Scope::Link };
    AddressView { index: link.index, address, scope, broadcast: None, label: None }
}

/// The EUI-64 link-local address of hardware address `mac` (RFC 4291, 2.5.1).
fn link_local(mac: [u8; 6]) -> Ipv6Addr {
    let [a, b, c, d, e, f] = mac;
    let octets = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, a ^ 2, b, c, 0xff, 0xfe, d, e, f];
    Ipv6Addr::from(octets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::vunet::inside::fixtures::link;

    fn cidr(text: &str) -> Cidr {
        Cidr::parse(text).unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn address(index: u32, text: &str) -> AddressView {
        let address = cidr(text);
        let broadcast = address.broadcast();
        AddressView { index, address, scope: Scope::Universe, broadcast, label: None }
    }

    /// lo, and eth0 with 10.0.0.2/24 and fd00::2/64.
    fn host() -> Inside {
        let mut inside = Inside::default();
        inside.links.push(link(1, "lo", LinkKind::Loopback, [0; 6], 65536));
        inside.links.push(link(2, "eth0", LinkKind::Ethernet, [2, 0x6e, 0x76, 0, 0, 0], 1500));
        inside.addresses.push(address(2, "10.0.0.2/24"));
        inside.addresses.push(address(2, "fd00::2/64"));
        inside
    }

    fn add(address: AddressView) -> Change {
        Change::AddAddress { address, mode: Mode::ADD }
    }

    #[test]
    fn addresses_linux_refuses_or_ignores() {
        let mut inside = host();
        for refused in ["ff02::5/64", "::/0"] {
            assert_eq!(inside.apply(&add(address(2, refused))), Err(libc::EINVAL), "{refused}");
        }
        assert_eq!(inside.apply(&add(address(2, "0.0.0.0/0"))), Ok(Vec::new()));
        // IPv4 takes a multicast or broadcast address as any other.
        assert!(inside.apply(&add(address(2, "224.0.0.5/24"))).is_ok());
        assert!(inside.apply(&add(address(2, "255.255.255.255/32"))).is_ok());
        assert_eq!(inside.addresses.len(), 4);
    }

    #[test]
    fn an_ipv4_address_is_labelled_with_its_links_name_unless_given_one() {
        let mut inside = host();
        inside.apply(&add(address(2, "10.0.0.50/24"))).unwrap();
        let mut alias = address(2, "10.0.0.51/24");
        alias.label = Some("eth0:1".into());
        inside.apply(&add(alias)).unwrap();
        let labels: Vec<_> = inside.addresses[2..].iter().map(|a| a.label.as_deref()).collect();
        assert_eq!(labels, [Some("eth0"), Some("eth0:1")]);
    }

    #[test]
    fn a_link_keeps_room_for_its_link_local_address() {
        let mut inside = host();
        let down = LinkSettings { index: 2, up: Some(false), ..LinkSettings::default() };
        inside.apply(&Change::SetLink(down)).unwrap();
        let mut added = 1; // 10.0.0.2/24 stays
        while inside.apply(&add(address(2, &format!("10.1.0.{added}/24")))).is_ok() {
            added += 1;
        }
        assert_eq!(added, MAX_ADDRESSES_PER_LINK - 1);
        let up = LinkSettings { index: 2, up: Some(true), ..LinkSettings::default() };
        inside.apply(&Change::SetLink(up)).unwrap();
        let on_eth0 = inside.addresses.iter().filter(|a| a.index == 2).count();
        assert_eq!(on_eth0, MAX_ADDRESSES_PER_LINK, "the link-local address found room");
    }

    #[test]
    fn the_link_local_address_is_eui64() {
        let eth0 = &host().links[1];
        assert_eq!(automatic_ipv6_address(eth0).address, cidr("fe80::6e:76ff:fe00:0/64"));
    }

    #[test]
    fn addresses_are_added_once_and_deleted_as_linux_does() {
        let mut inside = host();
        assert_eq!(inside.apply(&add(address(2, "10.0.0.2/24"))), Err(libc::EEXIST));
        // The same IPv4 address with another prefix is another address.
        assert!(inside.apply(&add(address(2, "10.0.0.2/16"))).is_ok());
        assert_eq!(inside.apply(&add(address(9, "10.0.0.3/24"))), Err(libc::ENODEV));
        let replace =
            Change::AddAddress { address: address(2, "10.0.0.2/24"), mode: Mode::REPLACE };
        assert!(inside.apply(&replace).is_ok());
        assert!(inside.apply(&add(address(2, "10.0.0.9/24"))).is_ok());
        let delete = |ip_text: &str, prefix| Change::DeleteAddress {
            index: 2,
            ip: ip(ip_text),
            prefix: Some(prefix),
            label: None,
        };
        assert_eq!(inside.apply(&delete("10.0.0.99", 24)), Err(libc::EADDRNOTAVAIL));
        // Deleting the primary takes its secondary along.
        let events = inside.apply(&delete("10.0.0.2", 24)).unwrap();
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(!inside.addresses.iter().any(|a| a.address.ip == ip("10.0.0.9")));
        assert_eq!(inside.apply(&delete("fd00::2", 48)), Err(libc::EADDRNOTAVAIL));
        assert!(inside.apply(&delete("fd00::2", 64)).is_ok());
    }

    #[test]
    fn a_link_going_down_loses_ipv6_and_its_routes_and_coming_up_gets_link_local() {
        let mut inside = host();
        let gateway = RouteView::through(cidr("10.9.0.0/24"), ip("10.0.0.1"), 0);
        let routed = inside.apply(&Change::AddRoute { route: gateway, mode: Mode::ADD }).unwrap();
        assert!(matches!(&routed[..], [Event::NewRoute(r)] if r.index == 2), "{routed:?}");
        let down = LinkSettings { index: 2, up: Some(false), ..LinkSettings::default() };
        inside.apply(&Change::SetLink(down)).unwrap();
        assert!(inside.routes.is_empty());
        assert_eq!(inside.addresses.len(), 1, "only the IPv4 address stays");
        let again = RouteView::through(cidr("10.9.0.0/24"), ip("10.0.0.1"), 0);
        let refused = inside.apply(&Change::AddRoute { route: again, mode: Mode::ADD });
        assert_eq!(refused, Err(libc::ENETUNREACH));
        let up = LinkSettings { index: 2, up: Some(true), ..LinkSettings::default() };
        inside.apply(&Change::SetLink(up)).unwrap();
        assert!(inside.addresses.iter().any(|a| a.address == cidr("fe80::6e:76ff:fe00:0/64")));
    }

    #[test]
    fn routes_follow_the_requests_mode() {
        let mut inside = host();
        let via = |gateway: &str| RouteView::through(cidr("10.9.0.0/24"), ip(gateway), 0);
        let add = |route, mode| Change::AddRoute { route, mode };
        assert!(inside.apply(&add(via("10.0.0.1"), Mode::ADD)).is_ok());
        assert_eq!(inside.apply(&add(via("10.0.0.3"), Mode::ADD)), Err(libc::EEXIST));
        let append = Mode { create: true, append: true, ..Mode::default() };
        assert!(inside.apply(&add(via("10.0.0.3"), append)).is_ok());
        assert_eq!(inside.apply(&add(via("10.0.0.3"), append)), Err(libc::EEXIST));
        assert!(inside.apply(&add(via("10.0.0.4"), Mode::REPLACE)).is_ok());
        assert_eq!(inside.routes.len(), 2);
        let change = Mode { replace: true, ..Mode::default() };
        let elsewhere = RouteView::through(cidr("10.8.0.0/24"), ip("10.0.0.1"), 0);
        assert_eq!(inside.apply(&add(elsewhere, change)), Err(libc::ENOENT));
        let far = RouteView::through(cidr("10.8.0.0/24"), ip("10.1.0.1"), 0);
        assert_eq!(inside.apply(&add(far, Mode::ADD)), Err(libc::ENETUNREACH));
        let far6 = RouteView::through(cidr("fd08::/64"), ip("fd07::1"), 0);
        assert_eq!(inside.apply(&add(far6, Mode::ADD)), Err(libc::EHOSTUNREACH));
        let host_bits = RouteView::through(cidr("10.4.0.1/24"), ip("10.0.0.1"), 0);
        assert_eq!(inside.apply(&add(host_bits, Mode::ADD)), Err(libc::EINVAL));
        let delete = |destination: &str| {
            Change::DeleteRoute(RouteMatch {
                destination: cidr(destination),
                gateway: None,
                index: None,
                metric: None,
                protocol: None,
            })
        };
        assert_eq!(inside.apply(&delete("10.6.0.0/24")), Err(libc::ESRCH));
        assert!(inside.apply(&delete("10.9.0.0/24")).is_ok());
        assert_eq!(inside.routes.len(), 1);
    }

    /// Found by review: smoltcp panics on a packet routed through a gateway that
    /// is not unicast; Linux refuses such gateways (`EINVAL`), and takes the
    /// host's own IPv4 address as one.
    #[test]
    fn a_gateway_must_be_unicast_and_not_the_hosts_own_ipv6_address() {
        let mut inside = host();
        inside.apply(&add(address(2, "224.0.0.5/0"))).unwrap();
        inside.apply(&add(address(2, "8000::1/1"))).unwrap();
        let via = |to: &str, gateway: &str| Change::AddRoute {
            route: RouteView::through(cidr(to), ip(gateway), 0),
            mode: Mode::ADD,
        };
        let refused = [
            ("10.9.0.0/24", "224.0.0.7"),
            ("10.9.0.0/24", "255.255.255.255"),
            ("10.9.0.0/24", "10.0.0.255"),
            ("2001:db8::/64", "ff02::1"),
            ("2001:db8::/64", "::"),
            ("2001:db8::/64", "fd00::2"),
        ];
        for (to, gateway) in refused {
            assert_eq!(inside.apply(&via(to, gateway)), Err(libc::EINVAL), "via {gateway}");
        }
        assert_eq!(inside.apply(&via("10.9.0.0/24", "0.0.0.0")), Err(libc::EOPNOTSUPP));
        assert!(inside.apply(&via("10.9.0.0/24", "10.0.0.2")).is_ok(), "its own IPv4 address");
        assert!(inside.apply(&via("2001:db8::/64", "fd00::1")).is_ok());
    }

    #[test]
    fn link_settings_are_checked_before_any_is_made() {
        let mut inside = host();
        let set = |mtu, mac| {
            Change::SetLink(LinkSettings { index: 2, up: None, mtu: Some(mtu), mac: Some(mac) })
        };
        assert_eq!(inside.apply(&set(9000, [1, 0, 0, 0, 0, 1])), Err(libc::EADDRNOTAVAIL));
        assert_eq!(inside.apply(&set(70000, [2, 0, 0, 0, 0, 1])), Err(libc::EINVAL));
        assert_eq!(inside.links[1].mtu, 1500);
        assert_eq!(inside.apply(&set(9000, [2, 0, 0, 0, 0, 1])), Ok(vec![Event::Link(2)]));
        assert_eq!(inside.links[1].mtu, 9000);
    }

    #[test]
    fn neighbours_are_added_once_and_deleted() {
        let mut inside = host();
        let neighbour = NeighbourView {
            index: 2,
            ip: ip("10.0.0.77"),
            mac: Some([2, 0, 0, 0, 0, 0x77]),
            state: NUD_PERMANENT,
            router: false,
        };
        let add = Change::AddNeighbour { neighbour, mode: Mode::ADD };
        assert!(inside.apply(&add).is_ok());
        assert_eq!(inside.apply(&add), Err(libc::EEXIST));
        let delete = Change::DeleteNeighbour { index: 2, ip: ip("10.0.0.77") };
        assert!(inside.apply(&delete).is_ok());
        assert_eq!(inside.apply(&delete), Err(libc::ENOENT));
    }
}
