//! The frames a host sends to learn a neighbour's link-layer address: an ARP
//! request (IPv4) or a neighbour solicitation (IPv6). The router sends them as
//! it forwards; a stack sends them ahead of smoltcp, which asks for one
//! neighbour at a time (see `smoltcp/net.rs`).

use std::net::IpAddr;

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
