//! The IP packets the uplink reads and writes: the headers of what a stack sends
//! out, and the UDP, ICMP echo and ICMP error packets that come back.

use std::net::{IpAddr, SocketAddr};

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    Icmpv4Message, Icmpv4Packet, Icmpv4Repr, Icmpv6Message, Icmpv6Packet, Icmpv6Repr, IpAddress,
    IpProtocol, IpRepr, Ipv4Packet, Ipv6Packet, UdpPacket, UdpRepr,
};

use crate::modules::vunet::network::frames::{icmpv4_error_packet, icmpv6_error_packet};

/// TTL / hop limit of the packets the uplink sends towards the stacks: what
/// came from the host's network arrives as from a neighbour of the uplink.
const HOP_LIMIT: u8 = 64;

/// The header of an IP packet a stack sent, and where its payload is.
pub(super) struct Header {
    pub source: IpAddr,
    pub destination: IpAddr,
    pub protocol: IpProtocol,
    /// Where the payload starts in the packet, and its length.
    pub payload: std::ops::Range<usize>,
}

impl Header {
    /// The header of `ip`, a whole IPv4 or IPv6 packet (no IPv6 extension
    /// headers are followed: their packets are the payload's protocol only if
    /// it comes first); `None` if it does not parse.
    pub fn parse(ip: &[u8]) -> Option<Self> {
        match ip.first()? >> 4 {
            4 => {
                let packet = Ipv4Packet::new_checked(ip).ok()?;
                let start = usize::from(packet.header_len());
                Some(Self {
                    source: IpAddr::V4(packet.src_addr()),
                    destination: IpAddr::V4(packet.dst_addr()),
                    protocol: packet.next_header(),
                    payload: start..usize::from(packet.total_len()),
                })
            }
            6 => {
                let packet = Ipv6Packet::new_checked(ip).ok()?;
                let start = smoltcp::wire::IPV6_HEADER_LEN;
                Some(Self {
                    source: IpAddr::V6(packet.src_addr()),
                    destination: IpAddr::V6(packet.dst_addr()),
                    protocol: packet.next_header(),
                    payload: start..start + usize::from(packet.payload_len()),
                })
            }
            _ => None,
        }
    }
}

/// A packet of `protocol` from `from` to `to`, its payload written by `fill`
/// into a buffer of `len` bytes (which gets the pseudo-header's addresses).
fn ip_packet(
    from: IpAddr,
    to: IpAddr,
    protocol: IpProtocol,
    len: usize,
    fill: impl FnOnce(&mut [u8], IpAddress, IpAddress),
) -> Vec<u8> {
    let (from, to) = (IpAddress::from(from), IpAddress::from(to));
    let header = IpRepr::new(from, to, protocol, len, HOP_LIMIT);
    let mut packet = vec![0; header.header_len() + len];
    header.emit(&mut packet[..], &ChecksumCapabilities::default());
    let start = header.header_len();
    fill(&mut packet[start..], from, to);
    packet
}

/// A UDP datagram from `from` to `to` carrying `payload`.
pub(super) fn udp(from: SocketAddr, to: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let repr = UdpRepr { src_port: from.port(), dst_port: to.port() };
    let len = repr.header_len() + payload.len();
    ip_packet(from.ip(), to.ip(), IpProtocol::Udp, len, |buffer, src, dst| {
        let mut packet = UdpPacket::new_unchecked(buffer);
        let checksums = ChecksumCapabilities::default();
        repr.emit(
            &mut packet,
            &src,
            &dst,
            payload.len(),
            |b| b.copy_from_slice(payload),
            &checksums,
        );
    })
}

/// An ICMP (or ICMPv6) echo reply from `from` to `to`.
pub(super) fn echo_reply(
    from: IpAddr,
    to: IpAddr,
    ident: u16,
    seq_no: u16,
    data: &[u8],
) -> Vec<u8> {
    let checksums = ChecksumCapabilities::default();
    match (from, to) {
        (IpAddr::V4(_), IpAddr::V4(_)) => {
            let repr = Icmpv4Repr::EchoReply { ident, seq_no, data };
            ip_packet(from, to, IpProtocol::Icmp, repr.buffer_len(), |buffer, _, _| {
                repr.emit(&mut Icmpv4Packet::new_unchecked(buffer), &checksums)
            })
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let repr = Icmpv6Repr::EchoReply { ident, seq_no, data };
            ip_packet(from, to, IpProtocol::Icmpv6, repr.buffer_len(), |buffer, _, _| {
                repr.emit(&src, &dst, &mut Icmpv6Packet::new_unchecked(buffer), &checksums)
            })
        }
        _ => Vec::new(),
    }
}

/// Why a packet cannot be delivered, as an ICMP error tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Unreachable {
    /// No route to the network (`ENETUNREACH`).
    Net,
    /// The host does not answer (`EHOSTUNREACH`).
    Host,
    /// Nothing listens on the port (`ECONNREFUSED`).
    Port,
    /// A firewall refused it (`EHOSTUNREACH` for IPv4, `EACCES` for IPv6).
    Prohibited,
}

impl Unreachable {
    /// What a host's `connect` or `sendto` failing with `errno` says of the
    /// destination, if it is one of these.
    pub fn of_errno(errno: i32) -> Option<Self> {
        match errno {
            libc::ENETUNREACH => Some(Self::Net),
            libc::EHOSTUNREACH | libc::EHOSTDOWN => Some(Self::Host),
            libc::ECONNREFUSED => Some(Self::Port),
            libc::EACCES | libc::EPERM => Some(Self::Prohibited),
            _ => None,
        }
    }
}

/// The ICMP error telling the source of `original` (a whole IP packet) that
/// it is `why` unreachable, sent as from its destination.
pub(super) fn unreachable(original: &[u8], why: Unreachable) -> Option<Vec<u8>> {
    let header = Header::parse(original)?;
    match header.destination {
        IpAddr::V4(from) => {
            let code = match why {
                Unreachable::Net => 0,
                Unreachable::Host => 1,
                Unreachable::Port => 3,
                Unreachable::Prohibited => 13,
            };
            icmpv4_error_packet(from, original, Icmpv4Message::DstUnreachable, code)
        }
        IpAddr::V6(from) => {
            let code = match why {
                Unreachable::Net => 0,
                Unreachable::Prohibited => 1,
                Unreachable::Host => 3,
                Unreachable::Port => 4,
            };
            icmpv6_error_packet(from, original, Icmpv6Message::DstUnreachable, code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_reads_back_as_written() {
        let from: SocketAddr = "192.0.2.2:53".parse().unwrap();
        let to: SocketAddr = "10.0.0.2:40000".parse().unwrap();
        let packet = udp(from, to, b"answer");
        let header = Header::parse(&packet).unwrap();
        assert_eq!((header.source, header.destination), (from.ip(), to.ip()));
        assert_eq!(header.protocol, IpProtocol::Udp);
        let datagram = UdpPacket::new_checked(&packet[header.payload]).unwrap();
        assert!(datagram.verify_checksum(&from.ip().into(), &to.ip().into()));
        assert_eq!((datagram.src_port(), datagram.payload()), (53, &b"answer"[..]));
    }

    #[test]
    fn an_error_goes_back_to_the_source_from_the_destination() {
        let stack: SocketAddr = "[fd00::2]:40000".parse().unwrap();
        let remote: SocketAddr = "[2001:db8::2]:7".parse().unwrap();
        let sent = udp(stack, remote, b"ping");
        let error = unreachable(&sent, Unreachable::Port).unwrap();
        let header = Header::parse(&error).unwrap();
        assert_eq!((header.source, header.destination), (remote.ip(), stack.ip()));
        let icmp = Icmpv6Packet::new_checked(&error[header.payload]).unwrap();
        assert_eq!((icmp.msg_type(), icmp.msg_code()), (Icmpv6Message::DstUnreachable, 4));
        assert_eq!(Unreachable::of_errno(libc::EACCES), Some(Unreachable::Prohibited));
    }
}
