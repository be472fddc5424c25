//! The neighbours a smoltcp interface has learnt, as `ip neigh` shows them.
//!
//! smoltcp keeps its neighbour cache to itself, so the interface's device
//! watches the frames that reach the stack and learns from them what smoltcp
//! learns (and Linux's neighbour tables would): the sender of an ARP reply, or
//! of an ARP request for one of the stack's addresses; the target of an IPv6
//! neighbour advertisement, or the sender of a solicitation for one of its
//! addresses. A reply makes an entry `REACHABLE`, a request `STALE`; a
//! `REACHABLE` entry turns `STALE` after the kernel's reachable time.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetFrame, EthernetProtocol, Icmpv6Packet, IpProtocol,
    Ipv6Packet, NdiscNeighborFlags, NdiscRepr, RawHardwareAddress,
};

use crate::modules::vunet::inside::NeighbourView;

/// How long an entry confirmed by a reply stays `REACHABLE` (Linux's
/// `base_reachable_time`).
const REACHABLE_TIME: Duration = Duration::from_secs(30);
/// The most entries one interface keeps (smoltcp's own cache holds 64): the
/// oldest goes first.
const MAX_ENTRIES: usize = 64;
/// `NUD_REACHABLE` and `NUD_STALE`.
const NUD_REACHABLE: u16 = 0x02;
const NUD_STALE: u16 = 0x04;

/// One learnt neighbour.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    ip: IpAddr,
    mac: [u8; 6],
    router: bool,
    /// When a reply last confirmed it; `None` if only a request named it.
    confirmed: Option<Instant>,
    learnt: Instant,
}

/// The neighbours one interface learnt.
#[derive(Debug, Default)]
pub(super) struct Learnt {
    entries: Vec<Entry>,
    /// The interface's own addresses: requests for these teach their sender.
    own: Vec<IpAddr>,
}

impl Learnt {
    /// Forgets every entry, and takes the interface's addresses now (smoltcp
    /// forgets its own cache whenever these change).
    pub(super) fn reset(&mut self, own: Vec<IpAddr>) {
        self.entries.clear();
        self.own = own;
    }

    /// Whether a reply confirmed `ip` recently enough that smoltcp still holds
    /// it (its cache keeps an entry a minute).
    pub(super) fn confirmed(&self, ip: IpAddr, now: Instant) -> bool {
        const SMOLTCP_KEEPS: std::time::Duration = std::time::Duration::from_secs(50);
        self.entries.iter().any(|entry| {
            entry.ip == ip
                && entry.confirmed.is_some_and(|at| now.saturating_duration_since(at) < SMOLTCP_KEEPS)
        })
    }

    /// Forgets the entry of `ip` (`ip neigh del`).
    pub(super) fn forget(&mut self, ip: IpAddr) {
        self.entries.retain(|entry| entry.ip != ip);
    }

    /// Learns from `frame`, which reached the interface at `now`. Returns whether
    /// it may have resolved a neighbour for smoltcp too (a reply, a new or a
    /// moved neighbour): sockets waiting for one can send now.
    pub(super) fn observe(&mut self, frame: &[u8], now: Instant) -> bool {
        let Ok(ethernet) = EthernetFrame::new_checked(frame) else { return false };
        let learnt = match ethernet.ethertype() {
            EthernetProtocol::Arp => arp(ethernet.payload(), &self.own),
            EthernetProtocol::Ipv6 => ndisc(ethernet.payload(), &self.own),
            _ => None,
        };
        let Some((ip, mac, router, reply)) = learnt else { return false };
        let confirmed = reply.then_some(now);
        match self.entries.iter_mut().find(|entry| entry.ip == ip) {
            Some(entry) => {
                let moved = entry.mac != mac;
                entry.mac = mac;
                entry.router |= router;
                entry.confirmed = confirmed.or(entry.confirmed);
                entry.learnt = now;
                reply || moved
            }
            None => {
                if self.entries.len() >= MAX_ENTRIES {
                    let oldest = self.entries.iter().enumerate().min_by_key(|(_, e)| e.learnt);
                    let at = oldest.map_or(0, |(at, _)| at);
                    self.entries.remove(at);
                }
                self.entries.push(Entry { ip, mac, router, confirmed, learnt: now });
                true
            }
        }
    }

    /// The entries as `ip neigh` shows them for link `index`, at `now`.
    pub(super) fn views(&self, index: u32, now: Instant) -> impl Iterator<Item = NeighbourView> {
        self.entries.iter().map(move |entry| {
            let fresh = entry.confirmed.is_some_and(|at| now.duration_since(at) < REACHABLE_TIME);
            NeighbourView {
                index,
                ip: entry.ip,
                mac: Some(entry.mac),
                state: if fresh { NUD_REACHABLE } else { NUD_STALE },
                router: entry.router,
            }
        })
    }
}

/// What an ARP packet teaches: its sender, if it replies or asks for one of
/// `own`; with whether it was a reply.
fn arp(payload: &[u8], own: &[IpAddr]) -> Option<(IpAddr, [u8; 6], bool, bool)> {
    let packet = ArpPacket::new_checked(payload).ok()?;
    let ArpRepr::EthernetIpv4 {
        operation,
        source_hardware_addr,
        source_protocol_addr,
        target_protocol_addr,
        ..
    } = ArpRepr::parse(&packet).ok()?
    else {
        return None;
    };
    let sender = IpAddr::V4(source_protocol_addr);
    if sender.is_unspecified() || !source_hardware_addr.is_unicast() {
        return None;
    }
    let reply = operation == ArpOperation::Reply;
    let for_us = own.contains(&IpAddr::V4(target_protocol_addr));
    (reply || for_us).then_some((sender, source_hardware_addr.0, false, reply))
}

/// What an IPv6 neighbour discovery message teaches: the target of an
/// advertisement (a router if it says so), or the sender of a solicitation for
/// one of `own`; with whether it was an advertisement.
fn ndisc(payload: &[u8], own: &[IpAddr]) -> Option<(IpAddr, [u8; 6], bool, bool)> {
    let ip = Ipv6Packet::new_checked(payload).ok()?;
    if ip.next_header() != IpProtocol::Icmpv6 {
        return None;
    }
    let icmp = Icmpv6Packet::new_checked(ip.payload()).ok()?;
    match NdiscRepr::parse(&icmp).ok()? {
        NdiscRepr::NeighborAdvert { flags, target_addr, lladdr: Some(lladdr) } => {
            let router = flags.contains(NdiscNeighborFlags::ROUTER);
            Some((IpAddr::V6(target_addr), mac(lladdr)?, router, true))
        }
        NdiscRepr::NeighborSolicit { target_addr, lladdr: Some(lladdr) }
            if own.contains(&IpAddr::V6(target_addr)) && !ip.src_addr().is_unspecified() =>
        {
            Some((IpAddr::V6(ip.src_addr()), mac(lladdr)?, false, false))
        }
        _ => None,
    }
}

/// An Ethernet hardware address, if `raw` is one.
fn mac(raw: RawHardwareAddress) -> Option<[u8; 6]> {
    raw.as_bytes().try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::wire::{EthernetAddress, EthernetRepr, Ipv4Address};

    const ROUTER_MAC: [u8; 6] = [2, 0x6e, 0x76, 0xff, 0, 0];

    /// An ARP frame from the router (10.0.0.1) to 10.0.0.2.
    fn arp_frame(operation: ArpOperation, target: [u8; 4]) -> Vec<u8> {
        let arp = ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr: EthernetAddress(ROUTER_MAC),
            source_protocol_addr: Ipv4Address::new(10, 0, 0, 1),
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: Ipv4Address::from(target),
        };
        let ethernet = EthernetRepr {
            src_addr: EthernetAddress(ROUTER_MAC),
            dst_addr: EthernetAddress::BROADCAST,
            ethertype: EthernetProtocol::Arp,
        };
        let mut bytes = vec![0; ethernet.buffer_len() + arp.buffer_len()];
        let mut frame = EthernetFrame::new_unchecked(&mut bytes);
        ethernet.emit(&mut frame);
        arp.emit(&mut ArpPacket::new_unchecked(frame.payload_mut()));
        bytes
    }

    #[test]
    fn replies_and_requests_for_us_teach_their_sender() {
        let mut learnt = Learnt::default();
        learnt.reset(vec!["10.0.0.2".parse().unwrap()]);
        let now = Instant::now();
        learnt.observe(&arp_frame(ArpOperation::Request, [10, 0, 0, 9]), now);
        assert_eq!(learnt.views(2, now).count(), 0, "a request for another host");
        learnt.observe(&arp_frame(ArpOperation::Request, [10, 0, 0, 2]), now);
        let stale: Vec<_> = learnt.views(2, now).collect();
        assert_eq!(stale.len(), 1);
        assert_eq!((stale[0].mac, stale[0].state), (Some(ROUTER_MAC), NUD_STALE));
        learnt.observe(&arp_frame(ArpOperation::Reply, [10, 0, 0, 2]), now);
        assert_eq!(learnt.views(2, now).next().unwrap().state, NUD_REACHABLE);
        let later = now + REACHABLE_TIME;
        assert_eq!(learnt.views(2, later).next().unwrap().state, NUD_STALE);
        learnt.observe(&[0xff; 10], now);
        learnt.reset(Vec::new());
        assert_eq!(learnt.views(2, now).count(), 0);
    }
}
