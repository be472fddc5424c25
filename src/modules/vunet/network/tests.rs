//! Tests of the network as a whole: stacks are played by hand-built frames, and what
//! they receive is parsed back with smoltcp (checksums verified).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, Icmpv4Packet, Icmpv4Repr, Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv4Packet,
    Ipv4Repr, Ipv6Packet, Ipv6Repr, NdiscNeighborFlags, NdiscRepr, RawHardwareAddress, UdpPacket,
    UdpRepr,
};

use super::frames::solicited_node;
use super::router::{MAX_PACKETS_PER_UNRESOLVED_NEIGHBOR, link_local_address};
use super::*;
use crate::modules::vunet::cidr::Cidr;

const GW_MAC_0: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x01];
const GW_MAC_1: [u8; 6] = [0x02, 0, 0, 0, 0x02, 0x01];
const GW_V4_0: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 1);
const GW_V4_1: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 1);
const GW_V6_0: Ipv6Addr = Ipv6Addr::new(0xfd01, 0, 0, 0, 0, 0, 0, 1);
const GW_V6_1: Ipv6Addr = Ipv6Addr::new(0xfd02, 0, 0, 0, 0, 0, 0, 1);

/// A stack played by the test: its link and addresses.
#[derive(Clone, Copy)]
struct Host {
    link: LinkId,
    mac: [u8; 6],
    v4: Ipv4Addr,
    v6: Ipv6Addr,
}

/// Two subnets (`sw0`: 10.0.1.0/24 + fd01::/64, `sw1`: 10.0.2.0/24 + fd02::/64)
/// joined by router `gw`, with host `a` on sw0 and host `b` on sw1.
struct Lab {
    net: Network,
    a: Host,
    b: Host,
    now: Instant,
}

fn lab_with_captures(capture_dir: Option<PathBuf>) -> Lab {
    lab_with(capture_dir, vec![])
}

/// The lab with `routes` in the router besides its two subnets.
fn lab_with(capture_dir: Option<PathBuf>, routes: Vec<StaticRoute>) -> Lab {
    let mut net = Network::new(capture_dir);
    let sw0 = net.add_switch("sw0");
    let sw1 = net.add_switch("sw1");
    let a_link = net.attach(sw0, "a/eth0", None).unwrap();
    let b_link = net.attach(sw1, "b/eth0", None).unwrap();
    net.add_router(
        "gw",
        vec![
            RouterInterface {
                switch: sw0,
                mac: GW_MAC_0,
                addresses: vec![Cidr::new(GW_V4_0.into(), 24), Cidr::new(GW_V6_0.into(), 64)],
                capture: None,
                mtu: 1500,
            },
            RouterInterface {
                switch: sw1,
                mac: GW_MAC_1,
                addresses: vec![Cidr::new(GW_V4_1.into(), 24), Cidr::new(GW_V6_1.into(), 64)],
                capture: None,
                mtu: 1500,
            },
        ],
        routes,
    )
    .unwrap();
    let a = Host {
        link: a_link,
        mac: [0x02, 0, 0, 0, 0x01, 0x0a],
        v4: Ipv4Addr::new(10, 0, 1, 10),
        v6: Ipv6Addr::new(0xfd01, 0, 0, 0, 0, 0, 0, 0x10),
    };
    let b = Host {
        link: b_link,
        mac: [0x02, 0, 0, 0, 0x02, 0x0b],
        v4: Ipv4Addr::new(10, 0, 2, 20),
        v6: Ipv6Addr::new(0xfd02, 0, 0, 0, 0, 0, 0, 0x20),
    };
    Lab { net, a, b, now: Instant::now() }
}

fn lab() -> Lab {
    lab_with_captures(None)
}

impl Lab {
    fn send(&mut self, host: Host, frame: Frame) {
        self.net.send(host.link, frame, self.now);
    }

    fn take_all(&mut self, host: Host) -> Vec<Frame> {
        std::iter::from_fn(|| self.net.receive(host.link)).collect()
    }

    /// Has the host announce itself to the router by ARP and NDP, so that the router
    /// knows its link-layer address; swallows the answers.
    fn introduce(&mut self, host: Host, gateway_v4: Ipv4Addr, gateway_v6: Ipv6Addr) {
        self.send(host, arp_request(host, gateway_v4));
        self.send(host, neighbor_solicitation(host, host.v6, gateway_v6));
        let answers = self.take_all(host);
        assert_eq!(answers.len(), 2, "ARP reply and neighbour advertisement expected");
    }
}

fn ethernet(
    source: [u8; 6],
    destination: [u8; 6],
    ethertype: EthernetProtocol,
    payload: &[u8],
) -> Frame {
    let mut frame = vec![0; 14 + payload.len()];
    let mut ethernet = EthernetFrame::new_unchecked(&mut frame[..]);
    EthernetRepr {
        src_addr: EthernetAddress(source),
        dst_addr: EthernetAddress(destination),
        ethertype,
    }
    .emit(&mut ethernet);
    ethernet.payload_mut().copy_from_slice(payload);
    frame
}

fn arp(
    host: Host,
    operation: ArpOperation,
    target_mac: [u8; 6],
    target: Ipv4Addr,
    to: [u8; 6],
) -> Frame {
    let repr = ArpRepr::EthernetIpv4 {
        operation,
        source_hardware_addr: EthernetAddress(host.mac),
        source_protocol_addr: host.v4,
        target_hardware_addr: EthernetAddress(target_mac),
        target_protocol_addr: target,
    };
    let mut payload = vec![0; repr.buffer_len()];
    repr.emit(&mut ArpPacket::new_unchecked(&mut payload[..]));
    ethernet(host.mac, to, EthernetProtocol::Arp, &payload)
}

fn arp_request(host: Host, target: Ipv4Addr) -> Frame {
    arp(host, ArpOperation::Request, [0; 6], target, [0xff; 6])
}

/// An IPv4 packet (UDP, or ICMP echo request) from `source` to `destination`.
fn ipv4_packet(source: Ipv4Addr, destination: Ipv4Addr, ttl: u8, echo: bool) -> Vec<u8> {
    let checksums = ChecksumCapabilities::default();
    let data = b"hello, router";
    let (protocol, transport): (IpProtocol, Vec<u8>) = if echo {
        let icmp = Icmpv4Repr::EchoRequest { ident: 0x1234, seq_no: 7, data };
        let mut bytes = vec![0; icmp.buffer_len()];
        icmp.emit(&mut Icmpv4Packet::new_unchecked(&mut bytes[..]), &checksums);
        (IpProtocol::Icmp, bytes)
    } else {
        let udp = UdpRepr { src_port: 4000, dst_port: 5000 };
        let mut bytes = vec![0; udp.header_len() + data.len()];
        udp.emit(
            &mut UdpPacket::new_unchecked(&mut bytes[..]),
            &source.into(),
            &destination.into(),
            data.len(),
            |payload| payload.copy_from_slice(data),
            &checksums,
        );
        (IpProtocol::Udp, bytes)
    };
    let header = Ipv4Repr {
        src_addr: source,
        dst_addr: destination,
        next_header: protocol,
        payload_len: transport.len(),
        hop_limit: ttl,
    };
    let mut packet = vec![0; header.buffer_len() + transport.len()];
    header.emit(&mut Ipv4Packet::new_unchecked(&mut packet[..]), &checksums);
    packet[header.buffer_len()..].copy_from_slice(&transport);
    packet
}

fn icmpv6_bytes(
    source: Ipv6Addr,
    destination: Ipv6Addr,
    hop_limit: u8,
    message: &Icmpv6Repr,
) -> Vec<u8> {
    super::frames::icmpv6_packet(source, destination, hop_limit, message)
}

/// An IPv6 packet (UDP, or ICMPv6 echo request).
fn ipv6_packet(source: Ipv6Addr, destination: Ipv6Addr, hop_limit: u8, echo: bool) -> Vec<u8> {
    let data = b"hello, router";
    if echo {
        let echo = Icmpv6Repr::EchoRequest { ident: 0x4321, seq_no: 9, data };
        return icmpv6_bytes(source, destination, hop_limit, &echo);
    }
    let udp = UdpRepr { src_port: 4000, dst_port: 5000 };
    let header = Ipv6Repr {
        src_addr: source,
        dst_addr: destination,
        next_header: IpProtocol::Udp,
        payload_len: udp.header_len() + data.len(),
        hop_limit,
    };
    let mut packet = vec![0; header.buffer_len() + header.payload_len];
    header.emit(&mut Ipv6Packet::new_unchecked(&mut packet[..]));
    udp.emit(
        &mut UdpPacket::new_unchecked(&mut packet[40..]),
        &source.into(),
        &destination.into(),
        data.len(),
        |payload| payload.copy_from_slice(data),
        &ChecksumCapabilities::default(),
    );
    packet
}

fn neighbor_solicitation(host: Host, source: Ipv6Addr, target: Ipv6Addr) -> Frame {
    let group = solicited_node(target);
    let ns = Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
        target_addr: target,
        lladdr: Some(RawHardwareAddress::from_bytes(&host.mac)),
    });
    let ip = icmpv6_bytes(source, group, 255, &ns);
    let g = group.octets();
    ethernet(host.mac, [0x33, 0x33, g[12], g[13], g[14], g[15]], EthernetProtocol::Ipv6, &ip)
}

/// The IPv4 packet in a frame (which must be one), its header checksum verified.
fn ipv4_of(frame: &[u8]) -> Ipv4Packet<&[u8]> {
    let ethernet = EthernetFrame::new_checked(frame).unwrap();
    assert_eq!(ethernet.ethertype(), EthernetProtocol::Ipv4);
    let packet = Ipv4Packet::new_checked(&frame[14..]).unwrap();
    assert!(packet.verify_checksum());
    packet
}

fn ipv6_of(frame: &[u8]) -> Ipv6Packet<&[u8]> {
    let ethernet = EthernetFrame::new_checked(frame).unwrap();
    assert_eq!(ethernet.ethertype(), EthernetProtocol::Ipv6);
    Ipv6Packet::new_checked(&frame[14..]).unwrap()
}

/// The ICMPv4 message in a frame, its checksum verified, and its parsed form when smoltcp
/// can parse it: echo messages. (smoltcp refuses errors with the 8-byte payload quote of
/// RFC 792, as it wants the whole quoted packet; their bytes are checked instead.)
fn icmpv4_of(frame: &[u8]) -> (Ipv4Packet<&[u8]>, &[u8], Option<Icmpv4Repr<'_>>) {
    let ip = ipv4_of(frame);
    assert_eq!(ip.next_header(), IpProtocol::Icmp);
    let message = &frame[14 + usize::from(ip.header_len())..];
    let icmp = Icmpv4Packet::new_checked(message).unwrap();
    assert!(icmp.verify_checksum());
    (ip, message, Icmpv4Repr::parse(&icmp, &ChecksumCapabilities::default()).ok())
}

/// The ICMPv6 message in a frame, its checksum verified by the parse.
fn icmpv6_of(frame: &[u8]) -> (Ipv6Packet<&[u8]>, Icmpv6Repr<'_>) {
    let ip = ipv6_of(frame);
    assert_eq!(ip.next_header(), IpProtocol::Icmpv6);
    let icmp = Icmpv6Packet::new_checked(&frame[54..]).unwrap();
    let (source, destination) = (ip.src_addr(), ip.dst_addr());
    let repr = Icmpv6Repr::parse(&source, &destination, &icmp, &ChecksumCapabilities::default())
        .expect("valid ICMPv6 with a correct checksum");
    (ip, repr)
}

/// The raw ICMP (v4 or v6) type and code of a frame carrying one.
fn icmp_type_code(frame: &[u8]) -> (u8, u8) {
    let ethernet = EthernetFrame::new_checked(frame).unwrap();
    let offset = match ethernet.ethertype() {
        EthernetProtocol::Ipv4 => 14 + usize::from(ipv4_of(frame).header_len()),
        _ => 54,
    };
    (frame[offset], frame[offset + 1])
}

fn is_arp_request_for(frame: &[u8], target: Ipv4Addr) -> bool {
    let Ok(ethernet) = EthernetFrame::new_checked(frame) else { return false };
    if ethernet.ethertype() != EthernetProtocol::Arp {
        return false;
    }
    let packet = ArpPacket::new_checked(&frame[14..]).unwrap();
    matches!(
        ArpRepr::parse(&packet).unwrap(),
        ArpRepr::EthernetIpv4 { operation: ArpOperation::Request, target_protocol_addr, .. }
            if target_protocol_addr == target
    )
}

#[test]
fn switch_learns_and_floods_between_stacks() {
    let mut net = Network::new(None);
    let sw = net.add_switch("sw0");
    let links: Vec<LinkId> =
        (0..3).map(|i| net.attach(sw, &format!("s{i}/eth0"), None).unwrap()).collect();
    let mac = |i: u8| [0x02, 0, 0, 0, 0, i];
    let now = Instant::now();

    // Unknown destination: flooded to the two other parties, not back to the sender.
    net.send(links[0], ethernet(mac(0), mac(1), EthernetProtocol::Ipv4, &[0; 46]), now);
    assert!(!net.has_frames(links[0]));
    assert!(net.has_frames(links[1]) && net.has_frames(links[2]));
    net.receive(links[1]).unwrap();
    net.receive(links[2]).unwrap();

    // The answer goes to the learned port only.
    net.send(links[1], ethernet(mac(1), mac(0), EthernetProtocol::Ipv4, &[0; 46]), now);
    assert_eq!(net.receive(links[0]).unwrap()[6..12], mac(1));
    assert!(!net.has_frames(links[2]));

    // Broadcast reaches everyone else.
    net.send(links[2], ethernet(mac(2), [0xff; 6], EthernetProtocol::Arp, &[0; 46]), now);
    assert!(net.has_frames(links[0]) && net.has_frames(links[1]) && !net.has_frames(links[2]));

    assert_eq!(
        net.counters(links[0]),
        Counters { rx_packets: 2, rx_bytes: 120, tx_packets: 1, tx_bytes: 60, dropped: 0 }
    );
    assert_eq!(net.switch_of(links[1]), "sw0");
    assert_eq!(net.link_name(links[2]), "s2/eth0");
    assert_eq!(net.find_link("s1/eth0"), Some(links[1]));
    assert!(net.attach(sw, "s1/eth0", None).is_err(), "link names are unique");
    assert!(net.attach(SwitchId(9), "s9/eth0", None).is_err());
}

/// A plug fed by a pipe of its own: what it reads there it sends as one
/// broadcast frame; it is busy while a read filled its buffer.
struct PipePlug {
    pipe: std::os::fd::OwnedFd,
    full: bool,
}

impl Plug for PipePlug {
    fn deliver(&mut self, _frame: Frame, _now: Instant, _out: &mut Outbox) {}

    fn watches(&self, fd: std::os::fd::RawFd) -> bool {
        fd == std::os::fd::AsRawFd::as_raw_fd(&self.pipe)
    }

    fn ready(&mut self, _fd: std::os::fd::RawFd, _now: Instant, out: &mut Outbox) {
        let mut buf = [0u8; 8];
        if let Ok(n) = nix::unistd::read(&self.pipe, &mut buf) {
            self.full = n == buf.len();
            out.send(ethernet([2, 0, 0, 0, 0, 9], [0xff; 6], EthernetProtocol::Ipv4, &buf[..n]));
        }
    }

    fn busy(&self) -> bool {
        self.full
    }
}

#[test]
fn a_plug_that_watches_a_descriptor_sends_what_it_reads_there() {
    let mut net = Network::new(None);
    let sw0 = net.add_switch("sw0");
    let stack = net.attach(sw0, "a/eth0", None).unwrap();
    let (read_end, write_end) = nix::unistd::pipe().unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&read_end);
    let plug = PipePlug { pipe: read_end, full: false };
    net.plug(sw0, "uplink", Box::new(plug), None).unwrap();
    let now = Instant::now();
    nix::unistd::write(&write_end, b"12345678").unwrap();
    // Another descriptor is none of its business.
    net.ready(&[fd + 100], now);
    assert!(net.receive(stack).is_none());
    net.ready(&[fd], now);
    let frame = net.receive(stack).expect("the plug's frame reached the stack");
    assert_eq!(&frame[14..], b"12345678");
    assert!(net.busy(), "a full read may have left more");
    nix::unistd::write(&write_end, b"end").unwrap();
    net.ready(&[fd], now);
    assert_eq!(&net.receive(stack).unwrap()[14..], b"end");
    assert!(!net.busy());
}

#[test]
fn a_full_receive_queue_drops_and_counts() {
    let mut net = Network::new(None);
    let sw = net.add_switch("sw0");
    let sender = net.attach(sw, "tx/eth0", None).unwrap();
    let receiver = net.attach(sw, "rx/eth0", None).unwrap();
    let now = Instant::now();
    for _ in 0..RECEIVE_QUEUE_LIMIT + 5 {
        net.send(
            sender,
            ethernet([2, 0, 0, 0, 0, 1], [0xff; 6], EthernetProtocol::Ipv4, &[0; 46]),
            now,
        );
    }
    let counters = net.counters(receiver);
    assert_eq!(counters.rx_packets, RECEIVE_QUEUE_LIMIT as u64);
    assert_eq!(counters.dropped, 5);
    assert_eq!(net.queued_frames(receiver), RECEIVE_QUEUE_LIMIT);
}

#[test]
fn router_answers_arp_for_its_address() {
    let mut lab = lab();
    let a = lab.a;
    lab.send(a, arp_request(a, GW_V4_0));
    // A request for somebody else's address is ignored.
    lab.send(a, arp_request(a, Ipv4Addr::new(10, 0, 1, 77)));
    // So is one for the router's address on another interface.
    lab.send(a, arp_request(a, GW_V4_1));
    let frames = lab.take_all(a);
    assert_eq!(frames.len(), 1);
    let ethernet = EthernetFrame::new_checked(&frames[0][..]).unwrap();
    assert_eq!(ethernet.dst_addr(), EthernetAddress(a.mac));
    assert_eq!(ethernet.src_addr(), EthernetAddress(GW_MAC_0));
    let reply = ArpRepr::parse(&ArpPacket::new_checked(ethernet.payload()).unwrap()).unwrap();
    assert_eq!(
        reply,
        ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Reply,
            source_hardware_addr: EthernetAddress(GW_MAC_0),
            source_protocol_addr: GW_V4_0,
            target_hardware_addr: EthernetAddress(a.mac),
            target_protocol_addr: a.v4,
        }
    );
    let router_link = lab.net.find_link("gw/sw0").unwrap();
    assert_eq!(lab.net.router_of(router_link), Some("gw"));
    assert_eq!(lab.net.counters(router_link).rx_packets, 3);
    assert_eq!(lab.net.counters(router_link).tx_packets, 1);
}

#[test]
fn router_answers_neighbor_solicitations_with_valid_advertisements() {
    let mut lab = lab();
    let a = lab.a;
    let gw_link_local = link_local_address(EthernetAddress(GW_MAC_0));
    assert_eq!(gw_link_local, "fe80::ff:fe00:101".parse::<Ipv6Addr>().unwrap());
    let a_link_local = link_local_address(EthernetAddress(a.mac));
    for (source, target) in [(a.v6, GW_V6_0), (a_link_local, gw_link_local)] {
        lab.send(a, neighbor_solicitation(a, source, target));
        let frames = lab.take_all(a);
        assert_eq!(frames.len(), 1, "one advertisement for {target}");
        assert_eq!(frames[0][0..6], a.mac);
        let (ip, message) = icmpv6_of(&frames[0]);
        assert_eq!((ip.src_addr(), ip.dst_addr(), ip.hop_limit()), (target, source, 255));
        let Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert { flags, target_addr, lladdr }) = message
        else {
            panic!("not an advertisement: {message:?}");
        };
        assert_eq!(target_addr, target);
        assert_eq!(lladdr.unwrap().as_bytes(), GW_MAC_0);
        assert!(flags.contains(
            NdiscNeighborFlags::SOLICITED
                | NdiscNeighborFlags::OVERRIDE
                | NdiscNeighborFlags::ROUTER
        ));
    }
    // Not the router's address on this link: silence.
    lab.send(a, neighbor_solicitation(a, a.v6, GW_V6_1));
    assert!(lab.take_all(a).is_empty());
}

#[test]
fn router_answers_echo_requests_v4_and_v6() {
    let mut lab = lab();
    let a = lab.a;
    lab.introduce(a, GW_V4_0, GW_V6_0);

    // IPv4, to the router's address on the far side too.
    for target in [GW_V4_0, GW_V4_1] {
        lab.send(
            a,
            ethernet(a.mac, GW_MAC_0, EthernetProtocol::Ipv4, &ipv4_packet(a.v4, target, 64, true)),
        );
        let frames = lab.take_all(a);
        assert_eq!(frames.len(), 1);
        let (ip, _, message) = icmpv4_of(&frames[0]);
        assert_eq!((ip.src_addr(), ip.dst_addr(), ip.hop_limit()), (target, a.v4, 64));
        assert_eq!(
            message.unwrap(),
            Icmpv4Repr::EchoReply { ident: 0x1234, seq_no: 7, data: b"hello, router" }
        );
    }

    // IPv6, global and link-local.
    let a_link_local = link_local_address(EthernetAddress(a.mac));
    let gw_link_local = link_local_address(EthernetAddress(GW_MAC_0));
    lab.send(a, neighbor_solicitation(a, a_link_local, gw_link_local));
    lab.take_all(a);
    for (source, target) in [(a.v6, GW_V6_0), (a.v6, GW_V6_1), (a_link_local, gw_link_local)] {
        lab.send(
            a,
            ethernet(
                a.mac,
                GW_MAC_0,
                EthernetProtocol::Ipv6,
                &ipv6_packet(source, target, 64, true),
            ),
        );
        let frames = lab.take_all(a);
        assert_eq!(frames.len(), 1, "one echo reply from {target}");
        let (ip, message) = icmpv6_of(&frames[0]);
        assert_eq!((ip.src_addr(), ip.dst_addr(), ip.hop_limit()), (target, source, 64));
        assert_eq!(
            message,
            Icmpv6Repr::EchoReply { ident: 0x4321, seq_no: 9, data: b"hello, router" }
        );
    }
}

#[test]
fn router_forwards_between_switches_decrementing_ttl() {
    let mut lab = lab();
    let (a, b) = (lab.a, lab.b);
    lab.introduce(a, GW_V4_0, GW_V6_0);
    lab.introduce(b, GW_V4_1, GW_V6_1);

    let sent = ipv4_packet(a.v4, b.v4, 64, false);
    lab.send(a, ethernet(a.mac, GW_MAC_0, EthernetProtocol::Ipv4, &sent));
    let frames = lab.take_all(b);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0][0..6], b.mac);
    assert_eq!(frames[0][6..12], GW_MAC_1);
    let ip = ipv4_of(&frames[0]);
    assert_eq!((ip.src_addr(), ip.dst_addr(), ip.hop_limit()), (a.v4, b.v4, 63));
    assert_eq!(ip.payload(), Ipv4Packet::new_checked(&sent[..]).unwrap().payload());

    let sent = ipv6_packet(a.v6, b.v6, 64, false);
    lab.send(a, ethernet(a.mac, GW_MAC_0, EthernetProtocol::Ipv6, &sent));
    let frames = lab.take_all(b);
    assert_eq!(frames.len(), 1);
    let ip = ipv6_of(&frames[0]);
    assert_eq!((ip.src_addr(), ip.dst_addr(), ip.hop_limit()), (a.v6, b.v6, 63));
    assert_eq!(&frames[0][14 + 8..], &sent[8..], "only the hop limit changes");

    // And back (the router learned a when it introduced itself).
    lab.send(
        b,
        ethernet(b.mac, GW_MAC_1, EthernetProtocol::Ipv4, &ipv4_packet(b.v4, a.v4, 2, false)),
    );
    let frames = lab.take_all(a);
    assert_eq!(frames.len(), 1);
    assert_eq!(ipv4_of(&frames[0]).hop_limit(), 1);
    assert!(lab.take_all(b).is_empty());
}

#[test]
fn expiring_ttl_gets_time_exceeded_quoting_the_original() {
    let mut lab = lab();
    let (a, b) = (lab.a, lab.b);
    lab.introduce(a, GW_V4_0, GW_V6_0);

    let sent = ipv4_packet(a.v4, b.v4, 1, false);
    lab.send(a, ethernet(a.mac, GW_MAC_0, EthernetProtocol::Ipv4, &sent));
    assert!(lab.take_all(b).is_empty());
    let frames = lab.take_all(a);
    assert_eq!(frames.len(), 1);
    assert_eq!(icmp_type_code(&frames[0]), (11, 0));
    let (ip, message, _) = icmpv4_of(&frames[0]);
    assert_eq!((ip.src_addr(), ip.dst_addr(), ip.hop_limit()), (GW_V4_0, a.v4, 64));
    // The quote: the original header, byte for byte, and 8 bytes of its payload.
    assert_eq!(&message[4..8], &[0; 4]);
    assert_eq!(&message[8..], &sent[..20 + 8]);

    let sent = ipv6_packet(a.v6, b.v6, 1, false);
    lab.send(a, ethernet(a.mac, GW_MAC_0, EthernetProtocol::Ipv6, &sent));
    assert!(lab.take_all(b).is_empty());
    let frames = lab.take_all(a);
    assert_eq!(frames.len(), 1);
    assert_eq!(icmp_type_code(&frames[0]), (3, 0));
    let (ip, message) = icmpv6_of(&frames[0]);
    assert_eq!((ip.src_addr(), ip.dst_addr(), ip.hop_limit()), (GW_V6_0, a.v6, 64));
    assert!(matches!(message, Icmpv6Repr::TimeExceeded { .. }));
    assert_eq!(&ip.payload()[8..], &sent[..], "the whole original fits");

    // No error about an ICMP error.
    let mut error = ipv4_packet(a.v4, b.v4, 1, true);
    error[20] = 11; // make the echo request look like a time-exceeded message
    lab.send(a, ethernet(a.mac, GW_MAC_0, EthernetProtocol::Ipv4, &error));
    assert!(lab.take_all(a).is_empty());
}

#[test]
fn ipv6_time_exceeded_quote_fits_in_1280_bytes() {
    let mut lab = lab();
    let (a, b) = (lab.a, lab.b);
    lab.introduce(a, GW_V4_0, GW_V6_0);
    let header = Ipv6Repr {
        src_addr: a.v6,
        dst_addr: b.v6,
        next_header: IpProtocol::Udp,
        payload_len: 1400,
        hop_limit: 1,
    };
    let mut sent = vec![0x5a; 1440];
    header.emit(&mut Ipv6Packet::new_unchecked(&mut sent[..]));
    lab.send(a, ethernet(a.mac, GW_MAC_0, EthernetProtocol::Ipv6, &sent));
    let frames = lab.take_all(a);
    assert_eq!(frames.len(), 1);
    let (ip, _) = icmpv6_of(&frames[0]);
    assert_eq!(ip.total_len(), 1280);
    assert_eq!(&ip.payload()[8..], &sent[..1280 - 48]);
}

#[test]
fn no_route_gets_net_unreachable() {
    let mut lab = lab();
    let a = lab.a;
    lab.introduce(a, GW_V4_0, GW_V6_0);
    let lost = Ipv4Addr::new(192, 0, 2, 1);
    lab.send(
        a,
        ethernet(a.mac, GW_MAC_0, EthernetProtocol::Ipv4, &ipv4_packet(a.v4, lost, 64, false)),
    );
    let frames = lab.take_all(a);
    assert_eq!(frames.len(), 1);
    assert_eq!(icmp_type_code(&frames[0]), (3, 0));
    let (ip, message, _) = icmpv4_of(&frames[0]);
    assert_eq!(ip.src_addr(), GW_V4_0);
    assert_eq!(&message[8..], &ipv4_packet(a.v4, lost, 64, false)[..28]);

    let lost = "2001:db8::1".parse().unwrap();
    lab.send(
        a,
        ethernet(a.mac, GW_MAC_0, EthernetProtocol::Ipv6, &ipv6_packet(a.v6, lost, 64, false)),
    );
    let frames = lab.take_all(a);
    assert_eq!(frames.len(), 1);
    assert_eq!(icmp_type_code(&frames[0]), (1, 0));
    icmpv6_of(&frames[0]);
}

#[test]
fn static_routes_lead_through_their_gateway_by_longest_prefix() {
    let b_v4 = Ipv4Addr::new(10, 0, 2, 20);
    let b_v6 = Ipv6Addr::new(0xfd02, 0, 0, 0, 0, 0, 0, 0x20);
    let a_v4 = Ipv4Addr::new(10, 0, 1, 10);
    let route = |to: &str, via: IpAddr| StaticRoute { to: Cidr::parse(to).unwrap(), via };
    let mut lab = lab_with(
        None,
        vec![
            route("0.0.0.0/0", b_v4.into()),
            route("::/0", b_v6.into()),
            // Narrower than a's own subnet: through b.
            route("10.0.1.128/25", b_v4.into()),
            // As wide as b's subnet: the connected subnet wins.
            route("10.0.2.0/24", a_v4.into()),
        ],
    );
    let (a, b) = (lab.a, lab.b);
    lab.introduce(a, GW_V4_0, GW_V6_0);
    lab.introduce(b, GW_V4_1, GW_V6_1);
    for far in [Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(10, 0, 1, 200), b.v4] {
        lab.send(
            a,
            ethernet(a.mac, GW_MAC_0, EthernetProtocol::Ipv4, &ipv4_packet(a.v4, far, 64, false)),
        );
        let frames = lab.take_all(b);
        assert_eq!(frames.len(), 1, "{far} goes out towards b");
        assert_eq!(frames[0][0..6], b.mac, "{far}: to the gateway's address");
        assert_eq!((ipv4_of(&frames[0]).dst_addr(), ipv4_of(&frames[0]).hop_limit()), (far, 63));
        assert!(lab.take_all(a).is_empty(), "{far}: no error");
    }
    let far: Ipv6Addr = "2001:db8::1".parse().unwrap();
    lab.send(
        a,
        ethernet(a.mac, GW_MAC_0, EthernetProtocol::Ipv6, &ipv6_packet(a.v6, far, 64, false)),
    );
    let frames = lab.take_all(b);
    assert_eq!(frames.len(), 1);
    assert_eq!((&frames[0][0..6], ipv6_of(&frames[0]).dst_addr()), (&b.mac[..], far));
}

#[test]
fn unresolved_next_hop_is_resolved_then_the_packet_forwarded() {
    let mut lab = lab();
    let (a, b) = (lab.a, lab.b);
    lab.introduce(a, GW_V4_0, GW_V6_0);

    let sent = ipv4_packet(a.v4, b.v4, 64, false);
    lab.send(a, ethernet(a.mac, GW_MAC_0, EthernetProtocol::Ipv4, &sent));
    let frames = lab.take_all(b);
    assert_eq!(frames.len(), 1);
    assert!(is_arp_request_for(&frames[0], b.v4));
    let request = ArpRepr::parse(&ArpPacket::new_checked(&frames[0][14..]).unwrap()).unwrap();
    let ArpRepr::EthernetIpv4 { source_protocol_addr, source_hardware_addr, .. } = request else {
        unreachable!()
    };
    assert_eq!((source_protocol_addr, source_hardware_addr), (GW_V4_1, EthernetAddress(GW_MAC_1)));
    assert_eq!(lab.net.next_deadline(), Some(lab.now + Duration::from_secs(1)));

    lab.send(b, arp(b, ArpOperation::Reply, GW_MAC_1, GW_V4_1, GW_MAC_1));
    let frames = lab.take_all(b);
    assert_eq!(frames.len(), 1);
    let ip = ipv4_of(&frames[0]);
    assert_eq!((ip.src_addr(), ip.dst_addr(), ip.hop_limit()), (a.v4, b.v4, 63));
    assert_eq!(lab.net.next_deadline(), None);
    assert_eq!(lab.net.poll(lab.now + Duration::from_secs(5)), None);
    assert!(lab.take_all(a).is_empty() && lab.take_all(b).is_empty());

    // IPv6: a neighbour solicitation to b's solicited-node group first.
    let sent = ipv6_packet(a.v6, b.v6, 64, false);
    lab.send(a, ethernet(a.mac, GW_MAC_0, EthernetProtocol::Ipv6, &sent));
    let frames = lab.take_all(b);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0][0..6], [0x33, 0x33, 0xff, 0, 0, 0x20]);
    let (ip, message) = icmpv6_of(&frames[0]);
    assert_eq!(
        (ip.src_addr(), ip.dst_addr(), ip.hop_limit()),
        (GW_V6_1, solicited_node(b.v6), 255)
    );
    let Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit { target_addr, lladdr }) = message else {
        panic!("{message:?}")
    };
    assert_eq!((target_addr, lladdr.unwrap().as_bytes()), (b.v6, &GW_MAC_1[..]));

    let advert = Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
        flags: NdiscNeighborFlags::SOLICITED | NdiscNeighborFlags::OVERRIDE,
        target_addr: b.v6,
        lladdr: Some(RawHardwareAddress::from_bytes(&b.mac)),
    });
    let ip = icmpv6_bytes(b.v6, GW_V6_1, 255, &advert);
    lab.send(b, ethernet(b.mac, GW_MAC_1, EthernetProtocol::Ipv6, &ip));
    let frames = lab.take_all(b);
    assert_eq!(frames.len(), 1);
    let ip = ipv6_of(&frames[0]);
    assert_eq!((ip.src_addr(), ip.dst_addr(), ip.hop_limit()), (a.v6, b.v6, 63));
}

#[test]
fn silent_neighbor_gets_three_requests_then_host_unreachable() {
    let mut lab = lab();
    let (a, b) = (lab.a, lab.b);
    lab.introduce(a, GW_V4_0, GW_V6_0);
    let start = lab.now;
    let ghost_v4 = Ipv4Addr::new(10, 0, 2, 99);
    let ghost_v6: Ipv6Addr = "fd02::99".parse().unwrap();

    let sent_v4 = ipv4_packet(a.v4, ghost_v4, 64, false);
    lab.send(a, ethernet(a.mac, GW_MAC_0, EthernetProtocol::Ipv4, &sent_v4));
    let sent_v6 = ipv6_packet(a.v6, ghost_v6, 64, false);
    lab.send(a, ethernet(a.mac, GW_MAC_0, EthernetProtocol::Ipv6, &sent_v6));

    let mut arp_requests = 0;
    let mut solicitations = 0;
    let mut count_requests = |lab: &mut Lab| {
        for frame in lab.take_all(b) {
            if is_arp_request_for(&frame, ghost_v4) {
                arp_requests += 1;
            } else if frame[0..6] == [0x33, 0x33, 0xff, 0, 0, 0x99] {
                solicitations += 1;
            }
        }
    };
    count_requests(&mut lab);
    for second in 1..=3 {
        let now = start + Duration::from_secs(second);
        // Nothing happens before the deadline.
        assert_eq!(lab.net.poll(now - Duration::from_millis(1)), Some(now));
        let next = lab.net.poll(now);
        count_requests(&mut lab);
        if second < 3 {
            assert_eq!(next, Some(now + Duration::from_secs(1)));
            assert!(lab.take_all(a).is_empty());
        } else {
            assert_eq!(next, None);
        }
    }
    assert_eq!((arp_requests, solicitations), (3, 3));

    let frames = lab.take_all(a);
    assert_eq!(frames.len(), 2);
    assert_eq!(icmp_type_code(&frames[0]), (3, 1));
    let (ip, message, _) = icmpv4_of(&frames[0]);
    assert_eq!((ip.src_addr(), ip.dst_addr()), (GW_V4_0, a.v4));
    let quoted = Ipv4Packet::new_unchecked(&message[8..]);
    assert_eq!((quoted.src_addr(), quoted.dst_addr()), (a.v4, ghost_v4));
    assert_eq!(message.len(), 8 + 20 + 8);

    assert_eq!(icmp_type_code(&frames[1]), (1, 3));
    let (ip, message) = icmpv6_of(&frames[1]);
    assert_eq!((ip.src_addr(), ip.dst_addr()), (GW_V6_0, a.v6));
    let Icmpv6Repr::DstUnreachable { header, .. } = message else { panic!("{message:?}") };
    assert_eq!(header.dst_addr, ghost_v6);
}

#[test]
fn waiting_packets_are_limited_per_neighbor() {
    let mut lab = lab();
    let (a, b) = (lab.a, lab.b);
    lab.introduce(a, GW_V4_0, GW_V6_0);
    let sent = MAX_PACKETS_PER_UNRESOLVED_NEIGHBOR + 3;
    for ttl in 10..10 + sent as u8 {
        lab.send(
            a,
            ethernet(a.mac, GW_MAC_0, EthernetProtocol::Ipv4, &ipv4_packet(a.v4, b.v4, ttl, false)),
        );
    }
    let requests = lab.take_all(b);
    assert_eq!(requests.len(), 1, "one request however many packets wait");
    lab.send(b, arp(b, ArpOperation::Reply, GW_MAC_1, GW_V4_1, GW_MAC_1));
    let ttls: Vec<u8> = lab.take_all(b).iter().map(|frame| ipv4_of(frame).hop_limit()).collect();
    // Forwarding takes one off each TTL.
    let kept: Vec<u8> = (12..9 + sent as u8).collect();
    assert_eq!(ttls, kept, "the newest packets are kept, in order");
}

#[test]
fn malformed_frames_are_dropped_without_panic() {
    let mut lab = lab();
    let a = lab.a;
    let valid = [
        arp_request(a, GW_V4_0),
        neighbor_solicitation(a, a.v6, GW_V6_0),
        ethernet(a.mac, GW_MAC_0, EthernetProtocol::Ipv4, &ipv4_packet(a.v4, GW_V4_0, 64, true)),
        ethernet(a.mac, GW_MAC_0, EthernetProtocol::Ipv6, &ipv6_packet(a.v6, GW_V6_0, 64, true)),
        ethernet(a.mac, GW_MAC_0, EthernetProtocol::Ipv4, &ipv4_packet(a.v4, lab.b.v4, 1, false)),
        ethernet(a.mac, GW_MAC_0, EthernetProtocol::Ipv6, &ipv6_packet(a.v6, lab.b.v6, 1, false)),
    ];
    // Every truncation, and every single-byte corruption, of valid frames.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for frame in &valid {
        for len in 0..frame.len() {
            lab.send(a, frame[..len].to_vec());
        }
        for index in 0..frame.len() {
            for value in [0x00, 0xff, 0x45, 0x60, 0x01] {
                let mut corrupted = frame.clone();
                corrupted[index] = value;
                lab.send(a, corrupted);
            }
        }
        for _ in 0..200 {
            let mut garbage = frame.clone();
            for byte in garbage.iter_mut().skip(12) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                *byte = seed as u8;
            }
            lab.send(a, garbage);
        }
    }
    lab.take_all(a);
    lab.net.poll(lab.now + Duration::from_secs(10));
}

#[test]
fn captures_are_named_after_links_and_readable_by_tcpdump() {
    let dir = std::env::temp_dir().join(format!("netvm-network-captures-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let capture_dir = dir.join("not-yet-there");
    let explicit = dir.join("explicit.pcap");
    std::fs::create_dir_all(&dir).unwrap();

    let mut lab = lab_with_captures(Some(capture_dir.clone()));
    let a = lab.a;
    let sw0 = SwitchId(0);
    let c_link = lab.net.attach(sw0, "c/eth0", Some(&explicit)).unwrap();
    assert_eq!(
        lab.net.capture_paths(c_link),
        vec![capture_dir.join("c-eth0.pcap"), explicit.clone()]
    );
    lab.introduce(a, GW_V4_0, GW_V6_0);
    lab.send(
        a,
        ethernet(a.mac, GW_MAC_0, EthernetProtocol::Ipv4, &ipv4_packet(a.v4, GW_V4_0, 64, true)),
    );
    lab.take_all(a);
    lab.net.poll(lab.now);

    for name in ["a-eth0.pcap", "b-eth0.pcap", "c-eth0.pcap", "gw-sw0.pcap", "gw-sw1.pcap"] {
        assert!(capture_dir.join(name).exists(), "{name}");
    }
    let tcpdump = |path: &Path| {
        let output = std::process::Command::new("tcpdump")
            .args(["-r"])
            .arg(path)
            .args(["-n", "-e"])
            .output()
            .expect("tcpdump runs");
        assert!(
            output.status.success(),
            "tcpdump -r {}: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let a_capture = tcpdump(&capture_dir.join("a-eth0.pcap"));
    let lines: Vec<&str> = a_capture.lines().collect();
    assert_eq!(lines.len(), 6, "{a_capture}");
    assert!(lines[0].contains("Request who-has 10.0.1.1 tell 10.0.1.10"), "{a_capture}");
    assert!(lines[1].contains("Reply 10.0.1.1 is-at 02:00:00:00:01:01"), "{a_capture}");
    assert!(lines[2].contains("neighbor solicitation, who has fd01::1"), "{a_capture}");
    assert!(lines[3].contains("neighbor advertisement, tgt is fd01::1"), "{a_capture}");
    assert!(lines[4].contains("10.0.1.10 > 10.0.1.1: ICMP echo request"), "{a_capture}");
    assert!(lines[5].contains("10.0.1.1 > 10.0.1.10: ICMP echo reply"), "{a_capture}");
    // The router's side saw the same six frames.
    assert_eq!(tcpdump(&capture_dir.join("gw-sw0.pcap")).lines().count(), 6);
    // c was on the same switch: it saw the two multicasts/broadcasts only (flooded).
    assert_eq!(tcpdump(&explicit).lines().count(), 2);
    assert_eq!(tcpdump(&capture_dir.join("c-eth0.pcap")).lines().count(), 2);
    drop(lab);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn router_configuration_errors_add_nothing() {
    let mut net = Network::new(None);
    let sw0 = net.add_switch("sw0");
    let interface = |mac: [u8; 6], prefix: u8| RouterInterface {
        switch: sw0,
        mac,
        addresses: vec![Cidr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), prefix)],
        capture: None,
        mtu: 1500,
    };
    assert!(
        net.add_router("r", vec![interface([0x01, 0, 0, 0, 0, 1], 24)], vec![]).is_err(),
        "multicast MAC"
    );
    assert!(
        net.add_router("r", vec![interface([0x02, 0, 0, 0, 0, 1], 33)], vec![]).is_err(),
        "bad prefix"
    );
    let mut elsewhere = interface([0x02, 0, 0, 0, 0, 1], 24);
    elsewhere.switch = SwitchId(5);
    assert!(net.add_router("r", vec![elsewhere], vec![]).is_err(), "unknown switch");
    assert_eq!(net.links().count(), 0);
    // Two interfaces on one switch get distinct link names.
    net.add_router(
        "r",
        vec![interface([0x02, 0, 0, 0, 0, 1], 24), interface([0x02, 0, 0, 0, 0, 2], 24)],
        vec![],
    )
    .unwrap();
    let names: Vec<&str> = net.links().map(|link| net.link_name(link)).collect();
    assert_eq!(names, ["r/sw0", "r/sw0-1"]);
    assert!(
        net.add_router("r", vec![interface([0x02, 0, 0, 0, 0, 3], 24)], vec![]).is_err(),
        "taken name"
    );
    assert_eq!(net.links().count(), 2);
}

/// Two real smoltcp hosts, on two switches, exchange UDP over IPv4 and IPv6 through
/// the router: the router's ARP, NDP and forwarding are what smoltcp expects.
mod with_smoltcp_hosts {
    use std::collections::VecDeque;

    use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
    use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
    use smoltcp::socket::udp;
    use smoltcp::wire::{IpAddress, IpCidr, IpEndpoint};

    use super::*;

    /// A smoltcp device whose frames are carried to and from the network by the test.
    #[derive(Default)]
    struct QueueDevice {
        inbox: VecDeque<Frame>,
        outbox: Vec<Frame>,
    }

    struct QueueRx(Frame);
    struct QueueTx<'a>(&'a mut Vec<Frame>);

    impl RxToken for QueueRx {
        fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
            f(&self.0)
        }
    }

    impl TxToken for QueueTx<'_> {
        fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
            let mut frame = vec![0; len];
            let result = f(&mut frame);
            self.0.push(frame);
            result
        }
    }

    impl Device for QueueDevice {
        type RxToken<'a> = QueueRx;
        type TxToken<'a> = QueueTx<'a>;

        fn receive(
            &mut self,
            _: smoltcp::time::Instant,
        ) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
            let frame = self.inbox.pop_front()?;
            Some((QueueRx(frame), QueueTx(&mut self.outbox)))
        }

        fn transmit(&mut self, _: smoltcp::time::Instant) -> Option<Self::TxToken<'_>> {
            Some(QueueTx(&mut self.outbox))
        }

        fn capabilities(&self) -> DeviceCapabilities {
            let mut capabilities = DeviceCapabilities::default();
            capabilities.medium = Medium::Ethernet;
            capabilities.max_transmission_unit = 1514;
            capabilities
        }
    }

    struct SmolHost {
        link: LinkId,
        device: QueueDevice,
        iface: Interface,
        sockets: SocketSet<'static>,
        udp: SocketHandle,
    }

    impl SmolHost {
        fn new(link: LinkId, host: Host, gateway_v4: Ipv4Addr, gateway_v6: Ipv6Addr) -> Self {
            let mut device = QueueDevice::default();
            let config = Config::new(EthernetAddress(host.mac).into());
            let mut iface = Interface::new(config, &mut device, smoltcp::time::Instant::ZERO);
            iface.update_ip_addrs(|addresses| {
                addresses.push(IpCidr::new(IpAddress::Ipv4(host.v4), 24)).unwrap();
                addresses.push(IpCidr::new(IpAddress::Ipv6(host.v6), 64)).unwrap();
            });
            iface.routes_mut().add_default_ipv4_route(gateway_v4).unwrap();
            iface.routes_mut().add_default_ipv6_route(gateway_v6).unwrap();
            let buffer =
                || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 8], vec![0; 8192]);
            let mut socket = udp::Socket::new(buffer(), buffer());
            socket.bind(7000).unwrap();
            let mut sockets = SocketSet::new(Vec::new());
            let udp = sockets.add(socket);
            Self { link, device, iface, sockets, udp }
        }

        fn udp(&mut self) -> &mut udp::Socket<'static> {
            self.sockets.get_mut::<udp::Socket>(self.udp)
        }

        /// Everything the socket received: (payload, source).
        fn received(&mut self) -> Vec<(Vec<u8>, IpEndpoint)> {
            let mut received = Vec::new();
            while let Ok((data, meta)) = self.udp().recv() {
                received.push((data.to_vec(), meta.endpoint));
            }
            received
        }
    }

    /// Runs the hosts and the network for the given 10 ms steps, counted from `origin`
    /// (the time 0 of the smoltcp hosts).
    fn run(
        net: &mut Network,
        hosts: &mut [&mut SmolHost],
        origin: Instant,
        steps: std::ops::Range<u64>,
    ) {
        for step in steps {
            let now = origin + Duration::from_millis(10 * step);
            let smol_now = smoltcp::time::Instant::from_millis(10 * step as i64);
            for host in hosts.iter_mut() {
                while let Some(frame) = net.receive(host.link) {
                    host.device.inbox.push_back(frame);
                }
                host.iface.poll(smol_now, &mut host.device, &mut host.sockets);
                for frame in host.device.outbox.drain(..) {
                    net.send(host.link, frame, now);
                }
            }
            net.poll(now);
        }
    }

    #[test]
    fn udp_crosses_the_router_both_ways_over_ipv4_and_ipv6() {
        let mut lab = lab();
        let (a, b) = (lab.a, lab.b);
        let mut host_a = SmolHost::new(a.link, a, GW_V4_0, GW_V6_0);
        let mut host_b = SmolHost::new(b.link, b, GW_V4_1, GW_V6_1);
        let to_b_v4 = IpEndpoint::new(IpAddress::Ipv4(b.v4), 7000);
        let to_b_v6 = IpEndpoint::new(IpAddress::Ipv6(b.v6), 7000);
        host_a.udp().send_slice(b"over ipv4", to_b_v4).unwrap();
        host_a.udp().send_slice(b"over ipv6", to_b_v6).unwrap();
        // smoltcp asks for one unknown neighbour per second: give it three.
        run(&mut lab.net, &mut [&mut host_a, &mut host_b], lab.now, 0..300);

        let mut received = host_b.received();
        received.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(
            received,
            vec![
                (b"over ipv4".to_vec(), IpEndpoint::new(IpAddress::Ipv4(a.v4), 7000)),
                (b"over ipv6".to_vec(), IpEndpoint::new(IpAddress::Ipv6(a.v6), 7000)),
            ]
        );
        for (_, source) in received {
            host_b.udp().send_slice(b"answer", source).unwrap();
        }
        run(&mut lab.net, &mut [&mut host_a, &mut host_b], lab.now, 300..400);
        let answers = host_a.received();
        assert_eq!(answers.len(), 2, "{answers:?}");
        assert!(answers.iter().all(|(data, _)| data == b"answer"));
    }
}
