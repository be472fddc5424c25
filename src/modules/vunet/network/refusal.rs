//! What a host with nothing listening answers a TCP segment with: a reset
//! (RFC 9293 §3.10.7.1), so that a connect to the router's own address is
//! refused at once, as a Linux router refuses it, instead of waiting for a
//! handshake that never comes.

use std::net::IpAddr;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{IpAddress, IpProtocol, IpRepr, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber};

/// The IP packet (of `source`'s version) that carries the reset answering
/// `segment`, a TCP segment from `source` to `destination`, back to `source`
/// with hop limit `hop_limit`; `None` where [`tcp_reset`] gives none.
pub fn tcp_reset_packet(
    source: IpAddr,
    destination: IpAddr,
    segment: &[u8],
    hop_limit: u8,
) -> Option<Vec<u8>> {
    let reset = tcp_reset(source, destination, segment)?;
    let (from, to) = (IpAddress::from(destination), IpAddress::from(source));
    let header = IpRepr::new(from, to, IpProtocol::Tcp, reset.len(), hop_limit);
    let mut packet = vec![0; header.header_len()];
    header.emit(&mut packet[..], &ChecksumCapabilities::default());
    packet.extend_from_slice(&reset);
    Some(packet)
}

/// The reset that answers `segment`, a TCP segment from `source` to
/// `destination`, as bytes of a TCP segment from `destination` to `source`;
/// `None` for a reset (never answered) or a segment that does not parse or
/// whose checksum is wrong.
pub(super) fn tcp_reset(source: IpAddr, destination: IpAddr, segment: &[u8]) -> Option<Vec<u8>> {
    let (from, to) = (IpAddress::from(source), IpAddress::from(destination));
    let packet = TcpPacket::new_checked(segment).ok()?;
    let checksums = ChecksumCapabilities::default();
    let arrived = TcpRepr::parse(&packet, &from, &to, &checksums).ok()?;
    if arrived.control == TcpControl::Rst {
        return None;
    }
    // With an ACK, the reset takes its number; without, it acknowledges the
    // segment (its SYN and FIN count one each).
    let (seq_number, ack_number) = match arrived.ack_number {
        Some(ack) => (ack, None),
        None => (TcpSeqNumber(0), Some(arrived.seq_number + arrived.segment_len())),
    };
    let ports = (arrived.dst_port, arrived.src_port);
    Some(bare_segment(ports, TcpControl::Rst, (seq_number, ack_number), 0, (to, from)))
}

/// The bytes of a TCP segment without options or payload from `ports.0` to
/// `ports.1`, with its checksum over the pseudo-header of `addresses`.
fn bare_segment(
    ports: (u16, u16),
    control: TcpControl,
    (seq_number, ack_number): (TcpSeqNumber, Option<TcpSeqNumber>),
    window_len: u16,
    (from, to): (IpAddress, IpAddress),
) -> Vec<u8> {
    let repr = TcpRepr {
        src_port: ports.0,
        dst_port: ports.1,
        control,
        seq_number,
        ack_number,
        window_len,
        window_scale: None,
        max_seg_size: None,
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload: &[],
    };
    let mut bytes = vec![0; repr.buffer_len()];
    let checksums = ChecksumCapabilities::default();
    repr.emit(&mut TcpPacket::new_unchecked(&mut bytes[..]), &from, &to, &checksums);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(control: TcpControl, ack: Option<u32>) -> Vec<u8> {
        let (from, to): (IpAddr, IpAddr) =
            ("10.0.0.2".parse().unwrap(), "10.0.0.1".parse().unwrap());
        let numbers = (TcpSeqNumber(1000), ack.map(|a| TcpSeqNumber(a as i32)));
        bare_segment((40000, 80), control, numbers, 100, (from.into(), to.into()))
    }

    fn parse(bytes: &[u8]) -> (TcpControl, TcpSeqNumber, Option<TcpSeqNumber>, u16) {
        let packet = TcpPacket::new_checked(bytes).unwrap();
        let (from, to): (IpAddr, IpAddr) =
            ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let repr =
            TcpRepr::parse(&packet, &from.into(), &to.into(), &ChecksumCapabilities::default())
                .expect("a valid segment with its checksum");
        (repr.control, repr.seq_number, repr.ack_number, repr.dst_port)
    }

    #[test]
    fn a_syn_is_answered_with_a_reset_that_acknowledges_it() {
        let (src, dst) = ("10.0.0.2".parse().unwrap(), "10.0.0.1".parse().unwrap());
        let reset = tcp_reset(src, dst, &segment(TcpControl::Syn, None)).unwrap();
        assert_eq!(
            parse(&reset),
            (TcpControl::Rst, TcpSeqNumber(0), Some(TcpSeqNumber(1001)), 40000)
        );
    }

    #[test]
    fn a_segment_with_an_ack_is_reset_at_its_number_and_a_reset_is_not_answered() {
        let (src, dst) = ("10.0.0.2".parse().unwrap(), "10.0.0.1".parse().unwrap());
        let reset = tcp_reset(src, dst, &segment(TcpControl::None, Some(5000))).unwrap();
        assert_eq!(parse(&reset), (TcpControl::Rst, TcpSeqNumber(5000), None, 40000));
        assert_eq!(tcp_reset(src, dst, &segment(TcpControl::Rst, None)), None);
        assert_eq!(tcp_reset(src, dst, &[1, 2, 3]), None);
    }
}
