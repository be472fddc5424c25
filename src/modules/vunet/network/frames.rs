//! Frames and packets the router and the stacks build themselves: Ethernet
//! frames, ICMPv6 packets, and the group and MAC address a neighbour
//! solicitation goes to.

use std::net::Ipv6Addr;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ETHERNET_HEADER_LEN, EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr,
    IPV6_HEADER_LEN, Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv6Packet, Ipv6Repr,
};

use super::link::Frame;

/// The solicited-node multicast group of an address, `ff02::1:ffXX:XXXX` (RFC 4291 §2.7.1).
pub(super) fn solicited_node(address: Ipv6Addr) -> Ipv6Addr {
    let a = address.octets();
    let mut octets = [0u8; 16];
    octets[0] = 0xff;
    octets[1] = 0x02;
    octets[11] = 0x01;
    octets[12] = 0xff;
    octets[13..16].copy_from_slice(&a[13..16]);
    Ipv6Addr::from(octets)
}

/// The Ethernet address an IPv6 multicast group maps to, `33:33` + its last 32 bits.
pub(super) fn multicast_mac(group: Ipv6Addr) -> EthernetAddress {
    let g = group.octets();
    EthernetAddress([0x33, 0x33, g[12], g[13], g[14], g[15]])
}

/// A complete IPv6 packet carrying one ICMPv6 message, checksum included.
pub(super) fn icmpv6_packet(
    source: Ipv6Addr,
    destination: Ipv6Addr,
    hop_limit: u8,
    message: &Icmpv6Repr,
) -> Vec<u8> {
    let header = Ipv6Repr {
        src_addr: source,
        dst_addr: destination,
        next_header: IpProtocol::Icmpv6,
        payload_len: message.buffer_len(),
        hop_limit,
    };
    let mut ip = vec![0; header.buffer_len() + header.payload_len];
    header.emit(&mut Ipv6Packet::new_unchecked(&mut ip[..]));
    message.emit(
        &source,
        &destination,
        &mut Icmpv6Packet::new_unchecked(&mut ip[IPV6_HEADER_LEN..]),
        &ChecksumCapabilities::default(),
    );
    ip
}

/// An Ethernet frame around `payload`.
pub(super) fn ethernet_frame(
    source: EthernetAddress,
    destination: EthernetAddress,
    ethertype: EthernetProtocol,
    payload: &[u8],
) -> Frame {
    let mut frame = vec![0; ETHERNET_HEADER_LEN + payload.len()];
    let mut ethernet = EthernetFrame::new_unchecked(&mut frame[..]);
    EthernetRepr { src_addr: source, dst_addr: destination, ethertype }.emit(&mut ethernet);
    ethernet.payload_mut().copy_from_slice(payload);
    frame
}
