//! A host on a switch that speaks IP and nothing above it: the Ethernet face of
//! an endpoint that works on whole IP packets (the uplink's NAT).
//!
//! It answers ARP and neighbour solicitations for its own addresses, learns the
//! link-layer address of whoever sends it IP (the router in front of it), puts
//! fragments back together, and hands each whole IP packet addressed to its MAC
//! to its [`IpEndpoint`]. What the endpoint sends goes to that neighbour, cut to
//! the link's MTU; before anything came from there, the port asks for its
//! gateway's address (ARP, NDP) and holds the packets meanwhile. It never
//! forwards and never routes: the router in front of it does, and every packet
//! it sends goes there.
//!
//! Everything it receives is untrusted: what does not parse is dropped.

use std::net::IpAddr;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use smoltcp::wire::{
    ArpOperation, EthernetAddress, EthernetFrame, EthernetProtocol, Icmpv6Packet, Icmpv6Repr,
    IpProtocol, Ipv6Packet, NdiscNeighborFlags, NdiscRepr, RawHardwareAddress,
};

use super::fragment::{Fit, Reassembly, Sender, fit};
use super::frames::{ethernet_frame, icmpv6_packet, multicast_mac, solicited_node};
use super::link::Frame;
use super::neighbour::{Arp, solicitation};
use super::plug::{Outbox, Plug};
use crate::modules::vunet::cidr::Cidr;

/// What works on the IP packets an [`IpPort`] takes in, and sends its own.
///
/// Packets go out through the `out` of each call, as complete IP packets of
/// either version; the port frames and sends them.
pub trait IpEndpoint {
    /// Takes a whole IP packet (reassembled) addressed to the port's MAC.
    fn packet(&mut self, ip: Vec<u8>, now: Instant, out: &mut Vec<Vec<u8>>);

    /// Runs the endpoint's timers.
    fn poll(&mut self, _now: Instant, _out: &mut Vec<Vec<u8>>) {}

    /// When [`IpEndpoint::poll`] next has work to do.
    fn next_deadline(&self) -> Option<Instant> {
        None
    }

    /// Whether the endpoint reads descriptor `fd` (see [`Plug::watches`]).
    fn watches(&self, _fd: RawFd) -> bool {
        false
    }

    /// Works on `fd`, which turned ready.
    fn ready(&mut self, _fd: RawFd, _now: Instant, _out: &mut Vec<Vec<u8>>) {}

    /// Whether the endpoint could do work at once (see [`Plug::busy`]).
    fn busy(&self) -> bool {
        false
    }
}

/// Hop limit every NDP message carries (RFC 4861 §7.1).
const NDISC_HOP_LIMIT: u8 = 255;
/// How often an unanswered request for the gateway is repeated.
const ASK_AGAIN: Duration = Duration::from_secs(1);
/// How many packets of each version wait for the gateway's address.
const MAX_WAITING: usize = 64;

/// An IP endpoint's port on a switch.
pub struct IpPort<E> {
    mac: EthernetAddress,
    addresses: Vec<Cidr>,
    mtu: usize,
    /// Where packets of each version (IPv4, IPv6) go: the gateway's address
    /// (a router's on this link), and its link-layer address once known.
    gateway: [Gateway; 2],
    reassembly: Reassembly,
    /// The identification of the next IPv4 packet this port fragments.
    ident: u32,
    endpoint: E,
}

/// The neighbour packets of one version go to.
#[derive(Default)]
struct Gateway {
    /// Its address, to ask for it by.
    address: Option<IpAddr>,
    /// Its link-layer address: what it answered, or the sender of the last IP
    /// packet of this version.
    mac: Option<EthernetAddress>,
    /// Packets waiting for `mac`, and when it was last asked for.
    waiting: Vec<Vec<u8>>,
    asked: Option<Instant>,
}

impl<E: IpEndpoint> IpPort<E> {
    /// A port with MAC `mac`, addresses `addresses`, on a link of `mtu`, in front of
    /// `endpoint`; packets go to `gateways` (an address of each version, a
    /// router's on this link).
    pub fn new(
        (mac, addresses, mtu): ([u8; 6], Vec<Cidr>, usize),
        gateways: &[IpAddr],
        endpoint: E,
    ) -> Self {
        let gateway = |v4: bool| Gateway {
            address: gateways.iter().copied().find(|g| g.is_ipv4() == v4),
            ..Gateway::default()
        };
        Self {
            mac: EthernetAddress(mac),
            addresses,
            mtu,
            gateway: [gateway(true), gateway(false)],
            reassembly: Reassembly::default(),
            ident: 0,
            endpoint,
        }
    }

    /// The endpoint behind the port.
    pub fn endpoint(&self) -> &E {
        &self.endpoint
    }

    fn owns(&self, address: IpAddr) -> bool {
        self.addresses.iter().any(|cidr| cidr.ip == address)
    }

    /// Answers ARP requests for the port's addresses, and learns the gateway
    /// from whoever asks or answers.
    fn handle_arp(&mut self, payload: &[u8], out: &mut Outbox) {
        let Some(arp) = Arp::read(payload) else { return };
        if !self.owns(IpAddr::V4(arp.target_ip)) || !arp.sender_mac.is_unicast() {
            return;
        }
        self.learn(0, arp.sender_mac, out);
        if arp.operation == ArpOperation::Request {
            out.send(arp.reply_from(self.mac));
        }
    }

    /// Answers a neighbour solicitation for one of the port's addresses; true
    /// if `ip` was one (it goes no further).
    fn answer_solicitation(
        &mut self,
        ip: &[u8],
        link_source: EthernetAddress,
        out: &mut Outbox,
    ) -> bool {
        let Ok(packet) = Ipv6Packet::new_checked(ip) else { return false };
        if packet.next_header() != IpProtocol::Icmpv6 || packet.hop_limit() != NDISC_HOP_LIMIT {
            return false;
        }
        let (source, destination) = (packet.src_addr(), packet.dst_addr());
        let Ok(icmp) = Icmpv6Packet::new_checked(packet.payload()) else { return false };
        let target_addr = match Icmpv6Repr::parse(&source, &destination, &icmp, &Default::default())
        {
            Ok(Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit { target_addr, .. })) => target_addr,
            Ok(Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert { target_addr, lladdr, .. })) => {
                let answered = self.gateway[1].address == Some(IpAddr::V6(target_addr));
                let given = lladdr.map(|raw| raw.as_bytes().to_vec());
                let mac = match given.as_deref() {
                    Some(bytes) if bytes.len() == 6 => EthernetAddress::from_bytes(bytes),
                    _ => link_source,
                };
                if answered && mac.is_unicast() {
                    self.learn(1, mac, out);
                }
                return true;
            }
            _ => return false,
        };
        let addressed = destination == target_addr || destination == solicited_node(target_addr);
        if !addressed || !self.owns(IpAddr::V6(target_addr)) || source.is_unspecified() {
            return true;
        }
        self.learn(1, link_source, out);
        let flags = NdiscNeighborFlags::SOLICITED | NdiscNeighborFlags::OVERRIDE;
        let advert = Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
            flags,
            target_addr,
            lladdr: Some(RawHardwareAddress::from(self.mac)),
        });
        let answer = icmpv6_packet(target_addr, source, NDISC_HOP_LIMIT, &advert);
        out.send(ethernet_frame(self.mac, link_source, EthernetProtocol::Ipv6, &answer));
        true
    }

    /// Frames and sends the endpoint's packets, each to the gateway of its
    /// version, cut to the link's MTU; a packet for a gateway not known yet
    /// waits for its answer.
    fn send(&mut self, packets: Vec<Vec<u8>>, now: Instant, out: &mut Outbox) {
        for ip in packets {
            let version = match ip.first().map(|b| b >> 4) {
                Some(4) => 0,
                Some(6) => 1,
                _ => continue,
            };
            match self.gateway[version].mac {
                Some(mac) => self.send_to(mac, ip, out),
                None => {
                    let gateway = &mut self.gateway[version];
                    if gateway.waiting.len() < MAX_WAITING {
                        gateway.waiting.push(ip);
                    }
                    self.ask(version, now, out);
                }
            }
        }
    }

    /// Sends IP packet `ip` to `mac`, in fragments if it must.
    fn send_to(&mut self, mac: EthernetAddress, ip: Vec<u8>, out: &mut Outbox) {
        let ethertype =
            if ip[0] >> 4 == 4 { EthernetProtocol::Ipv4 } else { EthernetProtocol::Ipv6 };
        self.ident = self.ident.wrapping_add(1);
        let pieces = match fit(ip, self.mtu, Sender::Origin, self.ident) {
            Fit::Whole(ip) => vec![ip],
            Fit::Fragments(pieces) => pieces,
            Fit::TooBig(_) => return,
        };
        for piece in pieces {
            out.send(ethernet_frame(self.mac, mac, ethertype, &piece));
        }
    }

    /// Asks for the link-layer address of the gateway of `version`, unless it
    /// was asked for within [`ASK_AGAIN`].
    fn ask(&mut self, version: usize, now: Instant, out: &mut Outbox) {
        let gateway = &mut self.gateway[version];
        let Some(target) = gateway.address else { return };
        if gateway.asked.is_some_and(|at| now < at + ASK_AGAIN) {
            return;
        }
        gateway.asked = Some(now);
        let own = self.addresses.iter().find(|c| c.ip.is_ipv4() == target.is_ipv4());
        if let Some(frame) = own.and_then(|own| solicitation(self.mac, own.ip, target)) {
            out.send(frame);
        }
    }

    /// The gateway of `version` is at `mac`: what waited for it goes.
    fn learn(&mut self, version: usize, mac: EthernetAddress, out: &mut Outbox) {
        let gateway = &mut self.gateway[version];
        gateway.mac = Some(mac);
        gateway.asked = None;
        for ip in std::mem::take(&mut gateway.waiting) {
            self.send_to(mac, ip, out);
        }
    }

    fn is_for_us(&self, destination: EthernetAddress) -> bool {
        destination == self.mac
            || destination.is_broadcast()
            || self.addresses.iter().any(|cidr| match cidr.ip {
                IpAddr::V6(ip) => destination == multicast_mac(solicited_node(ip)),
                IpAddr::V4(_) => false,
            })
    }
}

impl<E: IpEndpoint> Plug for IpPort<E> {
    fn deliver(&mut self, frame: Frame, now: Instant, out: &mut Outbox) {
        let Ok(ethernet) = EthernetFrame::new_checked(&frame[..]) else { return };
        let (destination, source) = (ethernet.dst_addr(), ethernet.src_addr());
        if !self.is_for_us(destination) || !source.is_unicast() {
            return;
        }
        let ethertype = ethernet.ethertype();
        let payload = ethernet.payload();
        match ethertype {
            EthernetProtocol::Arp => return self.handle_arp(payload, out),
            EthernetProtocol::Ipv6 if self.answer_solicitation(payload, source, out) => {
                return;
            }
            EthernetProtocol::Ipv4 | EthernetProtocol::Ipv6 if destination == self.mac => {}
            _ => return,
        }
        let version = usize::from(ethertype == EthernetProtocol::Ipv6);
        self.learn(version, source, out);
        let Some(ip) = self.reassembly.take(payload.to_vec(), now) else { return };
        let mut packets = Vec::new();
        self.endpoint.packet(ip, now, &mut packets);
        self.send(packets, now, out);
    }

    fn poll(&mut self, now: Instant, out: &mut Outbox) {
        let mut packets = Vec::new();
        self.endpoint.poll(now, &mut packets);
        self.send(packets, now, out);
        for version in 0..2 {
            if !self.gateway[version].waiting.is_empty() {
                self.ask(version, now, out);
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let asking = self.gateway.iter().filter(|g| !g.waiting.is_empty());
        let again = asking.filter_map(|g| Some(g.asked? + ASK_AGAIN)).min();
        [self.endpoint.next_deadline(), again].into_iter().flatten().min()
    }

    fn watches(&self, fd: RawFd) -> bool {
        self.endpoint.watches(fd)
    }

    fn ready(&mut self, fd: RawFd, now: Instant, out: &mut Outbox) {
        let mut packets = Vec::new();
        self.endpoint.ready(fd, now, &mut packets);
        self.send(packets, now, out);
    }

    fn busy(&self) -> bool {
        self.endpoint.busy()
    }
}
