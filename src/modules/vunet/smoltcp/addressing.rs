//! The host's own configuration, and what it decides: which addresses are local,
//! which are broadcast, which a socket may bind, where traffic leaves and the
//! source it speaks from.
//!
//! The configuration is kept as the stack's programs see it, an [`Inside`]: its
//! links, addresses, routes and neighbours, which programs change from inside
//! (`ip addr add`, `ip link set down`) with Linux's rules ([`Inside::apply`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use nix::errno::Errno;

use super::net::InterfacePlan;
use crate::modules::vunet::cidr::Cidr;
use crate::modules::vunet::config::RouteSpec;
use crate::modules::vunet::inside::change::automatic_ipv6_address;
use crate::modules::vunet::inside::change::{Change, Event};
use crate::modules::vunet::inside::{AddressView, Inside, LinkKind, LinkView, RouteView, Scope};

/// The loopback's MTU, as Linux gives `lo`.
pub(super) const LOOPBACK_MTU: u32 = 65536;

/// A stack's configuration (loopback is implied for a stack given bare
/// addresses), as it is now.
#[derive(Debug)]
pub(super) struct Addressing {
    /// The links, addresses, routes and neighbours, counters aside.
    view: Inside,
    /// The configured interfaces, link `index` being interface `index - 2`: where
    /// each is plugged in.
    interfaces: Vec<InterfacePlan>,
    /// A stack given bare addresses (no interfaces): those.
    bare: Vec<IpAddr>,
    /// The addresses besides loopback, kept for the checks every call makes.
    addresses: Vec<IpAddr>,
}

impl Addressing {
    /// A host with `addresses` besides loopback, on no configured interface.
    pub(super) fn new(addresses: Vec<IpAddr>) -> Self {
        Self::with(Vec::new(), &[], addresses)
    }

    /// A host with the addresses of `interfaces`, and `routes`.
    pub(super) fn configured(interfaces: &[InterfacePlan], routes: &[RouteSpec]) -> Self {
        Self::with(interfaces.to_vec(), routes, Vec::new())
    }

    fn with(interfaces: Vec<InterfacePlan>, routes: &[RouteSpec], bare: Vec<IpAddr>) -> Self {
        let mut view = Inside::default();
        let lo = LinkView {
            index: 1,
            name: "lo".into(),
            kind: LinkKind::Loopback,
            mac: [0; 6],
            mtu: LOOPBACK_MTU,
            up: true,
            carrier: true,
            counters: Default::default(),
        };
        let loopback4 = Cidr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8);
        view.addresses.push(address_of(&lo, loopback4, Scope::Host));
        view.addresses.push(automatic_ipv6_address(&lo));
        view.links.push(lo);
        for (position, plan) in interfaces.iter().enumerate() {
            let spec = &plan.spec;
            let link = LinkView {
                index: position as u32 + 2,
                name: spec.name.clone(),
                kind: LinkKind::Ethernet,
                mac: spec.mac,
                mtu: spec.mtu as u32,
                up: true,
                carrier: plan.link.is_some(),
                counters: Default::default(),
            };
            for &cidr in &spec.addresses {
                let scope = if is_link_local(cidr.ip) { Scope::Link } else { Scope::Universe };
                view.addresses.push(address_of(&link, cidr, scope));
            }
            view.addresses.push(automatic_ipv6_address(&link));
            view.links.push(link);
        }
        for route in routes {
            let on = view.addresses.iter().find(|a| a.index > 1 && a.address.contains(route.via));
            if let Some(on) = on {
                view.routes.push(RouteView::through(route.to, route.via, on.index));
            }
        }
        let mut addressing = Self { view, interfaces, bare, addresses: Vec::new() };
        addressing.note_addresses();
        addressing
    }

    /// Carries out `change` (see [`Inside::apply`]).
    pub(super) fn apply(&mut self, change: &Change) -> Result<Vec<Event>, i32> {
        let events = self.view.apply(change)?;
        self.note_addresses();
        Ok(events)
    }

    /// Keeps [`addresses`](Self::addresses) in step with the view.
    fn note_addresses(&mut self) {
        let own = self.view.addresses.iter().filter(|a| a.index > 1).map(|a| a.address.ip);
        self.addresses = self.bare.iter().copied().chain(own).collect();
    }

    /// The configuration as programs see it (counters aside).
    pub(super) fn view(&self) -> &Inside {
        &self.view
    }

    /// The addresses besides loopback.
    pub(super) fn addresses(&self) -> &[IpAddr] {
        &self.addresses
    }

    /// The configured interfaces (none for a stack given bare addresses).
    pub(super) fn interfaces(&self) -> &[InterfacePlan] {
        &self.interfaces
    }

    /// Where traffic to `to` leaves (the index of its link) and the address it
    /// comes from: the link up with `to` on one of its subnets, else the most
    /// specific route (the lowest metric first) through an up link.
    pub(super) fn route(&self, to: IpAddr) -> Option<(u32, IpAddr)> {
        let to = to.to_canonical();
        let up = |index: u32| self.view.links.iter().any(|l| l.index == index && l.up);
        let on_link = self
            .view
            .addresses
            .iter()
            .find(|a| a.index > 1 && a.scope != Scope::Host && a.address.contains(to) && up(a.index));
        if let Some(on_link) = on_link {
            return Some((on_link.index, on_link.address.ip));
        }
        let best = self
            .view
            .routes
            .iter()
            .filter(|r| r.destination.contains(to) && up(r.index))
            .min_by_key(|r| (u8::MAX - r.destination.prefix, r.metric))?;
        // The source is the link's first address of the destination's family
        // that reaches beyond the link.
        let source = self
            .view
            .addresses
            .iter()
            .filter(|a| a.index == best.index && a.address.ip.is_ipv4() == to.is_ipv4())
            .find(|a| a.scope == Scope::Universe)?;
        Some((best.index, source.address.ip))
    }

    /// Whether `ip` is one of this host's own addresses (loopback included).
    pub(super) fn is_local(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_loopback() || self.addresses.contains(&ip)
    }

    /// Whether `ip` is an IPv4 broadcast address of this host: the limited
    /// broadcast, loopback's `127.255.255.255`, and each interface subnet's
    /// (as Linux's local routing table lists them).
    pub(super) fn is_broadcast(&self, ip: IpAddr) -> bool {
        let IpAddr::V4(ip) = ip.to_canonical() else { return false };
        ip.is_broadcast()
            || ip == Ipv4Addr::new(127, 255, 255, 255)
            || self.view.addresses.iter().any(|address| {
                address.broadcast == Some(ip) || address.address.broadcast() == Some(ip)
            })
    }

    /// Whether a socket may bind `ip`: a wildcard, one of the host's own addresses,
    /// or a broadcast or multicast group (as `inet_addr_valid_or_nonlocal` allows);
    /// any address with `freebind` (`IP_FREEBIND`). A link-local multicast group
    /// needs a scope, which netvm does not take.
    pub(super) fn bindable(&self, ip: IpAddr, freebind: bool) -> Result<(), Errno> {
        let ip = ip.to_canonical();
        match ip {
            _ if ip.is_unspecified() || self.is_local(ip) => Ok(()),
            IpAddr::V4(v4) if v4.is_multicast() || v4.is_broadcast() => Ok(()),
            IpAddr::V6(v6) if v6.is_multicast() && v6.segments()[0] & 0xff0f == 0xff02 => {
                Err(Errno::EINVAL)
            }
            IpAddr::V6(v6) if v6.is_multicast() => Ok(()),
            _ if freebind => Ok(()),
            _ => Err(Errno::EADDRNOTAVAIL),
        }
    }

    /// The source address this host uses to reach `to` (one of its own).
    pub(super) fn source_for(&self, to: IpAddr) -> IpAddr {
        match to {
            IpAddr::V4(v4) if v4.is_loopback() => Ipv4Addr::LOCALHOST.into(),
            IpAddr::V6(v6) if v6.is_loopback() => Ipv6Addr::LOCALHOST.into(),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => match self.source_for(v4.into()) {
                    IpAddr::V4(source) => IpAddr::V6(source.to_ipv6_mapped()),
                    v6 => v6,
                },
                None => to,
            },
            IpAddr::V4(_) => to,
        }
    }
}

/// Address `cidr` of `link`, as Linux lists it: an IPv4 one with its subnet's
/// broadcast (as `ip addr add ... brd +` gives) and the link's name as label.
fn address_of(link: &LinkView, cidr: Cidr, scope: Scope) -> AddressView {
    AddressView {
        index: link.index,
        address: cidr,
        scope,
        broadcast: if scope == Scope::Host { None } else { cidr.broadcast() },
        label: cidr.ip.is_ipv4().then(|| link.name.clone()),
    }
}

/// Whether `ip` is an IPv6 link-local address (`fe80::/10`).
fn is_link_local(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_own_addresses_are_local() {
        let host = Addressing::new(vec!["10.0.0.2".parse().unwrap()]);
        for ip in ["127.0.0.1", "127.1.2.3", "::1", "10.0.0.2", "::ffff:10.0.0.2"] {
            assert!(host.is_local(ip.parse().unwrap()), "{ip}");
        }
        assert!(!host.is_local("10.0.0.3".parse().unwrap()));
        assert_eq!(
            host.source_for("127.9.9.9".parse().unwrap()),
            "127.0.0.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            host.source_for("::ffff:127.0.0.5".parse().unwrap()),
            "::ffff:127.0.0.1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn routes_pick_the_subnet_then_the_most_specific_gateway() {
        let spec = crate::modules::vunet::config::InterfaceSpec {
            name: "eth0".into(),
            switch: None,
            mac: [2, 0, 0, 0, 0, 2],
            mtu: 1500,
            addresses: ["10.0.0.2/24", "fd00::2/64"].map(|a| Cidr::parse(a).unwrap()).to_vec(),
            capture: None,
        };
        let plan = InterfacePlan { spec, link: None };
        let route = |to, via: &str| RouteSpec { to: Cidr::parse(to).unwrap(), via: via.parse().unwrap() };
        let routes = [route("0.0.0.0/0", "10.0.0.1"), route("10.9.0.0/16", "10.0.0.9")];
        let mut host = Addressing::configured(&[plan], &routes);
        let source = |host: &Addressing, to: &str| {
            host.route(to.parse().unwrap()).map(|(index, source)| format!("{index} {source}"))
        };
        assert_eq!(source(&host, "10.0.0.77").as_deref(), Some("2 10.0.0.2"));
        assert_eq!(source(&host, "192.0.2.1").as_deref(), Some("2 10.0.0.2"));
        assert_eq!(source(&host, "10.9.3.4").as_deref(), Some("2 10.0.0.2"));
        // A link-local address is not a source beyond the link.
        assert_eq!(source(&host, "fd00::5").as_deref(), Some("2 fd00::2"));
        assert_eq!(source(&host, "fe80::1").as_deref(), Some("2 fe80::ff:fe00:2"));
        // No IPv6 default route: other IPv6 networks are unreachable.
        assert_eq!(source(&host, "fd01::2"), None);
        // A link that is down carries nothing.
        let down = crate::modules::vunet::inside::change::LinkSettings {
            index: 2,
            up: Some(false),
            ..Default::default()
        };
        host.apply(&Change::SetLink(down)).unwrap();
        assert_eq!(source(&host, "10.0.0.77"), None);
        assert!(host.is_local("10.0.0.2".parse().unwrap()), "IPv4 addresses stay");
        assert!(!host.is_local("fd00::2".parse().unwrap()), "IPv6 addresses go");
    }
}
