//! What a smoltcp stack shows of itself to programs that ask (`ip`, `getifaddrs`):
//! its loopback, its interfaces with their counters, addresses and routes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::stack::SmoltcpStack;
use crate::modules::vunet::cidr::Cidr;
use crate::modules::vunet::inside::{AddressView, Inside, LinkKind, LinkView, RouteView, Scope};
use crate::modules::vunet::network::{Counters, Network};

/// The loopback's MTU, as Linux gives `lo`.
const LOOPBACK_MTU: u32 = 65536;

impl SmoltcpStack {
    /// The stack as its programs see it (see [`Inside`]).
    pub(super) fn inside_view(&self, network: &Network) -> Inside {
        let mut inside = Inside::default();
        inside.links.push(LinkView {
            index: 1,
            name: "lo".into(),
            kind: LinkKind::Loopback,
            mac: [0; 6],
            mtu: LOOPBACK_MTU,
            up: true,
            carrier: true,
            counters: Counters::default(),
        });
        for (ip, prefix) in [(IpAddr::V4(Ipv4Addr::LOCALHOST), 8), (Ipv6Addr::LOCALHOST.into(), 128)] {
            inside.addresses.push(address(1, "lo", Cidr::new(ip, prefix), Scope::Host));
        }
        for (position, plan) in self.host.interfaces().iter().enumerate() {
            let index = position as u32 + 2;
            let spec = &plan.spec;
            inside.links.push(LinkView {
                index,
                name: spec.name.clone(),
                kind: LinkKind::Ethernet,
                mac: spec.mac,
                mtu: spec.mtu as u32,
                up: true,
                carrier: plan.link.is_some(),
                counters: plan.link.as_ref().map(|(link, _)| network.counters(*link)).unwrap_or_default(),
            });
            for &cidr in &spec.addresses {
                let scope = if is_link_local(cidr.ip) { Scope::Link } else { Scope::Universe };
                inside.addresses.push(address(index, &spec.name, cidr, scope));
            }
        }
        inside.routes = self.routes_view(&inside.addresses);
        inside
    }

    /// The configured routes, each leaving by the interface on its gateway's subnet.
    fn routes_view(&self, addresses: &[AddressView]) -> Vec<RouteView> {
        self.host
            .routes()
            .iter()
            .filter_map(|route| {
                let on = addresses.iter().find(|a| a.index > 1 && a.address.contains(route.via))?;
                Some(RouteView { destination: route.to, gateway: Some(route.via), index: on.index })
            })
            .collect()
    }
}

/// Address `cidr` of link `index`, called `name`, as Linux lists it.
fn address(index: u32, name: &str, cidr: Cidr, scope: Scope) -> AddressView {
    let v4 = cidr.ip.is_ipv4();
    AddressView {
        index,
        address: cidr,
        scope,
        broadcast: if scope == Scope::Host { None } else { cidr.broadcast() },
        label: v4.then(|| name.to_owned()),
    }
}

/// Whether `ip` is an IPv6 link-local address (`fe80::/10`).
fn is_link_local(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80)
}
