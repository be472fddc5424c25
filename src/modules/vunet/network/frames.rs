//! Frames and packets the router and the stacks build themselves: Ethernet
//! frames, ICMPv6 packets, ICMP errors, and the group and MAC address a neighbour
//! solicitation goes to.

use std::net::{Ipv4Addr, Ipv6Addr};

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ETHERNET_HEADER_LEN, EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr,
    IPV4_HEADER_LEN, IPV6_HEADER_LEN, Icmpv4Message, Icmpv4Packet, Icmpv6Message, Icmpv6Packet,
    Icmpv6Repr, IpProtocol, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr,
};

use super::link::Frame;

/// The solicited-node multicast group of an address, `ff02::1:ffXX:XXXX` (RFC 4291 §2.7.1).
pub fn solicited_node(address: Ipv6Addr) -> Ipv6Addr {
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
pub fn multicast_mac(group: Ipv6Addr) -> EthernetAddress {
    let g = group.octets();
    EthernetAddress([0x33, 0x33, g[12], g[13], g[14], g[15]])
}

/// A complete IPv6 packet carrying one ICMPv6 message, checksum included.
pub fn icmpv6_packet(
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
pub fn ethernet_frame(
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

/// TTL / hop limit of the ICMP errors built here.
const ERROR_HOP_LIMIT: u8 = 64;
/// Size of the ICMP header in front of the quote of an error message.
const ICMP_ERROR_HEADER_LEN: usize = 8;
/// How much of the offending packet's payload an ICMPv4 error quotes (RFC 792).
const ICMPV4_QUOTED_PAYLOAD_LEN: usize = 8;
/// ICMPv6 errors quote the offending packet up to this total size (RFC 4443 §2.4).
const IPV6_MINIMUM_MTU: usize = 1280;

/// An ICMPv4 error from `source` about `original` (a complete IPv4 packet) to
/// its source, quoting its header and the first 8 bytes of its payload; `None`
/// if `original` does not parse.
pub fn icmpv4_error_packet(
    source: Ipv4Addr,
    original: &[u8],
    message: Icmpv4Message,
    code: u8,
) -> Option<Vec<u8>> {
    let offending = Ipv4Packet::new_checked(original).ok()?;
    let quoted_len =
        original.len().min(usize::from(offending.header_len()) + ICMPV4_QUOTED_PAYLOAD_LEN);
    let header = Ipv4Repr {
        src_addr: source,
        dst_addr: offending.src_addr(),
        next_header: IpProtocol::Icmp,
        payload_len: ICMP_ERROR_HEADER_LEN + quoted_len,
        hop_limit: ERROR_HOP_LIMIT,
    };
    let mut error_ip = vec![0; header.buffer_len() + header.payload_len];
    header
        .emit(&mut Ipv4Packet::new_unchecked(&mut error_ip[..]), &ChecksumCapabilities::default());
    let mut icmp = Icmpv4Packet::new_unchecked(&mut error_ip[IPV4_HEADER_LEN..]);
    icmp.set_msg_type(message);
    icmp.set_msg_code(code);
    icmp.data_mut()[..quoted_len].copy_from_slice(&original[..quoted_len]);
    icmp.fill_checksum();
    Some(error_ip)
}

/// An ICMPv6 error from `source` about `original` (a complete IPv6 packet) to
/// its source, quoting as much of it as fits in a 1280-byte packet; `None` if
/// `original` does not parse.
pub fn icmpv6_error_packet(
    source: Ipv6Addr,
    original: &[u8],
    message: Icmpv6Message,
    code: u8,
) -> Option<Vec<u8>> {
    let offending = Ipv6Packet::new_checked(original).ok()?;
    let destination = offending.src_addr();
    let quoted_len = original.len().min(IPV6_MINIMUM_MTU - IPV6_HEADER_LEN - ICMP_ERROR_HEADER_LEN);
    let header = Ipv6Repr {
        src_addr: source,
        dst_addr: destination,
        next_header: IpProtocol::Icmpv6,
        payload_len: ICMP_ERROR_HEADER_LEN + quoted_len,
        hop_limit: ERROR_HOP_LIMIT,
    };
    let mut error_ip = vec![0; header.buffer_len() + header.payload_len];
    header.emit(&mut Ipv6Packet::new_unchecked(&mut error_ip[..]));
    let mut icmp = Icmpv6Packet::new_unchecked(&mut error_ip[IPV6_HEADER_LEN..]);
    icmp.set_msg_type(message);
    icmp.set_msg_code(code);
    icmp.payload_mut()[..quoted_len].copy_from_slice(&original[..quoted_len]);
    icmp.fill_checksum(&source, &destination);
    Some(error_ip)
}
