//! The frames a host sends to learn a neighbour's link-layer address: an ARP
//! request (IPv4) or a neighbour solicitation (IPv6). The router sends them as
//! it forwards; a stack sends them ahead of smoltcp, which asks for one
//! neighbour at a time (see `smoltcp/net.rs`).

use std::net::{IpAddr, Ipv4Addr};

use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetProtocol, Icmpv6Repr, NdiscRepr,
    RawHardwareAddress,
};

use super::frames::{ethernet_frame, icmpv6_packet, multicast_mac, solicited_node};
use super::link::Frame;

/// Hop limit every NDP message carries (RFC 4861 §7.1: others are forged off-link).
const NDISC_HOP_LIMIT: u8 = 255;

/// The frame from `mac` at `source` that asks who has `target`: a broadcast
/// ARP request, or a neighbour solicitation to the target's solicited-node
/// group; `None` if the two addresses are not of one family.
pub fn solicitation(mac: EthernetAddress, source: IpAddr, target: IpAddr) -> Option<Frame> {
    match (source, target) {
        (IpAddr::V4(source), IpAddr::V4(target)) => {
            let request = ArpRepr::EthernetIpv4 {
                operation: ArpOperation::Request,
                source_hardware_addr: mac,
                source_protocol_addr: source,
                target_hardware_addr: EthernetAddress([0; 6]),
                target_protocol_addr: target,
            };
            Some(arp_frame(mac, EthernetAddress::BROADCAST, &request))
        }
        (IpAddr::V6(source), IpAddr::V6(target)) => {
            let group = solicited_node(target);
            let solicitation = Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
                target_addr: target,
                lladdr: Some(RawHardwareAddress::from(mac)),
            });
            let ip = icmpv6_packet(source, group, NDISC_HOP_LIMIT, &solicitation);
            Some(ethernet_frame(mac, multicast_mac(group), EthernetProtocol::Ipv6, &ip))
        }
        _ => None,
    }
}

/// An Ethernet frame from `source` to `destination` carrying `arp`.
pub(super) fn arp_frame(
    source: EthernetAddress,
    destination: EthernetAddress,
    arp: &ArpRepr,
) -> Frame {
    let mut payload = vec![0; arp.buffer_len()];
    arp.emit(&mut ArpPacket::new_unchecked(&mut payload[..]));
    ethernet_frame(source, destination, EthernetProtocol::Arp, &payload)
}

/// An ARP message of IPv4 over Ethernet, as a host reads it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Arp {
    pub operation: ArpOperation,
    pub sender_mac: EthernetAddress,
    pub sender_ip: Ipv4Addr,
    pub target_ip: Ipv4Addr,
}

impl Arp {
    /// The ARP message in Ethernet payload `payload`, if it is one of IPv4.
    pub fn read(payload: &[u8]) -> Option<Self> {
        let packet = ArpPacket::new_checked(payload).ok()?;
        match ArpRepr::parse(&packet).ok()? {
            ArpRepr::EthernetIpv4 {
                operation,
                source_hardware_addr,
                source_protocol_addr,
                target_protocol_addr,
                ..
            } => Some(Self {
                operation,
                sender_mac: source_hardware_addr,
                sender_ip: source_protocol_addr,
                target_ip: target_protocol_addr,
            }),
            _ => None,
        }
    }

    /// The frame that answers this request from `mac`, which has its target
    /// address.
    pub fn reply_from(&self, mac: EthernetAddress) -> Frame {
        let reply = ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Reply,
            source_hardware_addr: mac,
            source_protocol_addr: self.target_ip,
            target_hardware_addr: self.sender_mac,
            target_protocol_addr: self.sender_ip,
        };
        arp_frame(mac, self.sender_mac, &reply)
    }
}
