//! A small built-in IPv4/IPv6 router, so that stacks on different switches can reach
//! each other without running a router program.
//!
//! It has one port per interface and routes to its connected subnets and through
//! the gateways of its static routes (a default route among them), by longest
//! prefix. It answers ARP and neighbour solicitations for its own addresses
//! (each port also has an EUI-64 link-local `fe80::` address), answers ICMP echo
//! requests to any of its addresses, and forwards unicast IPv4 and IPv6 packets between
//! its ports by longest prefix, decrementing the TTL / hop limit. It resolves next hops
//! with ARP and NDP, keeping a few packets per unresolved neighbour, and reports
//! failures with ICMP errors (time exceeded, net/host unreachable).
//!
//! Each port has an MTU (1500 unless configured). A forwarded IPv4 packet larger
//! than the next link's is fragmented, or, with "don't fragment", refused with
//! "fragmentation needed" naming the MTU; an IPv6 one is refused with "packet too
//! big" (RFC 1191, 8201). Fragments addressed to the router are reassembled.
//!
//! It is deliberately simple: no IPv6 extension-header processing (packets are forwarded untouched), no
//! router advertisements, and learned neighbours do not expire (they are refreshed by
//! every ARP or NDP message the neighbour sends).
//!
//! Traffic to the router itself is answered as a Linux host with no service
//! answers it: TCP with a reset, UDP with "port unreachable"; other protocols
//! than ICMP are dropped silently.
//!
//! Everything it receives is untrusted: malformed or truncated frames are dropped
//! silently, never a panic.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, EthernetAddress, EthernetFrame, EthernetProtocol, IPV4_HEADER_LEN,
    IPV6_HEADER_LEN, Icmpv4DstUnreachable, Icmpv4Message, Icmpv4Packet, Icmpv4Repr,
    Icmpv4TimeExceeded, Icmpv6DstUnreachable, Icmpv6Message, Icmpv6Packet, Icmpv6Repr,
    Icmpv6TimeExceeded, IpProtocol, Ipv4Cidr, Ipv4Packet, Ipv4Repr, Ipv6Cidr, Ipv6Packet,
    NdiscNeighborFlags, NdiscRepr, RawHardwareAddress,
};

use std::path::PathBuf;

use super::fragment::{Fit, Reassembly, Sender, fit};
use super::frames::{
    ethernet_frame, icmpv4_error_packet, icmpv6_error_packet, icmpv6_packet, multicast_mac,
    solicited_node,
};
use super::link::{Frame, SwitchId};
use super::neighbour::{Arp, solicitation};
use super::refusal::tcp_reset_packet;
use crate::modules::vunet::cidr::Cidr;

/// One interface of a router.
#[derive(Clone, Debug)]
pub struct RouterInterface {
    /// The switch this interface is plugged into.
    pub switch: SwitchId,
    /// Its MAC address, in transmission order (`[0x02, 0, 0, 0, 0, 1]` is
    /// `02:00:00:00:00:01`). Must be unicast.
    pub mac: [u8; 6],
    /// Its addresses with their prefix lengths, which also define the connected subnets
    /// it routes to. An EUI-64 `fe80::/64` link-local address is always added.
    pub addresses: Vec<Cidr>,
    /// An extra capture file for this interface's link (see `Network::plug`).
    pub capture: Option<PathBuf>,
    /// The largest IP packet its link takes: larger ones are fragmented, or
    /// refused with an ICMP error naming it.
    pub mtu: usize,
}

/// A route besides the connected subnets: traffic to `to` goes through the
/// gateway `via`, a neighbour on one of the router's subnets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StaticRoute {
    /// The destination prefix (`0.0.0.0/0` or `::/0` for a default route).
    pub to: Cidr,
    /// The gateway, of the destination's family.
    pub via: IpAddr,
}

/// TTL / hop limit of the packets the router originates (replies and errors).
const ORIGINATED_HOP_LIMIT: u8 = 64;
/// Hop limit every NDP message carries (RFC 4861 §7.1: others are forged off-link).
const NDISC_HOP_LIMIT: u8 = 255;
/// How often an unanswered ARP request or neighbour solicitation is repeated.
pub(super) const RESOLUTION_RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// How many requests are sent before a neighbour is declared unreachable.
pub(super) const RESOLUTION_ATTEMPTS: u32 = 3;
/// How many packets wait for one unresolved neighbour; beyond, the oldest is
/// dropped. Linux keeps 101 (`unres_qlen`): a burst (traceroute's probes, a
/// window of TCP segments) must survive the first ARP exchange.
pub(super) const MAX_PACKETS_PER_UNRESOLVED_NEIGHBOR: usize = 101;

/// The IPv4 and IPv6 side of a router.
pub(super) struct Router {
    ports: Vec<Port>,
    /// Its static routes, besides the connected subnets.
    routes: Vec<StaticRoute>,
    /// Resolved neighbours, by the port they are on and their address.
    neighbors: BTreeMap<(usize, IpAddr), EthernetAddress>,
    /// Neighbours being resolved, with the packets waiting for them.
    pending: BTreeMap<(usize, IpAddr), PendingResolution>,
    /// Fragments of packets to the router itself, waiting for the rest.
    reassembly: Reassembly,
    /// The identification of the next packet the router fragments itself.
    ident: u32,
}

/// One port: the router's interface on one switch.
struct Port {
    mac: EthernetAddress,
    /// The largest IP packet its link takes.
    mtu: usize,
    ipv4: Vec<Ipv4Cidr>,
    /// Includes the EUI-64 link-local address.
    ipv6: Vec<Ipv6Cidr>,
}

/// A neighbour whose link-layer address has been asked for but not learned yet.
struct PendingResolution {
    packets: VecDeque<WaitingPacket>,
    /// Requests sent so far.
    requests_sent: u32,
    /// When to ask again, or give up.
    next_attempt: Instant,
}

/// An IP packet waiting for its next hop to be resolved.
struct WaitingPacket {
    /// The complete IP packet, ready to go.
    ip: Vec<u8>,
    /// The port a forwarded packet came in on, to report failure from; `None` for the
    /// router's own packets, whose loss is not reported.
    ingress: Option<usize>,
}

/// How a received frame was addressed at the link layer.
#[derive(Clone, Copy)]
struct Arrival {
    port: usize,
    /// The frame went to a broadcast or multicast MAC address.
    link_group_addressed: bool,
    /// The frame's source MAC address.
    link_source: EthernetAddress,
}

impl Router {
    /// A router with one port per interface, in order, and `routes` besides
    /// their subnets. Fails (InvalidInput) on a multicast or all-zero MAC
    /// address or a prefix length beyond 32 / 128.
    pub(super) fn new(
        interfaces: &[RouterInterface],
        routes: Vec<StaticRoute>,
    ) -> io::Result<Self> {
        let invalid = |message: String| io::Error::new(io::ErrorKind::InvalidInput, message);
        let mut ports = Vec::with_capacity(interfaces.len());
        for interface in interfaces {
            let mac = EthernetAddress(interface.mac);
            if !mac.is_unicast() || interface.mac == [0; 6] {
                return Err(invalid(format!("router MAC address {mac} is not a unicast address")));
            }
            let mut port = Port { mac, mtu: interface.mtu, ipv4: Vec::new(), ipv6: Vec::new() };
            for &Cidr { ip: address, prefix: prefix_len } in &interface.addresses {
                match address {
                    IpAddr::V4(address) if prefix_len <= 32 => {
                        port.ipv4.push(Ipv4Cidr::new(address, prefix_len))
                    }
                    IpAddr::V6(address) if prefix_len <= 128 => {
                        port.ipv6.push(Ipv6Cidr::new(address, prefix_len))
                    }
                    _ => return Err(invalid(format!("bad prefix length {address}/{prefix_len}"))),
                }
            }
            let link_local = link_local_address(mac);
            if !port.ipv6.iter().any(|cidr| cidr.address() == link_local) {
                port.ipv6.push(Ipv6Cidr::new(link_local, 64));
            }
            ports.push(port);
        }
        Ok(Self {
            ports,
            routes,
            neighbors: BTreeMap::new(),
            pending: BTreeMap::new(),
            reassembly: Reassembly::default(),
            ident: 0,
        })
    }

    /// Handles one frame that arrived on `port`; the frames the router sends in
    /// response are appended to `out` as (port, frame).
    pub(super) fn handle_frame(
        &mut self,
        port: usize,
        frame: &[u8],
        now: Instant,
        out: &mut Vec<(usize, Frame)>,
    ) {
        let Some(our_mac) = self.ports.get(port).map(|port| port.mac) else { return };
        let Ok(ethernet) = EthernetFrame::new_checked(frame) else { return };
        let destination = ethernet.dst_addr();
        if destination != our_mac && destination.is_unicast() {
            return; // flooded unicast for someone else
        }
        let arrival = Arrival {
            port,
            link_group_addressed: !destination.is_unicast(),
            link_source: ethernet.src_addr(),
        };
        if !arrival.link_source.is_unicast() || arrival.link_source == our_mac {
            return;
        }
        match ethernet.ethertype() {
            EthernetProtocol::Arp => self.handle_arp(arrival, ethernet.payload(), out),
            EthernetProtocol::Ipv4 => self.handle_ipv4(arrival, ethernet.payload(), now, out),
            EthernetProtocol::Ipv6 => self.handle_ipv6(arrival, ethernet.payload(), now, out),
            _ => {}
        }
    }

    /// Repeats due ARP / NDP requests and gives up on neighbours that stayed silent,
    /// reporting their waiting packets as unreachable. Frames go to `out`.
    pub(super) fn poll(&mut self, now: Instant, out: &mut Vec<(usize, Frame)>) {
        let due: Vec<(usize, IpAddr)> = self
            .pending
            .iter()
            .filter(|(_, pending)| pending.next_attempt <= now)
            .map(|(&key, _)| key)
            .collect();
        for key in due {
            let Some(pending) = self.pending.get_mut(&key) else { continue };
            if pending.requests_sent < RESOLUTION_ATTEMPTS {
                pending.requests_sent += 1;
                pending.next_attempt = now + RESOLUTION_RETRY_INTERVAL;
                self.solicit(key.0, key.1, out);
                continue;
            }
            let Some(pending) = self.pending.remove(&key) else { continue };
            for packet in pending.packets {
                if let Some(ingress) = packet.ingress {
                    self.report_unreachable_neighbor(ingress, &packet.ip, now, out);
                }
            }
        }
    }

    /// When [`Router::poll`] next has something to do.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.pending.values().map(|pending| pending.next_attempt).min()
    }

    // ---------------------------------------------------------------- ARP

    /// Answers ARP requests for the port's own addresses and learns senders.
    fn handle_arp(&mut self, arrival: Arrival, payload: &[u8], out: &mut Vec<(usize, Frame)>) {
        let Some(arp) = Arp::read(payload) else { return };
        let port = arrival.port;
        let for_us = self.ports[port].ipv4.iter().any(|cidr| cidr.address() == arp.target_ip);
        let sender = IpAddr::V4(arp.sender_ip);
        let sender_known = self.neighbors.contains_key(&(port, sender));
        // RFC 826: merge the sender if known, add it if the message is for us.
        if arp.sender_mac.is_unicast() && is_ipv4_unicast(arp.sender_ip) && (for_us || sender_known)
        {
            self.learn(port, sender, arp.sender_mac, out);
        }
        if for_us && arp.operation == ArpOperation::Request && arp.sender_mac.is_unicast() {
            out.push((port, arp.reply_from(self.ports[port].mac)));
        }
    }

    // ---------------------------------------------------------------- IPv4

    /// Delivers an IPv4 packet to the router itself, or forwards it.
    fn handle_ipv4(
        &mut self,
        arrival: Arrival,
        payload: &[u8],
        now: Instant,
        out: &mut Vec<(usize, Frame)>,
    ) {
        let Ok(packet) = Ipv4Packet::new_checked(payload) else { return };
        if packet.version() != 4 || !packet.verify_checksum() {
            return;
        }
        // Drop the Ethernet padding, if any.
        let ip = &payload[..usize::from(packet.total_len())];
        let packet = Ipv4Packet::new_unchecked(ip);
        let (source, destination) = (packet.src_addr(), packet.dst_addr());

        if self.is_own_ipv4(destination) {
            if let Some(whole) = self.reassembly.take(ip.to_vec(), now) {
                self.answer_ipv4(arrival, &whole, now, out);
            }
            return;
        }
        if arrival.link_group_addressed
            || !is_ipv4_unicast(destination)
            || self.is_connected_broadcast(destination)
            || !is_ipv4_unicast(source)
            || self.is_connected_broadcast(source)
            || self.is_own_ipv4(source)
        {
            return; // not forwardable
        }
        let Some((egress, next_hop)) = self.route(IpAddr::V4(destination)) else {
            let code = Icmpv4DstUnreachable::NetUnreachable.into();
            self.send_icmpv4_error(arrival.port, ip, Icmpv4Message::DstUnreachable, code, now, out);
            return;
        };
        if packet.hop_limit() <= 1 {
            let code = Icmpv4TimeExceeded::TtlExpired.into();
            self.send_icmpv4_error(arrival.port, ip, Icmpv4Message::TimeExceeded, code, now, out);
            return;
        }
        let mut forwarded = ip.to_vec();
        let mut packet = Ipv4Packet::new_unchecked(&mut forwarded[..]);
        packet.set_hop_limit(packet.hop_limit() - 1);
        packet.fill_checksum();
        self.send_ip(egress, next_hop, forwarded, Some(arrival.port), now, out);
    }

    /// Handles an IPv4 packet addressed to the router: answers echo requests,
    /// refuses TCP and UDP.
    fn answer_ipv4(
        &mut self,
        arrival: Arrival,
        ip: &[u8],
        now: Instant,
        out: &mut Vec<(usize, Frame)>,
    ) {
        let packet = Ipv4Packet::new_unchecked(ip);
        if packet.more_frags()
            || packet.frag_offset() != 0
            || arrival.link_group_addressed
            || !is_ipv4_unicast(packet.src_addr())
        {
            return;
        }
        match packet.next_header() {
            IpProtocol::Icmp => {}
            IpProtocol::Udp => {
                let code = Icmpv4DstUnreachable::PortUnreachable.into();
                let message = Icmpv4Message::DstUnreachable;
                return self.send_icmpv4_error(arrival.port, ip, message, code, now, out);
            }
            IpProtocol::Tcp => {
                let (source, destination) = (packet.src_addr().into(), packet.dst_addr().into());
                let segment = &ip[packet.header_len().into()..];
                if let Some(reset) =
                    tcp_reset_packet(source, destination, segment, ORIGINATED_HOP_LIMIT)
                {
                    self.send_own(source, reset, arrival.port, now, out);
                }
                return;
            }
            _ => return,
        }
        let Ok(icmp) = Icmpv4Packet::new_checked(packet.payload()) else { return };
        let Ok(Icmpv4Repr::EchoRequest { ident, seq_no, data }) =
            Icmpv4Repr::parse(&icmp, &ChecksumCapabilities::default())
        else {
            return;
        };
        let reply = Icmpv4Repr::EchoReply { ident, seq_no, data };
        let header = Ipv4Repr {
            src_addr: packet.dst_addr(),
            dst_addr: packet.src_addr(),
            next_header: IpProtocol::Icmp,
            payload_len: reply.buffer_len(),
            hop_limit: ORIGINATED_HOP_LIMIT,
        };
        let mut reply_ip = vec![0; header.buffer_len() + reply.buffer_len()];
        let checksums = ChecksumCapabilities::default();
        header.emit(&mut Ipv4Packet::new_unchecked(&mut reply_ip[..]), &checksums);
        reply.emit(&mut Icmpv4Packet::new_unchecked(&mut reply_ip[IPV4_HEADER_LEN..]), &checksums);
        self.send_own(IpAddr::V4(packet.src_addr()), reply_ip, arrival.port, now, out);
    }

    /// Sends an ICMPv4 error about `original` (a complete, valid IPv4 packet that came in
    /// on `ingress`) to its source, from the ingress port's address. Quotes the original
    /// header and the first 8 bytes of its payload.
    fn send_icmpv4_error(
        &mut self,
        ingress: usize,
        original: &[u8],
        message: Icmpv4Message,
        code: u8,
        now: Instant,
        out: &mut Vec<(usize, Frame)>,
    ) {
        if let Some((to, error)) = self.icmpv4_error(ingress, original, message, code) {
            self.send_own(IpAddr::V4(to), error, ingress, now, out);
        }
    }

    /// The ICMPv4 error [`Router::send_icmpv4_error`] sends, and where to.
    fn icmpv4_error(
        &self,
        ingress: usize,
        original: &[u8],
        message: Icmpv4Message,
        code: u8,
    ) -> Option<(Ipv4Addr, Vec<u8>)> {
        let offending = Ipv4Packet::new_checked(original).ok()?;
        if !self.may_report_ipv4(&offending) {
            return None;
        }
        let source = self.ipv4_source(ingress, offending.src_addr())?;
        Some((offending.src_addr(), icmpv4_error_packet(source, original, message, code)?))
    }

    /// Tells the source of `original`, which came in on `ingress` and is too
    /// large for `mtu` bytes: "fragmentation needed" (IPv4, with "don't
    /// fragment") or "packet too big" (IPv6), naming the MTU (RFC 1191, 8201).
    fn report_too_big(
        &mut self,
        ingress: usize,
        original: &[u8],
        mtu: usize,
        now: Instant,
        out: &mut Vec<(usize, Frame)>,
    ) {
        let error = match original.first().map(|b| b >> 4) {
            Some(4) => {
                let message = Icmpv4Message::DstUnreachable;
                let code = Icmpv4DstUnreachable::FragRequired.into();
                self.icmpv4_error(ingress, original, message, code).map(|(to, mut error)| {
                    // The next hop's MTU, in the second half of the unused word.
                    let word = &mut error[IPV4_HEADER_LEN + 4..IPV4_HEADER_LEN + 8];
                    word.copy_from_slice(&(mtu as u32).to_be_bytes());
                    Icmpv4Packet::new_unchecked(&mut error[IPV4_HEADER_LEN..]).fill_checksum();
                    (IpAddr::V4(to), error)
                })
            }
            Some(6) => self.icmpv6_error(ingress, original, Icmpv6Message::PktTooBig, 0).map(
                |(to, mut error)| {
                    error[IPV6_HEADER_LEN + 4..IPV6_HEADER_LEN + 8]
                        .copy_from_slice(&(mtu as u32).to_be_bytes());
                    let from = Ipv6Packet::new_unchecked(&error[..]).src_addr();
                    Icmpv6Packet::new_unchecked(&mut error[IPV6_HEADER_LEN..])
                        .fill_checksum(&from, &to);
                    (IpAddr::V6(to), error)
                },
            ),
            _ => None,
        };
        if let Some((to, error)) = error {
            self.send_own(to, error, ingress, now, out);
        }
    }

    /// RFC 1122 §3.2.2 / RFC 1812 §4.3.2.7: no error about an ICMP error, a non-first
    /// fragment, or a packet from or to a group or unspecified address.
    fn may_report_ipv4(&self, offending: &Ipv4Packet<&[u8]>) -> bool {
        let source = offending.src_addr();
        if !is_ipv4_unicast(source)
            || self.is_connected_broadcast(source)
            || !is_ipv4_unicast(offending.dst_addr())
            || self.is_connected_broadcast(offending.dst_addr())
            || offending.frag_offset() != 0
        {
            return false;
        }
        if offending.next_header() == IpProtocol::Icmp {
            return match offending.payload().first() {
                Some(&message) => !is_icmpv4_error(message),
                None => false,
            };
        }
        true
    }

    /// Whether `address` is one of the router's IPv4 addresses, on any port.
    fn is_own_ipv4(&self, address: Ipv4Addr) -> bool {
        self.ports.iter().flat_map(|port| &port.ipv4).any(|cidr| cidr.address() == address)
    }

    /// Whether `address` is the broadcast address of one of the connected subnets.
    fn is_connected_broadcast(&self, address: Ipv4Addr) -> bool {
        self.ports.iter().flat_map(|port| &port.ipv4).any(|cidr| cidr.broadcast() == Some(address))
    }

    /// Where a packet to `destination` goes: the egress port and the next hop,
    /// by longest prefix over the connected subnets (the destination is its
    /// own next hop) and the static routes (their gateway is); a connected
    /// subnet wins a tie.
    fn route(&self, destination: IpAddr) -> Option<(usize, IpAddr)> {
        let connected = self.connected(destination);
        let through = self
            .routes
            .iter()
            .filter(|route| route.to.contains(destination))
            .max_by_key(|route| route.to.prefix)
            .filter(|route| connected.is_none_or(|(_, prefix)| route.to.prefix > prefix))
            .and_then(|route| Some((self.connected(route.via)?.0, route.via)));
        through.or(connected.map(|(port, _)| (port, destination)))
    }

    /// The port whose connected subnet holds `destination` with the longest
    /// prefix, and that prefix's length.
    fn connected(&self, destination: IpAddr) -> Option<(usize, u8)> {
        match destination {
            IpAddr::V4(address) => self.connected_ipv4(address),
            IpAddr::V6(address) => self.connected_ipv6(address),
        }
    }

    /// [`connected`](Self::connected) for IPv4.
    fn connected_ipv4(&self, destination: Ipv4Addr) -> Option<(usize, u8)> {
        self.ports
            .iter()
            .enumerate()
            .flat_map(|(index, port)| port.ipv4.iter().map(move |cidr| (index, cidr)))
            .filter(|(_, cidr)| cidr.contains_addr(&destination))
            .max_by_key(|(index, cidr)| (cidr.prefix_len(), std::cmp::Reverse(*index)))
            .map(|(index, cidr)| (index, cidr.prefix_len()))
    }

    /// The address the router speaks from on `port` towards `peer`: the port's address
    /// on the peer's subnet, else its first IPv4 address.
    fn ipv4_source(&self, port: usize, peer: Ipv4Addr) -> Option<Ipv4Addr> {
        let addresses = &self.ports.get(port)?.ipv4;
        addresses
            .iter()
            .find(|cidr| cidr.contains_addr(&peer))
            .or(addresses.first())
            .map(|cidr| cidr.address())
    }

    // ---------------------------------------------------------------- IPv6

    /// Delivers an IPv6 packet to the router itself, or forwards it.
    fn handle_ipv6(
        &mut self,
        arrival: Arrival,
        payload: &[u8],
        now: Instant,
        out: &mut Vec<(usize, Frame)>,
    ) {
        let Ok(packet) = Ipv6Packet::new_checked(payload) else { return };
        if packet.version() != 6 {
            return;
        }
        // Drop the Ethernet padding, if any.
        let ip = &payload[..packet.total_len()];
        let packet = Ipv6Packet::new_unchecked(ip);
        let (source, destination) = (packet.src_addr(), packet.dst_addr());

        if destination.is_multicast() {
            if self.listens_to_ipv6_group(arrival.port, destination) {
                self.answer_icmpv6(arrival, ip, now, out);
            }
            return; // multicast is never forwarded
        }
        if self.is_own_ipv6(arrival.port, destination) {
            let Some(whole) = self.reassembly.take(ip.to_vec(), now) else { return };
            match Ipv6Packet::new_unchecked(&whole[..]).next_header() {
                IpProtocol::Tcp | IpProtocol::Udp => self.refuse_ipv6(arrival, &whole, now, out),
                _ => self.answer_icmpv6(arrival, &whole, now, out),
            }
            return;
        }
        if arrival.link_group_addressed
            || source.is_unspecified()
            || source.is_multicast()
            || source.is_loopback()
            || self.is_own_ipv6(arrival.port, source)
            || destination.is_unspecified()
            || destination.is_loopback()
            || destination.is_unicast_link_local()
        {
            return; // not forwardable
        }
        let Some((egress, next_hop)) = self.route(IpAddr::V6(destination)) else {
            let code = Icmpv6DstUnreachable::NoRoute.into();
            self.send_icmpv6_error(arrival.port, ip, Icmpv6Message::DstUnreachable, code, now, out);
            return;
        };
        if source.is_unicast_link_local() {
            // RFC 4443 §3.1: a link-local source cannot leave its link.
            let code = Icmpv6DstUnreachable::BeyondScope.into();
            self.send_icmpv6_error(arrival.port, ip, Icmpv6Message::DstUnreachable, code, now, out);
            return;
        }
        if packet.hop_limit() <= 1 {
            let code = Icmpv6TimeExceeded::HopLimitExceeded.into();
            self.send_icmpv6_error(arrival.port, ip, Icmpv6Message::TimeExceeded, code, now, out);
            return;
        }
        let mut forwarded = ip.to_vec();
        let mut packet = Ipv6Packet::new_unchecked(&mut forwarded[..]);
        packet.set_hop_limit(packet.hop_limit() - 1);
        self.send_ip(egress, next_hop, forwarded, Some(arrival.port), now, out);
    }

    /// Refuses a TCP segment (with a reset) or a UDP datagram ("port
    /// unreachable") addressed to the router.
    fn refuse_ipv6(
        &mut self,
        arrival: Arrival,
        ip: &[u8],
        now: Instant,
        out: &mut Vec<(usize, Frame)>,
    ) {
        let packet = Ipv6Packet::new_unchecked(ip);
        let (source, destination) = (packet.src_addr(), packet.dst_addr());
        if arrival.link_group_addressed || source.is_unspecified() || source.is_multicast() {
            return;
        }
        if packet.next_header() == IpProtocol::Udp {
            let code = Icmpv6DstUnreachable::PortUnreachable.into();
            let message = Icmpv6Message::DstUnreachable;
            return self.send_icmpv6_error(arrival.port, ip, message, code, now, out);
        }
        let (source, destination) = (source.into(), destination.into());
        if let Some(reset) =
            tcp_reset_packet(source, destination, packet.payload(), ORIGINATED_HOP_LIMIT)
        {
            self.send_own(source, reset, arrival.port, now, out);
        }
    }

    /// Handles an ICMPv6 packet addressed to the router (unicast, or a group it listens
    /// to): echo requests, neighbour solicitations and advertisements.
    fn answer_icmpv6(
        &mut self,
        arrival: Arrival,
        ip: &[u8],
        now: Instant,
        out: &mut Vec<(usize, Frame)>,
    ) {
        let packet = Ipv6Packet::new_unchecked(ip);
        if packet.next_header() != IpProtocol::Icmpv6 {
            return;
        }
        let (source, destination) = (packet.src_addr(), packet.dst_addr());
        let Ok(icmp) = Icmpv6Packet::new_checked(packet.payload()) else { return };
        let Ok(message) =
            Icmpv6Repr::parse(&source, &destination, &icmp, &ChecksumCapabilities::default())
        else {
            return;
        };
        let port = arrival.port;
        match message {
            Icmpv6Repr::EchoRequest { ident, seq_no, data } => {
                if destination.is_multicast() || source.is_unspecified() || source.is_multicast() {
                    return;
                }
                let reply = Icmpv6Repr::EchoReply { ident, seq_no, data };
                let reply_ip = icmpv6_packet(destination, source, ORIGINATED_HOP_LIMIT, &reply);
                self.send_own(IpAddr::V6(source), reply_ip, port, now, out);
            }
            Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit { target_addr, lladdr }) => {
                if packet.hop_limit() != NDISC_HOP_LIMIT
                    || !self.ports[port].ipv6.iter().any(|cidr| cidr.address() == target_addr)
                {
                    return;
                }
                self.answer_neighbor_solicitation(arrival, source, target_addr, lladdr, out);
            }
            Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert { target_addr, lladdr, .. }) => {
                if packet.hop_limit() != NDISC_HOP_LIMIT
                    || !is_ipv6_unicast(target_addr)
                    || self.is_own_ipv6(port, target_addr)
                {
                    return;
                }
                if let Some(mac) = lladdr.and_then(ethernet_address) {
                    self.learn(port, IpAddr::V6(target_addr), mac, out);
                }
            }
            _ => {}
        }
    }

    /// Answers a neighbour solicitation for one of `arrival.port`'s addresses with an
    /// advertisement, learning the solicitor on the way.
    fn answer_neighbor_solicitation(
        &mut self,
        arrival: Arrival,
        source: Ipv6Addr,
        target: Ipv6Addr,
        source_lladdr: Option<RawHardwareAddress>,
        out: &mut Vec<(usize, Frame)>,
    ) {
        let port = arrival.port;
        let our_mac = self.ports[port].mac;
        let router_override = NdiscNeighborFlags::ROUTER | NdiscNeighborFlags::OVERRIDE;
        let (flags, destination, destination_mac) = if source.is_unspecified() {
            // Duplicate address detection by someone else: tell everyone (RFC 4861 §7.2.4).
            (router_override, ALL_NODES, multicast_mac(ALL_NODES))
        } else {
            let sender_mac = source_lladdr.and_then(ethernet_address);
            if let Some(mac) = sender_mac {
                self.learn(port, IpAddr::V6(source), mac, out);
            }
            let flags = router_override | NdiscNeighborFlags::SOLICITED;
            (flags, source, sender_mac.unwrap_or(arrival.link_source))
        };
        let advert = Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
            flags,
            target_addr: target,
            lladdr: Some(RawHardwareAddress::from(our_mac)),
        });
        let ip = icmpv6_packet(target, destination, NDISC_HOP_LIMIT, &advert);
        out.push((port, ethernet_frame(our_mac, destination_mac, EthernetProtocol::Ipv6, &ip)));
    }

    /// Sends an ICMPv6 error about `original` (a complete IPv6 packet that came in on
    /// `ingress`) to its source, from the ingress port's address, quoting as much of the
    /// original as fits in a 1280-byte packet.
    fn send_icmpv6_error(
        &mut self,
        ingress: usize,
        original: &[u8],
        message: Icmpv6Message,
        code: u8,
        now: Instant,
        out: &mut Vec<(usize, Frame)>,
    ) {
        if let Some((to, error)) = self.icmpv6_error(ingress, original, message, code) {
            self.send_own(IpAddr::V6(to), error, ingress, now, out);
        }
    }

    /// The ICMPv6 error [`Router::send_icmpv6_error`] sends, and where to.
    fn icmpv6_error(
        &self,
        ingress: usize,
        original: &[u8],
        message: Icmpv6Message,
        code: u8,
    ) -> Option<(Ipv6Addr, Vec<u8>)> {
        let offending = Ipv6Packet::new_checked(original).ok()?;
        if !may_report_ipv6(&offending) {
            return None;
        }
        let destination = offending.src_addr();
        let source = self.ipv6_source(ingress, destination)?;
        Some((destination, icmpv6_error_packet(source, original, message, code)?))
    }

    /// Whether `address` is one of the router's: a link-local address counts only on
    /// the port it belongs to.
    fn is_own_ipv6(&self, port: usize, address: Ipv6Addr) -> bool {
        if address.is_unicast_link_local() {
            return self.ports[port].ipv6.iter().any(|cidr| cidr.address() == address);
        }
        self.ports.iter().flat_map(|port| &port.ipv6).any(|cidr| cidr.address() == address)
    }

    /// Whether the router's `port` belongs to the multicast group: all-nodes,
    /// all-routers, or the solicited-node group of one of the port's addresses.
    fn listens_to_ipv6_group(&self, port: usize, group: Ipv6Addr) -> bool {
        group == ALL_NODES
            || group == ALL_ROUTERS
            || self.ports[port].ipv6.iter().any(|cidr| solicited_node(cidr.address()) == group)
    }

    /// [`connected`](Self::connected) for IPv6 (link-local subnets are not
    /// routes).
    fn connected_ipv6(&self, destination: Ipv6Addr) -> Option<(usize, u8)> {
        self.ports
            .iter()
            .enumerate()
            .flat_map(|(index, port)| port.ipv6.iter().map(move |cidr| (index, cidr)))
            .filter(|(_, cidr)| !cidr.address().is_unicast_link_local())
            .filter(|(_, cidr)| cidr.contains_addr(&destination))
            .max_by_key(|(index, cidr)| (cidr.prefix_len(), std::cmp::Reverse(*index)))
            .map(|(index, cidr)| (index, cidr.prefix_len()))
    }

    /// The address the router speaks from on `port` towards `peer`: its link-local
    /// address towards a link-local peer; else its address on the peer's subnet, else
    /// its first global address, else its link-local address.
    fn ipv6_source(&self, port: usize, peer: Ipv6Addr) -> Option<Ipv6Addr> {
        let addresses = &self.ports.get(port)?.ipv6;
        let link_local = addresses.iter().find(|cidr| cidr.address().is_unicast_link_local());
        let global = || addresses.iter().filter(|cidr| !cidr.address().is_unicast_link_local());
        let chosen = if peer.is_unicast_link_local() {
            link_local
        } else {
            global()
                .find(|cidr| cidr.contains_addr(&peer))
                .or_else(|| global().next())
                .or(link_local)
        };
        chosen.map(|cidr| cidr.address())
    }

    // ---------------------------------------------------------------- next hops

    /// Sends a packet the router originates to `destination`: out of the port that
    /// route leads to, or for a link-local destination out of `arrival_port`, where the
    /// packet being answered came from. Without a route it is dropped.
    fn send_own(
        &mut self,
        destination: IpAddr,
        ip: Vec<u8>,
        arrival_port: usize,
        now: Instant,
        out: &mut Vec<(usize, Frame)>,
    ) {
        let route = match destination {
            IpAddr::V6(address) if address.is_unicast_link_local() => {
                Some((arrival_port, destination))
            }
            _ => self.route(destination),
        };
        if let Some((egress, next_hop)) = route {
            self.send_ip(egress, next_hop, ip, None, now, out);
        }
    }

    /// Sends an IP packet out of `egress` to the neighbour `next_hop`, resolving its
    /// link-layer address first if need be (the packet then waits). A packet
    /// larger than the port's MTU goes in fragments, or, forwarded (it came in on
    /// `ingress`) and not to be fragmented, is refused with an ICMP error.
    fn send_ip(
        &mut self,
        egress: usize,
        next_hop: IpAddr,
        ip: Vec<u8>,
        ingress: Option<usize>,
        now: Instant,
        out: &mut Vec<(usize, Frame)>,
    ) {
        let sender = if ingress.is_some() { Sender::Router } else { Sender::Origin };
        let mtu = self.ports[egress].mtu;
        match fit(ip, mtu, sender, self.ident) {
            Fit::Whole(ip) => self.send_fitting(egress, next_hop, ip, ingress, now, out),
            Fit::Fragments(fragments) => {
                self.ident = self.ident.wrapping_add(1);
                for fragment in fragments {
                    self.send_fitting(egress, next_hop, fragment, ingress, now, out);
                }
            }
            Fit::TooBig(ip) => {
                if let Some(ingress) = ingress {
                    self.report_too_big(ingress, &ip, mtu, now, out);
                }
            }
        }
    }

    /// [`Router::send_ip`] for a packet that fits the port's link.
    fn send_fitting(
        &mut self,
        egress: usize,
        next_hop: IpAddr,
        ip: Vec<u8>,
        ingress: Option<usize>,
        now: Instant,
        out: &mut Vec<(usize, Frame)>,
    ) {
        if let Some(&mac) = self.neighbors.get(&(egress, next_hop)) {
            out.push((
                egress,
                ethernet_frame(self.ports[egress].mac, mac, ethertype_of(next_hop), &ip),
            ));
            return;
        }
        let pending = self.pending.entry((egress, next_hop)).or_insert_with(|| PendingResolution {
            packets: VecDeque::new(),
            requests_sent: 0,
            next_attempt: now,
        });
        if pending.packets.len() >= MAX_PACKETS_PER_UNRESOLVED_NEIGHBOR {
            pending.packets.pop_front();
        }
        pending.packets.push_back(WaitingPacket { ip, ingress });
        if pending.requests_sent == 0 {
            pending.requests_sent = 1;
            pending.next_attempt = now + RESOLUTION_RETRY_INTERVAL;
            self.solicit(egress, next_hop, out);
        }
    }

    /// Asks who has `target` on `port`: a broadcast ARP request, or a neighbour
    /// solicitation to the target's solicited-node group.
    fn solicit(&self, port: usize, target: IpAddr, out: &mut Vec<(usize, Frame)>) {
        let source = match target {
            IpAddr::V4(target) => self.ipv4_source(port, target).map(IpAddr::V4),
            IpAddr::V6(target) => self.ipv6_source(port, target).map(IpAddr::V6),
        };
        if let Some(frame) = source.and_then(|s| solicitation(self.ports[port].mac, s, target)) {
            out.push((port, frame));
        }
    }

    /// Records that `address` on `port` is at `mac`, and sends what was waiting for it.
    fn learn(
        &mut self,
        port: usize,
        address: IpAddr,
        mac: EthernetAddress,
        out: &mut Vec<(usize, Frame)>,
    ) {
        self.neighbors.insert((port, address), mac);
        if let Some(pending) = self.pending.remove(&(port, address)) {
            let our_mac = self.ports[port].mac;
            for packet in pending.packets {
                out.push((port, ethernet_frame(our_mac, mac, ethertype_of(address), &packet.ip)));
            }
        }
    }

    /// Reports a packet whose next hop never answered: ICMP host unreachable (v4) or
    /// address unreachable (v6).
    fn report_unreachable_neighbor(
        &mut self,
        ingress: usize,
        ip: &[u8],
        now: Instant,
        out: &mut Vec<(usize, Frame)>,
    ) {
        match ip.first().map(|byte| byte >> 4) {
            Some(4) => {
                let code = Icmpv4DstUnreachable::HostUnreachable.into();
                self.send_icmpv4_error(ingress, ip, Icmpv4Message::DstUnreachable, code, now, out);
            }
            Some(6) => {
                let code = Icmpv6DstUnreachable::AddrUnreachable.into();
                self.send_icmpv6_error(ingress, ip, Icmpv6Message::DstUnreachable, code, now, out);
            }
            _ => {}
        }
    }
}

/// The link-scope all-nodes group, `ff02::1`.
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// The link-scope all-routers group, `ff02::2`.
const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

/// The EUI-64 link-local address of a MAC address (RFC 4291 appendix A):
/// `fe80::` + the MAC with its universal/local bit flipped and `ff:fe` in the middle.
pub(super) fn link_local_address(mac: EthernetAddress) -> Ipv6Addr {
    let m = mac.0;
    let mut octets = [0u8; 16];
    octets[0] = 0xfe;
    octets[1] = 0x80;
    octets[8..16].copy_from_slice(&[m[0] ^ 0x02, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]]);
    Ipv6Addr::from(octets)
}

/// An NDP link-layer address option as an Ethernet address, if it is one.
fn ethernet_address(raw: RawHardwareAddress) -> Option<EthernetAddress> {
    let bytes: [u8; 6] = raw.as_bytes().try_into().ok()?;
    let mac = EthernetAddress(bytes);
    (mac.is_unicast() && bytes != [0; 6]).then_some(mac)
}

/// Whether an IPv4 address can be a single host's: not unspecified, limited broadcast,
/// multicast, reserved (240/4) or loopback.
fn is_ipv4_unicast(address: Ipv4Addr) -> bool {
    !(address.is_unspecified()
        || address.is_broadcast()
        || address.is_multicast()
        || address.octets()[0] >= 240
        || address.is_loopback())
}

/// Whether an IPv6 address can be a single host's: not unspecified, multicast or
/// loopback.
fn is_ipv6_unicast(address: Ipv6Addr) -> bool {
    !(address.is_unspecified() || address.is_multicast() || address.is_loopback())
}

/// Whether an ICMPv4 message type is an error message (about which no error is sent).
fn is_icmpv4_error(message_type: u8) -> bool {
    // Destination unreachable, source quench, redirect, time exceeded, parameter problem.
    matches!(message_type, 3 | 4 | 5 | 11 | 12)
}

/// RFC 4443 §2.4 (e): no error about an ICMPv6 error, or a packet from or to a group
/// or unspecified address.
fn may_report_ipv6(offending: &Ipv6Packet<&[u8]>) -> bool {
    if !is_ipv6_unicast(offending.src_addr()) || offending.dst_addr().is_multicast() {
        return false;
    }
    if offending.next_header() == IpProtocol::Icmpv6 {
        // Types 0..=127 are errors.
        return matches!(offending.payload().first(), Some(&message) if message >= 128);
    }
    true
}

/// The EtherType of packets of `address`'s family.
fn ethertype_of(address: IpAddr) -> EthernetProtocol {
    match address {
        IpAddr::V4(_) => EthernetProtocol::Ipv4,
        IpAddr::V6(_) => EthernetProtocol::Ipv6,
    }
}
