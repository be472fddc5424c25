//! IPv4 and IPv6 as a virtual socket sees them: its address family, and the
//! socket addresses programs pass in, decoded with Linux's checks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use nix::errno::Errno;

use super::ports::Proto;

/// The address family of a virtual socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Family {
    V4,
    V6,
}

impl Family {
    /// The number of its ICMP (`IPPROTO_ICMP`, `IPPROTO_ICMPV6`).
    pub(super) fn icmp_protocol(self) -> u8 {
        match self {
            Family::V4 => libc::IPPROTO_ICMP as u8,
            Family::V6 => libc::IPPROTO_ICMPV6 as u8,
        }
    }

    /// The family's `AF_*` number.
    pub(super) fn raw(self) -> i32 {
        match self {
            Self::V4 => libc::AF_INET,
            Self::V6 => libc::AF_INET6,
        }
    }

    /// The family of `ip`.
    pub(super) fn of(ip: IpAddr) -> Self {
        if ip.is_ipv4() { Self::V4 } else { Self::V6 }
    }

    /// The family's wildcard address.
    pub(super) fn unspecified(self) -> IpAddr {
        match self {
            Self::V4 => Ipv4Addr::UNSPECIFIED.into(),
            Self::V6 => Ipv6Addr::UNSPECIFIED.into(),
        }
    }

    /// The family's loopback address.
    pub(super) fn loopback(self) -> IpAddr {
        match self {
            Self::V4 => Ipv4Addr::LOCALHOST.into(),
            Self::V6 => Ipv6Addr::LOCALHOST.into(),
        }
    }

    /// `ip` as a socket of this family writes it (IPv4 as v4-mapped on IPv6
    /// sockets).
    pub(super) fn map_ip(self, ip: IpAddr) -> IpAddr {
        match (self, ip) {
            (Self::V6, IpAddr::V4(v4)) => IpAddr::V6(v4.to_ipv6_mapped()),
            _ => ip,
        }
    }
}

/// Decodes an IPv4 or IPv6 address for a socket of `family`, with Linux's checks
/// (length before family). `bind` accepts `AF_UNSPEC` with `INADDR_ANY` on IPv4
/// sockets, for old programs.
pub(super) fn inet_addr(bytes: &[u8], family: Family, binding: bool) -> Result<SocketAddr, Errno> {
    let sa_family = |b: &[u8]| u16::from_ne_bytes([b[0], b[1]]) as i32;
    let port = |b: &[u8]| u16::from_be_bytes([b[2], b[3]]);
    match family {
        Family::V4 => {
            if bytes.len() < size_of::<libc::sockaddr_in>() {
                return Err(Errno::EINVAL);
            }
            let ip = Ipv4Addr::new(bytes[4], bytes[5], bytes[6], bytes[7]);
            match sa_family(bytes) {
                libc::AF_INET => Ok(SocketAddrV4::new(ip, port(bytes)).into()),
                libc::AF_UNSPEC if binding && ip.is_unspecified() => {
                    Ok(SocketAddrV4::new(ip, port(bytes)).into())
                }
                _ => Err(Errno::EAFNOSUPPORT),
            }
        }
        Family::V6 => {
            // Linux accepts the RFC 2133 length, without sin6_scope_id.
            if bytes.len() < 24 {
                return Err(Errno::EINVAL);
            }
            if sa_family(bytes) != libc::AF_INET6 {
                return Err(Errno::EAFNOSUPPORT);
            }
            let ip: [u8; 16] = bytes[8..24].try_into().expect("16 bytes");
            Ok(SocketAddrV6::new(ip.into(), port(bytes), 0, 0).into())
        }
    }
}

/// `to`, or where Linux sends what is sent to the unspecified address (IPv4's,
/// also v4-mapped, or IPv6's): to loopback, in the same form.
pub(super) fn unspecified_as_loopback(to: SocketAddr) -> SocketAddr {
    let ip = to.ip().to_canonical();
    if !ip.is_unspecified() {
        return to;
    }
    let loopback = Family::of(ip).loopback();
    let ip = if to.ip().is_ipv6() { Family::V6.map_ip(loopback) } else { loopback };
    SocketAddr::new(ip, to.port())
}

/// The destination of a datagram send on a `proto` socket of `family`, with
/// Linux's rules (`udp_sendmsg`, `udpv6_sendmsg`, `ping_v6_sendmsg`): `Ok(None)`
/// is no address at all.
pub(super) fn datagram_address(
    bytes: &[u8],
    family: Family,
    proto: Proto,
) -> Result<Option<SocketAddr>, Errno> {
    if bytes.len() < 2 {
        return Err(Errno::EINVAL);
    }
    let sa_family = i32::from(u16::from_ne_bytes([bytes[0], bytes[1]]));
    // AF_UNSPEC read as the socket's own family.
    let as_own_family = || {
        let mut inet = bytes.to_vec();
        inet[..2].copy_from_slice(&(family.raw() as u16).to_ne_bytes());
        inet_addr(&inet, family, false).map(Some)
    };
    match (family, sa_family) {
        // An IPv6 ping socket takes a whole sockaddr_in6, and only that family.
        (Family::V6, _) if proto == Proto::Icmp && bytes.len() < 28 => Err(Errno::EINVAL),
        // `rawv6_sendmsg` judges the length (RFC 2133's) before the family.
        (Family::V6, _) if proto == Proto::Raw && bytes.len() < 24 => Err(Errno::EINVAL),
        (Family::V6, libc::AF_INET6) => inet_addr(bytes, family, false).map(Some),
        // `rawv6_sendmsg` takes a family left 0 as AF_INET6.
        (Family::V6, libc::AF_UNSPEC) if proto == Proto::Raw => as_own_family(),
        (Family::V6, _) if proto != Proto::Udp => Err(Errno::EAFNOSUPPORT),
        // An IPv4 socket reads AF_UNSPEC as AF_INET.
        (Family::V4, libc::AF_UNSPEC) => as_own_family(),
        (Family::V4, _) => inet_addr(bytes, family, false).map(Some),
        (Family::V6, libc::AF_UNSPEC) => Ok(None),
        // `udpv6_sendmsg` hands an IPv4 address to IPv4's UDP: the mapped address.
        (Family::V6, libc::AF_INET) => {
            let to = inet_addr(bytes, Family::V4, false)?;
            Ok(Some(SocketAddr::new(Family::V6.map_ip(to.ip()), to.port())))
        }
        (Family::V6, _) => Err(Errno::EINVAL),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::vunet::sockaddr::encode;

    #[test]
    fn addresses_are_checked_length_first() {
        let v4 = encode("127.0.0.1:80".parse().unwrap(), libc::AF_INET);
        assert_eq!(inet_addr(&v4, Family::V4, false), Ok("127.0.0.1:80".parse().unwrap()));
        assert_eq!(inet_addr(&v4[..15], Family::V4, false), Err(Errno::EINVAL));
        assert_eq!(inet_addr(&v4, Family::V6, false), Err(Errno::EINVAL));
        let v6 = encode("[::1]:80".parse().unwrap(), libc::AF_INET6);
        assert_eq!(inet_addr(&v6[..24], Family::V6, false), Ok("[::1]:80".parse().unwrap()));
        let mut unspec = vec![0u8; 16];
        assert_eq!(inet_addr(&unspec, Family::V4, true), Ok("0.0.0.0:0".parse().unwrap()));
        assert_eq!(inet_addr(&unspec, Family::V4, false), Err(Errno::EAFNOSUPPORT));
        unspec[4] = 1;
        assert_eq!(inet_addr(&unspec, Family::V4, true), Err(Errno::EAFNOSUPPORT));
    }

    /// A destination in `family`'s layout, its family field set to `sa_family`.
    fn destination(addr: &str, family: Family, sa_family: i32) -> Vec<u8> {
        let mut bytes = encode(addr.parse().unwrap(), family.raw());
        bytes[..2].copy_from_slice(&(sa_family as u16).to_ne_bytes());
        bytes
    }

    #[test]
    fn unspecified_families_read_as_linux_reads_them() {
        let v4 = destination("127.0.0.1:0", Family::V4, libc::AF_UNSPEC);
        let want4 = Ok(Some("127.0.0.1:0".parse().unwrap()));
        assert_eq!(datagram_address(&v4, Family::V4, Proto::Udp), want4);
        assert_eq!(datagram_address(&v4, Family::V4, Proto::Raw), want4);
        let v6 = destination("[::1]:0", Family::V6, libc::AF_UNSPEC);
        let want6 = Ok(Some("[::1]:0".parse().unwrap()));
        assert_eq!(datagram_address(&v6, Family::V6, Proto::Raw), want6);
        assert_eq!(datagram_address(&v6[..24], Family::V6, Proto::Raw), want6);
        // UDP takes it as "no destination"; ping sockets refuse it.
        assert_eq!(datagram_address(&v6, Family::V6, Proto::Udp), Ok(None));
        assert_eq!(datagram_address(&v6, Family::V6, Proto::Icmp), Err(Errno::EAFNOSUPPORT));
        let inet = destination("[::1]:0", Family::V6, libc::AF_INET);
        assert_eq!(datagram_address(&inet, Family::V6, Proto::Raw), Err(Errno::EAFNOSUPPORT));
    }
}
