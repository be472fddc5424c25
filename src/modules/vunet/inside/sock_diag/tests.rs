//! The answers `ss` gets, checked against what Linux 6.18 gave the same requests
//! in a network namespace with the same sockets.

use netlink_packet_core::{NLM_F_CAPPED, NLM_F_MULTIPART};

use super::*;
use crate::modules::vunet::inside::netlink::HEADER_LEN;

const TCP: u8 = libc::IPPROTO_TCP as u8;
const UDP: u8 = libc::IPPROTO_UDP as u8;
const RAW: u8 = libc::IPPROTO_RAW as u8;
/// `NLM_F_REQUEST | NLM_F_DUMP`, as `ss` sends.
const DUMP: u16 = 0x301;
/// `NLM_F_REQUEST | NLM_F_ACK`.
const GET_ACKED: u16 = 0x5;
/// Every state, as `ss -a` asks (and `TCP_BOUND_INACTIVE`, which it does not).
const ALL_STATES: u32 = 0xfff;
const NO_COOKIE: [u32; 2] = [!0, !0];

fn view(
    family: u8,
    transport: Transport,
    state: u8,
    local: &str,
    remote: &str,
    inode: u64,
) -> SocketView {
    SocketView {
        family,
        transport,
        state,
        local: local.parse().unwrap(),
        remote: remote.parse().unwrap(),
        rqueue: 0,
        wqueue: 0,
        uid: 1000,
        inode,
        cookie: inode + 100,
        shutdown: 0,
        v6only: false,
        port_locked: true,
    }
}

/// A listener on 127.0.0.1:80 with one connection accepted from port 40000, a
/// TCP socket bound to :81 and nothing more, a dual-stack listener on
/// [::]:8080, a bound and a connected UDP socket, an unbound UDP socket, and a
/// raw ICMP socket.
fn sockets() -> Vec<SocketView> {
    let mut listener =
        view(FAMILY_INET, Transport::Tcp, state::LISTEN, "127.0.0.1:80", "0.0.0.0:0", 11);
    listener.wqueue = 5;
    let mut client = view(
        FAMILY_INET,
        Transport::Tcp,
        state::ESTABLISHED,
        "127.0.0.1:40000",
        "127.0.0.1:80",
        12,
    );
    client.port_locked = false;
    vec![
        client,
        view(
            FAMILY_INET,
            Transport::Tcp,
            state::ESTABLISHED,
            "127.0.0.1:80",
            "127.0.0.1:40000",
            13,
        ),
        listener,
        view(FAMILY_INET, Transport::Tcp, state::CLOSE, "0.0.0.0:81", "0.0.0.0:0", 14),
        view(FAMILY_INET6, Transport::Tcp, state::LISTEN, "[::]:8080", "[::]:0", 15),
        view(FAMILY_INET, Transport::Udp, state::CLOSE, "0.0.0.0:53", "0.0.0.0:0", 16),
        view(
            FAMILY_INET,
            Transport::Udp,
            state::ESTABLISHED,
            "127.0.0.1:41000",
            "127.0.0.1:53",
            17,
        ),
        view(FAMILY_INET, Transport::Udp, state::CLOSE, "0.0.0.0:0", "0.0.0.0:0", 18),
        view(FAMILY_INET, Transport::Raw(1), state::CLOSE, "0.0.0.0:0", "0.0.0.0:0", 19),
    ]
}

/// A netlink message of `kind` with `flags` and sequence 7.
fn message(kind: u16, flags: u16, payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&(16 + payload.len() as u32).to_ne_bytes());
    bytes.extend_from_slice(&kind.to_ne_bytes());
    bytes.extend_from_slice(&flags.to_ne_bytes());
    bytes.extend_from_slice(&7u32.to_ne_bytes());
    bytes.extend_from_slice(&0u32.to_ne_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// The fields of an `inet_diag_req_v2` a test sets.
#[derive(Clone, Copy, Default)]
struct Ask {
    family: u8,
    protocol: u8,
    extensions: u8,
    states: u32,
    sport: u16,
    dport: u16,
    src: [u8; 4],
    dst: [u8; 4],
    cookie: [u32; 2],
}

impl Ask {
    fn new(family: u8, protocol: u8) -> Self {
        Ask { family, protocol, states: ALL_STATES, ..Default::default() }
    }

    /// The `inet_diag_req_v2`.
    fn v2(self) -> Vec<u8> {
        let mut bytes = vec![self.family, self.protocol, self.extensions, 0];
        bytes.extend_from_slice(&self.states.to_ne_bytes());
        bytes.extend_from_slice(&self.id());
        bytes
    }

    /// The legacy `inet_diag_req`.
    fn legacy(self) -> Vec<u8> {
        let mut bytes = vec![self.family, 0, 0, self.extensions];
        bytes.extend_from_slice(&self.id());
        bytes.extend_from_slice(&self.states.to_ne_bytes());
        bytes.extend_from_slice(&0u32.to_ne_bytes());
        bytes
    }

    fn id(self) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&self.sport.to_be_bytes());
        bytes.extend_from_slice(&self.dport.to_be_bytes());
        for address in [self.src, self.dst] {
            bytes.extend_from_slice(&address);
            bytes.extend_from_slice(&[0; 12]);
        }
        bytes.extend_from_slice(&0u32.to_ne_bytes());
        bytes.extend_from_slice(&self.cookie[0].to_ne_bytes());
        bytes.extend_from_slice(&self.cookie[1].to_ne_bytes());
        bytes
    }
}

/// One answer message: type, flags, payload.
#[derive(Debug)]
struct Answer {
    kind: u16,
    flags: u16,
    payload: Vec<u8>,
}

impl Answer {
    /// An `NLMSG_ERROR`'s or `NLMSG_DONE`'s errno (positive).
    fn errno(&self) -> i32 {
        -i32::from_ne_bytes(self.payload[..4].try_into().unwrap())
    }

    /// A socket answer's state, local port, remote port and inode.
    fn socket(&self) -> (u8, u16, u16, u32) {
        let p = &self.payload;
        let port = |at: usize| u16::from_be_bytes([p[at], p[at + 1]]);
        (p[1], port(4), port(6), u32::from_ne_bytes(p[68..72].try_into().unwrap()))
    }

    /// A socket answer's attributes: type and value.
    fn attributes(&self) -> Vec<(u16, Vec<u8>)> {
        let mut found = Vec::new();
        let mut at = 72;
        while at + 4 <= self.payload.len() {
            let len = usize::from(u16::from_ne_bytes([self.payload[at], self.payload[at + 1]]));
            let kind = u16::from_ne_bytes([self.payload[at + 2], self.payload[at + 3]]);
            found.push((kind, self.payload[at + 4..at + len].to_vec()));
            at += align(len);
        }
        found
    }
}

/// The messages of each datagram.
fn parse(datagrams: &[Vec<u8>]) -> Vec<Vec<Answer>> {
    datagrams
        .iter()
        .map(|datagram| {
            messages(datagram)
                .map(|m| Answer {
                    kind: m.header.message_type,
                    flags: m.header.flags,
                    payload: m.payload().to_vec(),
                })
                .collect()
        })
        .collect()
}

fn ask(request: &[u8]) -> Vec<Vec<Answer>> {
    parse(&respond(&sockets(), 4242, request))
}

/// The sockets a dump answers, then its end's errno.
fn dump(request: &[u8]) -> (Vec<(u8, u16, u16, u32)>, i32) {
    let datagrams = ask(request);
    let (done, answers) = datagrams.split_last().expect("a dump ends");
    assert_eq!(done.len(), 1, "NLMSG_DONE comes alone: {datagrams:?}");
    assert_eq!((done[0].kind, done[0].flags), (3, NLM_F_MULTIPART));
    let sockets = answers
        .iter()
        .flatten()
        .inspect(|a| assert_eq!(a.flags, NLM_F_MULTIPART))
        .map(Answer::socket)
        .collect();
    (sockets, done[0].errno())
}

/// The errno of the only answer, an `NLMSG_ERROR`.
fn refused(request: &[u8]) -> i32 {
    let datagrams = ask(request);
    assert_eq!(datagrams.len(), 1, "{datagrams:?}");
    assert_eq!(datagrams[0][0].kind, 2);
    datagrams[0][0].errno()
}

#[test]
fn a_tcp_dump_lists_listeners_then_connections_of_the_family_asked() {
    let (listed, errno) = dump(&message(20, DUMP, &Ask::new(FAMILY_INET, TCP).v2()));
    assert_eq!(errno, 0);
    assert_eq!(listed, [(10, 80, 0, 11), (1, 80, 40000, 13), (1, 40000, 80, 12)]);
    let (listed, _) = dump(&message(20, DUMP, &Ask::new(FAMILY_INET6, TCP).v2()));
    assert_eq!(listed, [(10, 8080, 0, 15)]);
}

#[test]
fn bound_inactive_tcp_sockets_come_only_when_asked_and_unfiltered_by_port() {
    let ask = Ask { states: 1 << state::BOUND_INACTIVE, ..Ask::new(FAMILY_INET, TCP) };
    assert_eq!(dump(&message(20, DUMP, &ask.v2())).0, [(7, 81, 0, 14)]);
    let ask = Ask { states: !0, sport: 80, ..Ask::new(FAMILY_INET, TCP) };
    assert_eq!(
        dump(&message(20, DUMP, &ask.v2())).0,
        [(10, 80, 0, 11), (7, 81, 0, 14), (1, 80, 40000, 13)]
    );
}

#[test]
fn state_and_port_filters_apply() {
    let ask = Ask { states: 1 << state::ESTABLISHED, ..Ask::new(FAMILY_INET, UDP) };
    assert_eq!(dump(&message(20, DUMP, &ask.v2())).0, [(1, 41000, 53, 17)]);
    let ask = Ask { dport: 80, ..Ask::new(FAMILY_INET, TCP) };
    assert_eq!(dump(&message(20, DUMP, &ask.v2())).0, [(1, 40000, 80, 12)]);
}

#[test]
fn udp_dumps_skip_unbound_sockets_and_raw_dumps_report_the_protocol_as_port() {
    let (listed, _) = dump(&message(20, DUMP, &Ask::new(FAMILY_INET, UDP).v2()));
    assert_eq!(listed, [(7, 53, 0, 16), (1, 41000, 53, 17)]);
    let (listed, _) =
        dump(&message(20, DUMP, &Ask { states: 0, ..Ask::new(FAMILY_INET, RAW) }.v2()));
    assert_eq!(listed, [(7, 1, 0, 19)]);
}

#[test]
fn answers_carry_the_attributes_linux_always_gives() {
    let datagrams = ask(&message(20, DUMP, &Ask::new(FAMILY_INET, TCP).v2()));
    let kinds: Vec<u16> = datagrams[0][0].attributes().iter().map(|(k, _)| *k).collect();
    // SHUTDOWN, MARK, SOCKOPT (not the cgroup, which a stack's socket has none of).
    assert_eq!(kinds, [8, 15, 22]);
    assert_eq!(datagrams[0][0].attributes()[2].1, [0x52, 0]);
    let datagrams = ask(&message(20, DUMP, &Ask::new(FAMILY_INET6, TCP).v2()));
    let kinds: Vec<u16> = datagrams[0][0].attributes().iter().map(|(k, _)| *k).collect();
    assert_eq!(kinds, [8, 11, 15, 22], "v6only for an IPv6 listener");
}

#[test]
fn extensions_add_memory_and_tcp_info() {
    let ask_all = Ask { extensions: 0xff, ..Ask::new(FAMILY_INET, TCP) };
    let datagrams = ask(&message(20, DUMP, &ask_all.v2()));
    let attributes = datagrams[0][1].attributes();
    let kinds: Vec<u16> = attributes.iter().map(|(k, _)| *k).collect();
    assert_eq!(kinds, [8, 5, 15, 17, 22, 1, 7, 2, 4]);
    let info = &attributes[7].1;
    assert_eq!((info.len(), info[0], info[5]), (TCP_INFO_LEN, state::ESTABLISHED, 0b111));
    assert_eq!(attributes[8].1, b"cubic\0");
    let listener_info = &datagrams[0][0].attributes()[7].1;
    assert_eq!(u32::from_ne_bytes(listener_info[28..32].try_into().unwrap()), 5, "backlog");

    let datagrams =
        ask(&message(20, DUMP, &Ask { extensions: 0xff, ..Ask::new(FAMILY_INET, UDP) }.v2()));
    let kinds: Vec<u16> = datagrams[0][0].attributes().iter().map(|(k, _)| *k).collect();
    assert_eq!(kinds, [8, 5, 15, 17, 22, 1, 7]);
    let datagrams = ask(&message(20, DUMP, &Ask::new(FAMILY_INET, RAW).v2()));
    assert_eq!(datagrams[0][0].attributes().last().unwrap(), &(10, vec![1]), "INET_DIAG_PROTOCOL");
}

#[test]
fn an_unknown_protocol_ends_its_dump_with_enoent() {
    assert_eq!(dump(&message(20, DUMP, &Ask::new(FAMILY_INET, 99).v2())), (vec![], libc::ENOENT));
    // INET_DIAG_REQ_PROTOCOL overrides the header's protocol.
    let mut request = Ask::new(FAMILY_INET, TCP).v2();
    request.extend_from_slice(&[8, 0, 3, 0, UDP, 0, 0, 0]);
    assert_eq!(dump(&message(20, DUMP, &request)).0.len(), 2);
    let mut request = Ask::new(FAMILY_INET, TCP).v2();
    request.extend_from_slice(&[6, 0, 3, 0, UDP, 0, 0, 0]);
    assert_eq!(refused(&message(20, DUMP, &request)), libc::EINVAL, "a protocol of 2 bytes");
}

#[test]
fn malformed_requests_get_the_kernels_errno_with_the_request_echoed() {
    let short = message(20, DUMP, &Ask::new(FAMILY_INET, TCP).v2()[..20]);
    let datagrams = ask(&short);
    assert_eq!(datagrams[0][0].payload.len(), 4 + short.len(), "the request echoed");
    assert_eq!(refused(&short), libc::EINVAL);
    assert_eq!(refused(&message(20, DUMP, &[2])), libc::EINVAL);
    assert_eq!(refused(&message(20, DUMP, &Ask::new(99, TCP).v2())), libc::EINVAL, "past AF_MAX");
    assert_eq!(refused(&message(20, DUMP, &Ask::new(3, TCP).v2())), libc::ENOENT, "no handler");
    assert_eq!(refused(&message(20, DUMP, &Ask::new(0, TCP).v2())), libc::ENOENT, "AF_UNSPEC");
    assert_eq!(refused(&message(30, GET_ACKED, &Ask::new(2, TCP).v2())), libc::EINVAL);
    assert_eq!(refused(&message(16, GET_ACKED, &Ask::new(2, TCP).v2())), libc::EINVAL);
    assert_eq!(refused(&message(19, DUMP, &Ask::new(2, TCP).legacy())), libc::EINVAL, "no DCCP");
    assert_eq!(refused(&message(21, GET_ACKED, &Ask::new(2, TCP).v2())), libc::EOPNOTSUPP);
}

#[test]
fn control_messages_and_non_requests_are_acknowledged_only_if_asked() {
    assert!(ask(&message(20, 0x300, &Ask::new(2, TCP).v2())).is_empty());
    let datagrams = ask(&message(3, GET_ACKED, &[]));
    assert_eq!(
        (datagrams[0][0].kind, datagrams[0][0].flags, datagrams[0][0].errno()),
        (2, NLM_F_CAPPED, 0)
    );
}

#[test]
fn other_families_have_no_sockets() {
    let unix = |inode: u32| {
        let mut request = vec![1, 0, 0, 0];
        request.extend_from_slice(&(!0u32).to_ne_bytes());
        request.extend_from_slice(&inode.to_ne_bytes());
        request.extend_from_slice(&[0; 12]);
        request
    };
    assert_eq!(dump(&message(20, DUMP, &unix(0))), (vec![], 0));
    assert_eq!(refused(&message(20, GET_ACKED, &unix(0))), libc::EINVAL);
    assert_eq!(refused(&message(20, GET_ACKED, &unix(5))), libc::ENOENT);
    assert_eq!(refused(&message(20, DUMP, &unix(0)[..20])), libc::EINVAL);
    for family in [16, 17] {
        let request = [&[family, 0, 0, 0][..], &[0; 16]].concat();
        assert_eq!(dump(&message(20, DUMP, &request)), (vec![], 0));
        assert_eq!(refused(&message(20, GET_ACKED, &request)), libc::EOPNOTSUPP);
    }
    assert_eq!(refused(&message(20, DUMP, &[40, 0, 0, 0, 0, 0, 0, 0])), libc::ENOENT, "vsock");
}

#[test]
fn a_single_get_answers_one_socket_by_tuple_and_cookie() {
    let tuple = Ask {
        sport: 80,
        dport: 40000,
        src: [127, 0, 0, 1],
        dst: [127, 0, 0, 1],
        cookie: NO_COOKIE,
        ..Ask::new(FAMILY_INET, TCP)
    };
    let datagrams = ask(&message(20, GET_ACKED, &tuple.v2()));
    assert_eq!(datagrams.len(), 2, "the answer, then the acknowledgement");
    assert_eq!((datagrams[0][0].kind, datagrams[0][0].flags), (20, 0));
    assert_eq!(datagrams[0][0].socket(), (1, 80, 40000, 13));
    assert_eq!((datagrams[1][0].kind, datagrams[1][0].errno()), (2, 0));
    assert_eq!(ask(&message(20, 1, &tuple.v2())).len(), 1, "no acknowledgement unasked");
    let listener = Ask { dport: 0, dst: [0; 4], ..tuple };
    assert_eq!(ask(&message(20, GET_ACKED, &listener.v2()))[0][0].socket(), (10, 80, 0, 11));
    let by_cookie = Ask { cookie: [113, 0], ..tuple };
    assert_eq!(ask(&message(20, GET_ACKED, &by_cookie.v2()))[0][0].socket().3, 13);
    assert_eq!(
        refused(&message(20, GET_ACKED, &Ask { cookie: [0, 0], ..tuple }.v2())),
        libc::ENOENT
    );
    assert_eq!(refused(&message(20, GET_ACKED, &Ask { sport: 81, ..listener }.v2())), libc::ENOENT);
}

#[test]
fn a_udp_get_names_the_local_end_as_destination() {
    let to_53 =
        Ask { dport: 53, dst: [127, 0, 0, 1], cookie: NO_COOKIE, ..Ask::new(FAMILY_INET, UDP) };
    assert_eq!(ask(&message(20, GET_ACKED, &to_53.v2()))[0][0].socket(), (7, 53, 0, 16));
    let as_source = Ask { sport: 53, src: [127, 0, 0, 1], dport: 0, dst: [0; 4], ..to_53 };
    assert_eq!(refused(&message(20, GET_ACKED, &as_source.v2())), libc::ENOENT);
    assert_eq!(
        refused(&message(20, GET_ACKED, &Ask { cookie: [5, 0], ..to_53 }.v2())),
        libc::ESTALE
    );
}

#[test]
fn the_legacy_request_dumps_both_families_under_its_own_type() {
    let datagrams = ask(&message(18, DUMP, &Ask::new(FAMILY_INET, 0).legacy()));
    let answers: Vec<&Answer> = datagrams.iter().flatten().filter(|a| a.kind == 18).collect();
    assert_eq!(answers.len(), 4);
    assert_eq!(refused(&message(18, GET_ACKED, &Ask::new(FAMILY_INET, 0).legacy())), libc::ENOENT);
    assert_eq!(refused(&message(18, DUMP, &Ask::new(FAMILY_INET, 0).legacy()[..56])), libc::EINVAL);
}

#[test]
fn a_second_dump_while_one_runs_is_busy() {
    let mut request = message(20, DUMP, &Ask::new(FAMILY_INET, UDP).v2());
    request.extend(message(20, DUMP, &Ask::new(FAMILY_INET, TCP).v2()));
    let datagrams = ask(&request);
    let kinds: Vec<Vec<u16>> =
        datagrams.iter().map(|d| d.iter().map(|a| a.kind).collect()).collect();
    assert_eq!(kinds, [vec![20, 20], vec![2], vec![3]]);
    assert_eq!(datagrams[1][0].errno(), libc::EBUSY);
}

/// `ss -tan sport = :80` (a source condition of any family on port 80).
const SPORT_80: [u8; 16] = [7, 16, 20, 0, 0, 0, 0, 0, 80, 0, 0, 0, 0, 0, 0, 0];
/// `ss -tan dst 127.0.0.0/8`.
const DST_127_8: [u8; 16] = [8, 16, 20, 0, 2, 8, 0, 0, 0xff, 0xff, 0xff, 0xff, 127, 0, 0, 0];
/// `ss -tan autobound`.
const AUTOBOUND: [u8; 4] = [6, 4, 8, 0];
/// `ss -tan dport != :80`.
const DPORT_NOT_80: [u8; 20] = [8, 16, 20, 0, 0, 0, 0, 0, 80, 0, 0, 0, 0, 0, 0, 0, 1, 4, 8, 0];

fn with_bytecode(code: &[u8]) -> Vec<u8> {
    let mut request = Ask::new(FAMILY_INET, TCP).v2();
    request.extend_from_slice(&(4 + code.len() as u16).to_ne_bytes());
    request.extend_from_slice(&1u16.to_ne_bytes());
    request.extend_from_slice(code);
    request.resize(align(request.len()), 0);
    message(20, DUMP, &request)
}

#[test]
fn bytecode_filters_as_ss_compiles_them() {
    let ports = |code: &[u8]| -> Vec<(u16, u16)> {
        dump(&with_bytecode(code)).0.iter().map(|(_, local, remote, _)| (*local, *remote)).collect()
    };
    assert_eq!(ports(&SPORT_80), [(80, 0), (80, 40000)]);
    assert_eq!(ports(&DST_127_8), [(80, 40000), (40000, 80)]);
    assert_eq!(ports(&AUTOBOUND), [(40000, 80)]);
    assert_eq!(ports(&DPORT_NOT_80), [(80, 0), (80, 40000)]);
    assert_eq!(ports(&[0, 4, 8, 0]), [(80, 0), (80, 40000), (40000, 80)], "NOP only");
}

#[test]
fn bad_bytecode_is_refused_and_ignored_by_single_gets() {
    assert_eq!(refused(&with_bytecode(&[0, 4])), libc::EINVAL, "shorter than an operation");
    assert_eq!(refused(&with_bytecode(&[99, 4, 8, 0])), libc::EINVAL, "unknown operation");
    assert_eq!(refused(&with_bytecode(&[1, 4, 6, 0])), libc::EINVAL, "unaligned jump");
    assert_eq!(refused(&with_bytecode(&[1, 4, 16, 0])), libc::EINVAL, "jump too far");
    assert_eq!(refused(&with_bytecode(&SPORT_80[..12])), libc::EINVAL, "yes past the end");
    let bad_family = [7, 16, 20, 0, 9, 0, 0, 0, 80, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(refused(&with_bytecode(&bad_family)), libc::EINVAL);
    let long_prefix = [8, 16, 20, 0, 2, 33, 0, 0, 0xff, 0xff, 0xff, 0xff, 127, 0, 0, 0];
    assert_eq!(refused(&with_bytecode(&long_prefix)), libc::EINVAL);
    let mut get =
        Ask { sport: 80, src: [127, 0, 0, 1], cookie: NO_COOKIE, ..Ask::new(FAMILY_INET, TCP) }
            .v2();
    get.extend_from_slice(&[8, 0, 1, 0, 99, 4, 8, 0]);
    assert_eq!(ask(&message(20, GET_ACKED, &get))[0][0].socket().1, 80);
}

/// A small deterministic generator (xorshift), for the fuzz test.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_and_truncated_messages_never_panic() {
    let sockets = sockets();
    let mut random = Random(0x5eed_d1a6);
    let seeds = [
        message(20, DUMP, &Ask::new(FAMILY_INET, TCP).v2()),
        message(18, DUMP, &Ask::new(FAMILY_INET, 0).legacy()),
        with_bytecode(&DPORT_NOT_80),
        with_bytecode(&DST_127_8),
        message(
            20,
            GET_ACKED,
            &Ask { dport: 53, cookie: NO_COOKIE, ..Ask::new(FAMILY_INET6, UDP) }.v2(),
        ),
    ];
    for round in 0..6000 {
        let mut bytes = seeds[round % seeds.len()].clone();
        match round % 3 {
            0 => bytes.truncate(random.below(bytes.len() + 1)),
            1 => {
                for _ in 0..1 + random.below(6) {
                    let at = random.below(bytes.len());
                    bytes[at] = random.next() as u8;
                }
            }
            _ => bytes = (0..random.below(120)).map(|_| random.next() as u8).collect(),
        }
        let answers = respond(&sockets, 1, &bytes);
        assert!(answers.iter().all(|datagram| datagram.len() >= HEADER_LEN));
    }
}

#[test]
fn ipv4_addresses_of_ipv6_sockets_are_reported_v4_mapped() {
    let socket =
        view(FAMILY_INET6, Transport::Tcp, state::ESTABLISHED, "10.0.0.2:80", "10.0.0.3:5000", 1);
    let header = header(&socket);
    assert_eq!(
        header.socket_id.source_address,
        "::ffff:10.0.0.2".parse::<std::net::IpAddr>().unwrap()
    );
    let entry = bytecode::Entry::of(&socket);
    assert!(!bytecode::run(&DST_127_8, &entry));
    let to_10 = [8, 16, 20, 0, 2, 8, 0, 0, 0xff, 0xff, 0xff, 0xff, 10, 0, 0, 0];
    assert!(bytecode::run(&to_10, &entry), "an IPv4 condition matches a v4-mapped peer");
}

/// Bytecode of `count` port comparisons (`S_GE`), each jumping on failure to
/// the last one: auditing each of those jumps walks the whole program.
fn far_jumping_bytecode(count: usize) -> Vec<u8> {
    let mut code = Vec::new();
    for i in 0..count {
        let left = (count - i) * 8;
        let no = if left == 8 { 12 } else { left - 8 } as u16;
        code.extend_from_slice(&[2, 8]);
        code.extend_from_slice(&no.to_ne_bytes());
        code.extend_from_slice(&[0; 4]);
    }
    code
}

#[test]
fn the_longest_bytecode_is_audited_in_linear_time() {
    // As long as a request datagram lets it be (the supervisor reads 64 KiB).
    let code = far_jumping_bytecode((65536 - 16 - 56 - 4) / 8);
    let started = std::time::Instant::now();
    assert_eq!(bytecode::audit(&code), Ok(()));
    // A walk of the program for each of its jumps took seconds; once is
    // microseconds.
    let spent = started.elapsed();
    assert!(spent < std::time::Duration::from_millis(300), "audited in {spent:?}");
}

#[test]
fn a_dump_while_one_runs_is_busy_before_its_bytecode_is_read() {
    // `netlink_dump_start` refuses a second dump before its `start` callback
    // (`inet_diag_dump_start`) audits the bytecode: refused bytecode is `EBUSY`.
    let mut request = message(20, DUMP, &Ask::new(FAMILY_INET, UDP).v2());
    request.extend(with_bytecode(&[99, 4, 8, 0]));
    let datagrams = ask(&request);
    assert_eq!(datagrams[1][0].errno(), libc::EBUSY);
}

#[test]
fn dumps_refused_as_busy_cost_nothing() {
    // A datagram full of dump requests: only the first lists the sockets.
    let many: Vec<SocketView> = (0..2000u16)
        .map(|i| {
            let local = format!("10.0.0.2:{}", 1000 + i);
            view(FAMILY_INET, Transport::Tcp, state::ESTABLISHED, &local, "10.0.0.3:80", 1)
        })
        .collect();
    let one = message(20, DUMP, &Ask::new(FAMILY_INET, TCP).v2());
    let request = one.repeat(65536 / one.len());
    let started = std::time::Instant::now();
    let answers = respond(&many, 1, &request);
    let spent = started.elapsed();
    let busy = parse(&answers).iter().flatten().filter(|a| a.kind == 2).count();
    assert_eq!(busy, 65536 / one.len() - 1);
    assert!(spent < std::time::Duration::from_millis(500), "answered in {spent:?}");
}
