//! ICMP for programs: ping sockets and raw ICMP sockets, as Linux serves them.
//!
//! - A *ping socket* (`SOCK_DGRAM`, `IPPROTO_ICMP` or `IPPROTO_ICMPV6`) sends echo
//!   requests whose identifier the kernel sets to the socket's "port", and receives
//!   the matching echo replies, without the IP header.
//! - A *raw ICMP socket* (`SOCK_RAW`) receives a copy of every ICMP packet that
//!   reaches the host (IPv4: with the IP header; IPv6: without), and sends ICMP
//!   messages that the host wraps in an IP header (with the socket's TTL).
//!
//! Both are datagram carriers; what they send to a remote host goes out through
//! the stack's raw smoltcp socket, built here, and what arrives is sorted here.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::inet::Family;
use super::ports::Proto;
use super::raw::{IPV4_HEADER, IPV6_HEADER, ipv4_header, ipv6_header};
use crate::modules::vunet::sockaddr::encode;

const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_ECHO_REQUEST: u8 = 8;
const ICMPV6_ECHO_REQUEST: u8 = 128;
const ICMPV6_ECHO_REPLY: u8 = 129;

/// The Internet checksum of `parts` (RFC 1071).
pub(super) fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for part in parts {
        for pair in part.chunks(2) {
            let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
            sum += u32::from(word);
        }
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The ICMPv6 pseudo-header for a message of `len` bytes.
fn pseudo_header_v6(src: Ipv6Addr, dst: Ipv6Addr, len: usize) -> Vec<u8> {
    let mut header = Vec::with_capacity(40);
    header.extend_from_slice(&src.octets());
    header.extend_from_slice(&dst.octets());
    header.extend_from_slice(&(len as u32).to_be_bytes());
    header.extend_from_slice(&[0, 0, 0, 58]);
    header
}

/// Whether a ping socket may send `message`: an echo request of its family.
/// Linux refuses anything else with `EINVAL`.
pub(super) fn is_echo_request(family: Family, message: &[u8]) -> bool {
    let wanted = match family {
        Family::V4 => ICMP_ECHO_REQUEST,
        Family::V6 => ICMPV6_ECHO_REQUEST,
    };
    message.len() >= 8 && message[0] == wanted && message[1] == 0
}

/// The IP packet that carries `message` from `source` to `to`: for a ping socket
/// with its identifier set to `ident` and its checksum computed, as Linux does;
/// for a raw socket as the program wrote it (ICMPv6 checksums are the kernel's).
pub(super) fn outgoing(
    proto: Proto,
    source: IpAddr,
    to: IpAddr,
    ident: u16,
    ttl: u8,
    message: &[u8],
) -> Option<Vec<u8>> {
    if message.len() < 8 {
        return None;
    }
    let mut message = message.to_vec();
    if proto == Proto::Icmp {
        message[4..6].copy_from_slice(&ident.to_be_bytes());
    }
    match (source, to) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            if proto == Proto::Icmp {
                message[2..4].fill(0);
                let sum = checksum(&[&message]);
                message[2..4].copy_from_slice(&sum.to_be_bytes());
            }
            let mut packet = ipv4_header((src, dst), ttl, 1, message.len());
            packet.extend_from_slice(&message);
            Some(packet)
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            message[2..4].fill(0);
            let sum = checksum(&[&pseudo_header_v6(src, dst, message.len()), &message]);
            message[2..4].copy_from_slice(&sum.to_be_bytes());
            let mut packet = ipv6_header((src, dst), ttl, 58, message.len());
            packet.extend_from_slice(&message);
            Some(packet)
        }
        _ => None,
    }
}

/// The echo reply `to` sends back to `source` for `request` (an echo request of
/// ping socket `ident`): its type turned, identifier kept, checksum redone.
pub(super) fn echo_reply(
    to: IpAddr,
    source: IpAddr,
    ident: u16,
    request: &[u8],
) -> Option<Vec<u8>> {
    let mut reply = request.to_vec();
    if reply.len() < 8 {
        return None;
    }
    reply[4..6].copy_from_slice(&ident.to_be_bytes());
    reply[2..4].fill(0);
    let sum = match (to.to_canonical(), source.to_canonical()) {
        (IpAddr::V4(_), _) => {
            reply[0] = ICMP_ECHO_REPLY;
            checksum(&[&reply])
        }
        (IpAddr::V6(to), IpAddr::V6(source)) => {
            reply[0] = ICMPV6_ECHO_REPLY;
            checksum(&[&pseudo_header_v6(to, source, reply.len()), &reply])
        }
        _ => return None,
    };
    reply[2..4].copy_from_slice(&sum.to_be_bytes());
    Some(reply)
}

/// An ICMP packet that reached the stack, as its sockets receive it.
pub(super) struct Arrival<'a> {
    /// The IP version it came over.
    pub(super) family: Family,
    /// Its sender (port 0).
    pub(super) from: SocketAddr,
    /// Its TTL (hop limit).
    pub(super) ttl: u8,
    /// For an echo reply, the ping socket it answers: its address and identifier.
    pub(super) echo_reply_to: Option<SocketAddr>,
    /// The ICMP message, without the IP header.
    pub(super) message: &'a [u8],
    /// What a raw socket of its family receives: Linux's IPv4 raw sockets get the
    /// IP header too, IPv6's do not.
    pub(super) raw: &'a [u8],
}

/// Reads an ICMP packet that reached the stack (see [`Arrival`]): an echo reply
/// goes to the ping socket whose identifier it carries, and every packet to each
/// raw socket of its family.
pub(super) fn arrival(packet: &[u8]) -> Option<Arrival<'_>> {
    let Parsed { family, src, dst, ttl, message, whole } = parse(packet)?;
    let reply = match family {
        Family::V4 => ICMP_ECHO_REPLY,
        Family::V6 => ICMPV6_ECHO_REPLY,
    };
    let echo_reply_to = (message.len() >= 8 && message[0] == reply)
        .then(|| SocketAddr::new(dst, u16::from_be_bytes([message[4], message[5]])));
    let raw = if family == Family::V4 { whole } else { message };
    Some(Arrival { family, from: SocketAddr::new(src, 0), ttl, echo_reply_to, message, raw })
}

/// An ICMP error about a packet the stack sent, as Linux hands it to the socket
/// that sent it (`sk_err`, and the error queue with `IP_RECVERR`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct IcmpError {
    /// The kind of socket that sent the packet.
    pub(super) proto: Proto,
    /// The packet's source: the sending socket's address (the identifier as the
    /// port for ICMP).
    pub(super) local: SocketAddr,
    /// The packet's destination.
    pub(super) remote: SocketAddr,
    /// Who sent the error (a router, or the destination); `None` for an error
    /// of the host's own (`SO_EE_ORIGIN_LOCAL`).
    pub(super) offender: Option<IpAddr>,
    /// What Linux puts in `ee_info`: the MTU, for a datagram too large.
    pub(super) info: u32,
    /// The error as Linux converts it, and whether it is fatal (reported without
    /// `IP_RECVERR` too).
    pub(super) errno: nix::errno::Errno,
    pub(super) fatal: bool,
    /// ICMP type and code.
    pub(super) kind: u8,
    pub(super) code: u8,
    /// What of the sent packet the error quotes, past its transport header.
    pub(super) payload: Vec<u8>,
}

/// Linux's conversion of an ICMP error to an errno, with whether it is fatal
/// (`icmp_err_convert`, `icmpv6_err_convert`); `None` for what is not an error.
fn convert(family: Family, kind: u8, code: u8) -> Option<(nix::errno::Errno, bool)> {
    use nix::errno::Errno::*;
    match (family, kind) {
        (Family::V4, 3) => Some(match code {
            0 => (ENETUNREACH, false),
            1 => (EHOSTUNREACH, false),
            2 => (ENOPROTOOPT, true),
            3 => (ECONNREFUSED, true),
            4 => (EMSGSIZE, false),
            5 => (EOPNOTSUPP, false),
            6 | 9 => (ENETUNREACH, true),
            7 => (EHOSTDOWN, true),
            8 => (ENONET, true),
            11 => (ENETUNREACH, false),
            12 => (EHOSTUNREACH, false),
            _ => (EHOSTUNREACH, true),
        }),
        (Family::V4, 11) | (Family::V6, 3) => Some((EHOSTUNREACH, false)),
        (Family::V6, 1) => Some(match code {
            0 => (ENETUNREACH, false),
            2 | 3 => (EHOSTUNREACH, false),
            4 => (ECONNREFUSED, true),
            _ => (EACCES, true),
        }),
        _ => None,
    }
}

/// The port unreachable the host itself answers a UDP datagram from `local` to
/// `remote` (one of its own addresses, where no socket is bound) with.
pub(super) fn port_unreachable(local: SocketAddr, remote: SocketAddr, payload: &[u8]) -> IcmpError {
    let family = Family::of(remote.ip());
    let (kind, code) = match family {
        Family::V4 => (3, 3),
        Family::V6 => (1, 4),
    };
    let (errno, fatal) = convert(family, kind, code).expect("port unreachable is an error");
    IcmpError {
        proto: Proto::Udp,
        local,
        remote,
        offender: Some(remote.ip()),
        info: 0,
        errno,
        fatal,
        kind,
        code,
        payload: payload.to_vec(),
    }
}

/// The error an ICMP error packet reports, if it is one about UDP, TCP or ICMP.
pub(super) fn error(packet: &[u8]) -> Option<IcmpError> {
    let outer = parse(packet)?;
    let (kind, code) = (*outer.message.first()?, *outer.message.get(1)?);
    let (errno, fatal) = convert(outer.family, kind, code)?;
    let quoted = outer.message.get(8..)?;
    let (proto_number, src, dst, header) = match outer.family {
        Family::V4 => {
            let header = usize::from(quoted.first()? & 0x0f) * 4;
            let src: [u8; 4] = quoted.get(12..16)?.try_into().ok()?;
            let dst: [u8; 4] = quoted.get(16..20)?.try_into().ok()?;
            let (src, dst) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
            (*quoted.get(9)?, IpAddr::from(src), IpAddr::from(dst), header)
        }
        Family::V6 => {
            let src: [u8; 16] = quoted.get(8..24)?.try_into().ok()?;
            let dst: [u8; 16] = quoted.get(24..40)?.try_into().ok()?;
            (*quoted.get(6)?, Ipv6Addr::from(src).into(), Ipv6Addr::from(dst).into(), IPV6_HEADER)
        }
    };
    let transport = quoted.get(header..header + 8)?;
    let port = |at: usize| u16::from_be_bytes([transport[at], transport[at + 1]]);
    let (proto, local_port, remote_port, payload) = match proto_number {
        17 => (Proto::Udp, port(0), port(2), quoted.get(header + 8..).unwrap_or_default()),
        // A connection's segment: what matters is which connection.
        6 => (Proto::Tcp, port(0), port(2), &[][..]),
        // Ping and raw sockets get the quoted ICMP message itself.
        1 | 58 => (Proto::Icmp, port(4), 0, &quoted[header..]),
        _ => return None,
    };
    Some(IcmpError {
        proto,
        local: SocketAddr::new(src, local_port),
        remote: SocketAddr::new(dst, remote_port),
        offender: Some(outer.src),
        // "Fragmentation needed" and "packet too big" name the MTU.
        info: match (outer.family, kind, code) {
            (Family::V4, 3, 4) => {
                u32::from(u16::from_be_bytes([outer.message[6], outer.message[7]]))
            }
            (Family::V6, 2, _) => u32::from_be_bytes(outer.message[4..8].try_into().ok()?),
            _ => 0,
        },
        errno,
        fatal,
        kind,
        code,
        payload: payload.to_vec(),
    })
}

/// The error Linux queues for a datagram of socket `local` to `remote` that is
/// larger than its path's `mtu` while fragments are forbidden (`ip_local_error`).
pub(super) fn too_long(
    proto: Proto,
    local: SocketAddr,
    remote: SocketAddr,
    mtu: usize,
) -> IcmpError {
    IcmpError {
        proto,
        local,
        remote,
        offender: None,
        info: mtu as u32,
        errno: nix::errno::Errno::EMSGSIZE,
        fatal: false,
        kind: 0,
        code: 0,
        payload: Vec::new(),
    }
}

/// The data of an `IP_RECVERR` (`IPV6_RECVERR`) control message for `e`: a
/// `struct sock_extended_err` and the offender's address (zeros for a local
/// error, as Linux leaves it).
pub(super) fn extended_error(e: &IcmpError, family: Family) -> Vec<u8> {
    const SO_EE_ORIGIN_LOCAL: u8 = 1;
    const SO_EE_ORIGIN_ICMP: u8 = 2;
    const SO_EE_ORIGIN_ICMP6: u8 = 3;
    let origin = match e.offender {
        None => SO_EE_ORIGIN_LOCAL,
        Some(IpAddr::V4(_)) => SO_EE_ORIGIN_ICMP,
        Some(IpAddr::V6(_)) => SO_EE_ORIGIN_ICMP6,
    };
    let mut data = (e.errno as u32).to_ne_bytes().to_vec();
    data.extend_from_slice(&[origin, e.kind, e.code, 0]);
    data.extend_from_slice(&e.info.to_ne_bytes());
    data.extend_from_slice(&[0; 4]); // ee_data
    match e.offender {
        Some(offender) => data.extend(encode(SocketAddr::new(offender, 0), family.raw())),
        None => data.resize(data.len() + encode(e.remote, family.raw()).len(), 0),
    }
    data
}

/// An IP packet carrying ICMP, split into what the stack reads of it.
struct Parsed<'a> {
    family: Family,
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    /// The ICMP message.
    message: &'a [u8],
    /// The whole packet, IP header included.
    whole: &'a [u8],
}

/// Splits an IPv4 or IPv6 packet carrying ICMP into its [`Parsed`] parts.
fn parse(packet: &[u8]) -> Option<Parsed<'_>> {
    match packet.first()? >> 4 {
        4 => {
            let header = usize::from(packet[0] & 0x0f) * 4;
            if packet.len() < header.max(IPV4_HEADER) {
                return None;
            }
            let total = usize::from(u16::from_be_bytes([packet[2], packet[3]])).min(packet.len());
            let src = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
            let dst = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
            let packet = &packet[..total.max(header)];
            let (ttl, message) = (packet[8], &packet[header..]);
            Some(Parsed {
                family: Family::V4,
                src: src.into(),
                dst: dst.into(),
                ttl,
                message,
                whole: packet,
            })
        }
        6 => {
            if packet.len() < IPV6_HEADER {
                return None;
            }
            let src: [u8; 16] = packet[8..24].try_into().ok()?;
            let dst: [u8; 16] = packet[24..40].try_into().ok()?;
            let (src, dst) = (Ipv6Addr::from(src), Ipv6Addr::from(dst));
            let (ttl, message) = (packet[7], &packet[IPV6_HEADER..]);
            Some(Parsed {
                family: Family::V6,
                src: src.into(),
                dst: dst.into(),
                ttl,
                message,
                whole: packet,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_requests_get_the_sockets_identifier_and_a_valid_checksum() {
        let request = [8, 0, 0, 0, 0x12, 0x34, 0, 1, b'h', b'i'];
        let src = "10.0.0.2".parse().unwrap();
        let dst = "10.0.0.1".parse().unwrap();
        let packet = outgoing(Proto::Icmp, src, dst, 777, 64, &request).unwrap();
        assert_eq!(packet.len(), 30);
        assert_eq!(checksum(&[&packet[..20]]), 0, "IPv4 header checksum");
        assert_eq!(checksum(&[&packet[20..]]), 0, "ICMP checksum");
        assert_eq!(u16::from_be_bytes([packet[24], packet[25]]), 777);
        assert_eq!(packet[8], 64);
        let p = parse(&packet).unwrap();
        assert_eq!(
            (p.family, p.src, p.dst, p.ttl, p.message.len()),
            (Family::V4, src, dst, 64, 10)
        );
    }

    #[test]
    fn icmpv6_checksums_cover_the_pseudo_header() {
        let request = [128, 0, 0, 0, 0, 0, 0, 1];
        let (src, dst): (Ipv6Addr, Ipv6Addr) =
            ("fd00::2".parse().unwrap(), "fd00::1".parse().unwrap());
        let packet = outgoing(Proto::Icmp, src.into(), dst.into(), 9, 64, &request).unwrap();
        let message = &packet[40..];
        assert_eq!(checksum(&[&pseudo_header_v6(src, dst, message.len()), message]), 0);
    }

    /// An IPv4 ICMP error of `kind`/`code` from `offender` quoting a UDP datagram
    /// 10.0.0.2:40000 -> 10.0.1.2:33434 carrying "abc".
    fn udp_error(kind: u8, code: u8, offender: [u8; 4]) -> Vec<u8> {
        let mut quoted = vec![0x45, 0, 0, 31, 0, 0, 0, 0, 1, 17, 0, 0, 10, 0, 0, 2, 10, 0, 1, 2];
        quoted.extend_from_slice(&[0x9c, 0x40, 0x82, 0x9a, 0, 11, 0, 0, b'a', b'b', b'c']);
        let mut message = vec![kind, code, 0, 0, 0, 0, 0, 0];
        message.extend_from_slice(&quoted);
        let mut packet = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0];
        packet.extend_from_slice(&offender);
        packet.extend_from_slice(&[10, 0, 0, 2]);
        let total = (packet.len() + message.len()) as u16;
        packet[2..4].copy_from_slice(&total.to_be_bytes());
        packet.extend_from_slice(&message);
        packet
    }

    #[test]
    fn icmp_errors_name_the_sending_socket_and_convert_as_linux_does() {
        let e = error(&udp_error(11, 0, [10, 0, 0, 1])).unwrap();
        assert_eq!(e.proto, Proto::Udp);
        assert_eq!(e.local, "10.0.0.2:40000".parse().unwrap());
        assert_eq!(e.remote, "10.0.1.2:33434".parse().unwrap());
        assert_eq!(e.offender, Some("10.0.0.1".parse::<IpAddr>().unwrap()));
        assert_eq!((e.errno, e.fatal), (nix::errno::Errno::EHOSTUNREACH, false));
        assert_eq!(e.payload, b"abc");
        let refused = error(&udp_error(3, 3, [10, 0, 1, 2])).unwrap();
        assert_eq!((refused.errno, refused.fatal), (nix::errno::Errno::ECONNREFUSED, true));
        // An echo reply is no error; a truncated quote is dropped.
        assert_eq!(error(&udp_error(0, 0, [10, 0, 0, 1])), None);
        let mut short = udp_error(11, 0, [10, 0, 0, 1]);
        short.truncate(40);
        assert_eq!(error(&short), None);
    }

    #[test]
    fn truncated_and_garbled_packets_are_dropped_without_a_panic() {
        let whole = udp_error(3, 3, [10, 0, 1, 2]);
        for len in 0..whole.len() {
            let _ = error(&whole[..len]);
            let _ = parse(&whole[..len]);
        }
        let mut garbled = whole.clone();
        garbled[28] = 0x4f; // the quoted header claims 60 bytes
        assert_eq!(error(&garbled), None);
        garbled[0] = 0x6f; // IPv6, shorter than its header
        assert!(parse(&garbled[..39]).is_none());
    }

    #[test]
    fn the_extended_error_is_a_sock_extended_err_and_the_offender() {
        let e = error(&udp_error(11, 0, [10, 0, 0, 1])).unwrap();
        let data = extended_error(&e, Family::V4);
        assert_eq!(data.len(), 16 + size_of::<libc::sockaddr_in>());
        assert_eq!(u32::from_ne_bytes(data[..4].try_into().unwrap()), libc::EHOSTUNREACH as u32);
        assert_eq!(&data[4..7], &[2, 11, 0], "origin ICMP, type, code");
        assert_eq!(&data[20..24], &[10, 0, 0, 1], "the offender's address");
    }

    #[test]
    fn only_echo_requests_may_leave_a_ping_socket() {
        assert!(is_echo_request(Family::V4, &[8, 0, 0, 0, 0, 0, 0, 0]));
        assert!(!is_echo_request(Family::V4, &[0, 0, 0, 0, 0, 0, 0, 0]));
        assert!(!is_echo_request(Family::V6, &[8, 0, 0, 0, 0, 0, 0, 0]));
        assert!(!is_echo_request(Family::V4, &[8, 0, 0]));
    }
}
