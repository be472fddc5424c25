//! The host's own addresses, and what they decide: which addresses are local,
//! which are broadcast, which a socket may bind, and the source it speaks from.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use nix::errno::Errno;

use super::net::InterfacePlan;
use crate::modules::vunet::config::RouteSpec;

/// A stack's addresses (loopback is implied), with the interfaces and routes
/// they were configured as.
#[derive(Debug)]
pub(super) struct Addressing {
    /// Addresses of the stack's interfaces besides loopback.
    addresses: Vec<IpAddr>,
    /// The configured interfaces and routes, for `netvm status`.
    interfaces: Vec<InterfacePlan>,
    routes: Vec<RouteSpec>,
}

impl Addressing {
    /// A host with `addresses` besides loopback, on no configured interface.
    pub(super) fn new(addresses: Vec<IpAddr>) -> Self {
        Self { addresses, interfaces: Vec::new(), routes: Vec::new() }
    }

    /// A host with the addresses of `interfaces`, and `routes`.
    pub(super) fn configured(interfaces: &[InterfacePlan], routes: &[RouteSpec]) -> Self {
        Self {
            addresses: interfaces.iter().flat_map(|i| i.spec.addresses.iter().map(|a| a.ip)).collect(),
            interfaces: interfaces.to_vec(),
            routes: routes.to_vec(),
        }
    }

    /// The addresses besides loopback.
    pub(super) fn addresses(&self) -> &[IpAddr] {
        &self.addresses
    }

    /// The configured interfaces (none for a stack given bare addresses).
    pub(super) fn interfaces(&self) -> &[InterfacePlan] {
        &self.interfaces
    }

    /// The configured routes.
    pub(super) fn routes(&self) -> &[RouteSpec] {
        &self.routes
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
            || self
                .interfaces
                .iter()
                .flat_map(|i| &i.spec.addresses)
                .any(|subnet| subnet.broadcast() == Some(ip))
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
}
