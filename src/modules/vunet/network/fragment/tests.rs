//! Tests of fragmentation and reassembly on hand-built IPv4 / IPv6 UDP packets
//! (smoltcp builds them, with valid checksums, and parses the fragments back).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    IpAddress, IpProtocol, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, UdpPacket, UdpRepr,
};

use super::*;

const SRC4: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 2);
const DST4: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
const SRC6: Ipv6Addr = Ipv6Addr::new(0xfd01, 0, 0, 0, 0, 0, 0, 2);
const DST6: Ipv6Addr = Ipv6Addr::new(0xfd02, 0, 0, 0, 0, 0, 0, 2);
/// The identification the original packets carry.
const IDENT: u16 = 0x1234;
const UDP_HEADER: usize = 8;
/// IPv4 options: Router Alert (copied into every fragment), Record Route (first
/// fragment only), end of options.
const ROUTER_ALERT: [u8; 4] = [0x94, 4, 0, 0];
const OPTIONS: [u8; 12] = [0x94, 4, 0, 0, 0x07, 7, 4, 0, 0, 0, 0, 0];

// ---------------------------------------------------------------------------
// Building packets
// ---------------------------------------------------------------------------

/// `len` bytes that differ from their neighbours (a misplaced piece shows).
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// A UDP datagram from port 5000 to 6000 carrying `payload`, checksummed for `src` → `dst`.
fn udp(src: IpAddress, dst: IpAddress, payload: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0; UDP_HEADER + payload.len()];
    UdpRepr { src_port: 5000, dst_port: 6000 }.emit(
        &mut UdpPacket::new_unchecked(&mut bytes[..]),
        &src,
        &dst,
        payload.len(),
        |out| out.copy_from_slice(payload),
        &ChecksumCapabilities::default(),
    );
    bytes
}

/// An IPv4 packet SRC4 → DST4 carrying `payload`, with identification `ident` and
/// flags/offset word `word`, header checksum filled.
fn ipv4(protocol: IpProtocol, payload: &[u8], ident: u16, word: u16) -> Vec<u8> {
    let repr = Ipv4Repr {
        src_addr: SRC4,
        dst_addr: DST4,
        next_header: protocol,
        payload_len: payload.len(),
        hop_limit: 64,
    };
    let mut bytes = vec![0; IPV4_HEADER + payload.len()];
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut bytes[..]), &ChecksumCapabilities::default());
    bytes[IPV4_HEADER..].copy_from_slice(payload);
    bytes[6..8].copy_from_slice(&word.to_be_bytes());
    let mut ip = Ipv4Packet::new_unchecked(&mut bytes[..]);
    ip.set_ident(ident);
    ip.fill_checksum();
    bytes
}

/// An IPv4 UDP packet of `total` bytes in all (ident [`IDENT`]), with "don't fragment" if `df`.
fn udp4(total: usize, df: bool) -> Vec<u8> {
    let data = pattern(total - IPV4_HEADER - UDP_HEADER);
    let datagram = udp(IpAddress::Ipv4(SRC4), IpAddress::Ipv4(DST4), &data);
    ipv4(IpProtocol::Udp, &datagram, IDENT, if df { IPV4_DF } else { 0 })
}

/// IPv4 packet `packet` with `options` (a multiple of 4 bytes) added to its header.
fn with_ipv4_options(packet: &[u8], options: &[u8]) -> Vec<u8> {
    let mut bytes = [&packet[..IPV4_HEADER], options, &packet[IPV4_HEADER..]].concat();
    let mut ip = Ipv4Packet::new_unchecked(&mut bytes[..]);
    ip.set_header_len((IPV4_HEADER + options.len()) as u8);
    ip.set_total_len((packet.len() + options.len()) as u16);
    ip.fill_checksum();
    bytes
}

/// `packet` with its "don't fragment" bit cleared and its checksum redone.
fn without_df(packet: &[u8]) -> Vec<u8> {
    let mut bytes = packet.to_vec();
    let mut ip = Ipv4Packet::new_unchecked(&mut bytes[..]);
    ip.set_dont_frag(false);
    ip.fill_checksum();
    bytes
}

/// An IPv6 packet SRC6 → DST6 whose payload, `payload`, starts with a `next_header`.
fn ipv6(next_header: IpProtocol, payload: &[u8]) -> Vec<u8> {
    let repr = Ipv6Repr {
        src_addr: SRC6,
        dst_addr: DST6,
        next_header,
        payload_len: payload.len(),
        hop_limit: 64,
    };
    let mut bytes = vec![0; IPV6_HEADER + payload.len()];
    repr.emit(&mut Ipv6Packet::new_unchecked(&mut bytes[..]));
    bytes[IPV6_HEADER..].copy_from_slice(payload);
    bytes
}

/// An IPv6 UDP packet of `total` bytes in all.
fn udp6(total: usize) -> Vec<u8> {
    let data = pattern(total - IPV6_HEADER - UDP_HEADER);
    ipv6(IpProtocol::Udp, &udp(IpAddress::Ipv6(SRC6), IpAddress::Ipv6(DST6), &data))
}

/// An IPv4 fragment of a UDP datagram: `data` at byte `offset`, ident `ident`.
fn ipv4_fragment(ident: u32, offset: usize, more: bool, data: &[u8]) -> Vec<u8> {
    let word = (offset / 8) as u16 | if more { IPV4_MF } else { 0 };
    ipv4(IpProtocol::Udp, data, ident as u16, word)
}

/// An IPv6 fragment (fragment header, then UDP): `data` at byte `offset`, ident `ident`.
fn ipv6_fragment(ident: u32, offset: usize, more: bool, data: &[u8]) -> Vec<u8> {
    let word = offset as u16 | u16::from(more);
    let header = [[17, 0], word.to_be_bytes()].concat();
    ipv6(IpProtocol::Ipv6Frag, &[&header[..], &ident.to_be_bytes(), data].concat())
}

/// An IP family, as the reassembly tests see it.
struct Family {
    name: &'static str,
    /// A fragment: (ident, offset, more fragments, data).
    fragment: fn(u32, usize, bool, &[u8]) -> Vec<u8>,
    /// The whole UDP packet that carries `data` (what its fragments become).
    whole: fn(u32, &[u8]) -> Vec<u8>,
}

/// IPv4 and IPv6.
const FAMILIES: [Family; 2] = [
    Family {
        name: "IPv4",
        fragment: ipv4_fragment,
        whole: |ident, data| ipv4(IpProtocol::Udp, data, ident as u16, 0),
    },
    Family { name: "IPv6", fragment: ipv6_fragment, whole: |_, data| ipv6(IpProtocol::Udp, data) },
];

// ---------------------------------------------------------------------------
// Reading fragments
// ---------------------------------------------------------------------------

/// The fragments of `fit`, which must be fragments.
fn fragments(fit: Fit) -> Vec<Vec<u8>> {
    match fit {
        Fit::Fragments(fragments) => fragments,
        other => panic!("expected fragments, got {other:?}"),
    }
}

/// Checks IPv4 `fragments` for a link of `mtu`: each fits, is a well-formed IPv4
/// packet with a valid checksum, identification `ident` and no "don't fragment";
/// their data follow each other from `first_offset`, in multiples of 8 but the
/// last; all but the last have "more fragments", the last has it iff `last_more`.
fn assert_ipv4_fragments(
    fragments: &[Vec<u8>],
    mtu: usize,
    ident: u16,
    first_offset: usize,
    last_more: bool,
) {
    assert!(fragments.len() >= 2, "{} fragment(s)", fragments.len());
    let mut offset = first_offset;
    for (i, fragment) in fragments.iter().enumerate() {
        let last = i + 1 == fragments.len();
        let ip = Ipv4Packet::new_checked(&fragment[..]).expect("a well-formed IPv4 fragment");
        assert!(fragment.len() <= mtu, "fragment {i} is {} bytes, mtu {mtu}", fragment.len());
        assert_eq!(usize::from(ip.total_len()), fragment.len(), "fragment {i}'s total length");
        assert!(ip.verify_checksum(), "fragment {i}'s header checksum");
        assert_eq!(ip.ident(), ident, "fragment {i}'s ident");
        assert!(!ip.dont_frag(), "fragment {i} has DF");
        assert_eq!(usize::from(ip.frag_offset()), offset, "fragment {i}'s offset");
        assert_eq!(ip.more_frags(), !last || last_more, "fragment {i}'s MF");
        assert_eq!((ip.src_addr(), ip.dst_addr(), ip.next_header()), (SRC4, DST4, IpProtocol::Udp));
        if !last {
            assert_eq!(
                ip.payload().len() % 8,
                0,
                "fragment {i} carries {} bytes",
                ip.payload().len()
            );
        }
        offset += ip.payload().len();
    }
}

/// The fragment header of IPv6 fragment `fragment` (no other extension header):
/// next header, offset, more fragments, identification.
fn ipv6_fragment_header(fragment: &[u8]) -> (u8, usize, bool, u32) {
    let header = &fragment[IPV6_HEADER..IPV6_HEADER + FRAGMENT_HEADER];
    let word = u16::from_be_bytes([header[2], header[3]]);
    let ident = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    (header[0], usize::from(word & !7), word & 1 != 0, ident)
}

/// Checks IPv6 `fragments` (of a packet with no extension header, carrying
/// `next_header`) for a link of `mtu`, with identification `ident`.
fn assert_ipv6_fragments(fragments: &[Vec<u8>], mtu: usize, ident: u32, next_header: u8) {
    assert!(fragments.len() >= 2, "{} fragment(s)", fragments.len());
    let mut offset = 0;
    for (i, fragment) in fragments.iter().enumerate() {
        let last = i + 1 == fragments.len();
        let ip = Ipv6Packet::new_checked(&fragment[..]).expect("a well-formed IPv6 fragment");
        assert!(fragment.len() <= mtu, "fragment {i} is {} bytes, mtu {mtu}", fragment.len());
        assert_eq!(
            usize::from(ip.payload_len()),
            fragment.len() - IPV6_HEADER,
            "fragment {i}'s payload length"
        );
        assert_eq!(u8::from(ip.next_header()), IPV6_FRAGMENT, "fragment {i}'s next header");
        assert_eq!((ip.src_addr(), ip.dst_addr()), (SRC6, DST6));
        let data = fragment.len() - IPV6_HEADER - FRAGMENT_HEADER;
        assert_eq!(
            ipv6_fragment_header(fragment),
            (next_header, offset, !last, ident),
            "fragment {i}'s header"
        );
        if !last {
            assert_eq!(data % 8, 0, "fragment {i} carries {data} bytes");
        }
        offset += data;
    }
}

// ---------------------------------------------------------------------------
// Feeding reassembly
// ---------------------------------------------------------------------------

/// A xorshift64 generator: reproducible noise without a dependency.
struct XorShift(u64);

impl XorShift {
    /// The next number.
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// `len` random bytes.
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

/// `items` in a random order drawn from `seed`.
fn shuffled<T>(mut items: Vec<T>, seed: u64) -> Vec<T> {
    let mut rng = XorShift(seed);
    for i in (1..items.len()).rev() {
        items.swap(i, rng.below(i + 1));
    }
    items
}

/// `fragments` in order, reversed, and shuffled three ways.
fn orders(fragments: &[Vec<u8>]) -> Vec<Vec<Vec<u8>>> {
    let mut orders = vec![fragments.to_vec(), fragments.iter().rev().cloned().collect()];
    orders.extend((1..=3).map(|seed| shuffled(fragments.to_vec(), seed * 0x9e37_79b9)));
    orders
}

/// Feeds `packets` to `reassembly` at `now`; the datagrams that came back.
fn feed(
    reassembly: &mut Reassembly,
    packets: impl IntoIterator<Item = Vec<u8>>,
    now: Instant,
) -> Vec<Vec<u8>> {
    packets.into_iter().filter_map(|packet| reassembly.take(packet, now)).collect()
}

/// Checks that `reassembly` holds nothing.
fn assert_empty(reassembly: &Reassembly) {
    assert!(reassembly.partial.is_empty(), "{} datagram(s) left", reassembly.partial.len());
    assert_eq!(reassembly.bytes, 0);
}

/// Checks that `reassembly`'s byte count is its datagrams' and within the bound.
fn assert_accounted(reassembly: &Reassembly) {
    let sum: usize = reassembly.partial.values().map(|partial| partial.bytes).sum();
    assert_eq!(reassembly.bytes, sum);
    assert!(reassembly.bytes <= REASSEMBLY_BYTES, "{} bytes held", reassembly.bytes);
}

// ---------------------------------------------------------------------------
// fit
// ---------------------------------------------------------------------------

#[test]
fn a_packet_within_the_mtu_comes_back_whole() {
    for packet in [udp4(1500, true), udp4(1500, false), udp6(1500)] {
        for sender in [Sender::Origin, Sender::Router] {
            assert_eq!(fit(packet.clone(), 1500, sender, 7), Fit::Whole(packet.clone()));
            assert_eq!(fit(packet.clone(), 9000, sender, 7), Fit::Whole(packet.clone()));
        }
    }
}

#[test]
fn a_udp_datagram_of_4000_bytes_leaves_in_three_fragments_and_comes_back_whole() {
    let packet = udp4(4000, true);
    let fragments = fragments(fit(packet.clone(), 1500, Sender::Origin, u32::from(IDENT)));
    assert_eq!(fragments.iter().map(Vec::len).collect::<Vec<_>>(), [1500, 1500, 1040]);
    let mut reassembly = Reassembly::default();
    assert_eq!(feed(&mut reassembly, fragments, Instant::now()), [without_df(&packet)]);
    assert_empty(&reassembly);
}

#[test]
fn ipv4_fragments_from_the_origin_fit_the_mtu_in_blocks_of_8_with_the_given_ident_and_no_df() {
    for df in [false, true] {
        for mtu in [68, 576, 1001, 1280, 1500] {
            let fragments = fragments(fit(udp4(5000, df), mtu, Sender::Origin, 0xbeef));
            assert_ipv4_fragments(&fragments, mtu, 0xbeef, 0, false);
        }
    }
}

#[test]
fn ipv4_from_the_origin_gets_the_low_16_bits_of_the_ident() {
    let fragments = fragments(fit(udp4(3000, false), 1500, Sender::Origin, 0xabcd_5678));
    assert_ipv4_fragments(&fragments, 1500, 0x5678, 0, false);
}

#[test]
fn ipv4_with_dont_fragment_from_a_router_is_too_big_and_given_back() {
    for (packet, mtu) in [(udp4(1501, true), 1500), (udp4(9000, true), 1280)] {
        assert_eq!(fit(packet.clone(), mtu, Sender::Router, 7), Fit::TooBig(packet));
    }
}

#[test]
fn ipv4_without_dont_fragment_from_a_router_keeps_its_own_ident() {
    let packet = udp4(4000, false);
    let fragments = fragments(fit(packet.clone(), 1500, Sender::Router, 0x9999));
    assert_ipv4_fragments(&fragments, 1500, IDENT, 0, false);
    let mut reassembly = Reassembly::default();
    assert_eq!(feed(&mut reassembly, fragments, Instant::now()), [packet]);
}

#[test]
fn a_fragment_cut_again_keeps_its_offset_and_more_fragments_bit() {
    let packet = udp4(4000, false);
    let first_cut = fragments(fit(packet.clone(), 1500, Sender::Origin, u32::from(IDENT)));
    let (middle, last) = (first_cut[1].clone(), first_cut[2].clone());
    let middle_cut = fragments(fit(middle, 576, Sender::Router, 0x9999));
    assert_ipv4_fragments(&middle_cut, 576, IDENT, 1480, true);
    let last_cut = fragments(fit(last, 576, Sender::Router, 0x9999));
    assert_ipv4_fragments(&last_cut, 576, IDENT, 2960, false);

    let all = [vec![first_cut[0].clone()], middle_cut, last_cut].concat();
    for (i, order) in orders(&all).into_iter().enumerate() {
        let mut reassembly = Reassembly::default();
        assert_eq!(
            feed(&mut reassembly, order, Instant::now()),
            std::slice::from_ref(&packet),
            "order {i}"
        );
    }
}

#[test]
fn only_copied_ipv4_options_follow_into_the_later_fragments() {
    let packet = with_ipv4_options(&udp4(3000, false), &OPTIONS);
    let fragments = fragments(fit(packet.clone(), 1000, Sender::Origin, u32::from(IDENT)));
    let headers: Vec<&[u8]> = fragments
        .iter()
        .map(|fragment| &fragment[..usize::from(Ipv4Packet::new_unchecked(fragment).header_len())])
        .collect();
    assert_eq!(&headers[0][IPV4_HEADER..], OPTIONS);
    for header in &headers[1..] {
        assert_eq!(&header[IPV4_HEADER..], ROUTER_ALERT);
    }
    for fragment in &fragments {
        assert!(fragment.len() <= 1000);
        assert!(Ipv4Packet::new_unchecked(fragment).verify_checksum());
    }
    let mut reassembly = Reassembly::default();
    assert_eq!(feed(&mut reassembly, fragments, Instant::now()), [packet]);
}

#[test]
fn ipv6_from_the_origin_leaves_in_fragments_behind_a_fragment_header() {
    for mtu in [1280, 1281, 1500] {
        let fragments = fragments(fit(udp6(4000), mtu, Sender::Origin, 0xdead_beef));
        assert_ipv6_fragments(&fragments, mtu, 0xdead_beef, 17);
    }
}

#[test]
fn ipv6_from_a_router_is_too_big_and_given_back() {
    for (packet, mtu) in [(udp6(1501), 1500), (udp6(9000), 1280)] {
        assert_eq!(fit(packet.clone(), mtu, Sender::Router, 7), Fit::TooBig(packet));
    }
}

#[test]
fn an_ipv6_hop_by_hop_header_stays_in_front_of_the_fragment_header() {
    let datagram = udp(IpAddress::Ipv6(SRC6), IpAddress::Ipv6(DST6), &pattern(3000));
    // Hop-by-hop: next header UDP, length 0 (8 bytes), a PadN option of 4 bytes.
    let hop_by_hop = [17, 0, 1, 4, 0, 0, 0, 0];
    let packet = ipv6(IpProtocol::HopByHop, &[&hop_by_hop[..], &datagram].concat());
    let fragments = fragments(fit(packet.clone(), 1280, Sender::Origin, 42));
    for fragment in &fragments {
        assert!(fragment.len() <= 1280);
        assert_eq!(
            usize::from(u16::from_be_bytes([fragment[4], fragment[5]])),
            fragment.len() - IPV6_HEADER
        );
        assert_eq!(fragment[6], IPV6_HOP_BY_HOP);
        assert_eq!(
            fragment[IPV6_HEADER], IPV6_FRAGMENT,
            "the hop-by-hop header names the fragment header"
        );
        assert_eq!(fragment[IPV6_HEADER + 1..IPV6_HEADER + 8], hop_by_hop[1..]);
        assert_eq!(fragment[IPV6_HEADER + 8], 17, "the fragment header names UDP");
    }
    let mut reassembly = Reassembly::default();
    assert_eq!(feed(&mut reassembly, fragments, Instant::now()), [packet]);
}

#[test]
fn non_ip_truncated_or_malformed_packets_come_back_whole() {
    let mut bad_ihl = udp4(2000, false);
    bad_ihl[0] = 0x44; // a header of 16 bytes
    let mut ihl_past_total = udp4(2000, false);
    ihl_past_total[2..4].copy_from_slice(&16u16.to_be_bytes());
    let runaway_hop_by_hop =
        ipv6(IpProtocol::HopByHop, &[[17, 255].as_slice(), &pattern(2000)].concat());
    let cases = [
        ("empty", vec![], 0),
        ("one byte", vec![0x45], 0),
        ("zeros", vec![0; 2000], 1500),
        ("version 5", [vec![0x55], pattern(1999)].concat(), 1500),
        ("IPv4 cut short", udp4(3000, false)[..2000].to_vec(), 1500),
        ("IPv4 of 19 bytes", udp4(100, false)[..19].to_vec(), 10),
        ("IPv4 header under 20 bytes", bad_ihl, 1500),
        ("IPv4 header past the total length", ihl_past_total, 1500),
        ("IPv4 on a link too small for 8 bytes of data", udp4(100, false), 27),
        ("IPv6 cut short", udp6(3000)[..2000].to_vec(), 1500),
        ("IPv6 of 39 bytes", udp6(100)[..39].to_vec(), 10),
        ("IPv6 hop-by-hop header past the end", runaway_hop_by_hop, 1280),
        ("IPv6 on a link too small for 8 bytes of data", udp6(100), 55),
    ];
    for (name, packet, mtu) in cases {
        assert_eq!(fit(packet.clone(), mtu, Sender::Origin, 7), Fit::Whole(packet), "{name}");
    }
}

#[test]
fn random_bytes_never_make_fit_panic_and_fragments_always_fit() {
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let valid = [
        udp4(3000, false),
        udp4(3000, true),
        udp6(3000),
        with_ipv4_options(&udp4(3000, false), &OPTIONS),
    ];
    for i in 0..5000 {
        let mut packet = if i % 2 == 0 {
            let len = rng.below(3000);
            rng.bytes(len)
        } else {
            valid[rng.below(valid.len())].clone()
        };
        // A few bytes changed, mostly in the headers, and sometimes a version forced.
        for _ in 0..rng.below(4) {
            if !packet.is_empty() {
                let at = rng.below(packet.len().min(64));
                packet[at] = rng.next_u64() as u8;
            }
        }
        if let Some(first) = packet.first_mut().filter(|_| rng.below(2) == 0) {
            *first = [0x45, 0x46, 0x4f, 0x60][rng.below(4)];
        }
        if rng.below(4) == 0 {
            let len = rng.below(packet.len() + 1);
            packet.truncate(len);
        }
        let mtu = rng.below(3100);
        let sender = [Sender::Origin, Sender::Router][rng.below(2)];
        if let Fit::Fragments(fragments) = fit(packet, mtu, sender, rng.next_u64() as u32) {
            for fragment in fragments {
                assert!(
                    fragment.len() <= mtu,
                    "iteration {i}: {} bytes for mtu {mtu}",
                    fragment.len()
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Reassembly
// ---------------------------------------------------------------------------

#[test]
fn ipv4_fragments_in_any_order_come_back_as_the_original_without_df() {
    let packet = udp4(6000, true);
    let fragments = fragments(fit(packet.clone(), 1280, Sender::Origin, u32::from(IDENT)));
    for (i, order) in orders(&fragments).into_iter().enumerate() {
        let mut reassembly = Reassembly::default();
        let whole = feed(&mut reassembly, order, Instant::now());
        assert_eq!(whole, [without_df(&packet)], "order {i}");
        let ip = Ipv4Packet::new_checked(&whole[0][..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!((ip.frag_offset(), ip.more_frags(), ip.dont_frag()), (0, false, false));
        assert_eq!(usize::from(ip.total_len()), packet.len());
        assert_empty(&reassembly);
    }
}

#[test]
fn ipv6_fragments_in_any_order_come_back_as_the_original_bytes() {
    let packet = udp6(6000);
    let fragments = fragments(fit(packet.clone(), 1280, Sender::Origin, 99));
    for (i, order) in orders(&fragments).into_iter().enumerate() {
        let mut reassembly = Reassembly::default();
        assert_eq!(
            feed(&mut reassembly, order, Instant::now()),
            std::slice::from_ref(&packet),
            "order {i}"
        );
        assert_empty(&reassembly);
    }
}

#[test]
fn whole_malformed_or_foreign_packets_pass_straight_through() {
    let packets = [
        udp4(1500, true),
        udp6(1500),
        vec![],
        vec![0x55; 100],
        ipv4_fragment(1, 8, true, &pattern(16))[..30].to_vec(),
        ipv6_fragment(1, 8, true, &pattern(16))[..44].to_vec(),
    ];
    let mut reassembly = Reassembly::default();
    for packet in packets {
        assert_eq!(reassembly.take(packet.clone(), Instant::now()), Some(packet));
    }
    assert_empty(&reassembly);
}

#[test]
fn an_ipv6_atomic_fragment_comes_back_at_once_without_its_fragment_header() {
    let datagram = udp(IpAddress::Ipv6(SRC6), IpAddress::Ipv6(DST6), &pattern(100));
    let mut reassembly = Reassembly::default();
    let whole = reassembly.take(ipv6_fragment(5, 0, false, &datagram), Instant::now());
    assert_eq!(whole, Some(ipv6(IpProtocol::Udp, &datagram)));
    assert_empty(&reassembly);
}

#[test]
fn overlapping_fragments_drop_their_datagram() {
    let data = pattern(48);
    for family in &FAMILIES {
        let piece =
            |offset: usize, end: usize| (family.fragment)(3, offset, end < 48, &data[offset..end]);
        let mut reassembly = Reassembly::default();
        let now = Instant::now();
        assert_eq!(feed(&mut reassembly, [piece(0, 16), piece(8, 24)], now), Vec::<Vec<u8>>::new());
        assert!(reassembly.partial.is_empty(), "{}: the overlap dropped the datagram", family.name);
        // The rest of the datagram comes, but its beginning is gone.
        assert!(
            feed(&mut reassembly, [piece(16, 32), piece(32, 48)], now).is_empty(),
            "{}",
            family.name
        );
        // Sent again in full, it comes back (a new datagram).
        assert_eq!(
            feed(&mut reassembly, [piece(0, 16)], now),
            [(family.whole)(3, &data)],
            "{}",
            family.name
        );
        assert_empty(&reassembly);
    }
}

#[test]
fn contradicting_fragments_drop_their_datagram() {
    let data = pattern(64);
    for family in &FAMILIES {
        let fragment = |offset: usize, more: bool, len: usize| {
            (family.fragment)(3, offset, more, &data[offset..offset + len])
        };
        let contradictions = [
            ("data past the end", vec![fragment(32, false, 16), fragment(48, true, 8)]),
            ("a second, different end", vec![fragment(32, false, 16), fragment(24, false, 8)]),
            ("an end before received data", vec![fragment(32, true, 16), fragment(16, false, 8)]),
            (
                "a middle fragment not in blocks of 8",
                vec![fragment(0, true, 16), fragment(16, true, 12)],
            ),
        ];
        for (name, fragments) in contradictions {
            let mut reassembly = Reassembly::default();
            assert!(
                feed(&mut reassembly, fragments, Instant::now()).is_empty(),
                "{}: {name}",
                family.name
            );
            assert_empty(&reassembly);
        }
    }
}

#[test]
fn a_missing_fragment_never_completes_and_the_rest_is_dropped_after_the_timeout() {
    let packet = udp4(4000, false);
    let fragments = fragments(fit(packet, 1500, Sender::Origin, u32::from(IDENT)));
    let t0 = Instant::now();
    let mut reassembly = Reassembly::default();
    assert!(feed(&mut reassembly, fragments[..2].to_vec(), t0).is_empty());
    assert_eq!(reassembly.partial.len(), 1);
    // The last one comes too late: the first two are gone, it waits alone.
    let late = t0 + REASSEMBLY_TIMEOUT + Duration::from_secs(1);
    assert_eq!(reassembly.take(fragments[2].clone(), late), None);
    let [partial] = reassembly.partial.values().collect::<Vec<_>>()[..] else {
        panic!("one datagram")
    };
    assert_eq!(partial.pieces.len(), 1);
    assert_eq!(partial.started, late);
    assert_accounted(&reassembly);
    // And it is dropped in turn.
    let later = late + REASSEMBLY_TIMEOUT + Duration::from_secs(1);
    assert_eq!(reassembly.take(ipv4_fragment(77, 0, true, &pattern(8)), later), None);
    assert_eq!(reassembly.partial.len(), 1, "only the newest datagram is left");
    assert_accounted(&reassembly);
}

#[test]
fn fragments_that_come_just_within_the_timeout_complete() {
    let packet = udp6(4000);
    let fragments = fragments(fit(packet.clone(), 1280, Sender::Origin, 8));
    let t0 = Instant::now();
    let (last, first) = fragments.split_last().unwrap();
    let mut reassembly = Reassembly::default();
    assert!(feed(&mut reassembly, first.to_vec(), t0).is_empty());
    let just_in_time = t0 + REASSEMBLY_TIMEOUT - Duration::from_millis(1);
    assert_eq!(reassembly.take(last.clone(), just_in_time), Some(packet));
}

#[test]
fn interleaved_fragments_of_two_datagrams_both_complete() {
    let (a, b) = (udp4(5000, false), udp4(4000, false));
    let a_fragments = fragments(fit(a.clone(), 1000, Sender::Origin, 1));
    let b_fragments = fragments(fit(b.clone(), 1000, Sender::Origin, 2));
    let mut interleaved = Vec::new();
    for i in 0..a_fragments.len().max(b_fragments.len()) {
        interleaved.extend(a_fragments.get(i).cloned());
        interleaved.extend(b_fragments.get(i).cloned());
    }
    let ident = |packet: &[u8], ident: u16| {
        let mut packet = packet.to_vec();
        let mut ip = Ipv4Packet::new_unchecked(&mut packet[..]);
        ip.set_ident(ident);
        ip.fill_checksum();
        packet
    };
    let mut reassembly = Reassembly::default();
    assert_eq!(feed(&mut reassembly, interleaved, Instant::now()), [ident(&b, 2), ident(&a, 1)]);
    assert_empty(&reassembly);
}

#[test]
fn a_datagram_whose_fragments_pass_65535_bytes_never_completes() {
    let data = pattern(65544);
    let now = Instant::now();
    // IPv4: 20 header bytes + 65528 data bytes is 13 bytes too many.
    let mut reassembly = Reassembly::default();
    let too_long = [
        ipv4_fragment(1, 0, true, &data[..65512]),
        ipv4_fragment(1, 65512, false, &data[65512..65528]),
    ];
    assert!(feed(&mut reassembly, too_long, now).is_empty());
    // IPv4: an offset of 65528 and 16 bytes end past 65535.
    let past_the_end = [
        ipv4_fragment(2, 0, true, &data[..65504]),
        ipv4_fragment(2, 65528, false, &data[65528..65544]),
    ];
    assert!(feed(&mut reassembly, past_the_end, now).is_empty());
    // IPv6: 65520 bytes and 16 more make a payload of 65536.
    let too_long = [
        ipv6_fragment(3, 0, true, &data[..65520]),
        ipv6_fragment(3, 65520, false, &data[65520..65536]),
    ];
    assert!(feed(&mut reassembly, too_long, now).is_empty());
    assert_accounted(&reassembly);
}

#[test]
fn a_datagram_of_exactly_65535_bytes_completes() {
    let mut reassembly = Reassembly::default();
    for packet in [udp4(65535, false), udp6(65535 + IPV6_HEADER)] {
        let pieces = fragments(fit(packet.clone(), 9000, Sender::Origin, u32::from(IDENT)));
        assert_eq!(feed(&mut reassembly, shuffled(pieces, 7), Instant::now()), [packet]);
    }
    assert_empty(&reassembly);
}

#[test]
fn many_incomplete_datagrams_stay_within_the_byte_bound_and_later_ones_still_complete() {
    let data = pattern(65000);
    let now = Instant::now();
    let mut reassembly = Reassembly::default();
    for ident in 0..200 {
        let fragment = if ident % 2 == 0 {
            ipv4_fragment(ident, 0, true, &data[..64_000])
        } else {
            ipv6_fragment(ident, 0, true, &data[..64_000])
        };
        assert_eq!(reassembly.take(fragment, now), None);
        assert_accounted(&reassembly);
        assert!(reassembly.arrivals.len() <= 2 * reassembly.partial.len() + 65);
    }
    assert!(reassembly.partial.len() < 200 && reassembly.bytes > REASSEMBLY_BYTES / 2);
    // The oldest went first: the newest are left.
    let mut left: Vec<u32> = reassembly.partial.keys().map(|key| key.ident).collect();
    left.sort_unstable();
    assert_eq!(left, (200 - left.len() as u32..200).collect::<Vec<_>>());

    let packet = udp4(4000, false);
    let fragments = fragments(fit(packet.clone(), 1500, Sender::Origin, u32::from(IDENT)));
    assert_eq!(feed(&mut reassembly, fragments, now), [packet]);
    assert_accounted(&reassembly);
}

#[test]
fn an_exact_duplicate_fragment_is_ignored_and_the_datagram_still_completes() {
    for family in &FAMILIES {
        let data = pattern(48);
        let piece =
            |offset: usize, end: usize| (family.fragment)(4, offset, end < 48, &data[offset..end]);
        let mut reassembly = Reassembly::default();
        let sent = [piece(0, 16), piece(16, 32), piece(16, 32), piece(32, 48)];
        assert_eq!(
            feed(&mut reassembly, sent, Instant::now()),
            [(family.whole)(4, &data)],
            "{}",
            family.name
        );
    }
}

#[test]
fn an_empty_fragment_cannot_swap_in_other_data() {
    for family in &FAMILIES {
        let (good, evil) = (pattern(48), vec![0xee; 48]);
        let piece = |data: &[u8], offset: usize, end: usize| {
            (family.fragment)(5, offset, end < 48, &data[offset..end])
        };
        let mut reassembly = Reassembly::default();
        let sent = [
            piece(&good, 0, 16),
            piece(&good, 16, 32),
            piece(&good, 16, 16), // empty, "more fragments", where [16, 32) is
            piece(&evil, 16, 32),
            piece(&good, 32, 48),
        ];
        let whole = feed(&mut reassembly, sent, Instant::now());
        assert!(
            whole.is_empty(),
            "{}: came back with bytes 16..32 swapped: {whole:?}",
            family.name
        );
    }
}

#[test]
fn an_empty_fragment_cannot_make_a_datagram_complete_with_a_hole() {
    for family in &FAMILIES {
        let data = pattern(48);
        let piece =
            |offset: usize, end: usize| (family.fragment)(6, offset, end < 48, &data[offset..end]);
        let mut reassembly = Reassembly::default();
        let sent = [piece(0, 16), piece(16, 32), piece(16, 16), piece(32, 48)];
        for whole in feed(&mut reassembly, sent, Instant::now()) {
            assert_eq!(
                whole,
                (family.whole)(6, &data),
                "{}: a datagram with bytes 16..32 missing",
                family.name
            );
        }
    }
}

#[test]
fn fragments_dropped_at_once_do_not_pile_up_in_the_arrivals() {
    let now = Instant::now();
    let mut reassembly = Reassembly::default();
    // One datagram waits, at the head of the arrivals...
    assert_eq!(reassembly.take(ipv4_fragment(0, 0, true, &pattern(8)), now), None);
    // ...while fragments that are dropped as they come (7 bytes with "more") flood in.
    for ident in 1..=60_000 {
        assert_eq!(reassembly.take(ipv4_fragment(ident, 0, true, &pattern(7)), now), None);
    }
    assert_eq!(reassembly.partial.len(), 1);
    assert!(
        reassembly.arrivals.len() <= 2 * reassembly.partial.len() + 65,
        "{} arrivals",
        reassembly.arrivals.len()
    );
}

#[test]
fn bytes_past_the_ipv6_payload_length_are_not_sent() {
    let packet = udp6(3000);
    let padded = [packet.clone(), vec![0xee; 100]].concat();
    let fragments = fragments(fit(padded, 1280, Sender::Origin, 1));
    let mut reassembly = Reassembly::default();
    assert_eq!(feed(&mut reassembly, fragments, Instant::now()), [packet]);
}

/// `packet` in an Ethernet frame of type `ethertype` from MAC 02:00:00:00:00:`source`.
fn frame(ethertype: u16, source: u8, packet: &[u8]) -> Vec<u8> {
    let header = [[0x02, 0, 0, 0, 0, 0xff], [0x02, 0, 0, 0, 0, source]].concat();
    [&header[..], &ethertype.to_be_bytes(), packet].concat()
}

#[test]
fn fragments_in_ethernet_frames_come_back_whole_behind_the_last_frames_header() {
    for (ethertype, packet) in [(0x0800, udp4(4000, false)), (0x86dd, udp6(4000))] {
        let pieces = fragments(fit(packet.clone(), 1280, Sender::Origin, u32::from(IDENT)));
        let frames: Vec<Vec<u8>> =
            pieces.iter().enumerate().map(|(i, piece)| frame(ethertype, i as u8, piece)).collect();
        let last = (frames.len() - 1) as u8;
        let mut reassembly = Reassembly::default();
        let now = Instant::now();
        let whole: Vec<Vec<u8>> =
            frames.into_iter().filter_map(|frame| reassembly.take_frame(frame, now)).collect();
        assert_eq!(whole, [frame(ethertype, last, &packet)]);
        assert_empty(&reassembly);
    }
}

#[test]
fn frames_of_other_protocols_short_frames_and_whole_packets_pass_take_frame() {
    let frames = [
        vec![],
        vec![0x02; 13],
        frame(0x0806, 1, &pattern(28)),
        frame(0x0800, 1, &udp4(1500, true)),
        frame(0x86dd, 1, &udp6(1500)),
        frame(0x0800, 1, &[]),
        // An IPv4 fragment behind another protocol's type is not reassembled.
        frame(0x88b5, 1, &ipv4_fragment(1, 0, true, &pattern(16))),
    ];
    let mut reassembly = Reassembly::default();
    for frame in frames {
        assert_eq!(reassembly.take_frame(frame.clone(), Instant::now()), Some(frame));
    }
    assert_empty(&reassembly);
}

#[test]
fn random_bytes_and_mangled_fragments_never_make_reassembly_panic() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let valid: Vec<Vec<u8>> = [
        fragments(fit(udp4(3000, false), 576, Sender::Origin, 1)),
        fragments(fit(udp6(3000), 1280, Sender::Origin, 2)),
        fragments(fit(with_ipv4_options(&udp4(2000, false), &OPTIONS), 576, Sender::Origin, 3)),
    ]
    .concat();
    let mut reassembly = Reassembly::default();
    let mut now = Instant::now();
    for i in 0..5000 {
        let mut packet = if i % 3 == 0 {
            let len = rng.below(1500);
            rng.bytes(len)
        } else {
            valid[rng.below(valid.len())].clone()
        };
        // Mostly header bytes changed: offsets, flags, lengths, idents.
        for _ in 0..rng.below(3) {
            if !packet.is_empty() {
                let at = rng.below(packet.len().min(56));
                packet[at] = rng.next_u64() as u8;
            }
        }
        if let Some(first) = packet.first_mut().filter(|_| i % 3 == 0 && rng.below(2) == 0) {
            *first = [0x45, 0x60][rng.below(2)];
        }
        if rng.below(8) == 0 {
            let len = rng.below(packet.len() + 1);
            packet.truncate(len);
        }
        now += Duration::from_millis(rng.below(100) as u64);
        if i % 2 == 0 {
            let _ = reassembly.take(packet, now);
        } else {
            let _ = reassembly.take_frame(frame([0x0800, 0x86dd][rng.below(2)], 1, &packet), now);
        }
        assert_accounted(&reassembly);
    }
}
