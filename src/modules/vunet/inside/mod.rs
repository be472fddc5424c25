//! The network as seen from inside a stack: what `ip`, `ifconfig`, `getifaddrs` and
//! `if_nameindex` ask the kernel, answered by the stack a program runs on.
//!
//! A kind whose stacks are hosts on the virtual network describes itself as an
//! [`Inside`] snapshot ([`Stack::inside`](super::stack::Stack::inside)): its links,
//! its addresses and its configured routes. From that, [`rtnetlink`] answers
//! `NETLINK_ROUTE` requests as Linux would, deriving what the kernel derives
//! itself (the routes to connected subnets, the local table); [`socket`] gives a
//! program's `AF_NETLINK` socket its carrier and its calls their Linux answers.

pub mod ioctl;
pub mod rtnetlink;
pub mod socket;

use std::net::{IpAddr, Ipv4Addr};

use super::cidr::Cidr;
use super::network::Counters;

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

/// A route the stack's configuration gives (`ip route`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteView {
    /// Where it leads.
    pub destination: Cidr,
    /// Through which gateway, if not on-link.
    pub gateway: Option<IpAddr>,
    /// The index of the link it leaves by.
    pub index: u32,
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
