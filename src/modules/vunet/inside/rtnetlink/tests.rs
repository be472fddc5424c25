//! Tests of the rtnetlink answers: requests built with the netlink crates, the
//! answers parsed back and checked against what Linux answered for a network
//! namespace configured like the snapshot (`ip -j addr`, `ip -j route show table
//! all`, the kernel's own datagrams).

use std::net::IpAddr;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CAPPED, NLM_F_CREATE, NLM_F_DUMP, NLM_F_DUMP_FILTERED, NLM_F_ECHO, NLM_F_EXCL,
    NLM_F_MULTIPART, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressProtocol,
    AddressScope,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkLayerType, LinkMessage, State};
use netlink_packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteType,
};
use netlink_packet_route::rule::{RuleAttribute, RuleMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::*;
use crate::modules::vunet::cidr::Cidr;
use crate::modules::vunet::inside::fixtures::link;
use crate::modules::vunet::inside::netlink::DUMP_DATAGRAM_SIZE;
use crate::modules::vunet::inside::{AddressView, LinkKind, RouteView, Scope};
use crate::modules::vunet::network::Counters;

/// The asking socket's port in these tests.
const PORT: u32 = 4242;

/// A budget that never runs out (see [`ROUND_BUDGET`]).
fn unlimited() -> u32 {
    u32::MAX
}

fn cidr(text: &str) -> Cidr {
    Cidr::parse(text).unwrap()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn address(index: u32, text: &str, scope: Scope) -> AddressView {
    AddressView { index, address: cidr(text), scope, broadcast: None, label: None }
}

/// A snapshot like netvm's built-in `lwip0`, with the addresses Linux adds
/// itself (`lo`'s, `eth0`'s link-local).
fn lwip0() -> Inside {
    Inside {
        links: vec![
            link(1, "lo", LinkKind::Loopback, [0; 6], 65536),
            link(2, "eth0", LinkKind::Ethernet, [0x02, 0x6e, 0x76, 0, 0, 0], 1500),
        ],
        addresses: vec![
            address(1, "127.0.0.1/8", Scope::Host),
            address(1, "::1/128", Scope::Host),
            address(2, "10.0.0.2/24", Scope::Universe),
            address(2, "fd00::2/64", Scope::Universe),
            address(2, "fe80::6e:76ff:fe00:0/64", Scope::Link),
        ],
        routes: vec![
            RouteView::through(cidr("0.0.0.0/0"), ip("10.0.0.1"), 2),
            RouteView::through(cidr("::/0"), ip("fd00::1"), 2),
        ],
        neighbours: Vec::new(),
    }
}

/// A request message carrying `body`, serialized.
fn request(flags: u16, sequence: u32, body: RouteNetlinkMessage) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = sequence;
    let mut message = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(body));
    message.finalize();
    let mut bytes = vec![0; message.buffer_len()];
    message.serialize(&mut bytes);
    bytes
}

/// A request message of type `kind` with a raw `payload` (and `nlmsg_len`
/// saying exactly that), padded to alignment.
fn raw(kind: u16, flags: u16, sequence: u32, payload: &[u8]) -> Vec<u8> {
    let mut bytes = ((16 + payload.len()) as u32).to_ne_bytes().to_vec();
    bytes.extend(kind.to_ne_bytes());
    bytes.extend(flags.to_ne_bytes());
    bytes.extend(sequence.to_ne_bytes());
    bytes.extend(0u32.to_ne_bytes());
    bytes.extend(payload);
    bytes.resize(bytes.len().next_multiple_of(4), 0);
    bytes
}

fn dump_request(body: RouteNetlinkMessage) -> Vec<u8> {
    request(NLM_F_REQUEST | NLM_F_DUMP, 7, body)
}

/// The raw messages of a datagram.
fn split(datagram: &[u8]) -> Vec<&[u8]> {
    let mut messages = Vec::new();
    let mut rest = datagram;
    while rest.len() >= 16 {
        let len = u32::from_ne_bytes(rest[..4].try_into().unwrap()) as usize;
        assert!((16..=rest.len()).contains(&len), "message length {len} in {}", rest.len());
        messages.push(&rest[..len]);
        rest = &rest[len.next_multiple_of(4).min(rest.len())..];
    }
    assert!(rest.is_empty(), "{} trailing bytes", rest.len());
    messages
}

fn parse(message: &[u8]) -> NetlinkMessage<RouteNetlinkMessage> {
    NetlinkMessage::deserialize(message).unwrap()
}

/// The answers to `request` from `inside`, datagram by datagram, parsed.
fn answers_with(
    inside: &Inside,
    options: Options,
    request: &[u8],
) -> Vec<Vec<NetlinkMessage<RouteNetlinkMessage>>> {
    respond_with(&mut inside.clone(), PORT, options, request, &mut unlimited())
        .to_asker
        .iter()
        .map(|datagram| split(datagram).into_iter().map(parse).collect())
        .collect()
}

fn answers(inside: &Inside, request: &[u8]) -> Vec<Vec<NetlinkMessage<RouteNetlinkMessage>>> {
    answers_with(inside, Options::default(), request)
}

fn strict() -> Options {
    Options { strict_check: true, uid: 0 }
}

/// The inner messages of a dump's answers, checked to be one multipart answer:
/// `flags` on each, `NLMSG_DONE` with 0 last.
fn dumped(
    datagrams: Vec<Vec<NetlinkMessage<RouteNetlinkMessage>>>,
    flags: u16,
) -> Vec<RouteNetlinkMessage> {
    let mut all: Vec<_> = datagrams.into_iter().flatten().collect();
    let done = all.pop().expect("an NLMSG_DONE");
    assert!(matches!(done.payload, NetlinkPayload::Done(ref done) if done.code == 0), "{done:?}");
    all.into_iter()
        .map(|message| {
            assert_eq!(message.header.flags, flags);
            assert_eq!(message.header.port_number, PORT);
            match message.payload {
                NetlinkPayload::InnerMessage(inner) => inner,
                other => panic!("not an answer: {other:?}"),
            }
        })
        .collect()
}

/// The errno a dump's lone `NLMSG_DONE` reports, and its flags.
fn dump_error(datagrams: Vec<Vec<NetlinkMessage<RouteNetlinkMessage>>>) -> (i32, u16) {
    assert_eq!(datagrams.len(), 1);
    let [done] = datagrams[0].as_slice() else { panic!("{datagrams:?}") };
    let NetlinkPayload::Done(ref payload) = done.payload else { panic!("{done:?}") };
    (-payload.code, done.header.flags)
}

/// The errno of an `NLMSG_ERROR` answer (0: an acknowledgement), checking that
/// it echoes `request` as Linux does.
fn acknowledged(message: &NetlinkMessage<RouteNetlinkMessage>, request: &[u8]) -> i32 {
    let NetlinkPayload::Error(ref error) = message.payload else { panic!("{message:?}") };
    let errno = -error.raw_code();
    if errno == 0 {
        assert_eq!(message.header.flags, NLM_F_CAPPED);
        assert_eq!(error.header, request[..16]);
    } else {
        assert_eq!(error.header, request);
    }
    errno
}

/// The bodies `pick` takes from `messages`, which must all be of its kind.
fn bodies<T>(
    messages: Vec<RouteNetlinkMessage>,
    pick: fn(RouteNetlinkMessage) -> Result<T, RouteNetlinkMessage>,
) -> Vec<T> {
    let unwrap = |message| pick(message).unwrap_or_else(|other| panic!("{other:?}"));
    messages.into_iter().map(unwrap).collect()
}

fn links(messages: Vec<RouteNetlinkMessage>) -> Vec<LinkMessage> {
    bodies(messages, |message| match message {
        RouteNetlinkMessage::NewLink(link) => Ok(link),
        other => Err(other),
    })
}

fn addresses(messages: Vec<RouteNetlinkMessage>) -> Vec<AddressMessage> {
    bodies(messages, |message| match message {
        RouteNetlinkMessage::NewAddress(address) => Ok(address),
        other => Err(other),
    })
}

fn routes(messages: Vec<RouteNetlinkMessage>) -> Vec<RouteMessage> {
    bodies(messages, |message| match message {
        RouteNetlinkMessage::NewRoute(route) => Ok(route),
        other => Err(other),
    })
}

fn link_request(family: AddressFamily, index: u32, attributes: Vec<LinkAttribute>) -> LinkMessage {
    let mut message = LinkMessage::default();
    message.header.interface_family = family;
    message.header.index = index;
    message.attributes = attributes;
    message
}

fn address_request(family: AddressFamily, index: u32) -> AddressMessage {
    let mut message = AddressMessage::default();
    message.header.family = family;
    message.header.index = index;
    message
}

fn route_request(family: AddressFamily) -> RouteMessage {
    let mut message = RouteMessage::default();
    message.header.address_family = family;
    message
}

fn link_attribute<T>(link: &LinkMessage, pick: impl Fn(&LinkAttribute) -> Option<T>) -> T {
    link.attributes.iter().find_map(pick).expect("the attribute")
}

#[test]
fn a_link_dump_lists_lo_then_eth0_as_linux_does() {
    let dump =
        dump_request(RouteNetlinkMessage::GetLink(link_request(AddressFamily::Unspec, 0, vec![])));
    let datagrams = answers(&lwip0(), &dump);
    // Linux sends the links, then NLMSG_DONE apart.
    assert_eq!(datagrams.iter().map(Vec::len).collect::<Vec<_>>(), [2, 1]);
    assert_eq!(datagrams[0][0].header.sequence_number, 7);
    let [lo, eth0] = links(dumped(datagrams, NLM_F_MULTIPART)).try_into().unwrap();

    assert_eq!((lo.header.index, lo.header.link_layer_type), (1, LinkLayerType::Loopback));
    let lo_flags = LinkFlags::Up | LinkFlags::Loopback | LinkFlags::Running | LinkFlags::LowerUp;
    assert_eq!(lo.header.flags, lo_flags);
    assert_eq!(
        link_attribute(&lo, |a| matches!(a, LinkAttribute::OperState(s) if *s == State::Unknown)
            .then_some(())),
        ()
    );
    assert_eq!(
        link_attribute(&lo, |a| if let LinkAttribute::Mtu(m) = a { Some(*m) } else { None }),
        65536
    );

    assert_eq!((eth0.header.index, eth0.header.link_layer_type), (2, LinkLayerType::Ether));
    let eth0_flags = LinkFlags::Up
        | LinkFlags::Broadcast
        | LinkFlags::Multicast
        | LinkFlags::Running
        | LinkFlags::LowerUp;
    assert_eq!(eth0.header.flags, eth0_flags);
    for expected in [
        LinkAttribute::IfName("eth0".into()),
        LinkAttribute::Mtu(1500),
        LinkAttribute::Address(vec![0x02, 0x6e, 0x76, 0, 0, 0]),
        LinkAttribute::Broadcast(vec![0xff; 6]),
        LinkAttribute::TxQueueLen(1000),
        LinkAttribute::OperState(State::Up),
        LinkAttribute::Qdisc("noqueue".into()),
        LinkAttribute::Carrier(1),
        LinkAttribute::Group(0),
        LinkAttribute::Promiscuity(0),
        LinkAttribute::NumTxQueues(1),
        LinkAttribute::NumRxQueues(1),
    ] {
        assert!(eth0.attributes.contains(&expected), "{expected:?} in {:?}", eth0.attributes);
    }
}

#[test]
fn a_links_counters_are_its_statistics() {
    let mut inside = lwip0();
    inside.links[1].counters = Counters {
        rx_packets: 3,
        rx_bytes: 300,
        tx_packets: 4,
        tx_bytes: 5_000_000_000,
        dropped: 1,
    };
    let dump =
        dump_request(RouteNetlinkMessage::GetLink(link_request(AddressFamily::Unspec, 0, vec![])));
    let eth0 = links(dumped(answers(&inside, &dump), NLM_F_MULTIPART)).remove(1);
    let stats64 =
        link_attribute(&eth0, |a| if let LinkAttribute::Stats64(s) = a { Some(*s) } else { None });
    assert_eq!(
        (
            stats64.rx_packets,
            stats64.rx_bytes,
            stats64.tx_packets,
            stats64.tx_bytes,
            stats64.rx_dropped
        ),
        (3, 300, 4, 5_000_000_000, 1)
    );
    let stats =
        link_attribute(&eth0, |a| if let LinkAttribute::Stats(s) = a { Some(*s) } else { None });
    assert_eq!((stats.tx_packets, stats.tx_bytes), (4, 5_000_000_000u64 as u32));
}

#[test]
fn a_link_down_or_without_carrier_says_so_in_its_flags_and_state() {
    let mut inside = lwip0();
    inside.links[1].carrier = false;
    let dump =
        dump_request(RouteNetlinkMessage::GetLink(link_request(AddressFamily::Unspec, 0, vec![])));
    let eth0 = links(dumped(answers(&inside, &dump), NLM_F_MULTIPART)).remove(1);
    // NO-CARRIER in ip's words: up, not running.
    assert_eq!(eth0.header.flags, LinkFlags::Up | LinkFlags::Broadcast | LinkFlags::Multicast);
    assert!(eth0.attributes.contains(&LinkAttribute::OperState(State::Down)));
    assert!(eth0.attributes.contains(&LinkAttribute::Carrier(0)));

    inside.links[1].up = false;
    let eth0 = links(dumped(answers(&inside, &dump), NLM_F_MULTIPART)).remove(1);
    assert_eq!(eth0.header.flags, LinkFlags::Broadcast | LinkFlags::Multicast);
}

#[test]
fn a_link_get_finds_a_link_by_index_or_name_and_acks_when_asked() {
    let inside = lwip0();
    let by_index = request(
        NLM_F_REQUEST | NLM_F_ACK,
        3,
        RouteNetlinkMessage::GetLink(link_request(AddressFamily::Unspec, 1, vec![])),
    );
    let datagrams = answers(&inside, &by_index);
    assert_eq!(datagrams.len(), 2);
    assert_eq!(datagrams[0][0].header.flags, 0);
    let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(ref lo)) =
        datagrams[0][0].payload
    else {
        panic!()
    };
    assert_eq!(lo.header.index, 1);
    assert_eq!(acknowledged(&datagrams[1][0], &by_index), 0);

    for name in [
        LinkAttribute::IfName("eth0".into()),
        LinkAttribute::Other(netlink_packet_core::DefaultNla::new(53, b"eth0\0".to_vec())),
    ] {
        let by_name = request(
            NLM_F_REQUEST,
            4,
            RouteNetlinkMessage::GetLink(link_request(AddressFamily::Unspec, 0, vec![name])),
        );
        let datagrams = answers(&inside, &by_name);
        assert_eq!(datagrams.len(), 1, "no ack unless asked");
        let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(ref eth0)) =
            datagrams[0][0].payload
        else {
            panic!()
        };
        assert_eq!(eth0.header.index, 2);
    }
}

#[test]
fn a_link_get_of_no_link_fails_as_linux_does() {
    let inside = lwip0();
    let cases: [(Vec<u8>, i32); 5] = [
        (
            request(
                NLM_F_REQUEST,
                1,
                RouteNetlinkMessage::GetLink(link_request(AddressFamily::Unspec, 99, vec![])),
            ),
            libc::ENODEV,
        ),
        (
            request(
                NLM_F_REQUEST,
                1,
                RouteNetlinkMessage::GetLink(link_request(
                    AddressFamily::Unspec,
                    0,
                    vec![LinkAttribute::IfName("eth9".into())],
                )),
            ),
            libc::ENODEV,
        ),
        (
            request(
                NLM_F_REQUEST,
                1,
                RouteNetlinkMessage::GetLink(link_request(AddressFamily::Unspec, 0, vec![])),
            ),
            libc::EINVAL,
        ),
        (
            request(
                NLM_F_REQUEST,
                1,
                RouteNetlinkMessage::GetLink(link_request(
                    AddressFamily::Unspec,
                    0,
                    vec![LinkAttribute::IfName("a".repeat(20))],
                )),
            ),
            libc::ERANGE,
        ),
        // An rtgenmsg is too short for a get.
        (raw(libc::RTM_GETLINK, NLM_F_REQUEST, 1, &[0, 0, 0, 0]), libc::EINVAL),
    ];
    for (request, errno) in cases {
        let datagrams = answers(&inside, &request);
        assert_eq!(datagrams.len(), 1);
        assert_eq!(acknowledged(&datagrams[0][0], &request), errno);
    }
}

#[test]
fn an_inet6_link_dump_gives_each_links_ipv6_view() {
    let dump =
        dump_request(RouteNetlinkMessage::GetLink(link_request(AddressFamily::Inet6, 0, vec![])));
    let datagrams = respond(&mut lwip0(), PORT, &dump);
    // Its NLMSG_DONE comes with the links.
    assert_eq!(datagrams.len(), 1);
    let messages = split(&datagrams[0]);
    assert_eq!(messages.len(), 3);
    let lo = parse(messages[0]);
    let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(lo)) = lo.payload else {
        panic!()
    };
    assert_eq!(lo.header.interface_family, AddressFamily::Inet6);
    assert!(lo.attributes.contains(&LinkAttribute::IfName("lo".into())));
    assert!(lo.attributes.iter().any(|a| matches!(
        a,
        LinkAttribute::ProtoInfoInet6(_) | LinkAttribute::ProtoInfoUnknown(_)
    )));
}

#[test]
fn go_and_glibc_style_link_dumps_are_answered() {
    // Go sends a bare rtgenmsg (nlmsg_len 17); glibc pads it to 4 bytes.
    for request in [
        raw(libc::RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, &[0])[..17].to_vec(),
        raw(libc::RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, &[0; 4]),
    ] {
        assert_eq!(links(dumped(answers(&lwip0(), &request), NLM_F_MULTIPART)).len(), 2);
    }
}

#[test]
fn a_strict_link_dump_refuses_an_index_and_flags_a_master_filter() {
    let by_index =
        dump_request(RouteNetlinkMessage::GetLink(link_request(AddressFamily::Unspec, 2, vec![])));
    assert_eq!(
        dump_error(answers_with(&lwip0(), strict(), &by_index)),
        (libc::EINVAL, NLM_F_MULTIPART)
    );
    let master = dump_request(RouteNetlinkMessage::GetLink(link_request(
        AddressFamily::Unspec,
        0,
        vec![LinkAttribute::Controller(5)],
    )));
    let datagrams = answers_with(&lwip0(), strict(), &master);
    // No link has a master; the messages, not the end, say a filter applied.
    assert_eq!(dumped(datagrams, NLM_F_MULTIPART).len(), 0);
    let no_master = dump_request(RouteNetlinkMessage::GetLink(link_request(
        AddressFamily::Unspec,
        0,
        vec![LinkAttribute::Controller(u32::MAX)],
    )));
    let flags = NLM_F_MULTIPART | NLM_F_DUMP_FILTERED;
    assert_eq!(dumped(answers_with(&lwip0(), strict(), &no_master), flags).len(), 2);
}

/// The addresses of a dump as (link, address, scope, flags).
fn address_summary(
    messages: Vec<AddressMessage>,
) -> Vec<(u32, String, AddressScope, AddressHeaderFlags)> {
    messages
        .into_iter()
        .map(|message| {
            let ip = message
                .attributes
                .iter()
                .find_map(|a| if let AddressAttribute::Address(ip) = a { Some(*ip) } else { None })
                .unwrap();
            let text = format!("{ip}/{}", message.header.prefix_len);
            (message.header.index, text, message.header.scope, message.header.flags)
        })
        .collect()
}

#[test]
fn an_address_dump_lists_both_families_in_linuxs_order() {
    let dump =
        dump_request(RouteNetlinkMessage::GetAddress(address_request(AddressFamily::Unspec, 0)));
    let datagrams = answers(&lwip0(), &dump);
    assert_eq!(datagrams.last().unwrap().len(), 1, "NLMSG_DONE apart");
    let permanent = AddressHeaderFlags::Permanent;
    assert_eq!(
        address_summary(addresses(dumped(datagrams, NLM_F_MULTIPART))),
        [
            (1, "127.0.0.1/8".into(), AddressScope::Host, permanent),
            (2, "10.0.0.2/24".into(), AddressScope::Universe, permanent),
            (1, "::1/128".into(), AddressScope::Host, permanent),
            (2, "fd00::2/64".into(), AddressScope::Universe, permanent),
            (2, "fe80::6e:76ff:fe00:0/64".into(), AddressScope::Link, permanent),
        ]
    );
}

#[test]
fn address_attributes_are_linuxs() {
    let dump =
        dump_request(RouteNetlinkMessage::GetAddress(address_request(AddressFamily::Unspec, 0)));
    let all = addresses(dumped(answers(&lwip0(), &dump), NLM_F_MULTIPART));
    let forever = |a: &AddressAttribute| matches!(a, AddressAttribute::CacheInfo(c) if c.ifa_preferred == u32::MAX && c.ifa_valid == u32::MAX);
    let eth0_v4 = &all[1].attributes;
    assert_eq!(
        eth0_v4[..3],
        [
            AddressAttribute::Address(ip("10.0.0.2")),
            AddressAttribute::Local(ip("10.0.0.2")),
            AddressAttribute::Label("eth0".into())
        ]
    );
    assert_eq!(eth0_v4[3], AddressAttribute::Flags(AddressFlags::Permanent));
    assert!(forever(&eth0_v4[4]));
    let loopback_v6 = &all[2].attributes;
    assert!(loopback_v6.contains(&AddressAttribute::Protocol(AddressProtocol::Loopback)));
    assert!(!all[3].attributes.iter().any(|a| matches!(
        a,
        AddressAttribute::Local(_) | AddressAttribute::Label(_) | AddressAttribute::Protocol(_)
    )));
    assert!(all[4].attributes.contains(&AddressAttribute::Protocol(AddressProtocol::LinkLocal)));

    let mut inside = lwip0();
    inside.addresses[2].broadcast = Some("10.0.0.255".parse().unwrap());
    let all = addresses(dumped(answers(&inside, &dump), NLM_F_MULTIPART));
    assert_eq!(all[1].attributes[2], AddressAttribute::Broadcast("10.0.0.255".parse().unwrap()));
}

#[test]
fn an_address_dump_filters_by_family_and_by_link_only_when_strict() {
    let inside = lwip0();
    let count = |family, index, options| {
        let dump = dump_request(RouteNetlinkMessage::GetAddress(address_request(family, index)));
        let flags =
            if index == 0 { NLM_F_MULTIPART } else { NLM_F_MULTIPART | NLM_F_DUMP_FILTERED };
        let flags = if options == strict() { flags } else { NLM_F_MULTIPART };
        dumped(answers_with(&inside, options, &dump), flags).len()
    };
    assert_eq!(count(AddressFamily::Inet, 0, Options::default()), 2);
    assert_eq!(count(AddressFamily::Inet6, 0, Options::default()), 3);
    assert_eq!(count(AddressFamily::Unspec, 2, Options::default()), 5);
    assert_eq!(count(AddressFamily::Unspec, 2, strict()), 3);
    assert_eq!(count(AddressFamily::Inet6, 1, strict()), 1);

    let unknown =
        dump_request(RouteNetlinkMessage::GetAddress(address_request(AddressFamily::Unspec, 9)));
    assert_eq!(
        dump_error(answers_with(&inside, strict(), &unknown)),
        (libc::ENODEV, NLM_F_MULTIPART | NLM_F_DUMP_FILTERED)
    );
    let bare = raw(libc::RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, 1, &[0; 4]);
    assert_eq!(dump_error(answers_with(&inside, strict(), &bare)), (libc::EINVAL, NLM_F_MULTIPART));
    assert_eq!(addresses(dumped(answers(&inside, &bare), NLM_F_MULTIPART)).len(), 5);
}

#[test]
fn a_second_address_in_a_subnet_is_secondary_and_listed_last() {
    let mut inside = lwip0();
    inside.addresses.push(address(2, "10.0.0.77/24", Scope::Universe));
    inside.addresses.push(address(2, "192.168.9.9/32", Scope::Universe));
    inside.addresses.push(address(2, "fd01::5/128", Scope::Universe));
    let dump =
        dump_request(RouteNetlinkMessage::GetAddress(address_request(AddressFamily::Unspec, 2)));
    let listed: Vec<_> =
        address_summary(addresses(dumped(answers(&inside, &dump), NLM_F_MULTIPART)))
            .into_iter()
            .filter(|(index, ..)| *index == 2)
            .map(|(_, text, _, flags)| (text, flags.contains(AddressHeaderFlags::Secondary)))
            .collect();
    let expected = [
        ("10.0.0.2/24", false),
        ("192.168.9.9/32", false),
        ("10.0.0.77/24", true),
        // IPv6: the widest scope first, the latest added first.
        ("fd01::5/128", false),
        ("fd00::2/64", false),
        ("fe80::6e:76ff:fe00:0/64", false),
    ];
    assert_eq!(listed, expected.map(|(text, secondary)| (text.to_string(), secondary)));
}

#[test]
fn an_ipv6_address_get_finds_the_address() {
    let mut get = address_request(AddressFamily::Inet6, 0);
    get.attributes.push(AddressAttribute::Address(ip("fd00::2")));
    let request_bytes = request(NLM_F_REQUEST, 1, RouteNetlinkMessage::GetAddress(get.clone()));
    let datagrams = answers(&lwip0(), &request_bytes);
    let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(ref found)) =
        datagrams[0][0].payload
    else {
        panic!()
    };
    assert_eq!((found.header.index, found.header.prefix_len), (2, 64));

    get.attributes = vec![AddressAttribute::Address(ip("fd00::9"))];
    let request_bytes = request(NLM_F_REQUEST, 1, RouteNetlinkMessage::GetAddress(get));
    assert_eq!(
        acknowledged(&answers(&lwip0(), &request_bytes)[0][0], &request_bytes),
        libc::EADDRNOTAVAIL
    );
    // IPv4 has no single get.
    let request_bytes = request(
        NLM_F_REQUEST,
        1,
        RouteNetlinkMessage::GetAddress(address_request(AddressFamily::Inet, 0)),
    );
    assert_eq!(
        acknowledged(&answers(&lwip0(), &request_bytes)[0][0], &request_bytes),
        libc::EOPNOTSUPP
    );
}

/// A route as `ip route show table all` shows it, more or less.
fn route_line(route: &RouteMessage) -> String {
    let header = &route.header;
    let mut line = format!("{:?} ", header.kind).to_lowercase();
    let destination = route
        .attributes
        .iter()
        .find_map(|a| if let RouteAttribute::Destination(d) = a { Some(d.clone()) } else { None });
    line += &match destination {
        Some(RouteAddress::Inet(ip)) => format!("{ip}/{}", header.destination_prefix_length),
        Some(RouteAddress::Inet6(ip)) => format!("{ip}/{}", header.destination_prefix_length),
        _ => "default".into(),
    };
    for attribute in &route.attributes {
        match attribute {
            RouteAttribute::Gateway(RouteAddress::Inet(ip)) => line += &format!(" via {ip}"),
            RouteAttribute::Gateway(RouteAddress::Inet6(ip)) => line += &format!(" via {ip}"),
            RouteAttribute::Oif(index) => line += &format!(" dev {index}"),
            RouteAttribute::PrefSource(RouteAddress::Inet(ip)) => line += &format!(" src {ip}"),
            RouteAttribute::Priority(metric) => line += &format!(" metric {metric}"),
            _ => {}
        }
    }
    line +=
        &format!(" table {} proto {:?} scope {:?}", header.table, header.protocol, header.scope)
            .to_lowercase();
    if header.flags.contains(RouteFlags::Linkdown) {
        line += " linkdown";
    }
    line
}

fn route_lines(inside: &Inside, family: AddressFamily) -> Vec<String> {
    let dump = dump_request(RouteNetlinkMessage::GetRoute(route_request(family)));
    routes(dumped(answers(inside, &dump), NLM_F_MULTIPART)).iter().map(route_line).collect()
}

#[test]
fn the_route_dump_is_linuxs_table_all() {
    // As a namespace configured alike shows them (`ip route show table all`).
    assert_eq!(
        route_lines(&lwip0(), AddressFamily::Unspec),
        [
            "unicast default via 10.0.0.1 dev 2 table 254 proto boot scope universe",
            "unicast 10.0.0.0/24 src 10.0.0.2 dev 2 table 254 proto kernel scope link",
            "local 10.0.0.2/32 src 10.0.0.2 dev 2 table 255 proto kernel scope host",
            "broadcast 10.0.0.255/32 src 10.0.0.2 dev 2 table 255 proto kernel scope link",
            "local 127.0.0.0/8 src 127.0.0.1 dev 1 table 255 proto kernel scope host",
            "local 127.0.0.1/32 src 127.0.0.1 dev 1 table 255 proto kernel scope host",
            "broadcast 127.255.255.255/32 src 127.0.0.1 dev 1 table 255 proto kernel scope link",
            "unicast fd00::/64 metric 256 dev 2 table 254 proto kernel scope universe",
            "unicast fe80::/64 metric 256 dev 2 table 254 proto kernel scope universe",
            "unicast default metric 1024 via fd00::1 dev 2 table 254 proto boot scope universe",
            "local ::1/128 metric 0 dev 1 table 255 proto kernel scope universe",
            "local fd00::2/128 metric 0 dev 2 table 255 proto kernel scope universe",
            "local fe80::6e:76ff:fe00:0/128 metric 0 dev 2 table 255 proto kernel scope universe",
            "multicast ff00::/8 metric 256 dev 2 table 255 proto kernel scope universe",
        ]
    );
    assert_eq!(route_lines(&lwip0(), AddressFamily::Inet).len(), 7);
    assert_eq!(route_lines(&lwip0(), AddressFamily::Inet6).len(), 7);
}

#[test]
fn routes_follow_linuxs_rules_for_more_addresses_and_routes() {
    let mut inside = lwip0();
    let mut with_broadcast = address(2, "172.16.0.1/30", Scope::Universe);
    with_broadcast.broadcast = Some("172.16.0.2".parse().unwrap());
    inside.addresses.extend([
        address(2, "10.0.0.77/24", Scope::Universe),
        address(2, "192.168.9.9/32", Scope::Universe),
        with_broadcast,
        address(2, "fd01::5/128", Scope::Universe),
    ]);
    inside.routes.extend([
        RouteView {
            gateway: None,
            ..RouteView::through(cidr("192.168.50.0/24"), ip("10.0.0.1"), 2)
        },
        RouteView {
            gateway: None,
            ..RouteView::through(cidr("fd00:0:0:0:8000::/65"), ip("fd00::1"), 2)
        },
    ]);
    let lines = route_lines(&inside, AddressFamily::Unspec);
    for expected in [
        // A secondary address gets its local route from its primary.
        "local 10.0.0.77/32 src 10.0.0.2 dev 2 table 255 proto kernel scope host",
        "local 192.168.9.9/32 src 192.168.9.9 dev 2 table 255 proto kernel scope host",
        "broadcast 172.16.0.2/32 src 172.16.0.1 dev 2 table 255 proto kernel scope link",
        "broadcast 172.16.0.3/32 src 172.16.0.1 dev 2 table 255 proto kernel scope link",
        "unicast 192.168.50.0/24 dev 2 table 254 proto boot scope link",
        "unicast fd01::5/128 metric 256 dev 2 table 254 proto kernel scope universe",
    ] {
        assert!(lines.contains(&expected.to_string()), "{expected} in {lines:#?}");
    }
    // No subnet route for a /32 or a secondary; the /65 inside the /64 first.
    assert!(!lines.iter().any(|line| line.starts_with("unicast 192.168.9.9")));
    assert_eq!(lines.iter().filter(|line| line.starts_with("unicast 10.0.0.0/24")).count(), 1);
    let position = |prefix: &str| lines.iter().position(|line| line.starts_with(prefix)).unwrap();
    assert!(position("unicast fd00::8000:0:0:0/65") < position("unicast fd00::/64"));
    assert!(position("unicast fd00::/64") < position("unicast fd01::5/128"));
}

#[test]
fn routes_of_a_link_without_carrier_are_linkdown_and_of_a_down_link_gone() {
    let mut inside = lwip0();
    inside.links[1].carrier = false;
    let lines = route_lines(&inside, AddressFamily::Unspec);
    let linkdown: Vec<_> = lines.iter().filter(|line| line.ends_with("linkdown")).collect();
    // All of eth0's but its local ones.
    assert_eq!(linkdown.len(), 7, "{lines:#?}");
    assert!(
        lines
            .iter()
            .filter(|line| line.starts_with("local"))
            .all(|line| !line.ends_with("linkdown"))
    );

    inside.links[1].up = false;
    let lines = route_lines(&inside, AddressFamily::Unspec);
    assert_eq!(
        lines,
        [
            "local 10.0.0.2/32 src 10.0.0.2 dev 2 table 255 proto kernel scope host",
            "local 127.0.0.0/8 src 127.0.0.1 dev 1 table 255 proto kernel scope host",
            "local 127.0.0.1/32 src 127.0.0.1 dev 1 table 255 proto kernel scope host",
            "broadcast 127.255.255.255/32 src 127.0.0.1 dev 1 table 255 proto kernel scope link",
            "local ::1/128 metric 0 dev 1 table 255 proto kernel scope universe",
        ]
    );
}

#[test]
fn a_strict_route_dump_filters_as_linux_does() {
    let inside = lwip0();
    let dump = |message: RouteMessage| {
        answers_with(&inside, strict(), &dump_request(RouteNetlinkMessage::GetRoute(message)))
    };
    let mut main = route_request(AddressFamily::Inet);
    main.header.table = RouteHeader::RT_TABLE_MAIN;
    let filtered = NLM_F_MULTIPART | NLM_F_DUMP_FILTERED;
    assert_eq!(dumped(dump(main.clone()), filtered).len(), 2);
    // Unfiltered, the messages still say filtered (no cached routes), the end not.
    let all = dump(route_request(AddressFamily::Unspec));
    let done_flags = all.last().unwrap()[0].header.flags;
    assert_eq!(done_flags, NLM_F_MULTIPART);
    assert_eq!(all.iter().flatten().count(), 15);

    main.header.table = 100;
    assert_eq!(dump_error(dump(main.clone())), (libc::ENOENT, filtered));
    main.header.address_family = AddressFamily::Unspec;
    assert_eq!(dumped(dump(main), filtered).len(), 0);
    let mut local_only = route_request(AddressFamily::Unspec);
    local_only.header.kind = RouteType::Local;
    assert_eq!(dumped(dump(local_only), filtered).len(), 6);
    let mut by_link = route_request(AddressFamily::Unspec);
    by_link.attributes.push(RouteAttribute::Oif(9));
    assert_eq!(dump_error(dump(by_link)), (libc::ENODEV, NLM_F_MULTIPART));
    let mut scoped = route_request(AddressFamily::Unspec);
    scoped.header.scope = netlink_packet_route::route::RouteScope::Link;
    assert_eq!(dump_error(dump(scoped)), (libc::EINVAL, NLM_F_MULTIPART));
}

#[test]
fn the_rule_dump_is_a_new_namespaces() {
    let dump = |family| {
        answers(
            &lwip0(),
            &dump_request(RouteNetlinkMessage::GetRule({
                let mut message = RuleMessage::default();
                message.header.family = family;
                message
            })),
        )
    };
    let rules: Vec<(AddressFamily, u8, Option<u32>)> =
        dumped(dump(AddressFamily::Unspec), NLM_F_MULTIPART)
            .into_iter()
            .map(|message| {
                let RouteNetlinkMessage::NewRule(rule) = message else { panic!() };
                let priority = rule
                    .attributes
                    .iter()
                    .find_map(|a| if let RuleAttribute::Priority(p) = a { Some(*p) } else { None });
                (rule.header.family, rule.header.table, priority)
            })
            .collect();
    assert_eq!(
        rules,
        [
            (AddressFamily::Inet, 255, None),
            (AddressFamily::Inet, 254, Some(32766)),
            (AddressFamily::Inet, 253, Some(32767)),
            (AddressFamily::Inet6, 255, None),
            (AddressFamily::Inet6, 254, Some(32766)),
        ]
    );
    assert_eq!(dump(AddressFamily::Unspec).len(), 1, "NLMSG_DONE with the rules");
    assert_eq!(dumped(dump(AddressFamily::Inet6), NLM_F_MULTIPART).len(), 2);
    assert_eq!(dump_error(dump(AddressFamily::Bridge)).0, libc::EAFNOSUPPORT);
}

#[test]
fn neighbours_are_an_empty_dump_and_a_get_finds_none() {
    let mut message = NeighbourMessage::default();
    message.header.family = AddressFamily::Inet;
    let dump = dump_request(RouteNetlinkMessage::GetNeighbour(message.clone()));
    assert!(dumped(answers(&lwip0(), &dump), NLM_F_MULTIPART).is_empty());

    message.header.ifindex = 2;
    message
        .attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::Inet("10.0.0.1".parse().unwrap())));
    let get = request(NLM_F_REQUEST, 1, RouteNetlinkMessage::GetNeighbour(message.clone()));
    assert_eq!(acknowledged(&answers(&lwip0(), &get)[0][0], &get), libc::ENOENT);
    message.header.ifindex = 9;
    let get = request(NLM_F_REQUEST, 1, RouteNetlinkMessage::GetNeighbour(message));
    assert_eq!(acknowledged(&answers(&lwip0(), &get)[0][0], &get), libc::ENODEV);
}

/// The `NETCONFA_IFINDEX` of each netconf message in `datagrams`, with its family.
fn netconf_indexes(datagrams: &[Vec<u8>]) -> Vec<(u8, i32)> {
    datagrams
        .iter()
        .flat_map(|datagram| split(datagram))
        .filter(|message| u16::from_ne_bytes([message[4], message[5]]) == libc::RTM_NEWNETCONF)
        .map(|message| (message[16], i32::from_ne_bytes(message[24..28].try_into().unwrap())))
        .collect()
}

#[test]
fn netconf_lists_each_link_then_all_and_default() {
    let dump =
        raw(libc::RTM_GETNETCONF, NLM_F_REQUEST | NLM_F_DUMP, 1, &[libc::AF_UNSPEC as u8, 0, 0, 0]);
    let datagrams = respond(&mut lwip0(), PORT, &dump);
    let v4 = [1, 2, -1, -2].map(|index| (libc::AF_INET as u8, index));
    let v6 = [1, 2, -1, -2].map(|index| (libc::AF_INET6 as u8, index));
    assert_eq!(netconf_indexes(&datagrams), [v4, v6].concat());

    let mut get = vec![libc::AF_INET6 as u8, 0, 0, 0, 8, 0, 1, 0];
    get.extend(2i32.to_ne_bytes());
    let datagrams = respond(&mut lwip0(), PORT, &raw(libc::RTM_GETNETCONF, NLM_F_REQUEST, 1, &get));
    assert_eq!(netconf_indexes(&datagrams), [(libc::AF_INET6 as u8, 2)]);
}

#[test]
fn malformed_changes_get_linuxs_errno() {
    // As a network namespace answers: (type, payload length, errno).
    let linux = [
        (libc::RTM_NEWLINK, 16, libc::ENODEV),
        (libc::RTM_NEWLINK, 0, 0),
        (libc::RTM_NEWLINK, 8, libc::EINVAL),
        (libc::RTM_DELADDR, 16, libc::EOPNOTSUPP),
        (libc::RTM_DELADDR, 8, libc::EOPNOTSUPP),
        (libc::RTM_NEWROUTE, 16, libc::EOPNOTSUPP),
        (libc::RTM_SETLINK, 16, libc::EINVAL),
        (libc::RTM_SETLINK, 8, libc::EINVAL),
        (libc::RTM_NEWNEIGH, 16, libc::EINVAL),
        (libc::RTM_NEWNEIGH, 8, libc::EINVAL),
    ];
    for (kind, len, errno) in linux {
        let change = raw(kind, NLM_F_REQUEST | NLM_F_ACK, 1, &vec![0; len]);
        let datagrams = answers(&lwip0(), &change);
        assert_eq!(datagrams.len(), 1);
        assert_eq!(acknowledged(&datagrams[0][0], &change), errno, "type {kind}, {len} bytes");
    }
}

#[test]
fn only_requests_are_handled_and_control_messages_only_acknowledged() {
    let inside = lwip0();
    let get = |flags| raw(libc::RTM_GETLINK, flags, 1, &[0; 16]);
    assert!(respond(&mut inside.clone(), PORT, &get(NLM_F_DUMP)).is_empty());
    let not_a_request = get(NLM_F_ACK);
    assert_eq!(acknowledged(&answers(&inside, &not_a_request)[0][0], &not_a_request), 0);
    let noop = raw(libc::NLMSG_NOOP as u16, NLM_F_REQUEST | NLM_F_ACK, 1, &[]);
    assert_eq!(acknowledged(&answers(&inside, &noop)[0][0], &noop), 0);
    assert!(
        respond(&mut inside.clone(), PORT, &raw(libc::NLMSG_NOOP as u16, NLM_F_REQUEST, 1, &[]))
            .is_empty()
    );
    // Beyond RTM_MAX; an empty payload is acknowledged, not answered.
    let unknown = raw(200, NLM_F_REQUEST, 1, b"xy");
    assert_eq!(acknowledged(&answers(&inside, &unknown)[0][0], &unknown), libc::EOPNOTSUPP);
    let empty = raw(libc::RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP | NLM_F_ACK, 1, &[]);
    assert_eq!(acknowledged(&answers(&inside, &empty)[0][0], &empty), 0);
    assert!(
        respond(
            &mut inside.clone(),
            PORT,
            &raw(libc::RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, &[])
        )
        .is_empty()
    );
}

#[test]
fn an_error_echoes_the_request_padded_and_a_dump_is_not_acknowledged() {
    let odd = raw(200, NLM_F_REQUEST, 5, b"xyz");
    let datagram = &respond(&mut lwip0(), PORT, &odd[..19])[0];
    // Header, errno, the request's 19 bytes and a pad byte.
    assert_eq!(datagram.len(), 16 + 4 + 20);
    assert_eq!(datagram[20..39], odd[..19]);
    let dump = raw(libc::RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP | NLM_F_ACK, 1, &[0; 16]);
    assert!(
        answers(&lwip0(), &dump)
            .iter()
            .flatten()
            .all(|message| !matches!(message.payload, NetlinkPayload::Error(_)))
    );
}

#[test]
fn messages_of_a_datagram_are_answered_in_order_until_a_broken_one() {
    let inside = lwip0();
    let get = |index: u8, sequence| {
        raw(
            libc::RTM_GETLINK,
            NLM_F_REQUEST,
            sequence,
            &[0, 0, 0, 0, index, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        )
    };
    let mut datagram = [get(1, 1), get(2, 2)].concat();
    let sequences = |datagrams: Vec<Vec<NetlinkMessage<RouteNetlinkMessage>>>| {
        datagrams.iter().flatten().map(|m| m.header.sequence_number).collect::<Vec<_>>()
    };
    assert_eq!(sequences(answers(&inside, &datagram)), [1, 2]);
    // A third message claiming more bytes than there are ends it silently.
    let mut overlong = get(1, 3);
    overlong[0] = 200;
    datagram.extend(&overlong);
    assert_eq!(sequences(answers(&inside, &datagram)), [1, 2]);
    // So does one claiming less than a header, and a short tail is ignored.
    let mut short = get(1, 4);
    short[0] = 8;
    assert_eq!(sequences(answers(&inside, &[get(1, 1), short, get(2, 5)].concat())), [1]);
    assert_eq!(sequences(answers(&inside, &[get(2, 6), vec![1, 2, 3]].concat())), [6]);
}

#[test]
fn a_dump_while_another_runs_is_busy() {
    let links = raw(libc::RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, &[0; 16]);
    let addresses = raw(libc::RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, 2, &[0; 8]);
    let datagrams = answers(&lwip0(), &[links, addresses.clone()].concat());
    // The links, the refusal, then the links' NLMSG_DONE as the program reads on.
    assert_eq!(datagrams.len(), 3);
    assert_eq!(datagrams[0].len(), 2);
    assert_eq!(acknowledged(&datagrams[1][0], &addresses), libc::EBUSY);
    assert!(matches!(datagrams[2][0].payload, NetlinkPayload::Done(_)));
    // A dump done in its first datagram lets the next one run.
    let rules = raw(libc::RTM_GETRULE, NLM_F_REQUEST | NLM_F_DUMP, 3, &[0; 12]);
    let datagrams = answers(&lwip0(), &[rules, addresses].concat());
    assert_eq!(datagrams.iter().map(Vec::len).collect::<Vec<_>>(), [6, 5, 1]);
}

#[test]
fn a_large_dump_is_packed_in_datagrams_of_a_page_without_splitting_a_message() {
    let mut inside = lwip0();
    for index in 3..40 {
        inside.links.push(link(
            index,
            &format!("eth{}", index - 2),
            LinkKind::Ethernet,
            [2, 0, 0, 0, 0, index as u8],
            1500,
        ));
    }
    let dump = raw(libc::RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, &[0; 16]);
    let datagrams = respond(&mut inside.clone(), PORT, &dump);
    assert!(datagrams.len() > 10);
    assert!(datagrams.iter().all(|datagram| datagram.len() <= DUMP_DATAGRAM_SIZE));
    let indexes: Vec<u32> = links(dumped(
        datagrams.iter().map(|d| split(d).into_iter().map(parse).collect()).collect(),
        NLM_F_MULTIPART,
    ))
    .iter()
    .map(|link| link.header.index)
    .collect();
    assert_eq!(indexes, (1..40).collect::<Vec<_>>());
    assert_eq!(split(datagrams.last().unwrap()).len(), 1, "NLMSG_DONE apart");
}

/// A small deterministic generator (xorshift64*), for the fuzz test.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

/// Valid requests of every kind, to mutate.
fn sample_requests() -> Vec<Vec<u8>> {
    let mut samples: Vec<Vec<u8>> = [
        RouteNetlinkMessage::GetLink(link_request(
            AddressFamily::Unspec,
            0,
            vec![LinkAttribute::ExtMask(vec![])],
        )),
        RouteNetlinkMessage::GetLink(link_request(AddressFamily::Inet6, 0, vec![])),
        RouteNetlinkMessage::GetAddress(address_request(AddressFamily::Unspec, 2)),
        RouteNetlinkMessage::GetRoute(route_request(AddressFamily::Inet6)),
        RouteNetlinkMessage::GetRule(RuleMessage::default()),
        RouteNetlinkMessage::GetNeighbour(NeighbourMessage::default()),
    ]
    .into_iter()
    .flat_map(|body| [dump_request(body.clone()), request(NLM_F_REQUEST | NLM_F_ACK, 1, body)])
    .collect();
    samples.extend(change_requests());
    for kind in [libc::RTM_GETNETCONF, libc::RTM_GETQDISC, 94, libc::RTM_NEWADDR, 1, 2, 3] {
        samples.push(raw(
            kind,
            NLM_F_REQUEST | NLM_F_DUMP,
            1,
            &[2, 0, 0, 0, 8, 0, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
        ));
    }
    samples
}

/// Requests that change the stack, as `ip` sends them: addresses, link
/// settings, routes and neighbours added and deleted, and a route lookup.
fn change_requests() -> Vec<Vec<u8>> {
    let change = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
    let mut v4 = address_request(AddressFamily::Inet, 2);
    v4.header.prefix_len = 24;
    v4.attributes =
        vec![AddressAttribute::Local(ip("10.0.0.50")), AddressAttribute::Address(ip("10.0.0.50"))];
    let mut v6 = address_request(AddressFamily::Inet6, 2);
    v6.header.prefix_len = 64;
    v6.attributes = vec![AddressAttribute::Local(ip("fd01::2"))];
    let mut mtu = link_request(AddressFamily::Unspec, 2, vec![LinkAttribute::Mtu(1400)]);
    mtu.header.flags = LinkFlags::Up;
    mtu.header.change_mask = LinkFlags::Up;
    let down = link_request(AddressFamily::Unspec, 2, vec![]);
    let mut route = route_request(AddressFamily::Inet);
    route.header.destination_prefix_length = 24;
    route.header.table = libc::RT_TABLE_MAIN;
    route.header.kind = RouteType::Unicast;
    route.attributes = vec![
        RouteAttribute::Destination(RouteAddress::Inet("10.9.0.0".parse().unwrap())),
        RouteAttribute::Gateway(RouteAddress::Inet("10.0.0.1".parse().unwrap())),
    ];
    let mut lookup = route_request(AddressFamily::Inet);
    lookup.header.destination_prefix_length = 32;
    lookup.attributes =
        vec![RouteAttribute::Destination(RouteAddress::Inet("10.9.0.7".parse().unwrap()))];
    let mut neighbour = NeighbourMessage::default();
    neighbour.header.family = AddressFamily::Inet;
    neighbour.header.ifindex = 2;
    neighbour.attributes = vec![
        NeighbourAttribute::Destination(NeighbourAddress::Inet("10.0.0.77".parse().unwrap())),
        NeighbourAttribute::LinkLayerAddress(vec![2, 0, 0, 0, 0, 0x77]),
    ];
    vec![
        request(change, 1, RouteNetlinkMessage::NewAddress(v4.clone())),
        request(change | NLM_F_ECHO, 2, RouteNetlinkMessage::NewAddress(v6.clone())),
        request(NLM_F_REQUEST | NLM_F_ACK, 3, RouteNetlinkMessage::DelAddress(v4)),
        request(NLM_F_REQUEST | NLM_F_ACK, 4, RouteNetlinkMessage::DelAddress(v6)),
        request(NLM_F_REQUEST | NLM_F_ACK, 5, RouteNetlinkMessage::SetLink(mtu)),
        request(NLM_F_REQUEST | NLM_F_ACK, 6, RouteNetlinkMessage::NewLink(down)),
        request(change, 7, RouteNetlinkMessage::NewRoute(route.clone())),
        request(NLM_F_REQUEST | NLM_F_ACK, 8, RouteNetlinkMessage::DelRoute(route)),
        request(NLM_F_REQUEST, 9, RouteNetlinkMessage::GetRoute(lookup)),
        request(change, 10, RouteNetlinkMessage::NewNeighbour(neighbour.clone())),
        request(NLM_F_REQUEST | NLM_F_ACK, 11, RouteNetlinkMessage::DelNeighbour(neighbour)),
    ]
}

#[test]
fn a_change_is_acknowledged_echoed_and_notified() {
    let mut inside = lwip0();
    let added = &change_requests()[1];
    let answers = respond_with(&mut inside, PORT, Options::default(), added, &mut unlimited());
    // The new address and its routes (prefix, local) echoed, then the ack.
    let kinds: Vec<u16> = answers
        .to_asker
        .iter()
        .flat_map(|datagram| split(datagram))
        .map(|message| u16::from_ne_bytes([message[4], message[5]]))
        .collect();
    let ack = libc::NLMSG_ERROR as u16;
    assert_eq!(kinds, [libc::RTM_NEWADDR, libc::RTM_NEWROUTE, libc::RTM_NEWROUTE, ack]);
    let groups: Vec<u32> = answers.notifications.iter().map(|(group, _)| *group).collect();
    assert_eq!(groups, [9, 11, 11], "the IPv6 address group, then IPv6 routes'");
    assert!(inside.addresses.iter().any(|a| a.address == cidr("fd01::2/64")));
    // Again: the address exists.
    let again = respond_with(&mut inside, PORT, Options::default(), added, &mut unlimited());
    assert_eq!(again.to_asker.len(), 1);
    assert_eq!(acknowledged(&parse(&again.to_asker[0]), added), libc::EEXIST);
    assert!(again.notifications.is_empty());
}

/// A mutation of `sample`: bytes flipped, a truncation, a wrong length, or
/// several samples back to back.
fn mutate(random: &mut Random, sample: &[u8], samples: &[Vec<u8>]) -> Vec<u8> {
    let mut bytes = sample.to_vec();
    match random.below(5) {
        0 => {
            for _ in 0..=random.below(4) {
                let at = random.below(bytes.len());
                bytes[at] ^= 1 << random.below(8);
            }
        }
        1 => bytes.truncate(random.below(bytes.len() + 1)),
        2 => {
            let len =
                [0, 1, 15, 16, 17, bytes.len() - 1, bytes.len() + 1, 0xffff_ffff][random.below(8)];
            bytes[..4].copy_from_slice(&(len as u32).to_ne_bytes());
        }
        3 => {
            let at = 16 + random.below(bytes.len().saturating_sub(16).max(1));
            let value = random.next() as u8;
            if let Some(byte) = bytes.get_mut(at) {
                *byte = value;
            }
        }
        _ => {
            for _ in 0..random.below(4) {
                bytes.extend(&samples[random.below(samples.len())]);
            }
        }
    }
    bytes
}

/// Checks that the answers to `request` are well-formed and bounded: each
/// datagram holds whole messages, none larger than a dump's datagram or an error
/// echoing the request, and there are no more datagrams than messages could ask.
fn check_bounded(inside: &mut Inside, options: Options, request: &[u8]) {
    let datagrams = respond_with(inside, PORT, options, request, &mut unlimited()).to_asker;
    let largest = DUMP_DATAGRAM_SIZE.max(request.len().next_multiple_of(4) + 20);
    let messages = request.len() / 16;
    assert!(
        datagrams.len() <= 3 * messages + 2,
        "{} datagrams for {messages} messages",
        datagrams.len()
    );
    for datagram in &datagrams {
        assert!(datagram.len() <= largest, "a datagram of {} bytes", datagram.len());
        for message in split(datagram) {
            assert_eq!(u32::from_ne_bytes(message[12..16].try_into().unwrap()), PORT);
        }
    }
}

#[test]
fn fuzzed_requests_never_panic_and_answer_within_bounds() {
    let mut inside = lwip0();
    let samples = sample_requests();
    let mut random = Random(0x6e65_7476_6d00_0013);
    for round in 0..6000 {
        let request = if round % 3 == 0 {
            (0..random.below(96)).map(|_| random.next() as u8).collect()
        } else {
            let sample = &samples[random.below(samples.len())];
            mutate(&mut random, sample, &samples)
        };
        let options = Options { strict_check: round % 2 == 0, uid: 0 };
        check_bounded(&mut inside, options, &request);
    }
}

/// A fuzz of change requests, from review (it found nothing): 20,000 random `RTM_NEW*`,
/// `RTM_DEL*` and `RTM_SETLINK` requests of every family, with plausible family
/// headers and random attributes of random lengths (the short, the empty and the
/// misaligned among them), gets and dumps between them: none panics, many
/// change the snapshot, and it stays within its limits.
#[test]
fn random_change_requests_never_panic() {
    let mut seed: u64 = 13;
    let mut random = move |below: u64| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) % below.max(1)
    };
    let kinds = [16u16, 17, 18, 19, 20, 21, 22, 24, 25, 26, 28, 29, 30];
    let families = [2u8, 10, 2, 10, 0, 7];
    let mut inside = lwip0();
    let mut changed = 0;
    for _ in 0..20_000 {
        let kind = kinds[random(kinds.len() as u64) as usize];
        let flags =
            (NLM_F_REQUEST | NLM_F_ACK) | [0, 0x400, 0x600, 0x100, 0x800][random(5) as usize];
        let family = families[random(families.len() as u64) as usize];
        let index = random(4) as u8;
        let prefix = [0, 1, 8, 24, 32, 64, 128, 129, 255][random(9) as usize];
        let mut payload = match kind {
            16..=19 => vec![family, 0, 1, 0, index, 0, 0, 0, random(2) as u8, 0, 0, 0, 1, 0, 0, 0],
            20..=22 => vec![family, prefix, 0, random(255) as u8, index, 0, 0, 0],
            24..=26 => vec![family, prefix, 0, 0, 254, random(5) as u8, 0, 1, 0, 0, 0, 0],
            _ => vec![family, 0, 0, 0, index, 0, 0, 0, 0x80, 0, 0, 0],
        };
        payload.truncate(payload.len() - random(3) as usize * (random(8) == 0) as usize);
        for _ in 0..random(5) {
            // Addresses people would send, numbers, or noise.
            let value: Vec<u8> = match random(7) {
                0 => vec![10, 0, 0, [1, 2, 3, 9, 255, 0][random(6) as usize]],
                1 => vec![0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, random(4) as u8],
                2 => vec![[224, 255, 0, 127][random(4) as usize], 0, 0, 1],
                3 => (random(70000) as u32).to_ne_bytes().to_vec(),
                4 => vec![2, 0, 0, 0, 0, random(3) as u8],
                5 => b"eth0\0".to_vec(),
                _ => (0..random(24)).map(|_| random(256) as u8).collect(),
            };
            let len = (4 + value.len()) as u16 - (random(10) == 0) as u16;
            payload.extend(len.to_ne_bytes());
            payload.extend((1 + random(15) as u16).to_ne_bytes());
            payload.extend(value);
            payload.resize(payload.len().next_multiple_of(4), 0);
        }
        let mut message = vec![0u8; 16];
        message[..4].copy_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
        message[4..6].copy_from_slice(&kind.to_ne_bytes());
        message[6..8].copy_from_slice(&flags.to_ne_bytes());
        message.extend(payload);
        let before = inside.clone();
        respond(&mut inside, PORT, &message);
        changed += usize::from(before != inside);
        assert!(inside.routes.len() <= crate::modules::vunet::inside::change::MAX_ROUTES);
        assert!(inside.addresses.iter().all(|a| a.address.prefix <= 128));
    }
    assert!(changed > 100, "only {changed} requests changed anything");
}

#[test]
fn a_datagram_of_many_changes_is_answered_over_several_rounds() {
    let mut inside = lwip0();
    let one = change_requests()[0].clone();
    let flood: Vec<u8> = std::iter::repeat_n(one.clone(), 100).flatten().collect();
    let mut budget = ROUND_BUDGET;
    let first = respond_with(&mut inside, PORT, Options::default(), &flood, &mut budget);
    assert_eq!(budget, 0);
    let at = first.unanswered.expect("the rest is left for later");
    assert_eq!(at, one.len() * (ROUND_BUDGET / CHANGE_COST) as usize);
    // The first added the address, the others found it: one ack, then errors.
    assert_eq!(first.to_asker.len(), (ROUND_BUDGET / CHANGE_COST) as usize);
    let rest = respond_with(&mut inside, PORT, Options::default(), &flood[at..], &mut unlimited());
    assert_eq!(rest.unanswered, None);
    assert_eq!(first.to_asker.len() + rest.to_asker.len(), 100);
}
