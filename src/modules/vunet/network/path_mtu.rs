//! What a host learns and says about the size of its paths: the MTU a router
//! reports in "fragmentation needed" / "packet too big", the path MTUs it
//! remembers, and the TCP maximum segment size its SYNs announce.
//!
//! smoltcp knows one MTU per interface, and its TCP announces a segment size
//! from it. A stack's interface tells smoltcp the largest MTU (so that
//! datagrams of any size reach the link, where `fragment.rs` cuts them to the
//! path) and clamps the segment size of the SYNs it sends to its path, as a
//! Linux host announces it: so TCP segments never need fragments.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use smoltcp::wire::{IpAddress, IpVersion, Ipv4Packet, Ipv6Packet, TcpPacket};

/// How long a learnt path MTU holds (Linux's `mtu_expires`).
pub const PATH_MTU_EXPIRES: Duration = Duration::from_secs(600);
/// How many paths a host remembers at most; beyond, the oldest is forgotten.
const MAX_PATHS: usize = 1024;
/// The least MTU a report may set (Linux's `min_pmtu` for IPv4; IPv6's minimum).
const MIN_IPV4_PATH_MTU: usize = 552;
const MIN_IPV6_PATH_MTU: usize = 1280;
const IPV4_HEADER: usize = 20;
const IPV6_HEADER: usize = 40;
const TCP_HEADER: usize = 20;
/// The TCP option kinds that matter here.
const TCP_OPTION_END: u8 = 0;
const TCP_OPTION_NOP: u8 = 1;
const TCP_OPTION_MSS: u8 = 2;

/// The path MTUs a host learnt from the routers' reports.
#[derive(Default)]
pub struct PathMtus {
    learnt: HashMap<IpAddr, (usize, Instant)>,
}

impl PathMtus {
    /// The MTU towards `destination` on a link of `link_mtu`.
    pub fn towards(&self, destination: IpAddr, link_mtu: usize, now: Instant) -> usize {
        match self.learnt.get(&destination) {
            Some(&(mtu, at)) if now.duration_since(at) < PATH_MTU_EXPIRES => mtu.min(link_mtu),
            _ => link_mtu,
        }
    }

    /// Takes in a report that the path to `destination` takes `mtu` bytes.
    pub fn learn(&mut self, destination: IpAddr, mtu: usize, now: Instant) {
        let least = if destination.is_ipv4() { MIN_IPV4_PATH_MTU } else { MIN_IPV6_PATH_MTU };
        if self.learnt.len() >= MAX_PATHS && !self.learnt.contains_key(&destination) {
            let oldest = self.learnt.iter().min_by_key(|(_, (_, at))| *at).map(|(ip, _)| *ip);
            oldest.map(|ip| self.learnt.remove(&ip));
        }
        self.learnt.insert(destination, (mtu.max(least), now));
    }

    /// Forgets every path (the interface's MTU changed).
    pub fn clear(&mut self) {
        self.learnt.clear();
    }
}

/// The source and destination of IP packet `packet`, if it is one.
pub fn addresses(packet: &[u8]) -> Option<(IpAddr, IpAddr)> {
    match packet.first()? >> 4 {
        4 => {
            let ip = Ipv4Packet::new_checked(packet).ok()?;
            Some((IpAddr::V4(ip.src_addr()), IpAddr::V4(ip.dst_addr())))
        }
        6 => {
            let ip = Ipv6Packet::new_checked(packet).ok()?;
            Some((IpAddr::V6(ip.src_addr()), IpAddr::V6(ip.dst_addr())))
        }
        _ => None,
    }
}

/// The destination and MTU an ICMP "fragmentation needed" (IPv4) or "packet too
/// big" (IPv6) in IP packet `packet` reports, if it is one.
pub fn reported(packet: &[u8]) -> Option<(IpAddr, usize)> {
    match packet.first()? >> 4 {
        4 => {
            let ip = Ipv4Packet::new_checked(packet).ok()?;
            let icmp = ip.payload();
            let is_frag_needed = u8::from(ip.next_header()) == 1 && icmp.get(..2)? == [3, 4];
            let mtu = u16::from_be_bytes([*icmp.get(6)?, *icmp.get(7)?]);
            // The quoted header's destination: the path's far end.
            let destination: [u8; 4] = icmp.get(8 + 16..8 + 20)?.try_into().ok()?;
            let destination = Ipv4Addr::from(destination);
            (is_frag_needed && mtu != 0).then_some((IpAddr::V4(destination), usize::from(mtu)))
        }
        6 => {
            let ip = Ipv6Packet::new_checked(packet).ok()?;
            let icmp = ip.payload();
            if u8::from(ip.next_header()) != 58 || *icmp.first()? != 2 {
                return None;
            }
            let mtu = u32::from_be_bytes(icmp.get(4..8)?.try_into().ok()?);
            let destination: [u8; 16] = icmp.get(8 + 24..8 + 40)?.try_into().ok()?;
            Some((IpAddr::V6(Ipv6Addr::from(destination)), mtu.min(65535) as usize))
        }
        _ => None,
    }
}

/// The maximum segment size TCP SYN `packet` (an IP packet) announces, if it
/// is a SYN that announces one.
pub fn announced_mss(packet: &[u8]) -> Option<u16> {
    let (segment, _, _) = tcp_segment(packet)?;
    let segment = &packet[segment];
    let at = mss_option(segment)?;
    Some(u16::from_be_bytes([segment[at + 2], segment[at + 3]]))
}

/// Where the TCP segment of IP packet `packet` is (its padding left out), and
/// its source and destination; `None` if it carries no whole TCP segment.
fn tcp_segment(packet: &[u8]) -> Option<(std::ops::Range<usize>, IpAddress, IpAddress)> {
    match packet.first()? >> 4 {
        4 => {
            let ip = Ipv4Packet::new_checked(packet).ok()?;
            if u8::from(ip.next_header()) != 6 || ip.more_frags() || ip.frag_offset() != 0 {
                return None;
            }
            let range = usize::from(ip.header_len())..usize::from(ip.total_len());
            Some((range, IpAddress::Ipv4(ip.src_addr()), IpAddress::Ipv4(ip.dst_addr())))
        }
        6 => {
            let ip = Ipv6Packet::new_checked(packet).ok()?;
            if u8::from(ip.next_header()) != 6 {
                return None;
            }
            let range = IPV6_HEADER..IPV6_HEADER + usize::from(ip.payload_len());
            Some((range, IpAddress::Ipv6(ip.src_addr()), IpAddress::Ipv6(ip.dst_addr())))
        }
        _ => None,
    }
}

/// Where the maximum segment size option of TCP SYN `segment` starts, if it
/// has a well-formed one.
fn mss_option(segment: &[u8]) -> Option<usize> {
    let tcp = TcpPacket::new_checked(segment).ok()?;
    if !tcp.syn() {
        return None;
    }
    let options_end = usize::from(tcp.header_len());
    let mut at = TCP_HEADER;
    while at < options_end {
        match segment[at] {
            TCP_OPTION_END => return None,
            TCP_OPTION_NOP => at += 1,
            kind => {
                let len = usize::from(*segment.get(at + 1)?);
                if len < 2 || at + len > options_end {
                    return None;
                }
                if kind == TCP_OPTION_MSS && len == 4 {
                    return Some(at);
                }
                at += len;
            }
        }
    }
    None
}

/// Lowers the maximum segment size that TCP SYN `packet` (an IP packet)
/// announces to what a path of `mtu` bytes carries, as Linux computes it from
/// its route's MTU; anything else is left alone. Done to the SYNs a host sends
/// and to those it receives, a connection's segments take the smaller of both
/// ends' paths, as Linux's do.
pub fn clamp_syn(packet: &mut [u8], mtu: usize) {
    let Some((range, source, destination)) = tcp_segment(packet) else { return };
    let ip_overhead = if source.version() == IpVersion::Ipv4 { IPV4_HEADER } else { IPV6_HEADER };
    let Some(most) = mtu.checked_sub(ip_overhead + TCP_HEADER) else { return };
    let most = most.min(usize::from(u16::MAX)) as u16;
    let segment = &mut packet[range];
    let Some(at) = mss_option(segment) else { return };
    if u16::from_be_bytes([segment[at + 2], segment[at + 3]]) > most {
        segment[at + 2..at + 4].copy_from_slice(&most.to_be_bytes());
        TcpPacket::new_unchecked(segment).fill_checksum(&source, &destination);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 TCP SYN from smoltcp's emitter announcing `mss`.
    fn syn_v4(mss: u16) -> Vec<u8> {
        use smoltcp::phy::ChecksumCapabilities;
        use smoltcp::wire::{IpProtocol, Ipv4Repr, TcpControl, TcpRepr, TcpSeqNumber};
        let (src, dst) = (Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 3));
        let tcp = TcpRepr {
            src_port: 40000,
            dst_port: 80,
            control: TcpControl::Syn,
            seq_number: TcpSeqNumber(1),
            ack_number: None,
            window_len: 1000,
            window_scale: Some(7),
            max_seg_size: Some(mss),
            sack_permitted: true,
            sack_ranges: [None, None, None],
            timestamp: None,
            payload: &[],
        };
        let ip = Ipv4Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            hop_limit: 64,
        };
        let mut packet = vec![0; ip.buffer_len() + tcp.buffer_len()];
        let caps = ChecksumCapabilities::default();
        ip.emit(&mut Ipv4Packet::new_unchecked(&mut packet[..]), &caps);
        tcp.emit(
            &mut TcpPacket::new_unchecked(&mut packet[IPV4_HEADER..]),
            &src.into(),
            &dst.into(),
            &caps,
        );
        packet
    }

    fn announced(packet: &[u8]) -> (Option<u16>, bool) {
        let ip = Ipv4Packet::new_checked(packet).unwrap();
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        let repr = smoltcp::wire::TcpRepr::parse(
            &tcp,
            &ip.src_addr().into(),
            &ip.dst_addr().into(),
            &smoltcp::phy::ChecksumCapabilities::default(),
        );
        let valid = tcp.verify_checksum(&ip.src_addr().into(), &ip.dst_addr().into());
        (repr.ok().and_then(|r| r.max_seg_size), valid)
    }

    #[test]
    fn a_syn_announces_what_its_path_carries_with_a_valid_checksum() {
        let mut packet = syn_v4(65495);
        clamp_syn(&mut packet, 1500);
        assert_eq!(announced(&packet), (Some(1460), true));
        let mut small = syn_v4(536);
        clamp_syn(&mut small, 1500);
        assert_eq!(announced(&small), (Some(536), true), "a smaller MSS stays");
    }

    #[test]
    fn garbage_is_left_alone_without_a_panic() {
        let whole = syn_v4(65495);
        for len in 0..whole.len() {
            let mut packet = whole[..len].to_vec();
            let before = packet.clone();
            clamp_syn(&mut packet, 1500);
            assert_eq!(packet, before);
            assert_eq!(reported(&packet), None);
        }
    }

    #[test]
    fn learnt_paths_are_bounded_expire_and_never_go_below_the_minimum() {
        let now = Instant::now();
        let mut paths = PathMtus::default();
        let far = IpAddr::V4(Ipv4Addr::new(10, 1, 0, 3));
        paths.learn(far, 100, now);
        assert_eq!(paths.towards(far, 1500, now), MIN_IPV4_PATH_MTU);
        assert_eq!(paths.towards(far, 1500, now + PATH_MTU_EXPIRES), 1500);
        for i in 0..5000u32 {
            paths.learn(IpAddr::V4(Ipv4Addr::from(i)), 1400, now);
        }
        assert!(paths.learnt.len() <= MAX_PATHS);
    }
}
