//! IP packets larger than a link: fragmentation and reassembly, as Linux does them.
//!
//! A host sends a datagram larger than its path's MTU in fragments (IPv4 and
//! IPv6 alike), and puts fragments back together before any socket sees them. A
//! router fragments an IPv4 packet it forwards only when the sender allowed it
//! (no "don't fragment" bit); otherwise, and always for IPv6, it sends the sender
//! an ICMP error naming the MTU, and the sender learns the path's MTU from it
//! (`path_mtu.rs`).
//!
//! Everything here works on bare IP packets (no Ethernet header) and takes them
//! as untrusted: a malformed packet is passed on untouched or dropped, never a
//! panic. Reassembly is bounded as Linux bounds it: a datagram whose fragments do
//! not all come within [`REASSEMBLY_TIMEOUT`] is dropped, fragments that overlap
//! drop their datagram (RFC 5722), and at most [`REASSEMBLY_BYTES`] wait at once.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use smoltcp::wire::{Ipv4Packet, Ipv6Packet};

/// How long the fragments of one datagram wait for the rest (Linux's `ipfrag_time`).
pub const REASSEMBLY_TIMEOUT: Duration = Duration::from_secs(30);
/// How many bytes of fragments wait at most (Linux's `ipfrag_high_thresh`),
/// each fragment and each datagram charged for what holding it costs too, as
/// Linux charges a buffer's true size: tiny fragments cannot make the limit
/// hold many times its worth.
pub const REASSEMBLY_BYTES: usize = 4 * 1024 * 1024;
/// What holding one fragment, and one datagram's fragments, cost beyond their
/// bytes (the map entries and allocations; Linux charges about a kilobyte).
const PIECE_COST: usize = 256;
const DATAGRAM_COST: usize = 512;
/// The largest IP datagram (the IPv4 total length, the IPv6 payload length).
const MAX_DATAGRAM: usize = 65535;
const ETHERNET_HEADER: usize = 14;
const IPV4_HEADER: usize = 20;
const IPV6_HEADER: usize = 40;
/// The IPv6 fragment header's length and next-header number.
const FRAGMENT_HEADER: usize = 8;
const IPV6_FRAGMENT: u8 = 44;
/// IPv6 extension headers that come before a fragment header (RFC 8200 §4.5).
const IPV6_HOP_BY_HOP: u8 = 0;
const IPV6_ROUTING: u8 = 43;
/// The IPv4 flags' "don't fragment" and "more fragments" bits, in the word
/// they share with the fragment offset.
const IPV4_DF: u16 = 0x4000;
const IPV4_MF: u16 = 0x2000;

/// Who is sending a packet too large for its link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sender {
    /// The host that made it: it fragments whatever the packet says (its socket
    /// layer already refused what `IP_PMTUDISC_DO` forbids).
    Origin,
    /// A router forwarding it: only IPv4 without "don't fragment".
    Router,
}

/// What becomes of a packet on a link of some MTU.
#[derive(Debug, PartialEq, Eq)]
pub enum Fit {
    /// It fits, or is not an IP packet this module understands: sent as it is.
    Whole(Vec<u8>),
    /// Sent as these fragments, in order.
    Fragments(Vec<Vec<u8>>),
    /// It may not be fragmented here (given back): the sender is to be told
    /// the MTU.
    TooBig(Vec<u8>),
}

/// `packet` made to fit a link of `mtu` bytes, sent by `sender`; `ident` is the
/// identification its fragments get, if it needs one.
pub fn fit(packet: Vec<u8>, mtu: usize, sender: Sender, ident: u32) -> Fit {
    if packet.len() <= mtu {
        return Fit::Whole(packet);
    }
    match packet.first().map(|b| b >> 4) {
        Some(4) => fit_ipv4(packet, mtu, sender, ident as u16),
        Some(6) if sender == Sender::Router => Fit::TooBig(packet),
        Some(6) => match fragment_ipv6(&packet, mtu, ident) {
            Some(fragments) => Fit::Fragments(fragments),
            None => Fit::Whole(packet),
        },
        _ => Fit::Whole(packet),
    }
}

/// The IPv4 case of [`fit`]. A packet that is itself a fragment (forwarded)
/// keeps its offset and "more fragments" bit in the pieces it is cut into.
fn fit_ipv4(packet: Vec<u8>, mtu: usize, sender: Sender, ident: u16) -> Fit {
    let Ok(ip) = Ipv4Packet::new_checked(&packet[..]) else { return Fit::Whole(packet) };
    let header_len = usize::from(ip.header_len());
    let total = usize::from(ip.total_len()).min(packet.len());
    let flags = u16::from_be_bytes([packet[6], packet[7]]);
    if sender == Sender::Router && flags & IPV4_DF != 0 {
        return Fit::TooBig(packet);
    }
    // Each fragment but the last carries a multiple of 8 bytes.
    let first_room = mtu.saturating_sub(header_len) & !7;
    let later_header = later_ipv4_header(&packet[..header_len]);
    let later_room = mtu.saturating_sub(later_header.len()) & !7;
    if first_room == 0 || later_room == 0 {
        return Fit::Whole(packet);
    }
    let base_offset = usize::from(flags & 0x1fff) * 8;
    if base_offset + total.saturating_sub(header_len) > MAX_DATAGRAM {
        return Fit::Whole(packet);
    }
    let ident = if sender == Sender::Router { ip.ident() } else { ident };
    let data = &packet[header_len..total];
    let mut fragments = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let header: &[u8] = if at == 0 { &packet[..header_len] } else { &later_header };
        let room = if at == 0 { first_room } else { later_room };
        let end = (at + room).min(data.len());
        let more = end < data.len() || flags & IPV4_MF != 0;
        let mut fragment = Vec::with_capacity(header.len() + end - at);
        fragment.extend_from_slice(header);
        fragment.extend_from_slice(&data[at..end]);
        let mut ip = Ipv4Packet::new_unchecked(&mut fragment[..]);
        ip.set_header_len(header.len() as u8);
        ip.set_total_len((header.len() + end - at) as u16);
        ip.set_ident(ident);
        let offset = ((base_offset + at) / 8) as u16;
        let word = offset | if more { IPV4_MF } else { 0 };
        fragment[6..8].copy_from_slice(&word.to_be_bytes());
        Ipv4Packet::new_unchecked(&mut fragment[..]).fill_checksum();
        fragments.push(fragment);
        at = end;
    }
    Fit::Fragments(fragments)
}

/// The header of the fragments after the first: the first's, with only the
/// options marked "copied" (RFC 791), padded to a multiple of 4 bytes.
fn later_ipv4_header(header: &[u8]) -> Vec<u8> {
    let mut later = header[..IPV4_HEADER].to_vec();
    let mut options = &header[IPV4_HEADER..];
    while let Some(&kind) = options.first() {
        let len = match kind {
            0 => break,
            1 => 1,
            _ => match options.get(1) {
                Some(&len) if len >= 2 && usize::from(len) <= options.len() => usize::from(len),
                _ => break,
            },
        };
        if kind & 0x80 != 0 {
            later.extend_from_slice(&options[..len]);
        }
        options = &options[len..];
    }
    later.resize(later.len().next_multiple_of(4), 0);
    later
}

/// The length of the part of IPv6 packet `packet` that every fragment repeats
/// (the fixed header, hop-by-hop and routing headers), and where the next-header
/// byte that names what follows it is.
fn ipv6_unfragmentable(packet: &[u8]) -> Option<(usize, usize)> {
    let mut len = IPV6_HEADER;
    let mut next_at = 6;
    while matches!(packet.get(next_at), Some(&IPV6_HOP_BY_HOP | &IPV6_ROUTING)) {
        let ext_len = (usize::from(*packet.get(len + 1)?) + 1) * 8;
        next_at = len;
        len += ext_len;
    }
    (len <= packet.len()).then_some((len, next_at))
}

/// IPv6 packet `packet` cut into fragments of at most `mtu` bytes
/// (RFC 8200 §4.5); `None` if it is malformed.
fn fragment_ipv6(packet: &[u8], mtu: usize, ident: u32) -> Option<Vec<Vec<u8>>> {
    Ipv6Packet::new_checked(packet).ok()?;
    let (head, next_at) = ipv6_unfragmentable(packet)?;
    let next_header = packet[next_at];
    let room = mtu.checked_sub(head + FRAGMENT_HEADER)? & !7;
    if room == 0 {
        return None;
    }
    let payload_end = IPV6_HEADER + usize::from(Ipv6Packet::new_unchecked(packet).payload_len());
    let data = packet.get(head..payload_end)?;
    let mut fragments = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let end = (at + room).min(data.len());
        let more = u16::from(end < data.len());
        let mut fragment = Vec::with_capacity(head + FRAGMENT_HEADER + end - at);
        fragment.extend_from_slice(&packet[..head]);
        fragment[next_at] = IPV6_FRAGMENT;
        fragment.extend_from_slice(&[next_header, 0]);
        fragment.extend_from_slice(&((at as u16) | more).to_be_bytes());
        fragment.extend_from_slice(&ident.to_be_bytes());
        fragment.extend_from_slice(&data[at..end]);
        let payload = (fragment.len() - IPV6_HEADER) as u16;
        fragment[4..6].copy_from_slice(&payload.to_be_bytes());
        fragments.push(fragment);
        at = end;
    }
    Some(fragments)
}

/// Which datagram a fragment belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct DatagramKey {
    source: IpAddr,
    destination: IpAddr,
    ident: u32,
    /// IPv4's protocol (IPv6 leaves it out: the identification is enough).
    protocol: u8,
}

/// A fragment, read from its packet.
struct Piece<'a> {
    key: DatagramKey,
    /// Where its data goes in the datagram's payload.
    offset: usize,
    more: bool,
    /// The headers the whole datagram gets (the offset-0 fragment's), and where
    /// in them the byte naming the payload's protocol is (IPv6).
    head: &'a [u8],
    next_at: Option<(usize, u8)>,
    data: &'a [u8],
}

impl<'a> Piece<'a> {
    /// `packet` as a fragment; `None` if it is a whole datagram or malformed.
    fn of(packet: &'a [u8]) -> Option<Self> {
        match packet.first()? >> 4 {
            4 => Self::of_ipv4(packet),
            6 => Self::of_ipv6(packet),
            _ => None,
        }
    }

    fn of_ipv4(packet: &'a [u8]) -> Option<Self> {
        let ip = Ipv4Packet::new_checked(packet).ok()?;
        if !ip.more_frags() && ip.frag_offset() == 0 {
            return None;
        }
        let header_len = usize::from(ip.header_len());
        let total = usize::from(ip.total_len());
        let key = DatagramKey {
            source: IpAddr::V4(ip.src_addr()),
            destination: IpAddr::V4(ip.dst_addr()),
            ident: u32::from(ip.ident()),
            protocol: ip.next_header().into(),
        };
        let offset = usize::from(ip.frag_offset());
        let (more, head, data) =
            (ip.more_frags(), &packet[..header_len], &packet[header_len..total]);
        Some(Self { key, offset, more, head, next_at: None, data })
    }

    fn of_ipv6(packet: &'a [u8]) -> Option<Self> {
        let ip = Ipv6Packet::new_checked(packet).ok()?;
        let (head, next_at) = ipv6_unfragmentable(packet)?;
        if packet[next_at] != IPV6_FRAGMENT {
            return None;
        }
        let payload_end = (IPV6_HEADER + usize::from(ip.payload_len())).min(packet.len());
        let fragment = packet.get(head..head + FRAGMENT_HEADER)?;
        let word = u16::from_be_bytes([fragment[2], fragment[3]]);
        let key = DatagramKey {
            source: IpAddr::V6(ip.src_addr()),
            destination: IpAddr::V6(ip.dst_addr()),
            ident: u32::from_be_bytes([fragment[4], fragment[5], fragment[6], fragment[7]]),
            protocol: 0,
        };
        Some(Self {
            key,
            offset: usize::from(word & !7),
            more: word & 1 != 0,
            head: &packet[..head],
            next_at: Some((next_at, fragment[0])),
            data: packet.get(head + FRAGMENT_HEADER..payload_end)?,
        })
    }
}

/// The fragments of one datagram received so far.
struct Partial {
    /// The whole datagram's headers, once the first fragment came.
    head: Option<Vec<u8>>,
    /// Data by offset.
    pieces: BTreeMap<usize, Vec<u8>>,
    /// The payload's length, once the last fragment came.
    len: Option<usize>,
    started: Instant,
    /// Data bytes received (pieces never overlap: all came once it is `len`).
    received: usize,
    /// What it holds, headers included.
    bytes: usize,
}

impl Partial {
    /// Takes `piece` in; `false` if it contradicts what came before (an
    /// overlap, a second end, data past the end).
    fn take(&mut self, piece: &Piece) -> bool {
        let end = piece.offset + piece.data.len();
        if piece.data.is_empty()
            || end > MAX_DATAGRAM
            || (piece.more && !piece.data.len().is_multiple_of(8))
        {
            return false;
        }
        // An exact duplicate (a retransmission) changes nothing.
        if self.pieces.get(&piece.offset).is_some_and(|data| data[..] == piece.data[..]) {
            return true;
        }
        if !piece.more {
            if self.len.is_some_and(|len| len != end)
                || self.pieces.keys().next_back().is_some_and(|&last| last >= end)
            {
                return false;
            }
            self.len = Some(end);
        }
        if self.len.is_some_and(|len| end > len) {
            return false;
        }
        let before = self.pieces.range(..end).next_back();
        if before.is_some_and(|(&at, data)| at + data.len() > piece.offset) {
            return false;
        }
        if piece.offset == 0 {
            let mut head = piece.head.to_vec();
            if let Some((at, protocol)) = piece.next_at {
                head[at] = protocol;
            }
            self.head = Some(head);
        }
        self.received += piece.data.len();
        self.bytes += piece.data.len() + piece.head.len() + PIECE_COST;
        self.pieces.insert(piece.offset, piece.data.to_vec());
        true
    }

    /// The whole datagram, once every piece came; `None` if it is too large.
    fn whole(&self) -> Option<Vec<u8>> {
        let (head, len) = (self.head.as_ref()?, self.len?);
        let mut packet = Vec::with_capacity(head.len() + len);
        packet.extend_from_slice(head);
        self.pieces.values().for_each(|data| packet.extend_from_slice(data));
        if packet[0] >> 4 == 4 {
            let total = u16::try_from(packet.len()).ok()?;
            let mut ip = Ipv4Packet::new_unchecked(&mut packet[..]);
            ip.set_total_len(total);
            packet[6..8].copy_from_slice(&0u16.to_be_bytes());
            Ipv4Packet::new_unchecked(&mut packet[..]).fill_checksum();
        } else {
            let payload = u16::try_from(packet.len() - IPV6_HEADER).ok()?;
            packet[4..6].copy_from_slice(&payload.to_be_bytes());
        }
        Some(packet)
    }
}

/// The fragments a host holds until their datagrams are whole.
#[derive(Default)]
pub struct Reassembly {
    partial: HashMap<DatagramKey, Partial>,
    /// The datagrams in the order their first fragment came (some may be gone).
    arrivals: VecDeque<(Instant, DatagramKey)>,
    bytes: usize,
}

impl Reassembly {
    /// Takes in IP packet `packet`: a whole datagram comes back at once; a
    /// fragment is kept, and the datagram it completes comes back.
    pub fn take(&mut self, packet: Vec<u8>, now: Instant) -> Option<Vec<u8>> {
        self.take_at(packet, 0, now)
    }

    /// [`Reassembly::take`] for Ethernet frame `frame`: a completed datagram
    /// comes back in the last fragment's Ethernet header. Frames of other
    /// protocols pass.
    pub fn take_frame(&mut self, frame: Vec<u8>, now: Instant) -> Option<Vec<u8>> {
        match frame.get(12..14) {
            Some([0x08, 0x00] | [0x86, 0xdd]) => self.take_at(frame, ETHERNET_HEADER, now),
            _ => Some(frame),
        }
    }

    /// Takes in the IP packet that starts at `at` in `bytes`; what comes back
    /// keeps `bytes[..at]` in front.
    fn take_at(&mut self, bytes: Vec<u8>, at: usize, now: Instant) -> Option<Vec<u8>> {
        let Some(piece) = Piece::of(&bytes[at..]) else { return Some(bytes) };
        self.expire(now);
        let key = piece.key;
        let partial = self.partial.entry(key).or_insert_with(|| {
            self.arrivals.push_back((now, key));
            self.bytes += DATAGRAM_COST;
            Partial {
                head: None,
                pieces: BTreeMap::new(),
                len: None,
                started: now,
                received: 0,
                bytes: DATAGRAM_COST,
            }
        });
        let before = partial.bytes;
        let taken = partial.take(&piece);
        self.bytes += partial.bytes - before;
        if !taken {
            self.drop_datagram(key);
            self.compact();
            return None;
        }
        if partial.head.is_some() && partial.len == Some(partial.received) {
            // Complete: whole, unless its headers take it past the largest datagram.
            let whole = partial.whole();
            self.drop_datagram(key);
            self.compact();
            return whole.map(|whole| [&bytes[..at], &whole].concat());
        }
        // Over the limit, the oldest datagrams go first.
        while self.bytes > REASSEMBLY_BYTES {
            let (started, oldest) = self.arrivals.pop_front()?;
            if self.partial.get(&oldest).is_some_and(|p| p.started == started) {
                self.drop_datagram(oldest);
            }
        }
        None
    }

    fn drop_datagram(&mut self, key: DatagramKey) {
        if let Some(partial) = self.partial.remove(&key) {
            self.bytes -= partial.bytes;
        }
    }

    /// Forgets the arrivals of finished datagrams once they are most of the
    /// list (one left waiting at its head would keep them all).
    fn compact(&mut self) {
        if self.arrivals.len() > 2 * self.partial.len() + 64 {
            let partial = &self.partial;
            self.arrivals
                .retain(|(started, key)| partial.get(key).is_some_and(|p| p.started == *started));
        }
    }

    /// Drops the datagrams whose time ran out.
    fn expire(&mut self, now: Instant) {
        while let Some(&(started, key)) = self.arrivals.front() {
            let live = self.partial.get(&key).is_some_and(|p| p.started == started);
            if live && now.duration_since(started) < REASSEMBLY_TIMEOUT {
                break;
            }
            self.arrivals.pop_front();
            if live {
                self.drop_datagram(key);
            }
        }
    }
}

#[cfg(test)]
mod tests;
