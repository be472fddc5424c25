//! The snapshot a stack shows of itself ([`Inside`]) and its parts, as the
//! kernel's tables hold them: links, addresses, routes, neighbours.

use std::net::{IpAddr, Ipv4Addr};

use crate::modules::vunet::cidr::Cidr;
use crate::modules::vunet::network::Counters;

/// An errno, positive (`libc::ENODEV`), as the kernel's handlers fail with it.
pub type Errno = i32;

/// What a stack shows of itself to a program that asks, at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inside {
    /// Its links, `lo` first (index 1), then each interface in order.
    pub links: Vec<LinkView>,
    /// Its addresses, on the links whose index they give.
    pub addresses: Vec<AddressView>,
    /// The routes its configuration gives (not those Linux derives from the
    /// addresses: connected subnets, local and broadcast entries).
    pub routes: Vec<RouteView>,
    /// Its neighbour entries (`ip neigh`).
    pub neighbours: Vec<NeighbourView>,
}

/// A link (`ip link`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkView {
    /// Its index (`lo` is 1).
    pub index: u32,
    /// Its name (`lo`, `eth0`).
    pub name: String,
    /// Loopback or Ethernet.
    pub kind: LinkKind,
    /// Its hardware address (all zero for loopback).
    pub mac: [u8; 6],
    /// Its MTU.
    pub mtu: u32,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Has a carrier (`IFF_RUNNING`, `IFF_LOWER_UP`): plugged into a switch.
    pub carrier: bool,
    /// Its packet counters, as the link's owner counts them.
    pub counters: Counters,
}

/// What kind of device a link is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkKind {
    /// `lo` (`ARPHRD_LOOPBACK`).
    Loopback,
    /// An Ethernet interface (`ARPHRD_ETHER`).
    Ethernet,
}

/// An address of a link (`ip addr`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressView {
    /// The link's index.
    pub index: u32,
    /// The address and its prefix length.
    pub address: Cidr,
    /// Its scope.
    pub scope: Scope,
    /// Its IPv4 broadcast address, if it has one.
    pub broadcast: Option<Ipv4Addr>,
    /// Its label (IPv4: the link's name).
    pub label: Option<String>,
}

/// How far an address or route reaches (`RT_SCOPE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Everywhere (`global`, 0).
    Universe,
    /// The link (`link`, 253).
    Link,
    /// This host (`host`, 254).
    Host,
}

/// The metric `ip -6 route add` gives a route without one (`IP6_RT_PRIO_USER`).
pub const IPV6_DEFAULT_METRIC: u32 = 1024;

/// A route the stack's configuration gives (`ip route`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteView {
    /// Where it leads.
    pub destination: Cidr,
    /// Through which gateway, if not on-link.
    pub gateway: Option<IpAddr>,
    /// The index of the link it leaves by.
    pub index: u32,
    /// Its metric (`RTA_PRIORITY`; an IPv6 route's is 1024 unless given).
    pub metric: u32,
    /// Who made it (`RTPROT_BOOT` as `ip route add` says, or the request's).
    pub protocol: u8,
}

impl RouteView {
    /// A route to `destination` through `gateway` on link `index`, as `ip route
    /// add` makes it: the default metric of its family, protocol `boot`.
    pub fn through(destination: Cidr, gateway: IpAddr, index: u32) -> Self {
        let metric = if destination.ip.is_ipv6() { IPV6_DEFAULT_METRIC } else { 0 };
        RouteView {
            destination,
            gateway: Some(gateway),
            index,
            metric,
            protocol: libc::RTPROT_BOOT,
        }
    }
}

/// A neighbour entry (`ip neigh`): an address on a link and its hardware address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeighbourView {
    /// The link's index.
    pub index: u32,
    /// The neighbour's address.
    pub ip: IpAddr,
    /// Its hardware address, if known.
    pub mac: Option<[u8; 6]>,
    /// Its state (`NUD_PERMANENT`, `NUD_REACHABLE`, ...).
    pub state: u16,
    /// Whether it is a router (`NTF_ROUTER`, IPv6).
    pub router: bool,
}

/// What tests of the inside view build snapshots from.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::{LinkKind, LinkView};

    /// A link that is up and has carrier, with no traffic yet.
    pub fn link(index: u32, name: &str, kind: LinkKind, mac: [u8; 6], mtu: u32) -> LinkView {
        LinkView {
            index,
            name: name.into(),
            kind,
            mac,
            mtu,
            up: true,
            carrier: true,
            counters: Default::default(),
        }
    }
}
