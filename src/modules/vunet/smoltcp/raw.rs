//! Raw sockets of IP protocols other than ICMP (`SOCK_RAW` with
//! `IPPROTO_UDP`, `IPPROTO_TCP`, GRE, `IPPROTO_RAW`, ...), as Linux serves
//! them to programs with `CAP_NET_RAW`:
//! - each receives a copy of every packet of its protocol that reaches the
//!   stack from the network (IPv4: with the IP header; IPv6: without), while
//!   the stack handles the packet as it would anyway;
//! - what it sends the host wraps in an IP header of its protocol, with the
//!   socket's TTL; an IPv4 socket with `IP_HDRINCL` (always, for
//!   `IPPROTO_RAW`) writes the header itself, and the host fills in its total
//!   length, its source if 0, and its checksum.
//!
//! Their packets go through raw smoltcp sockets of the protocol that the
//! network side opens on demand (see `NetHost::open_raw`). The stack's own
//! loopback carries no IP packets (its sockets' carriers meet directly), so
//! raw sockets see only the network's traffic.

use std::net::IpAddr;

/// The length of an IPv4 header without options, and of the IPv6 header.
pub(super) const IPV4_HEADER: usize = 20;
pub(super) const IPV6_HEADER: usize = 40;

/// The IPv4 header of a packet of `protocol` carrying `len` bytes, with its
/// checksum.
pub(super) fn ipv4_header(
    (src, dst): (std::net::Ipv4Addr, std::net::Ipv4Addr),
    ttl: u8,
    protocol: u8,
    len: usize,
) -> Vec<u8> {
    let total = (IPV4_HEADER + len) as u16;
    let mut header = vec![0x45, 0];
    header.extend_from_slice(&total.to_be_bytes());
    header.extend_from_slice(&[0, 0, 0x40, 0, ttl, protocol, 0, 0]);
    header.extend_from_slice(&src.octets());
    header.extend_from_slice(&dst.octets());
    let sum = super::icmp::checksum(&[&header]);
    header[10..12].copy_from_slice(&sum.to_be_bytes());
    header
}

/// The IPv6 header of a packet whose next header is `protocol`, carrying
/// `len` bytes.
pub(super) fn ipv6_header(
    (src, dst): (std::net::Ipv6Addr, std::net::Ipv6Addr),
    hop_limit: u8,
    protocol: u8,
    len: usize,
) -> Vec<u8> {
    let mut header = vec![0x60, 0, 0, 0];
    header.extend_from_slice(&(len as u16).to_be_bytes());
    header.extend_from_slice(&[protocol, hop_limit]);
    header.extend_from_slice(&src.octets());
    header.extend_from_slice(&dst.octets());
    header
}

/// The protocol an IP packet carries (IPv6: its first next header).
pub(super) fn protocol_of(packet: &[u8]) -> Option<u8> {
    match packet.first()? >> 4 {
        4 => packet.get(9).copied(),
        6 => packet.get(6).copied(),
        _ => None,
    }
}

/// The packet a raw socket of `protocol` sends, from `source` to `to`, for
/// `payload`, and the protocol it carries: `payload` behind an IP header of
/// the host's, or with `hdrincl` (IPv4) the program's own header, completed
/// as Linux completes it (`raw_send_hdrinc`). `None` for what cannot go.
pub(super) fn raw_packet(
    protocol: u8,
    (source, to): (IpAddr, IpAddr),
    ttl: u8,
    payload: &[u8],
    hdrincl: bool,
) -> Option<(u8, Vec<u8>)> {
    match (source, to) {
        (IpAddr::V4(src), IpAddr::V4(_)) if hdrincl => {
            let header = usize::from(*payload.first()? & 0x0f) * 4;
            if payload.len() < IPV4_HEADER || header < IPV4_HEADER || header > payload.len() {
                return None;
            }
            let mut packet = payload.to_vec();
            packet[2..4].copy_from_slice(&(payload.len() as u16).to_be_bytes());
            if packet[12..16] == [0; 4] {
                packet[12..16].copy_from_slice(&src.octets());
            }
            packet[10..12].fill(0);
            let sum = super::icmp::checksum(&[&packet[..header]]);
            packet[10..12].copy_from_slice(&sum.to_be_bytes());
            Some((packet[9], packet))
        }
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let mut packet = ipv4_header((src, dst), ttl, protocol, payload.len());
            packet.extend_from_slice(payload);
            Some((protocol, packet))
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let mut packet = ipv6_header((src, dst), ttl, protocol, payload.len());
            packet.extend_from_slice(payload);
            Some((protocol, packet))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_wraps_what_a_raw_socket_sends() {
        let addresses = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let (protocol, packet) = raw_packet(17, addresses, 64, &[1, 2, 3, 4], false).unwrap();
        assert_eq!((protocol, packet.len(), packet[9], packet[8]), (17, 24, 17, 64));
        assert_eq!(super::super::icmp::checksum(&[&packet[..20]]), 0, "a valid header checksum");
        assert_eq!(protocol_of(&packet), Some(17));
    }

    #[test]
    fn a_header_the_program_wrote_is_completed() {
        let mut header = ipv4_header(
            ("0.0.0.0".parse().unwrap(), "10.0.0.2".parse().unwrap()),
            9,
            47,
            0,
        );
        header[2..4].fill(0);
        header.extend_from_slice(&[7; 8]);
        let addresses = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let (protocol, packet) = raw_packet(255, addresses, 64, &header, true).unwrap();
        assert_eq!(protocol, 47, "the program's protocol, not the socket's");
        assert_eq!(u16::from_be_bytes([packet[2], packet[3]]), 28);
        assert_eq!(packet[12..16], [10, 0, 0, 1], "the source filled in");
        assert_eq!(super::super::icmp::checksum(&[&packet[..20]]), 0);
        assert_eq!(raw_packet(255, addresses, 64, &[0x45; 10], true), None);
    }
}
